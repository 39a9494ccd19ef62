"""Claude Code subscription login (Anthropic OAuth, PKCE S256) and token refresh.

The flow is Claude Code's own, with its public client id: the browser opens the claude.ai consent page, comes
back to ``http://localhost:54545/callback``, and the code is exchanged with a JSON POST that must carry the
flow's ``state`` too. Anthropic may hand the code back as ``<code>#<state>``: the suffix is split off, both
states are checked, and the bare code is exchanged. The account is ``account.email_address`` of the token
answer; the file is ``claude-<email>.json`` in CLIProxyAPI's schema, so both tools read each other's files.

Anthropic has moved these URLs before (``console.anthropic.com`` → ``platform.claude.com``,
``claude.ai/oauth/authorize`` → ``claude.com/cai/oauth/authorize``); ``endpoints.claude.auth-url`` /
``token-url`` override them without a release.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from cliproxy.config import Settings
from cliproxy.credentials import Credential
from cliproxy.http import HttpClients
from cliproxy.oauth import (
    LoginContext,
    LoginError,
    LoginResult,
    PendingLogin,
    RedirectLogin,
    endpoint,
    expiry_in,
    new_state,
    pkce_pair,
    request_json,
    safe_name,
)
from cliproxy.protocols import LoginOptions
from cliproxy.refresh import CredentialHttp

from .models import PROVIDER

__all__ = [
    "AUTH_URL",
    "CALLBACK_PATH",
    "CALLBACK_PORT",
    "CLIENT_ID",
    "SCOPES",
    "TOKEN_URL",
    "ClaudeAuthenticator",
    "ClaudeLogin",
    "credential_from_data",
]

#: Claude Code's public OAuth client.
CLIENT_ID: Final = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#: Where Claude Code sends claude.ai (Pro/Max) accounts to consent.
AUTH_URL: Final = "https://claude.com/cai/oauth/authorize"
TOKEN_URL: Final = "https://platform.claude.com/v1/oauth/token"
SCOPES: Final = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
CALLBACK_PORT: Final = 54545
CALLBACK_PATH: Final = "/callback"
#: Access tokens live about 8 hours; refreshing 4 hours ahead leaves room for a failing token endpoint.
TOKEN_LIFETIME: Final = timedelta(hours=8)
REFRESH_LEAD: Final = timedelta(hours=4)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _account_email(token: Mapping[str, Any]) -> str:
    account = token.get("account")
    if isinstance(account, dict):
        email = account.get("email_address")
        if isinstance(email, str):
            return email.strip()
    return ""


def _str(token: Mapping[str, Any], key: str) -> str:
    value = token.get(key)
    return value if isinstance(value, str) else ""


def credential_from_data(path: Path, data: Mapping[str, Any]) -> Credential:
    """A ``type: claude`` auth file as a credential; the file's JSON stays the metadata, unchanged."""
    email = data.get("email") if isinstance(data.get("email"), str) else ""
    label = data.get("label") if isinstance(data.get("label"), str) and data.get("label") else email
    proxy = data.get("proxy_url") if isinstance(data.get("proxy_url"), str) and data.get("proxy_url") else None
    return Credential(
        id=f"{PROVIDER}:{path.name}",
        provider=PROVIDER,
        executor=PROVIDER,
        label=str(label or ""),
        proxy_url=str(proxy) if proxy else None,
        attributes={"account_type": "oauth", "email": email},
        metadata=dict(data),
        source=str(path),
        disabled=data.get("disabled") is True,
    )


class ClaudeLogin(RedirectLogin):
    """One started login: the authorize URL, the PKCE verifier and the state it must come back with."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.verifier, challenge = pkce_pair()
        state = new_state()
        self.redirect_uri = f"http://localhost:{port}{CALLBACK_PATH}"
        self.token_url = endpoint(settings, PROVIDER, "token-url", TOKEN_URL)
        query = httpx.QueryParams(
            code="true",
            client_id=CLIENT_ID,
            response_type="code",
            redirect_uri=self.redirect_uri,
            scope=SCOPES,
            code_challenge=challenge,
            code_challenge_method="S256",
            state=state,
        )
        auth_url = endpoint(settings, PROVIDER, "auth-url", AUTH_URL)
        sep = "&" if "?" in auth_url else "?"
        super().__init__(
            provider=PROVIDER,
            state=state,
            url=f"{auth_url}{sep}{query}",
            callback_port=port,
            callback_path=CALLBACK_PATH,
        )

    def callback_state(self, query: Mapping[str, str]) -> str:
        """The state of ``?code=<code>#<state>&state=<state>``: every copy present must agree."""
        given = query.get("state", "")
        _, sep, suffix = query.get("code", "").partition("#")
        if sep and given and suffix != given:
            return ""  # two different states: not ours, whatever either says
        return given or suffix

    async def exchange(self, code: str, query: Mapping[str, str], ctx: LoginContext) -> list[LoginResult]:
        bare = code.partition("#")[0]
        if not bare:
            raise LoginError("the OAuth callback carried no authorization code")
        token = await request_json(
            ctx.http.client(),
            "POST",
            self.token_url,
            what="token exchange",
            json={
                "code": bare,
                "state": self.state,  # verified: equal to the ``#`` suffix when there is one
                "grant_type": "authorization_code",
                "client_id": CLIENT_ID,
                "redirect_uri": self.redirect_uri,
                "code_verifier": self.verifier,
            },
        )
        if not isinstance(token, dict) or not _str(token, "access_token"):
            raise LoginError("token exchange failed: the answer carried no access token")
        email = _account_email(token)
        if not email:
            raise LoginError("token exchange failed: the answer named no account (account.email_address)")
        metadata = {
            "id_token": _str(token, "id_token"),
            "access_token": token["access_token"],
            "refresh_token": _str(token, "refresh_token"),
            "last_refresh": _now_iso(),
            "email": email,
            "type": PROVIDER,
            "expired": expiry_in(_expires_in(token)),
        }
        filename = f"{PROVIDER}-{safe_name(email)}.json"
        ctx.notify(f"Logged in to Claude as {email}")
        return [LoginResult(credential_from_data(Path(filename), metadata), filename)]


def _expires_in(token: Mapping[str, Any]) -> float:
    value = token.get("expires_in")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    # Unknown lifetime: assume Anthropic's usual 8 hours. Assuming less than the refresh lead would make every
    # fresh token look due at once (a refresh loop); a token that dies earlier is refreshed on its first 401.
    return float(TOKEN_LIFETIME.total_seconds())


class ClaudeAuthenticator:
    """``cliproxy login claude`` and the refresh of ``type: claude`` credentials."""

    provider = PROVIDER
    login_names: tuple[str, ...] = (PROVIDER, "claude-code", "anthropic")
    refresh_lead: timedelta | None = REFRESH_LEAD

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        return ClaudeLogin(ctx.settings, opts.callback_port or CALLBACK_PORT)

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        """One refresh_token grant; identity fields are only ever replaced by non-empty values."""
        refresh_token = cred.metadata.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise LoginError("the credential has no refresh_token; run 'cliproxy login claude' again")
        settings = http.settings if isinstance(http, CredentialHttp) else None
        token_url = endpoint(settings, PROVIDER, "token-url", TOKEN_URL) if settings is not None else TOKEN_URL
        token = await request_json(
            http.client(),
            "POST",
            token_url,
            what="token refresh",
            json={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID},
        )
        if not isinstance(token, dict) or not _str(token, "access_token"):
            raise LoginError("token refresh failed: the answer carried no access token")
        metadata = dict(cred.metadata)
        metadata.update(
            access_token=token["access_token"],
            refresh_token=_str(token, "refresh_token") or refresh_token,
            last_refresh=_now_iso(),
            expired=expiry_in(_expires_in(token)),
            type=PROVIDER,
        )
        email = _account_email(token)
        if email:
            metadata["email"] = email
        label = cred.label or str(metadata.get("email") or "")
        attributes = {**cred.attributes, "email": metadata.get("email", "")}
        return msgspec.structs.replace(cred, metadata=metadata, label=label, attributes=attributes)
