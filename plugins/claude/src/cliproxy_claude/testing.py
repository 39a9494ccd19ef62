"""Fake Anthropic OAuth and subscription Messages servers, enforcing what the real ones enforce.

``FakeAnthropicOAuth`` is the claude.ai consent page plus the platform token endpoint: Claude Code's client
id, ``code=true`` and an inference scope on the authorize URL, a code handed back as ``<code>#<state>``, a JSON
(never form) exchange that must name the bare code, the PKCE verifier and the flow's state, and token answers
that carry ``account``/``organization``. ``FakeClaudeSubscription`` is the Messages API as it treats a Claude
Pro/Max token: Bearer only (an ``x-api-key`` is refused), the ``oauth-2025-04-20`` beta required, expired or
unknown tokens answered 401, and a system prompt that must open with Claude Code's identity line.

Both are importable by third parties (``from cliproxy_claude.testing import ...``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cliproxy.testing import FakeClaude, FakeOAuthServer, Reply
from cliproxy.testing.fakes.base import Conn, Recorded

from .claude_code import OAUTH_BETA, has_identity
from .oauth import CLIENT_ID

__all__ = ["FakeAnthropicOAuth", "FakeClaudeSubscription"]


class FakeAnthropicOAuth(FakeOAuthServer):
    """``GET .../authorize`` and ``POST .../v1/oauth/token`` the way Anthropic answers Claude Code."""

    def __init__(
        self,
        *,
        email: str = "user@example.com",
        account_uuid: str = "6f0c4a52-0000-4000-8000-00000000a11c",
        organization: str = "Example's Organization",
        expires_in: int = 28800,
        refresh_tokens: Iterable[str] = (),
    ) -> None:
        super().__init__(
            client_id=CLIENT_ID,
            codes={},  # only codes this server issued are exchanged
            email=email,
            expires_in=expires_in,
            refresh_tokens=refresh_tokens,
            scope="user:profile user:inference",
        )
        self.code_with_state = True
        self.token_extra = {
            "account": {"uuid": account_uuid, "email_address": email},
            "organization": {"uuid": "0c4b2f1e-0000-4000-8000-00000000042a", "name": organization},
        }
        #: Why requests were refused (for assertions).
        self.refusals: list[str] = []

    def grant(self, access_token: str, *, expires_in: float = 28800) -> None:
        """Make ``access_token`` valid for ``expires_in`` seconds (tokens of hand-written auth files)."""
        self.access_tokens[access_token] = time.time() + expires_in

    async def handle(self, rec: Recorded, conn: Conn) -> None:
        problem = None
        if rec.method == "GET" and rec.path.endswith("/authorize"):
            problem = self._check_authorize(rec.query)
        elif rec.method == "POST" and rec.path.endswith("/token"):
            problem = self._check_token(rec)
        if problem is not None:
            self.refusals.append(problem)
            await self._json(conn, 400, {"error": "invalid_request", "error_description": problem})
            return
        await super().handle(rec, conn)

    @staticmethod
    def _check_authorize(q: Mapping[str, str]) -> str | None:
        if q.get("code") != "true":
            return "code=true is required"
        if "user:inference" not in q.get("scope", "").split():
            return "scope must include user:inference"
        if not q.get("redirect_uri", "").endswith("/callback"):
            return "redirect_uri must end in /callback"
        return None

    def _check_token(self, rec: Recorded) -> str | None:
        if rec.form is not None or not isinstance(rec.json, dict):
            return "the token endpoint takes a JSON body"
        body = rec.json
        if body.get("grant_type") == "authorization_code":
            code = str(body.get("code") or "")
            if "#" in code:
                return "code must be sent without its #state suffix"
            issued = self.authorizations.get(code)
            if issued is not None and body.get("state") != issued["state"]:
                return "state does not match the authorization request"
        return None


class FakeClaudeSubscription(FakeClaude):
    """The Messages API for Claude subscription tokens (see the module docstring).

    Tokens are valid when ``oauth`` issued or granted them and they have not expired, or when listed in
    ``tokens``. ``key_behaviour[token]`` forces a reply for one account (a 429 on one of two, say).
    """

    def __init__(
        self,
        oauth: FakeOAuthServer | None = None,
        *,
        tokens: Sequence[str] = (),
        require_identity: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.oauth = oauth
        self.tokens = set(tokens)
        self.require_identity = require_identity
        self.refusals: list[str] = []

    def _token_ok(self, token: str | None) -> bool:
        if not token:
            return False
        return token in self.tokens or (self.oauth is not None and self.oauth.is_valid(token))

    def _check_oauth(self, rec: Recorded) -> Reply | None:
        if rec.header("x-api-key") is not None:
            return Reply(status=401, error_message="invalid x-api-key")
        auth = rec.header("authorization") or ""
        if auth[:7].lower() != "bearer ":
            return Reply(status=401, error_message="x-api-key header is required")
        if not self._token_ok(rec.key):
            return Reply(
                status=401,
                error_message="OAuth token has expired. Please obtain a new token or refresh your existing token.",
            )
        betas = [b.strip() for b in (rec.header("anthropic-beta") or "").split(",")]
        if OAUTH_BETA not in betas:
            return Reply(status=401, error_message="OAuth authentication is currently not supported.")
        if self.require_identity and isinstance(rec.json, dict) and not has_identity(rec.json.get("system")):
            return Reply(
                status=400,
                error_message="This credential is only authorized for use with Claude Code and cannot be used "
                "for other API requests.",
            )
        return None

    async def handle(self, rec: Recorded, conn: Conn) -> None:
        endpoint = self.route(rec.method, rec.path)
        if endpoint is not None and endpoint.auth and endpoint.scripted:
            refusal = self._check_oauth(rec)
            if refusal is not None:
                self.refusals.append(refusal.error_message or "")
                await self.send_error(conn, refusal)
                return
        await super().handle(rec, conn)
