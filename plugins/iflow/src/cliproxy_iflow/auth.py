"""iFlow login (OAuth authorization code on 127.0.0.1:11451) and refresh, both ending in the account's API key.

iFlow's chat API takes an API key, not the OAuth token: after the code exchange (client secret in the form and
as HTTP Basic auth, as iFlow CLI does) the access token buys the key from ``getUserInfo``. That endpoint wants
the token in its ``accessToken`` query parameter, so its URL is never logged nor put in an error message. A
refresh renews the tokens and fetches the key again, since iFlow may rotate it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import httpx
import msgspec

from cliproxy.credentials import Credential
from cliproxy.logging import get_logger, register_secret
from cliproxy.oauth import (
    LoginContext,
    LoginError,
    LoginResult,
    PendingLogin,
    RedirectLogin,
    endpoint,
    expiry_in,
    new_state,
    request_json,
    safe_name,
)
from cliproxy.protocols import LoginOptions
from cliproxy.refresh import CredentialHttp

from .executor import EXECUTOR
from .models import PROVIDER

if TYPE_CHECKING:
    from pathlib import Path

    from cliproxy.config import Settings
    from cliproxy.http import HttpClients

__all__ = [
    "AUTH_URL",
    "CALLBACK_PATH",
    "CALLBACK_PORT",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "TOKEN_URL",
    "USERINFO_URL",
    "IFlowAuthenticator",
    "IFlowLogin",
    "credential_from_data",
    "fetch_account",
]

log = get_logger("cliproxy.iflow")

AUTH_URL: Final = "https://iflow.cn/oauth"
TOKEN_URL: Final = "https://iflow.cn/oauth/token"
USERINFO_URL: Final = "https://iflow.cn/api/oauth/getUserInfo"
#: iFlow CLI's public OAuth client (shipped inside the CLI itself, like every desktop OAuth client).
CLIENT_ID: Final = "10009311001"
CLIENT_SECRET: Final = "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"
CALLBACK_PORT: Final = 11451
CALLBACK_PATH: Final = "/oauth2callback"


def _now_iso(now: datetime) -> str:
    return now.isoformat(timespec="seconds").replace("+00:00", "Z")


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def _url(settings: Settings | None, key: str, default: str) -> str:
    return endpoint(settings, PROVIDER, key, default) if settings is not None else default


def credential_from_data(path: Path | None, data: Mapping[str, Any]) -> Credential:
    """A ``type: "iflow"`` auth file (or a fresh login) as a credential; the file's fields are kept as they are."""
    who = str(data.get("email") or "")
    name = path.name if path is not None else f"iflow-{safe_name(who)}.json"
    key = data.get("api_key")
    base = data.get("base_url")
    proxy = data.get("proxy_url")
    return Credential(
        id=f"{PROVIDER}:{name}",
        provider=PROVIDER,
        executor=EXECUTOR,
        label=str(data.get("label") or who or name),
        api_key=key if isinstance(key, str) and key else None,
        base_url=(base.strip() or None) if isinstance(base, str) else None,
        proxy_url=(proxy.strip() or None) if isinstance(proxy, str) else None,
        metadata=dict(data),
        source=str(path) if path is not None else "",
        disabled=data.get("disabled") is True,
    )


async def _token_call(client: httpx.AsyncClient, url: str, form: dict[str, str], what: str) -> dict[str, Any]:
    """A token-endpoint call as iFlow CLI makes it: client secret in the form *and* as Basic auth."""
    form = {**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    token = await request_json(client, "POST", url, what=what, data=form, headers={"Authorization": _basic()})
    access = token.get("access_token") if isinstance(token, dict) else None
    if not isinstance(access, str) or not access:
        raise LoginError(f"{what} failed: missing access token in the answer")
    register_secret(access)
    return dict(token)


async def fetch_account(client: httpx.AsyncClient, url: str, access_token: str) -> tuple[str, str]:
    """``(api_key, email or phone)`` from ``getUserInfo``. The token travels in the query: never log ``url``."""
    answer = await request_json(client, "GET", url, what="iFlow account lookup", params={"accessToken": access_token})
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or answer.get("success") is not True or not isinstance(data, dict):
        message = str(answer.get("message") or "") if isinstance(answer, dict) else ""
        raise LoginError("iFlow account lookup failed" + (f": {message[:200]}" if message else ""))
    api_key = data.get("apiKey")
    if not isinstance(api_key, str) or not api_key:
        raise LoginError("iFlow account lookup failed: the account has no API key")
    register_secret(api_key)
    who = str(data.get("email") or "").strip() or str(data.get("phone") or "").strip()
    return api_key, who


class IFlowLogin(RedirectLogin):
    """The browser comes back to ``http://localhost:<port>/oauth2callback?code=..&state=..``."""

    def __init__(self, *, settings: Settings, port: int, web: bool = False) -> None:
        state = new_state()
        #: Started from the web: an account without email or phone is still saved (``iflow-<ms>``), as there.
        self.web = web
        self.redirect = f"http://localhost:{port}{CALLBACK_PATH}"
        self.token_url = _url(settings, "token-url", TOKEN_URL)
        self.userinfo_url = _url(settings, "userinfo-url", USERINFO_URL)
        # iFlow names the redirect parameter ``redirect`` (not ``redirect_uri``) and wants the phone login page.
        query = httpx.QueryParams(
            loginMethod="phone", type="phone", redirect=self.redirect, state=state, client_id=CLIENT_ID
        )
        super().__init__(
            provider=PROVIDER,
            state=state,
            url=f"{_url(settings, 'auth-url', AUTH_URL)}?{query}",
            callback_port=port,
            callback_path=CALLBACK_PATH,
        )

    async def exchange(self, code: str, query: Mapping[str, str], ctx: LoginContext) -> list[LoginResult]:
        client = ctx.http.client()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect}
        token = await _token_call(client, self.token_url, form, "token exchange")
        api_key, who = await fetch_account(client, self.userinfo_url, token["access_token"])
        if not who and self.web:
            who = f"iflow-{int(time.time() * 1000)}"
        if not who:
            raise LoginError("iFlow account lookup failed: the account has neither an email nor a phone number")
        now = datetime.now(UTC)
        data: dict[str, Any] = {
            "access_token": token["access_token"],
            "refresh_token": str(token.get("refresh_token") or ""),
            "last_refresh": _now_iso(now),
            "expired": expiry_in(_seconds(token.get("expires_in")), now),
            "api_key": api_key,
            "email": who,
            "token_type": str(token.get("token_type") or ""),
            "scope": str(token.get("scope") or ""),
            "type": PROVIDER,
        }
        return [LoginResult(credential_from_data(None, data), f"iflow-{safe_name(who)}.json")]


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class IFlowAuthenticator:
    """``cliproxy login iflow`` and the refresh of iFlow tokens and API key (24 hours ahead, as the reference)."""

    provider = PROVIDER
    login_names: tuple[str, ...] = ("iflow",)
    refresh_lead: timedelta | None = timedelta(hours=24)

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        return IFlowLogin(settings=ctx.settings, port=opts.callback_port or CALLBACK_PORT, web=opts.web)

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        refresh_token = str(cred.metadata.get("refresh_token") or "")
        if not refresh_token:
            raise LoginError("this iFlow credential has no refresh_token; run 'cliproxy login iflow' again")
        settings = http.settings if isinstance(http, CredentialHttp) else None
        client = http.client()
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        token = await _token_call(client, _url(settings, "token-url", TOKEN_URL), form, "iFlow token refresh")
        now = datetime.now(UTC)
        data = dict(cred.metadata)
        data["access_token"] = token["access_token"]
        if token.get("refresh_token"):
            data["refresh_token"] = str(token["refresh_token"])
        data["expired"] = expiry_in(_seconds(token.get("expires_in")), now)
        for key in ("token_type", "scope"):
            if token.get(key):
                data[key] = str(token[key])
        data["type"] = PROVIDER
        data["last_refresh"] = _now_iso(now)
        try:
            api_key, who = await fetch_account(
                client, _url(settings, "userinfo-url", USERINFO_URL), data["access_token"]
            )
        except LoginError as exc:
            # The new tokens must be kept (the old refresh token may be spent); the old key usually still works.
            log.warning("iFlow API key not renewed; keeping the previous one", credential=cred.label, error=str(exc))
        else:
            data["api_key"] = api_key
            if who and not data.get("email"):
                data["email"] = who
        current = data.get("api_key")
        return msgspec.structs.replace(
            cred, api_key=current if isinstance(current, str) and current else None, metadata=data
        )
