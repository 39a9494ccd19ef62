"""A fake iFlow for tests: iflow.cn's OAuth pages, token endpoint and ``getUserInfo``, plus apis.iflow.cn's chat.

``FakeIFlow`` speaks the real wire formats over real HTTP and checks what a client sends: the authorize query
as iFlow CLI builds it (``redirect`` instead of ``redirect_uri``, ``loginMethod``/``type`` = phone, a
``state``), the code exchange with the client secret both in the form and as HTTP Basic auth, the redirect URI
matching the one authorized, the access token in ``getUserInfo``'s ``accessToken`` query parameter (where the
real server wants it), and on chat the account's API key as bearer token and iFlow CLI's ``User-Agent``.

Usable by any test (this repository's or a third party's)::

    fake = FakeIFlow(email="ann@example.com")
    async with fake.serve() as url:   # endpoints.iflow.auth-url: {url}/oauth ... (see iflow_endpoints)
        ...
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any, ClassVar

from cliproxy.testing import FakeOAuthServer, FakeOpenAIChat, Recorded, Reply
from cliproxy.testing.fakes.base import Conn

from .auth import CLIENT_ID, CLIENT_SECRET
from .models import CATALOG

__all__ = ["FakeIFlow", "iflow_endpoints"]


def iflow_endpoints(url: str) -> str:
    """The ``endpoints.iflow`` block of a config.yaml pointing every iFlow URL at a :class:`FakeIFlow`."""
    return (
        "endpoints:\n"
        "  iflow:\n"
        f"    auth-url: {url}/oauth\n"
        f"    token-url: {url}/oauth/token\n"
        f"    userinfo-url: {url}/api/oauth/getUserInfo\n"
        f"    api-url: {url}/v1\n"
    )


class FakeIFlow(FakeOAuthServer):
    """``GET /oauth`` (consent, 302 back), ``POST /oauth/token``, ``GET /api/oauth/getUserInfo`` and
    ``POST /v1/chat/completions`` (a :class:`FakeOpenAIChat` that also accepts iFlow's thinking switches).

    ``api_key`` is what ``getUserInfo`` hands out; :meth:`rotate_api_key` issues a new one and retires the old.
    Problems with what a client sent are collected in ``validation_errors`` and answered as the server would.
    """

    CHAT_PREFIX: ClassVar[str] = "/v1"

    def __init__(
        self,
        *,
        email: str = "user@example.com",
        phone: str = "",
        api_key: str | None = None,
        expires_in: int = 48 * 3600,
        chat: FakeOpenAIChat | None = None,
    ) -> None:
        super().__init__(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_param="redirect",
            require_response_type=False,
            expires_in=expires_in,
            email=email,
            scope="read write",
        )
        self.phone = phone
        self.api_key = api_key or f"sk-iflow-{secrets.token_hex(12)}"
        self.api_keys: set[str] = {self.api_key}
        self.validation_errors: list[str] = []
        self.chat = chat or FakeOpenAIChat(
            prefix=self.CHAT_PREFIX,
            models=[m.id for m in CATALOG],
            allow_fields=("chat_template_kwargs", "reasoning_split"),
        )
        self.chat.keys = None  # API keys are checked here, against the ones getUserInfo handed out

    # -- test helpers ----------------------------------------------------------------------------------------
    def seed_tokens(self, access_token: str, refresh_token: str, expires_in: float = 3600) -> None:
        """Make tokens from an existing auth file known (``expires_in`` <= 0: the access token is expired)."""
        self.access_tokens[access_token] = time.time() + expires_in
        self.refresh_tokens.add(refresh_token)

    def rotate_api_key(self) -> str:
        self.api_keys.discard(self.api_key)
        self.api_key = f"sk-iflow-{secrets.token_hex(12)}"
        self.api_keys.add(self.api_key)
        return self.api_key

    @property
    def chat_requests(self) -> list[Recorded]:
        return self.chat.requests

    @property
    def problems(self) -> list[str]:
        """Everything wrong a client sent: OAuth calls and chat calls (SDK types, headers, keys)."""
        return [*self.validation_errors, *self.chat.validation_errors]

    def _problem(self, rec: Recorded, problem: str) -> str:
        self.validation_errors.append(f"{rec.method} {rec.path}: {problem}")
        return problem

    # -- routing ---------------------------------------------------------------------------------------------
    async def handle(self, rec: Recorded, conn: Conn) -> None:
        if rec.method == "GET" and rec.path == "/oauth":
            missing = [k for k in ("loginMethod", "type") if rec.query.get(k) != "phone"]
            if "redirect_uri" in rec.query and "redirect" not in rec.query:
                missing.append("redirect (iFlow ignores redirect_uri)")
            if missing:
                await self._error(conn, 400, "invalid_request", self._problem(rec, f"missing {', '.join(missing)}"))
                return
            await super().handle(rec, conn)
        elif rec.method == "POST" and rec.path == "/oauth/token":
            if not self._basic_and_form(rec):
                await self._error(conn, 401, "invalid_client", self._problem(rec, "client secret not in both places"))
                return
            await super().handle(rec, conn)
        elif rec.path == "/api/oauth/getUserInfo":
            await self._user_info(rec, conn)
        elif rec.path.startswith(self.CHAT_PREFIX + "/"):
            await self._chat(rec, conn)
        else:
            await super().handle(rec, conn)

    @staticmethod
    def _basic_and_form(rec: Recorded) -> bool:
        """iFlow CLI sends the client credentials twice: in the form and as HTTP Basic auth."""
        form = rec.form or {}
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return (
            rec.header("authorization") == expected
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
        )

    async def _user_info(self, rec: Recorded, conn: Conn) -> None:
        if rec.method != "GET":
            await self._json(conn, 405, {"success": False, "code": "405", "message": "Method Not Allowed"})
            return
        token = rec.query.get("accessToken", "")
        if not token:
            why = "accessToken query parameter is required"
            if rec.header("authorization"):
                why += " (the Authorization header is not read)"
            await self._json(conn, 200, {"success": False, "code": "401", "message": self._problem(rec, why)})
            return
        if not self.is_valid(token):
            await self._json(conn, 200, {"success": False, "code": "401", "message": "token is invalid or expired"})
            return
        data: dict[str, Any] = {
            "apiKey": self.api_key,
            "email": self.email,
            "phone": self.phone,
            "nickName": (self.email or self.phone).split("@", 1)[0],
        }
        await self._json(conn, 200, {"success": True, "code": "200", "message": "success", "data": data})

    def _chat_problem(self, rec: Recorded) -> str | None:
        problems = []
        if rec.header("user-agent") != "iFlow-Cli":
            problems.append("User-Agent must be iFlow-Cli")
        body = rec.json if isinstance(rec.json, dict) else {}
        if "reasoning_effort" in body:
            problems.append("reasoning_effort is not an iFlow parameter (use the model's thinking switch)")
        if body.get("stream") and body.get("tools") == []:
            problems.append("a stream with an empty tools list")
        return "; ".join(problems) or None

    async def _chat(self, rec: Recorded, conn: Conn) -> None:
        self.chat.requests.append(rec)
        if not rec.key or rec.key not in self.api_keys:
            await self.chat.send_error(conn, Reply(status=401, error_message="Invalid API key provided."))
            return
        problem = self._chat_problem(rec) if rec.method == "POST" else None
        if problem is not None:
            self.chat.validation_errors.append(f"{rec.method} {rec.path}: {problem}")
            await self.chat.send_error(conn, Reply(status=400, error_message=problem))
            return
        await self.chat.handle(rec, conn)
