"""Qwen Code login (OAuth 2.0 device authorization grant with PKCE) and token refresh.

The user approves the device in a browser (``verification_uri_complete`` already carries the user code) while
we poll the token endpoint. Qwen's tokens carry no identity, so the account is named by an alias the user gives
(``--alias`` or a prompt); it becomes the file name ``qwen-<alias>.json`` and the ``email`` field, as in
CLIProxyAPI. Every call goes through ``ctx.http`` (the configured proxy), and every URL can be overridden with
``endpoints.qwen.device-url`` / ``token-url``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import httpx
import msgspec

from cliproxy.credentials import Credential
from cliproxy.oauth import (
    LOGIN_TIMEOUT,
    DeviceLogin,
    LoginContext,
    LoginError,
    LoginResult,
    PendingLogin,
    endpoint,
    expiry_in,
    new_state,
    pkce_pair,
    request_json,
    safe_name,
)
from cliproxy.protocols import LoginOptions
from cliproxy.refresh import CredentialHttp

from .executor import EXECUTOR, base_url_for
from .models import PROVIDER

if TYPE_CHECKING:
    from pathlib import Path

    from cliproxy.config import Settings
    from cliproxy.http import HttpClients

__all__ = [
    "CLIENT_ID",
    "DEVICE_GRANT",
    "DEVICE_URL",
    "SCOPE",
    "TOKEN_URL",
    "QwenAuthenticator",
    "QwenDeviceLogin",
    "credential_from_data",
    "slowed_interval",
]

DEVICE_URL: Final = "https://chat.qwen.ai/api/v1/oauth2/device/code"
TOKEN_URL: Final = "https://chat.qwen.ai/api/v1/oauth2/token"
CLIENT_ID: Final = "f0304373b74a44d2b584a3fb70ca9e56"
SCOPE: Final = "openid profile email model.completion"
DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"

#: Poll interval when the device answer names none (what Qwen Code and CLIProxyAPI use).
DEFAULT_INTERVAL: Final = 5.0
#: Never poll faster than this, whatever the server says: a 0 must not turn into a busy loop.
MIN_INTERVAL: Final = 0.1
#: RFC 8628 §3.5: after ``slow_down`` every later poll waits this much longer.
SLOW_DOWN_STEP: Final = 5.0

_ALIAS_QUESTION = "Please input your email address or alias for Qwen"


def _now_iso(now: datetime) -> str:
    return now.isoformat(timespec="seconds").replace("+00:00", "Z")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def slowed_interval(interval: float, answer: Mapping[str, Any]) -> float:
    """The poll interval after a ``slow_down``: the server's new ``interval`` if it names a longer one,
    else 5 s more (RFC 8628). The reference's 1.5x-capped-at-10 s could keep polling faster than asked."""
    named = _number(answer.get("interval"))
    if named is not None and named > interval:
        return named
    return interval + SLOW_DOWN_STEP


def credential_from_data(path: Path | None, data: Mapping[str, Any]) -> Credential:
    """A ``type: "qwen"`` auth file (or a fresh login) as a credential; the file's fields are kept as they are."""
    alias = str(data.get("email") or "")
    name = path.name if path is not None else f"qwen-{safe_name(alias)}.json"
    proxy = data.get("proxy_url")
    return Credential(
        id=f"{PROVIDER}:{name}",
        provider=PROVIDER,
        executor=EXECUTOR,
        label=str(data.get("label") or alias or name),
        base_url=base_url_for(str(data.get("resource_url") or "")),
        proxy_url=(proxy.strip() or None) if isinstance(proxy, str) else None,
        metadata=dict(data),
        source=str(path) if path is not None else "",
        disabled=data.get("disabled") is True,
    )


def _settings_of(http: HttpClients) -> Settings | None:
    return http.settings if isinstance(http, CredentialHttp) else None


def _url(settings: Settings | None, key: str, default: str) -> str:
    return endpoint(settings, PROVIDER, key, default) if settings is not None else default


class QwenDeviceLogin(DeviceLogin):
    """Polls the token endpoint until the user approved the device code (or it expired / was denied)."""

    def __init__(
        self,
        *,
        token_url: str,
        device_code: str,
        verifier: str,
        alias: str,
        url: str,
        user_code: str,
        interval: float,
        timeout: float,
    ) -> None:
        super().__init__(provider=PROVIDER, state=new_state(), url=url, user_code=user_code, timeout=timeout)
        self.token_url = token_url
        self.device_code = device_code
        self.verifier = verifier
        self.alias = alias
        self.interval = max(interval, MIN_INTERVAL)
        #: How many times the server asked us to slow down (for diagnostics and tests).
        self.slow_downs = 0

    async def poll(self, ctx: LoginContext) -> list[LoginResult]:
        client = ctx.http.client()
        form = {
            "grant_type": DEVICE_GRANT,
            "client_id": CLIENT_ID,
            "device_code": self.device_code,
            "code_verifier": self.verifier,
        }
        while True:
            await asyncio.sleep(self.interval)
            try:
                resp = await client.post(self.token_url, data=form, headers={"Accept": "application/json"}, timeout=30)
            except httpx.HTTPError:
                continue  # a dropped connection is no answer: keep polling until the deadline
            answer = _json_object(resp.content)
            if resp.status_code == 200:
                return [self._result(answer)]
            error = str(answer.get("error") or "")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                self.slow_downs += 1
                self.interval = slowed_interval(self.interval, answer)
                continue
            if error == "expired_token":
                raise LoginError("the device code expired before it was approved; run the login again")
            if error == "access_denied":
                raise LoginError("authorization was denied in the browser")
            if not error and resp.status_code >= 500:
                continue  # an overloaded server: poll again
            detail = str(answer.get("error_description") or "")
            what = " - ".join(p for p in (error, detail) if p) or "no error description"
            raise LoginError(f"device token poll failed with status {resp.status_code}: {what[:200]}")

    def _result(self, token: Mapping[str, Any]) -> LoginResult:
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise LoginError("the token endpoint answered without an access token")
        now = datetime.now(UTC)
        data: dict[str, Any] = {
            "access_token": access,
            "refresh_token": str(token.get("refresh_token") or ""),
            "last_refresh": _now_iso(now),
            "resource_url": str(token.get("resource_url") or ""),
            "email": self.alias,
            "type": PROVIDER,
            "expired": expiry_in(_number(token.get("expires_in")) or 0, now),
        }
        filename = f"qwen-{safe_name(self.alias)}.json"
        return LoginResult(credential_from_data(None, data), filename)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class QwenAuthenticator:
    """``cliproxy login qwen`` and the refresh of Qwen tokens (3 hours before they expire, as the reference)."""

    provider = PROVIDER
    login_names: tuple[str, ...] = ("qwen", "qwen-code")
    refresh_lead: timedelta | None = timedelta(hours=3)

    async def _alias(self, opts: LoginOptions, ctx: LoginContext) -> str:
        alias = (opts.alias or "").strip()
        if alias:
            return alias
        if opts.web:
            return f"qwen-{int(time.time() * 1000)}"
        if ctx.prompt is None:
            raise LoginError(
                "Qwen tokens carry no account name: pass --alias NAME (needed when stdin is not a terminal)"
            )
        alias = (await ctx.prompt(_ALIAS_QUESTION, [], None)).strip()
        if not alias:
            raise LoginError("an alias (or email address) is required to name the Qwen account")
        return alias

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        # The alias comes first: without it nothing is sent to Qwen (a headless run fails before any request).
        alias = await self._alias(opts, ctx)
        verifier, challenge = pkce_pair(32)
        device_url = _url(ctx.settings, "device-url", DEVICE_URL)
        answer = await request_json(
            ctx.http.client(),
            "POST",
            device_url,
            what="device authorization",
            data={
                "client_id": CLIENT_ID,
                "scope": SCOPE,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
            headers={"x-request-id": str(uuid.uuid4())},
        )
        if not isinstance(answer, dict) or not answer.get("device_code"):
            raise LoginError("device authorization failed: the answer carries no device_code")
        url = str(answer.get("verification_uri_complete") or answer.get("verification_uri") or "")
        if not url:
            raise LoginError("device authorization failed: the answer carries no verification URL")
        expires = _number(answer.get("expires_in"))
        interval = _number(answer.get("interval"))
        return QwenDeviceLogin(
            token_url=_url(ctx.settings, "token-url", TOKEN_URL),
            device_code=str(answer["device_code"]),
            verifier=verifier,
            alias=alias,
            url=url,
            user_code=str(answer.get("user_code") or ""),
            interval=DEFAULT_INTERVAL if interval is None else interval,
            timeout=min(LOGIN_TIMEOUT, expires) if expires and expires > 0 else LOGIN_TIMEOUT,
        )

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        """``refresh_token`` grant; Qwen may move the account (``resource_url``) and rotates refresh tokens."""
        refresh_token = str(cred.metadata.get("refresh_token") or "")
        if not refresh_token:
            raise LoginError("this Qwen credential has no refresh_token; run 'cliproxy login qwen' again")
        token = await request_json(
            http.client(),
            "POST",
            _url(_settings_of(http), "token-url", TOKEN_URL),
            what="Qwen token refresh",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID},
        )
        access = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access, str) or not access:
            raise LoginError("Qwen token refresh failed: the answer carries no access_token")
        now = datetime.now(UTC)
        data = dict(cred.metadata)
        data["access_token"] = access
        if token.get("refresh_token"):
            data["refresh_token"] = str(token["refresh_token"])
        if token.get("resource_url"):
            data["resource_url"] = str(token["resource_url"])
        data["expired"] = expiry_in(_number(token.get("expires_in")) or 0, now)
        data["type"] = PROVIDER
        data["last_refresh"] = _now_iso(now)
        return msgspec.structs.replace(cred, metadata=data, base_url=base_url_for(str(data.get("resource_url") or "")))
