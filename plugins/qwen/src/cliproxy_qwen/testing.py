"""A fake Qwen for tests: chat.qwen.ai's device login and token endpoint plus portal.qwen.ai's chat API.

``FakeQwen`` speaks the real wire formats over real HTTP and checks what a client sends: the Qwen Code client
id and scope, PKCE (S256 challenge at the device call, the matching verifier at every poll), polls no faster
than the announced interval (faster ones get ``slow_down``, as real servers answer), a valid unexpired bearer
token and Qwen Code's headers on chat, and on streams the placeholder tool and ``include_usage``. The user's
approval is a GET of ``verification_uri_complete``, exactly what a browser does.

Usable by any test (this repository's or a third party's)::

    fake = FakeQwen()
    async with fake.serve() as url:   # endpoints.qwen.device-url: {url}/api/v1/oauth2/device/code ...
        ...
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from cliproxy.testing import FakeOAuthServer, FakeOpenAIChat, Recorded, Reply
from cliproxy.testing.fakes.base import Conn

from .auth import CLIENT_ID, DEVICE_GRANT
from .models import CATALOG

__all__ = ["FakeQwen", "qwen_endpoints"]


def qwen_endpoints(url: str) -> str:
    """The ``endpoints.qwen`` block of a config.yaml pointing every Qwen URL at a :class:`FakeQwen`."""
    return (
        "endpoints:\n"
        "  qwen:\n"
        f"    device-url: {url}/api/v1/oauth2/device/code\n"
        f"    token-url: {url}/api/v1/oauth2/token\n"
    )


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class _Device:
    user_code: str
    challenge: str
    expires_at: float
    interval: float
    approved: bool = False
    denied: bool = False
    last_poll: float = 0.0
    polls: int = 0


class FakeQwen(FakeOAuthServer):
    """``POST /api/v1/oauth2/device/code``, ``GET /authorize?user_code=``, ``POST /api/v1/oauth2/token``
    (device and refresh grants) and ``POST /v1/chat/completions`` (a :class:`FakeOpenAIChat`).

    ``interval`` is announced in the device answer; ``slow_down_next`` answers that many polls with
    ``slow_down`` naming ``interval + 1``; ``deny`` makes the approval page deny; ``device_expires_in`` is the
    device code's life. Tokens carry ``resource_url`` = this server, so chat comes back here. Problems with
    what a client sent are collected in ``validation_errors`` (and answered as the real server would).
    """

    CHAT_PREFIX: ClassVar[str] = "/v1"

    def __init__(
        self,
        *,
        interval: float | None = 0,
        device_expires_in: int = 600,
        expires_in: int = 6 * 3600,
        chat: FakeOpenAIChat | None = None,
        require_stream_tools: bool = True,
    ) -> None:
        super().__init__(client_id=CLIENT_ID, expires_in=expires_in)
        self.interval = interval
        self.device_expires_in = device_expires_in
        self.slow_down_next = 0
        self.deny = False
        self.require_stream_tools = require_stream_tools
        self.devices: dict[str, _Device] = {}
        self.validation_errors: list[str] = []
        self.chat = chat or FakeOpenAIChat(prefix=self.CHAT_PREFIX, models=[m.id for m in CATALOG])
        self.chat.keys = None  # bearer tokens are checked here, against the tokens this server issued

    # -- test helpers ----------------------------------------------------------------------------------------
    def seed_tokens(self, access_token: str, refresh_token: str, expires_in: float = 3600) -> None:
        """Make tokens from an existing auth file known (``expires_in`` <= 0: the access token is expired)."""
        self.access_tokens[access_token] = time.time() + expires_in
        self.refresh_tokens.add(refresh_token)

    @property
    def chat_requests(self) -> list[Recorded]:
        return self.chat.requests

    @property
    def problems(self) -> list[str]:
        """Everything wrong a client sent: OAuth calls and chat calls (SDK types, headers, tokens)."""
        return [*self.validation_errors, *self.chat.validation_errors]

    def approve(self, user_code: str) -> bool:
        for dev in self.devices.values():
            if dev.user_code == user_code:
                dev.approved = True
                return True
        return False

    # -- routing ---------------------------------------------------------------------------------------------
    async def handle(self, rec: Recorded, conn: Conn) -> None:
        host = rec.header("host") or "127.0.0.1"
        self.token_extra.setdefault("resource_url", f"http://{host}")
        if rec.method == "POST" and rec.path.endswith("/oauth2/device/code"):
            await self._device_code(rec, conn, host)
        elif rec.method == "GET" and rec.path == "/authorize":
            await self._approve(rec, conn)
        elif (
            rec.method == "POST" and rec.path.endswith("/token") and (rec.form or {}).get("grant_type") == DEVICE_GRANT
        ):
            await self._device_token(rec, conn)
        elif rec.path.startswith(self.CHAT_PREFIX + "/"):
            await self._chat(rec, conn)
        else:
            await super().handle(rec, conn)

    def _problem(self, rec: Recorded, problem: str) -> str:
        self.validation_errors.append(f"{rec.method} {rec.path}: {problem}")
        return problem

    # -- device authorization --------------------------------------------------------------------------------
    async def _device_code(self, rec: Recorded, conn: Conn, host: str) -> None:
        form = rec.form
        problems = []
        if form is None:
            problems.append("the body must be application/x-www-form-urlencoded")
            form = {}
        if form.get("client_id") != CLIENT_ID:
            problems.append("unknown client_id")
        if "model.completion" not in form.get("scope", "").split():
            problems.append("scope must include model.completion")
        if not form.get("code_challenge") or form.get("code_challenge_method") != "S256":
            problems.append("PKCE with code_challenge_method=S256 is required")
        if problems:
            await self._error(conn, 400, "invalid_request", self._problem(rec, "; ".join(problems)))
            return
        code = secrets.token_urlsafe(24)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        interval = float(self.interval) if self.interval is not None else 5.0
        self.devices[code] = _Device(
            user_code,
            form["code_challenge"],
            time.time() + self.device_expires_in,
            interval,
            last_poll=time.monotonic(),
        )
        uri = f"http://{host}/authorize"
        body: dict[str, Any] = {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?user_code={user_code}&client=qwen-code",
            "expires_in": self.device_expires_in,
        }
        if self.interval is not None:
            body["interval"] = self.interval
        await self._json(conn, 200, body)

    async def _approve(self, rec: Recorded, conn: Conn) -> None:
        """The page a user opens: logging in and clicking "confirm" both happen on this one GET."""
        user_code = rec.query.get("user_code", "")
        dev = next((d for d in self.devices.values() if d.user_code == user_code), None)
        if dev is None:
            await conn.respond(404, b"<h1>Unknown or expired code</h1>", "text/html")
            return
        if self.deny:
            dev.denied = True
            text = "You denied access for Qwen Code."
        else:
            dev.approved = True
            text = f"Device {html.escape(user_code)} is authorized. You can return to Qwen Code."
        await conn.respond(200, f"<html><body><h1>{text}</h1></body></html>".encode(), "text/html; charset=utf-8")

    async def _device_token(self, rec: Recorded, conn: Conn) -> None:
        form = rec.form or {}
        if form.get("client_id") != CLIENT_ID:
            await self._error(conn, 400, "invalid_client", self._problem(rec, "unknown client_id"))
            return
        dev = self.devices.get(form.get("device_code", ""))
        if dev is None:
            await self._error(conn, 400, "invalid_grant", self._problem(rec, "unknown device_code"))
            return
        if _s256(form.get("code_verifier", "")) != dev.challenge:
            await self._error(conn, 400, "invalid_grant", self._problem(rec, "code_verifier does not match"))
            return
        now = time.monotonic()
        gap = now - dev.last_poll
        early = gap < dev.interval * 0.9
        dev.polls += 1
        dev.last_poll = now
        if time.time() > dev.expires_at:
            await self._error(conn, 400, "expired_token", "The device code has expired.")
            return
        if dev.denied:
            await self._error(conn, 400, "access_denied", "The user denied the authorization request.")
            return
        if early or self.slow_down_next > 0:
            if early:
                self._problem(rec, f"polled {gap:.2f}s after the previous request (interval {dev.interval}s)")
            self.slow_down_next = max(self.slow_down_next - 1, 0)
            dev.interval += 1
            body = {"error": "slow_down", "error_description": "Polling too frequently.", "interval": dev.interval}
            await self._json(conn, 400, body)
            return
        if not dev.approved:
            await self._error(conn, 400, "authorization_pending", "The user has not yet approved the request.")
            return
        del self.devices[form["device_code"]]
        await self._issue(conn, DEVICE_GRANT, None)

    # -- chat ------------------------------------------------------------------------------------------------
    def _chat_problem(self, rec: Recorded) -> str | None:
        problems = []
        if not (rec.header("user-agent") or "").startswith("QwenCode/"):
            problems.append("User-Agent must be Qwen Code's")
        if rec.header("x-dashscope-authtype") != "qwen-oauth":
            problems.append("X-DashScope-AuthType must be qwen-oauth")
        if not rec.header("x-dashscope-useragent"):
            problems.append("X-DashScope-UserAgent is missing")
        body = rec.json if isinstance(rec.json, dict) else {}
        if body.get("stream") and self.require_stream_tools:
            if not body.get("tools"):
                problems.append("a stream without tools (Qwen3 then emits stray tokens)")
            options = body.get("stream_options")
            if not isinstance(options, dict) or options.get("include_usage") is not True:
                problems.append("stream_options.include_usage must be true")
        return "; ".join(problems) or None

    async def _chat(self, rec: Recorded, conn: Conn) -> None:
        self.chat.requests.append(rec)
        if not rec.key or not self.is_valid(rec.key):
            await self.chat.send_error(conn, Reply(status=401, error_message="Invalid access token or token expired"))
            return
        problem = self._chat_problem(rec) if rec.method == "POST" else None
        if problem is not None:
            self.chat.validation_errors.append(f"{rec.method} {rec.path}: {problem}")
            await self.chat.send_error(conn, Reply(status=400, error_message=problem))
            return
        await self.chat.handle(rec, conn)
