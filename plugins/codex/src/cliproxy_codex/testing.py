"""Fakes of OpenAI's ChatGPT login and of the ChatGPT Codex backend, for tests here and in third-party code.

* :class:`FakeOpenAIAuth` is ``auth.openai.com`` for the Codex CLI client: the core fake OAuth server plus what
  OpenAI checks on top (form-encoded token calls, the Codex client id, PKCE required, the scopes and flags
  Codex CLI asks for) and an ``id_token`` carrying the ChatGPT account claims (:func:`chatgpt_claims`).
* :class:`FakeChatGPTBackend` is ``chatgpt.com/backend-api/codex``: the Responses API as the ChatGPT
  subscription serves it. It refuses what the real backend refuses, with the real answers: a token it did not
  issue (401), a missing or foreign ``chatgpt-account-id`` (403), ``stream`` not true, ``store`` not false,
  no ``instructions``, sampling limits (400 ``{"detail": ...}``), and an account over its usage limit (429
  ``usage_limit_reached`` with ``resets_in_seconds``). Everything else is the Responses fake's validation and
  its SSE lifecycle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cliproxy.testing import FakeOAuthServer, FakeOpenAIResponses, Recorded, Reply
from cliproxy.testing.fakes.base import Conn, Endpoint, Handler, dumps

from .auth import AUTH_CLAIM, CLIENT_ID

__all__ = [
    "BACKEND_PREFIX",
    "FakeChatGPTBackend",
    "FakeOpenAIAuth",
    "chatgpt_claims",
]

#: Where the backend lives on chatgpt.com; point ``endpoints.codex.api-url`` at ``<fake url>`` + this.
BACKEND_PREFIX = "/backend-api/codex"

#: Body fields the backend answers ``Unsupported parameter: <name>`` to (it manages output length itself,
#: and ``store: false`` leaves nothing for ``previous_response_id`` to point at).
UNSUPPORTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "previous_response_id")

#: What Codex CLI asks the authorize endpoint for.
SCOPES = ("openid", "email", "profile", "offline_access")


def chatgpt_claims(account_id: str, *, plan: str = "plus", user_id: str | None = None) -> dict[str, Any]:
    """The ``id_token`` claims OpenAI adds for a ChatGPT account (besides ``email``)."""
    return {
        AUTH_CLAIM: {
            "chatgpt_account_id": account_id,
            "chatgpt_plan_type": plan,
            "chatgpt_user_id": user_id or f"user-{account_id}",
            "organizations": [{"id": f"org-{account_id}", "is_default": True, "role": "owner", "title": "Personal"}],
        }
    }


class FakeOpenAIAuth(FakeOAuthServer):
    """``auth.openai.com``: ``GET /oauth/authorize`` and ``POST /oauth/token`` for the Codex CLI client.

    ``account_id`` and ``plan`` go into the ``id_token``'s ChatGPT claims; ``expires_in`` defaults to ten days,
    longer than Codex CLI's own eight-day refresh interval, as ChatGPT access tokens live.
    """

    def __init__(
        self,
        *,
        email: str = "user@example.com",
        account_id: str = "acct-0001",
        plan: str = "plus",
        expires_in: int = 10 * 24 * 3600,
        refresh_tokens: Iterable[str] = (),
    ) -> None:
        super().__init__(
            client_id=CLIENT_ID,
            email=email,
            expires_in=expires_in,
            refresh_tokens=refresh_tokens,
            id_token_claims=chatgpt_claims(account_id, plan=plan),
        )
        self.account_id = account_id
        self.problems: list[str] = []

    async def handle(self, rec: Recorded, conn: Conn) -> None:
        problem = self._openai_problem(rec)
        if problem is not None:
            self.problems.append(f"{rec.method} {rec.path}: {problem}")
            await self._error(conn, 400, "invalid_request", problem)
            return
        await super().handle(rec, conn)

    def _openai_problem(self, rec: Recorded) -> str | None:
        if rec.method == "GET" and rec.path.endswith("/authorize"):
            q = rec.query
            scopes = set(q.get("scope", "").split())
            if not scopes.issuperset(SCOPES):
                return f"scope must include {' '.join(SCOPES)}"
            if not q.get("code_challenge"):
                return "code_challenge is required"
            for flag in ("id_token_add_organizations", "codex_cli_simplified_flow"):
                if q.get(flag) != "true":
                    return f"{flag}=true is required for this client"
            if not q.get("redirect_uri", "").endswith("/auth/callback"):
                return "redirect_uri is not registered for this client"
        elif rec.method == "POST" and rec.path.endswith("/token"):
            if rec.form is None:
                return "the token endpoint takes application/x-www-form-urlencoded bodies"
            if rec.form.get("grant_type") == "refresh_token" and not set(rec.form.get("scope", "").split()) >= {
                "openid",
                "email",
            }:
                return "refresh must ask for the openid and email scopes"
        return None


def _codex_tolerant(strict: Any) -> Any:
    """The Responses validator minus the fields Codex CLI sends that the SDK types lack (the backend takes them).

    ``client_metadata`` at the top, an ``id`` on ``message`` / ``function_call_output`` input items, and
    ``content: null`` on replayed ``reasoning`` items are dropped from a copy; everything else is still checked.
    """

    def validate(rec: Recorded) -> str | None:
        body = rec.json
        if isinstance(body, dict):
            body = dict(body)
            body.pop("client_metadata", None)
            items = body.get("input")
            if isinstance(items, list):
                cleaned = []
                for item in items:
                    if isinstance(item, dict):
                        item = dict(item)
                        if item.get("type") in ("message", "function_call_output"):
                            item.pop("id", None)
                        if item.get("type") == "reasoning" and item.get("content") is None:
                            item.pop("content", None)
                    cleaned.append(item)
                body["input"] = cleaned
        result: str | None = strict(Recorded(rec.method, rec.path, rec.query, rec.headers, rec.body, body, rec.form))
        return result


class FakeChatGPTBackend(FakeOpenAIResponses):
    """``POST {prefix}/responses`` as the ChatGPT subscription serves it to Codex CLI's ChatGPT login.

    Access tokens are accepted when listed in ``accounts`` (token → ChatGPT account id) or issued (and not yet
    expired) by one of the ``issuers`` (fake OAuth server, account id). :meth:`limit` puts an account over its
    usage limit for some seconds. ``completed_output=False`` sends ``response.completed`` with an empty
    ``output`` list, which the backend has been seen to do: the items then only come in
    ``response.output_item.done`` events. :attr:`served` lists ``(account id, model)`` per accepted request;
    refused requests go to :attr:`rejections`, and those refused for what they carried (all but a 401) to
    ``validation_errors`` as well.
    """

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] | None = None,
        issuers: Sequence[tuple[FakeOAuthServer, str]] = (),
        prefix: str = BACKEND_PREFIX,
        handler: Handler | None = None,
        validate: bool = True,
        models: Sequence[str] | None = None,
        completed_output: bool = True,
    ) -> None:
        super().__init__(prefixes=(prefix,), handler=handler, validate=validate, models=models)
        self.accounts: dict[str, str] = dict(accounts or {})
        self.issuers: list[tuple[FakeOAuthServer, str]] = list(issuers)
        self.completed_output = completed_output
        self.plan_type = "plus"
        #: account id -> epoch second at which its usage window resets.
        self.usage_limits: dict[str, float] = {}
        self.served: list[tuple[str, str]] = []
        #: Requests refused for what they carried (not for usage limits), as "<path>: <detail>".
        self.rejections: list[str] = []

    def default_models(self) -> list[str]:
        return ["gpt-5", "gpt-5-codex", "codex-mini-latest"]

    # -- configuration ---------------------------------------------------------------------------------------
    def add_account(self, access_token: str, account_id: str) -> None:
        self.accounts[access_token] = account_id

    def limit(self, account_id: str, seconds: float) -> None:
        """Put ``account_id`` over its usage limit for ``seconds`` from now."""
        self.usage_limits[account_id] = time.time() + seconds

    def account_of(self, token: str | None) -> str | None:
        if not token:
            return None
        if token in self.accounts:
            return self.accounts[token]
        for server, account in self.issuers:
            if server.is_valid(token):
                return account
        return None

    # -- request flow ----------------------------------------------------------------------------------------
    def route(self, method: str, path: str) -> Endpoint | None:
        endpoint = super().route(method, path)
        if endpoint is None or endpoint.validate is None:
            return endpoint
        return Endpoint(endpoint.render, _codex_tolerant(endpoint.validate), endpoint.scripted, endpoint.auth)

    async def handle(self, rec: Recorded, conn: Conn) -> None:
        endpoint = self.route(rec.method, rec.path)
        if endpoint is None or not endpoint.scripted:
            await super().handle(rec, conn)
            return
        account = self.account_of(rec.key)
        if account is None:
            await self._refuse(conn, rec, 401, self._unauthorized_body(rec.key))
            return
        if rec.header("chatgpt-account-id") != account:
            body = {"detail": "chatgpt-account-id is missing or names a workspace this token cannot use"}
            await self._refuse(conn, rec, 403, body)
            return
        detail = self._body_problem(rec.json)
        if detail is not None:
            await self._refuse(conn, rec, 400, {"detail": detail})
            return
        reset = self.usage_limits.get(account)
        if reset is not None and reset > time.time():
            await self._usage_limit(conn, reset)
            return
        self.served.append((account, str(rec.json.get("model"))))
        await super().handle(rec, conn)

    def _unauthorized_body(self, token: str | None) -> dict[str, Any]:
        expired = bool(token) and any(token in server.access_tokens for server, _ in self.issuers)
        if expired:
            message, code = "Provided authentication token is expired. Please try signing in again.", "token_expired"
        else:
            message, code = "Could not parse your authentication token. Please try signing in again.", "invalid_token"
        return {"error": {"message": message, "type": None, "code": code, "param": None}, "status": 401}

    @staticmethod
    def _body_problem(body: Any) -> str | None:
        """What the backend checks before it looks at the conversation, in its order and words."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if body.get("stream") is not True:
            return "Stream must be set to true"
        if body.get("store") is not False:
            return "Store must be set to false"
        instructions = body.get("instructions")
        if not isinstance(instructions, str) or not instructions.strip():
            return "Instructions are required"
        for name in UNSUPPORTED:
            if name in body:
                return f"Unsupported parameter: {name}"
        return None

    async def _refuse(self, conn: Conn, rec: Recorded, status: int, body: Mapping[str, Any]) -> None:
        detail = body.get("detail") or body.get("error")
        self.rejections.append(f"{rec.path}: {status} {detail}")
        if status != 401:  # an expired token is the clock's doing; anything else is a malformed request
            self.validation_errors.append(f"{rec.method} {rec.path}: {status} {detail}")
        await conn.respond(status, dumps(body), "application/json", self.base_headers())

    async def _usage_limit(self, conn: Conn, reset: float) -> None:
        wait = max(1, math.ceil(reset - time.time()))
        body = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": self.plan_type,
                "resets_at": int(reset),
                "eligible_promo": None,
                "resets_in_seconds": wait,
            }
        }
        headers = [
            *self.base_headers(),
            ("x-codex-plan-type", self.plan_type),
            ("x-codex-primary-used-percent", "100"),
            ("x-codex-primary-reset-after-seconds", str(wait)),
            ("x-codex-primary-reset-at", str(int(reset))),
        ]
        await conn.respond(429, dumps(body), "application/json", headers)

    def _frames(
        self, env: dict[str, Any], final: dict[str, Any], items: list[dict[str, Any]], reply: Reply
    ) -> list[bytes]:
        if not self.completed_output:
            final = dict(final, output=[])
        return super()._frames(env, final, items, reply)
