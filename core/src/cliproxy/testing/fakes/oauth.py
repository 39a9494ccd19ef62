"""Fake OAuth2 authorization server: token endpoint (refresh, code + PKCE, device code), device authorization
and userinfo, so credential refresh and login flows are tested over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from .base import Conn, FakeApp, Recorded, dumps

__all__ = ["FakeOAuthServer", "IssuedToken"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class IssuedToken(msgspec.Struct):
    """One successful token response, for assertions."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    grant_type: str
    issued_at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: Mapping[str, Any]) -> str:
    """An unsigned-looking JWT (``alg: none`` style) carrying ``claims``; clients only decode the payload."""
    return ".".join([_b64url(dumps({"alg": "none", "typ": "JWT"})), _b64url(dumps(dict(claims))), _b64url(b"sig")])


class FakeOAuthServer(FakeApp):
    """``POST .../token`` (any path ending in ``/token``), ``POST .../device/code`` and ``GET .../userinfo``.

    Accepts form-encoded bodies (RFC 6749) and JSON bodies (Anthropic's console token endpoint). Refresh
    tokens rotate by default (the old one stops working); ``fail_next(n)`` makes the next ``n`` token calls
    fail, ``delay`` slows every token call, ``device_pending`` is how many device-code polls answer
    ``authorization_pending`` first. ``id_token_claims`` adds an ``id_token`` JWT (OpenAI/Codex style).
    """

    def __init__(
        self,
        *,
        refresh_tokens: Iterable[str] = (),
        codes: Mapping[str, str | None] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        expires_in: int = 3600,
        rotate_refresh: bool = True,
        device_pending: int = 0,
        id_token_claims: Mapping[str, Any] | None = None,
        scope: str | None = None,
        email: str = "user@example.com",
        redirect_param: str = "redirect_uri",
        require_response_type: bool = True,
        require_state: bool = True,
    ) -> None:
        super().__init__()
        #: Authorization-code logins: the authorize endpoint's query names (iFlow calls it ``redirect``),
        #: what a code was issued for (checked at the exchange), and how the next consent ends.
        self.redirect_param = redirect_param
        self.require_response_type = require_response_type
        self.require_state = require_state
        self.authorizations: dict[str, dict[str, str]] = {}
        #: ``access_denied`` (or any OAuth error) makes the next authorize redirect carry that error instead.
        self.deny_next: str | None = None
        #: Claude style: the code handed back is ``<code>#<state>``.
        self.code_with_state = False
        #: Extra fields merged into every token response (``account``, ``resource_url`` ...).
        self.token_extra: dict[str, Any] = {}
        self.refresh_tokens: set[str] = set(refresh_tokens)
        self.codes: dict[str, str | None] = dict(codes or {})
        self.accept_any_code = codes is None
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.rotate_refresh = rotate_refresh
        self.device_pending = device_pending
        self.id_token_claims = dict(id_token_claims) if id_token_claims is not None else None
        self.scope = scope
        self.email = email
        self.delay = 0.0
        self.issued: list[IssuedToken] = []
        self.access_tokens: dict[str, float] = {}
        self.device_codes: dict[str, int] = {}
        self._failures: list[tuple[int, str]] = []
        self._counter = 0

    # -- configuration ---------------------------------------------------------------------------------------
    def fail_next(self, n: int = 1, *, status: int = 500, error: str = "server_error") -> None:
        """Make the next ``n`` token requests fail with ``status`` and RFC 6749 ``error``."""
        self._failures.extend([(status, error)] * n)

    def add_refresh_token(self, token: str) -> None:
        self.refresh_tokens.add(token)

    def add_code(self, code: str, verifier: str | None = None) -> None:
        """Register an authorization code, optionally bound to a PKCE ``code_verifier``."""
        self.codes[code] = verifier
        self.accept_any_code = False

    def is_valid(self, access_token: str) -> bool:
        expiry = self.access_tokens.get(access_token)
        return expiry is not None and expiry > time.time()

    def expire(self, access_token: str | None = None) -> None:
        """Expire one access token (or all) server-side, to exercise 401 → refresh paths."""
        for token in [access_token] if access_token else list(self.access_tokens):
            self.access_tokens[token] = 0.0

    @property
    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/token")]

    # -- request flow ----------------------------------------------------------------------------------------
    async def handle(self, rec: Recorded, conn: Conn) -> None:
        if rec.method == "GET" and rec.path.endswith(("/authorize", "/auth", "/oauth")):
            await self._authorize(rec, conn)
        elif rec.method == "POST" and rec.path.endswith("/token"):
            await self._token(rec, conn)
        elif rec.method == "POST" and (rec.path.endswith("/device/code") or rec.path.endswith("/device_authorization")):
            await self._device(rec, conn)
        elif rec.method == "GET" and rec.path.endswith("/userinfo"):
            await self._userinfo(rec, conn)
        else:
            await self._json(conn, 404, {"error": "not_found", "error_description": f"no route {rec.path}"})

    @staticmethod
    async def _json(conn: Conn, status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        extra = [("cache-control", "no-store"), *headers]
        await conn.respond(status, dumps(obj), "application/json", extra)

    @staticmethod
    def _params(rec: Recorded) -> dict[str, str]:
        if rec.form is not None:
            return rec.form
        if isinstance(rec.json, dict):
            return {k: str(v) for k, v in rec.json.items() if v is not None}
        return {}

    def _client_ok(self, rec: Recorded, params: Mapping[str, str]) -> bool:
        cid, secret = params.get("client_id"), params.get("client_secret")
        auth = rec.header("authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
        if self.client_id is not None and cid != self.client_id:
            return False
        return self.client_secret is None or secret == self.client_secret

    async def _error(self, conn: Conn, status: int, error: str, description: str) -> None:
        await self._json(conn, status, {"error": error, "error_description": description})

    async def _token(self, rec: Recorded, conn: Conn) -> None:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self._failures:
            status, error = self._failures.pop(0)
            await self._error(conn, status, error, "scripted failure")
            return
        params = self._params(rec)
        if not self._client_ok(rec, params):
            await self._error(conn, 401, "invalid_client", "Client authentication failed.")
            return
        grant = params.get("grant_type", "")
        if grant == "refresh_token":
            token = params.get("refresh_token", "")
            if token not in self.refresh_tokens:
                await self._error(conn, 400, "invalid_grant", "Invalid refresh token.")
                return
            if self.rotate_refresh:
                self.refresh_tokens.discard(token)
                await self._issue(conn, grant, None)
            else:
                await self._issue(conn, grant, token)
        elif grant == "authorization_code":
            code = params.get("code", "")
            issued = self.authorizations.pop(code, None)
            if issued is not None:
                problem = self._check_exchange(issued, params)
                if problem:
                    await self._error(conn, 400, "invalid_grant", problem)
                    return
            elif not self.accept_any_code:
                if code not in self.codes:
                    await self._error(conn, 400, "invalid_grant", "Invalid authorization code.")
                    return
                verifier = self.codes.pop(code)
                if verifier is not None and params.get("code_verifier") != verifier:
                    await self._error(conn, 400, "invalid_grant", "PKCE verification failed.")
                    return
            await self._issue(conn, grant, None)
        elif grant == DEVICE_GRANT:
            code = params.get("device_code", "")
            if code not in self.device_codes:
                await self._error(conn, 400, "expired_token", "The device code has expired.")
                return
            if self.device_codes[code] > 0:
                self.device_codes[code] -= 1
                await self._error(conn, 400, "authorization_pending", "The user has not yet authorized.")
                return
            del self.device_codes[code]
            await self._issue(conn, grant, None)
        else:
            await self._error(conn, 400, "unsupported_grant_type", f"Unsupported grant type: {grant!r}")

    async def _authorize(self, rec: Recorded, conn: Conn) -> None:
        """The consent screen, already clicked through: 302 back to the client's redirect URI with a code."""
        q = rec.query
        redirect = q.get(self.redirect_param, "")
        problems = []
        if self.client_id is not None and q.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if self.require_response_type and q.get("response_type") != "code":
            problems.append("response_type must be code")
        if not redirect.startswith(("http://localhost:", "http://127.0.0.1:")):
            problems.append(f"{self.redirect_param} must be a loopback URL")
        if self.require_state and not q.get("state"):
            problems.append("state is required")
        if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
            problems.append("code_challenge_method must be S256")
        if problems:
            await self._error(conn, 400, "invalid_request", "; ".join(problems))
            return
        state = q.get("state", "")
        sep = "&" if "?" in redirect else "?"
        if self.deny_next:
            error, self.deny_next = self.deny_next, None
            target = f"{redirect}{sep}{urlencode({'error': error, 'state': state})}"
        else:
            code = f"fake-code/{secrets.token_hex(8)}"  # real Google codes contain '/': clients must decode
            self.authorizations[code] = {
                "redirect_uri": redirect,
                "client_id": q.get("client_id", ""),
                "code_challenge": q.get("code_challenge", ""),
                "state": state,
            }
            handed = f"{code}#{state}" if self.code_with_state else code
            target = f"{redirect}{sep}{urlencode({'code': handed, 'state': state})}"
        await conn.respond(302, b"", "text/plain", [("location", target), ("cache-control", "no-store")])

    @staticmethod
    def _check_exchange(issued: Mapping[str, str], params: Mapping[str, str]) -> str | None:
        """What a real server checks when a code is exchanged: same client, same redirect URI, PKCE."""
        if issued["client_id"] and params.get("client_id") and params["client_id"] != issued["client_id"]:
            return "code was issued to another client"
        if params.get("redirect_uri", issued["redirect_uri"]) != issued["redirect_uri"]:
            return "redirect_uri does not match the authorization request"
        if issued["code_challenge"]:
            verifier = params.get("code_verifier", "")
            if _b64url(hashlib.sha256(verifier.encode()).digest()) != issued["code_challenge"]:
                return "PKCE verification failed"
        return None

    async def _issue(self, conn: Conn, grant: str, keep_refresh: str | None) -> None:
        self._counter += 1
        access = f"fake-at-{self._counter}-{secrets.token_hex(6)}"
        refresh = keep_refresh or f"fake-rt-{self._counter}-{secrets.token_hex(6)}"
        self.refresh_tokens.add(refresh)
        now = time.time()
        self.access_tokens[access] = now + self.expires_in
        self.issued.append(IssuedToken(access, refresh, self.expires_in, grant, now))
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": refresh,
        }
        if self.scope is not None:
            body["scope"] = self.scope
        body.update(self.token_extra)
        if self.id_token_claims is not None:
            claims = {
                "email": self.email,
                "iat": int(now),
                "exp": int(now) + self.expires_in,
                **self.id_token_claims,
            }
            body["id_token"] = _jwt(claims)
        await self._json(conn, 200, body)

    async def _device(self, rec: Recorded, conn: Conn) -> None:
        code = f"fake-dc-{secrets.token_hex(8)}"
        self.device_codes[code] = self.device_pending
        host = rec.header("host") or "127.0.0.1"
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        uri = f"http://{host}/device"
        body = {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?user_code={user_code}",
            "expires_in": 900,
            "interval": 0,
        }
        await self._json(conn, 200, body)

    async def _userinfo(self, rec: Recorded, conn: Conn) -> None:
        auth = rec.header("authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not self.is_valid(token):
            await self._json(conn, 401, {"error": "invalid_token", "error_description": "Invalid Credentials"})
            return
        digest = hashlib.sha256(self.email.encode()).hexdigest()[:21]
        await self._json(conn, 200, {"id": digest, "email": self.email, "verified_email": True})
