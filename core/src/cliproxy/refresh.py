"""OAuth token refresh: a background scheduler plus on-demand refresh after a 401.

Each provider's authenticator declares ``refresh_lead`` (how long before expiry to refresh; ``None``: never
in the background). Expiry is read from the credential's metadata (``expired``/``expiry``/``expires_at`` as
RFC 3339 or epoch seconds/milliseconds, top level or under ``token``, or ``expires_in`` + ``timestamp``).

Most providers rotate refresh tokens (the old one dies on use), so a refresh is single-flight per credential
and the new tokens are written to the auth file atomically (temp file + fsync + rename, mode 0600) *before*
the pool starts using them: a crash leaves either the old or the new file, never a broken one. Failures are
logged at warning with the account label (never a token) and retried with exponential backoff; after
``max_failures`` consecutive failures of a credential whose token has expired (or has no known expiry) it is
marked unavailable in the pool, not deleted, and the next successful refresh (or an edited file) brings it
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from .config import Settings
from .credentials import Credential
from .credentials_store import atomic_write
from .http import HttpClients
from .logging import get_logger
from .protocols import Authenticator
from .runtime import Runtime

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["CredentialHttp", "TokenRefresher", "auth_file_bytes", "parse_time", "token_expiry"]

log = get_logger("cliproxy.refresh")

_EXPIRY_KEYS = ("expired", "expiry", "expires_at", "expire", "expiry_date")


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an RFC 3339 string or an epoch number (seconds or milliseconds)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            v = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                return None
            if dt.tzinfo is None:
                return dt.replace(tzinfo=datetime.now().astimezone().tzinfo).timestamp()
            return dt.timestamp()
    else:
        return None
    if v <= 0:
        return None
    return v / 1000.0 if v > 1e11 else v


def token_expiry(metadata: Mapping[str, Any]) -> float | None:
    """When the access token in ``metadata`` expires (epoch seconds), if the file says."""
    scopes: list[Mapping[str, Any]] = [metadata]
    token = metadata.get("token")
    if isinstance(token, dict):
        scopes.append(token)
    for scope in scopes:
        for key in _EXPIRY_KEYS:
            t = parse_time(scope.get(key))
            if t is not None:
                return t
    for scope in scopes:
        expires_in = scope.get("expires_in")
        issued = parse_time(scope.get("timestamp"))
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and issued is not None:
            return issued + float(expires_in)
    return None


def auth_file_bytes(cred: Credential) -> bytes:
    """An auth file's content: the metadata (plus ``type`` if the plugin dropped it), pretty-printed."""
    data: dict[str, Any] = {"type": cred.provider, **cred.metadata}
    return msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n"


class CredentialHttp(HttpClients):
    """View of :class:`HttpClients` whose default proxy is the credential's own ``proxy-url``.

    The reference refreshed through the global proxy only, which fails where just the per-key proxy reaches
    the token endpoint; with this view ``http.client()`` inside an authenticator already goes the right way.
    ``settings`` are the live settings at refresh time, so an authenticator honours ``endpoints.<provider>``
    overrides (``token-url``) that were edited after startup.
    """

    def __init__(
        self, base: HttpClients, proxy_url: str | None, settings: Settings | None = None
    ) -> None:  # no super(): shares base's clients
        self._base = base
        self._proxy = proxy_url or None
        self.default_proxy = self._proxy or base.default_proxy
        self.settings = settings

    def client(self, proxy_url: str | None = None) -> httpx.AsyncClient:
        return self._base.client(proxy_url or self._proxy)

    def set_default_proxy(self, proxy_url: str | None) -> None:
        self._base.set_default_proxy(proxy_url)

    def ssl_context(self) -> ssl.SSLContext:
        return self._base.ssl_context()

    async def aclose(self) -> None:
        """The shared clients belong to the base; closing a view closes nothing."""


class TokenRefresher:
    def __init__(
        self,
        runtime: Runtime,
        authenticators: Mapping[str, Authenticator],
        *,
        tick: float = 5.0,
        max_failures: int = 3,
        backoff_base: float = 30.0,
        backoff_max: float = 30 * 60.0,
        on_demand_min_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.authenticators = dict(authenticators)
        self.tick = tick
        self.max_failures = max_failures
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_demand_min_interval = on_demand_min_interval
        self.clock = clock
        self._inflight: dict[str, asyncio.Task[Credential | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self.run(), name="cliproxy-token-refresher")
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        pending = list(self._inflight.values())
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(BaseException):
                await t

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                log.exception("token refresh scan failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick)

    # ------------------------------------------------------------------ scheduling

    def authenticator_for(self, cred: Credential) -> Authenticator | None:
        if not cred.metadata or cred.disabled:
            return None
        return self.authenticators.get(cred.provider)

    def due(self, cred: Credential, now: float | None = None) -> bool:
        """Should the background loop refresh ``cred`` now?"""
        auth = self.authenticator_for(cred)
        if auth is None or auth.refresh_lead is None:
            return False
        now = self.clock() if now is None else now
        st = self.runtime.pool.get(cred.id)
        if st is not None and now < st.next_refresh_attempt:
            return False
        lead = auth.refresh_lead.total_seconds()
        expiry = token_expiry(cred.metadata)
        last = (st.refreshed_at if st is not None and st.refreshed_at else None) or parse_time(
            cred.metadata.get("last_refresh")
        )
        if expiry is not None:
            if last is not None and last < expiry:
                # A token that lives shorter than the lead (Codex's lead is 5 days) would otherwise be refreshed
                # again on every tick; refresh it at half its life instead.
                lead = min(lead, (expiry - last) / 2)
            return expiry - now <= lead
        if last is not None:
            return now - last >= lead
        return True

    def check(self) -> list[str]:
        """Start refreshes for every due credential; returns their ids."""
        now = self.clock()
        started: list[str] = []
        for cred in self.runtime.pool.credentials():
            if cred.id not in self._inflight and self.due(cred, now):
                self._spawn(cred.id, "scheduled")
                started.append(cred.id)
        return started

    def _spawn(self, cred_id: str, reason: str) -> asyncio.Task[Credential | None]:
        task = self._inflight.get(cred_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(cred_id, reason))
            self._inflight[cred_id] = task
            task.add_done_callback(lambda _t: self._inflight.pop(cred_id, None))
        return task

    async def refresh(self, cred_id: str, reason: str = "manual") -> Credential | None:
        """Refresh now (joining a refresh already running); the new credential, or ``None`` on failure."""
        return await asyncio.shield(self._spawn(cred_id, reason))

    async def on_unauthorized(self, cred: Credential) -> Credential | None:
        """A request got 401 with ``cred``: refresh once and hand back the credential to retry with."""
        if self.authenticator_for(cred) is None:
            return None
        st = self.runtime.pool.get(cred.id)
        if st is None:
            return None
        if st.cred is not cred and st.cred.metadata != cred.metadata:
            return st.cred  # someone refreshed it meanwhile
        if st.refreshed_at and self.clock() - st.refreshed_at < self.on_demand_min_interval:
            return None  # a token this fresh being refused is not an expiry problem
        return await self.refresh(cred.id, "unauthorized")

    # ------------------------------------------------------------------ one refresh

    async def _refresh(self, cred_id: str, reason: str) -> Credential | None:
        st = self.runtime.pool.get(cred_id)
        if st is None:
            return None
        cred = st.cred
        auth = self.authenticator_for(cred)
        if auth is None:
            return None
        name = cred.label or cred.id
        try:
            http = CredentialHttp(self.runtime.http, cred.proxy_url, self.runtime.settings)
            fresh = await auth.refresh(cred, http)
            if not isinstance(fresh, Credential):
                raise TypeError(f"authenticator returned {type(fresh).__name__}, not a Credential")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(cred, reason, exc)
            return None
        fresh = msgspec.structs.replace(fresh, id=cred.id, source=cred.source, provider=cred.provider)
        path = self._path(cred)
        if path is not None:
            data = auth_file_bytes(fresh)
            try:
                await asyncio.to_thread(atomic_write, path, data)
            except OSError as exc:
                # The old refresh token may already be dead upstream: keep serving with the new one in memory.
                log.error(
                    "cannot save refreshed token; using it in memory only",
                    credential=name,
                    file=path.name,
                    error=exc.strerror,
                )
            else:
                parsed = self.runtime.note_auth_file(path, data)
                if parsed is not None and parsed.id == cred.id:
                    fresh = parsed
        current = self.runtime.pool.get(cred_id)
        if current is not None:
            current.refreshed_at = self.clock()
            current.refresh_failures = 0
            current.refresh_error = ""
            current.next_refresh_attempt = 0.0
            self.runtime.pool.replace_credential(fresh)
        expiry = token_expiry(fresh.metadata)
        log.info(
            "token refreshed",
            credential=name,
            provider=cred.provider,
            reason=reason,
            expires_in=round(expiry - self.clock()) if expiry is not None else None,
        )
        return fresh

    def _path(self, cred: Credential) -> Path | None:
        if not cred.source or cred.source == "config":
            return None
        return Path(cred.source)

    def _failed(self, cred: Credential, reason: str, exc: Exception) -> None:
        st = self.runtime.pool.get(cred.id)
        message = f"{type(exc).__name__}: {exc}"[:300]
        failures = 1
        retry_in = self.backoff_base
        if st is not None:
            st.refresh_failures += 1
            failures = st.refresh_failures
            st.refresh_error = message
            retry_in = min(self.backoff_base * (2 ** min(failures - 1, 30)), self.backoff_max)
            st.next_refresh_attempt = self.clock() + retry_in
        log.warning(
            "token refresh failed",
            credential=cred.label or cred.id,
            provider=cred.provider,
            reason=reason,
            failures=failures,
            retry_in=round(retry_in, 1),
            error=message,
        )
        expiry = token_expiry(cred.metadata)
        dead = expiry is None or expiry <= self.clock() or reason == "unauthorized"
        if st is not None and failures >= self.max_failures and dead:
            self.runtime.pool.set_unavailable(cred.id, f"token refresh failed {failures} times: {message}")
