"""Small pieces every OAuth flow needs: PKCE, state, id_token claims, endpoint overrides, token calls."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from .flow import LoginError

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["decode_jwt_claims", "endpoint", "expiry_in", "new_state", "pkce_pair", "request_json", "safe_name"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair(nbytes: int = 96) -> tuple[str, str]:
    """``(verifier, S256 challenge)``; the verifier is ``nbytes`` random bytes, base64url without padding."""
    verifier = _b64url(secrets.token_bytes(nbytes))
    return verifier, _b64url(hashlib.sha256(verifier.encode()).digest())


def new_state() -> str:
    """32 hex characters: unguessable, and safe anywhere (URLs, logs of ids, dict keys)."""
    return secrets.token_hex(16)


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only for reading identity the token endpoint itself just sent us."""
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = msgspec.json.decode(base64.urlsafe_b64decode(payload))
    except (ValueError, msgspec.DecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def endpoint(settings: Settings, provider: str, key: str, default: str) -> str:
    """``endpoints.<provider>.<key>`` from config.yaml, else the real provider URL.

    Providers move their OAuth and API URLs; users behind gateways set them in config instead of waiting for a
    release, and tests point them at fake servers on 127.0.0.1.
    """
    value = settings.endpoints.get(provider, {}).get(key, "")
    return value.strip() or default


def expiry_in(seconds: float | int | None, now: datetime | None = None) -> str:
    """RFC 3339 expiry ``seconds`` from now, the form the reference auth files store."""
    base = now or datetime.now(UTC)
    return (base + timedelta(seconds=float(seconds or 0))).isoformat(timespec="seconds").replace("+00:00", "Z")


def safe_name(value: str) -> str:
    """A file-name-safe form of an email, alias or project id (no separators, no dot-dot)."""
    cleaned = re.sub(r"[^A-Za-z0-9@._+-]+", "_", value).strip("._") or "account"
    return cleaned[:120]


def _describe_error(status: int, body: bytes) -> str:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        desc = data.get("error_description") or data.get("message") or ""
        if isinstance(err, dict):
            desc = err.get("message") or desc
            err = err.get("type") or err.get("code") or ""
        parts = [str(p) for p in (err, desc) if p]
        if parts:
            return f"status {status}: " + " - ".join(parts)[:200]
    return f"status {status}"


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    data: Mapping[str, str] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - an httpx per-request timeout, not a cancel scope
) -> Any:
    """One OAuth/account HTTP call whose JSON answer we need; failures become a one-line ``LoginError``.

    ``what`` names the step for the user ("token exchange", "project list"). The URL is never part of the
    message: some servers want the access token in the query string.
    """
    hdrs = {"Accept": "application/json", **(headers or {})}
    try:
        resp = await client.request(
            method,
            url,
            data=dict(data) if data is not None else None,
            content=msgspec.json.encode(json) if json is not None else None,
            headers={**hdrs, "Content-Type": "application/json"} if json is not None else hdrs,
            params=dict(params) if params else None,
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise LoginError(f"{what} failed: {type(exc).__name__} reaching the server") from None
    if resp.status_code >= 400:
        raise LoginError(f"{what} failed with {_describe_error(resp.status_code, resp.content)}")
    try:
        return msgspec.json.decode(resp.content) if resp.content else {}
    except msgspec.DecodeError:
        raise LoginError(f"{what} failed: the server answered something that is not JSON") from None
