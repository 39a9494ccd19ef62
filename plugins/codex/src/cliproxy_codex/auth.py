"""ChatGPT (Codex CLI) OAuth: the login, the token refresh and the ``codex-<email>.json`` auth files.

The login is Codex CLI's own: an authorization-code flow with PKCE (S256) for its public client, the browser
coming back to ``http://localhost:1455/auth/callback``. The token endpoint answers with an ``id_token`` whose
claims name the account: ``email``, and under ``https://api.openai.com/auth`` the ``chatgpt_account_id`` that
every backend call must carry as the ``chatgpt-account-id`` header. The auth file keeps the reference's schema
(``id_token``, ``access_token``, ``refresh_token``, ``account_id``, ``last_refresh``, ``email``, ``type``,
``expired``) so CLIProxyAPI users' files load unchanged and ours load there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from cliproxy.config import Settings, load_settings
from cliproxy.credentials import Credential
from cliproxy.http import HttpClients
from cliproxy.oauth import (
    LoginContext,
    LoginError,
    LoginResult,
    PendingLogin,
    RedirectLogin,
    decode_jwt_claims,
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
    "AUTH_CLAIM",
    "AUTH_URL",
    "CALLBACK_PATH",
    "CALLBACK_PORT",
    "CLIENT_ID",
    "TOKEN_URL",
    "CodexAuthenticator",
    "CodexLogin",
    "account_claims",
    "credential_from_auth_file",
]

#: Codex CLI's public OAuth client (no secret: PKCE protects the code).
CLIENT_ID: Final = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_URL: Final = "https://auth.openai.com/oauth/authorize"
TOKEN_URL: Final = "https://auth.openai.com/oauth/token"
CALLBACK_PORT: Final = 1455
CALLBACK_PATH: Final = "/auth/callback"
SUCCESS_PATH: Final = "/success"
LOGIN_SCOPE: Final = "openid email profile offline_access"
REFRESH_SCOPE: Final = "openid profile email"
#: The id_token claim holding the ChatGPT identity (account id, plan, user id).
AUTH_CLAIM: Final = "https://api.openai.com/auth"
#: The reference refreshed Codex tokens five days before they expire (they live about ten).
REFRESH_LEAD: Final = timedelta(days=5)
#: Waits between token-refresh attempts after a network error or a 5xx (the reference: 3 attempts, 1 s, 2 s).
REFRESH_RETRY_WAITS: Final = (1.0, 2.0)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def account_claims(id_token: str) -> tuple[str, str]:
    """``(email, chatgpt_account_id)`` from an ``id_token``; empty strings for what it does not say.

    The token comes straight from OpenAI's token endpoint over TLS, so its payload is read without verifying
    the signature (we hold no key to verify it with, and it only labels the account).
    """
    claims = decode_jwt_claims(id_token) if id_token else {}
    email = claims.get("email")
    auth = claims.get(AUTH_CLAIM)
    account = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return (email if isinstance(email, str) else ""), (account if isinstance(account, str) else "")


def _expiry(token: Mapping[str, Any]) -> str | None:
    """``expired`` for the file: ``expires_in`` if sent, else the access token's own ``exp`` claim."""
    expires_in = token.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        return expiry_in(expires_in)
    access = token.get("access_token")
    exp = decode_jwt_claims(access).get("exp") if isinstance(access, str) else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > 0:
        return datetime.fromtimestamp(exp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return None


def credential_from_auth_file(path: Path, data: Mapping[str, Any]) -> Credential | None:
    """A ``type: "codex"`` auth file (ours or the reference's) as a credential; anything else is not ours.

    The whole file is the metadata, so a refresh rewrites it with every field it had. ``proxy_url``,
    ``label`` and ``disabled`` are honoured like in every reference auth file.
    """
    if str(data.get("type") or "").strip().lower() != PROVIDER:
        return None
    email = data.get("email")
    label = data.get("label") or email or path.stem
    proxy = data.get("proxy_url")
    return Credential(
        id=path.name,
        provider=PROVIDER,
        executor=PROVIDER,
        label=str(label),
        proxy_url=(proxy.strip() or None) if isinstance(proxy, str) else None,
        attributes={"owned_by": "openai", "model_type": "openai", "account_type": "oauth"},
        metadata=dict(data),
        source=str(path),
        disabled=data.get("disabled") is True,
    )


def _credential(token: Mapping[str, Any], email: str, account: str) -> Credential:
    """A fresh login's credential, its metadata in the reference file's field order."""
    metadata: dict[str, Any] = {
        "id_token": str(token.get("id_token") or ""),
        "access_token": str(token["access_token"]),
        "refresh_token": str(token.get("refresh_token") or ""),
        "account_id": account,
        "last_refresh": _now_iso(),
        "email": email,
        "type": PROVIDER,
    }
    expired = _expiry(token)
    if expired is not None:
        metadata["expired"] = expired
    return Credential(
        id=f"codex-{safe_name(email)}.json",
        provider=PROVIDER,
        executor=PROVIDER,
        label=email,
        attributes={"owned_by": "openai", "model_type": "openai", "account_type": "oauth"},
        metadata=metadata,
        source="",
    )


class CodexLogin(RedirectLogin):
    """One ChatGPT login: the authorize URL, then the code exchange when the browser comes back."""

    def __init__(self, *, auth_url: str, token_url: str, port: int) -> None:
        self.token_url = token_url
        self.verifier, challenge = pkce_pair()
        self.redirect_uri = f"http://localhost:{port}{CALLBACK_PATH}"
        state = new_state()
        query = httpx.QueryParams(
            {
                "client_id": CLIENT_ID,
                "response_type": "code",
                "redirect_uri": self.redirect_uri,
                "scope": LOGIN_SCOPE,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "prompt": "login",
                "id_token_add_organizations": "true",
                "codex_cli_simplified_flow": "true",
            }
        )
        sep = "&" if "?" in auth_url else "?"
        super().__init__(
            provider=PROVIDER,
            state=state,
            url=f"{auth_url}{sep}{query}",
            callback_port=port,
            callback_path=CALLBACK_PATH,
            success_path=SUCCESS_PATH,
        )

    async def exchange(self, code: str, query: Mapping[str, str], ctx: LoginContext) -> list[LoginResult]:
        token = await request_json(
            ctx.http.client(),
            "POST",
            self.token_url,
            what="token exchange",
            data={
                "grant_type": "authorization_code",
                "client_id": CLIENT_ID,
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": self.verifier,
            },
        )
        if not isinstance(token, dict) or not isinstance(token.get("access_token"), str) or not token["access_token"]:
            raise LoginError("token exchange failed: the answer carried no access token")
        email, account = account_claims(str(token.get("id_token") or ""))
        if not email:
            raise LoginError("token exchange failed: the id_token names no email; log in again")
        if not account:
            raise LoginError(
                "this OpenAI login names no ChatGPT account (no chatgpt_account_id); log in with a ChatGPT "
                "Plus/Pro/Team account"
            )
        cred = _credential(token, email, account)
        return [LoginResult(cred, cred.id)]


class CodexAuthenticator:
    """``cliproxy login codex`` and the refresh of ``type: "codex"`` credentials."""

    provider = PROVIDER
    login_names: tuple[str, ...] = ("codex", "chatgpt")
    refresh_lead: timedelta | None = REFRESH_LEAD

    def __init__(self, *, retry_waits: tuple[float, ...] = REFRESH_RETRY_WAITS) -> None:
        self.retry_waits = retry_waits
        self._defaults: Settings | None = None

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        return CodexLogin(
            auth_url=endpoint(ctx.settings, PROVIDER, "auth-url", AUTH_URL),
            token_url=endpoint(ctx.settings, PROVIDER, "token-url", TOKEN_URL),
            port=opts.callback_port or CALLBACK_PORT,
        )

    def _settings(self, http: HttpClients) -> Settings:
        if isinstance(http, CredentialHttp) and http.settings is not None:
            return http.settings
        if self._defaults is None:
            self._defaults = load_settings(None)
        return self._defaults

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        """Trade the refresh token for new tokens; identity fields are only ever replaced by non-empty values.

        Network errors and 5xx answers are retried (``retry_waits``); a refused refresh token is not, since
        OpenAI's refresh tokens are single-use and asking again cannot help.
        """
        refresh_token = cred.metadata.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise LoginError("the auth file has no refresh_token; run 'cliproxy login codex' again")
        url = endpoint(self._settings(http), PROVIDER, "token-url", TOKEN_URL)
        form = {
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": REFRESH_SCOPE,
        }
        token = await self._token_call(http.client(), url, form)
        return refreshed(cred, token)

    async def _token_call(self, client: httpx.AsyncClient, url: str, form: dict[str, str]) -> dict[str, Any]:
        waits = list(self.retry_waits)
        while True:
            try:
                resp = await client.post(url, data=form, headers={"Accept": "application/json"}, timeout=30.0)
            except httpx.HTTPError as exc:
                if not waits:
                    raise LoginError(f"token refresh failed: {type(exc).__name__} reaching the server") from None
            else:
                if resp.status_code < 500 or not waits:
                    break
            await asyncio.sleep(waits.pop(0))
        if resp.status_code >= 400:
            raise LoginError(f"token refresh failed with {_describe(resp)}")
        try:
            token = msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            raise LoginError("token refresh failed: the server answered something that is not JSON") from None
        if not isinstance(token, dict) or not isinstance(token.get("access_token"), str) or not token["access_token"]:
            raise LoginError("token refresh failed: the answer carried no access token")
        return token


def _describe(resp: httpx.Response) -> str:
    """``status 400: invalid_grant - <description>``; never the request (it holds the refresh token)."""
    detail = ""
    try:
        body = msgspec.json.decode(resp.content)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        desc = body.get("error_description") or ""
        if isinstance(err, dict):
            desc = err.get("message") or desc
            err = err.get("code") or err.get("type") or ""
        detail = " - ".join(str(p) for p in (err, desc) if p)[:200]
    return f"status {resp.status_code}" + (f": {detail}" if detail else "")


def refreshed(cred: Credential, token: Mapping[str, Any]) -> Credential:
    """``cred`` with the new tokens; ``account_id`` and ``email`` follow a new ``id_token`` when it names them."""
    meta = dict(cred.metadata)
    meta["access_token"] = token["access_token"]
    for key in ("refresh_token", "id_token"):
        value = token.get(key)
        if isinstance(value, str) and value:
            meta[key] = value
    email, account = account_claims(str(token.get("id_token") or ""))
    if account:
        meta["account_id"] = account
    if email:
        meta["email"] = email
    meta["last_refresh"] = _now_iso()
    meta["type"] = PROVIDER
    expired = _expiry(token)
    if expired is not None:
        meta["expired"] = expired
    else:
        meta.pop("expired", None)  # the old (past) expiry would have the token refreshed again at once
    label = cred.label if cred.metadata.get("label") else str(meta.get("email") or cred.label)
    return msgspec.structs.replace(cred, metadata=meta, label=label)
