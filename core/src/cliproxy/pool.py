"""Credential pool: round-robin selection with per-(credential, model) cooldowns.

Selection and bookkeeping are synchronous and run on the event loop thread, so a pick is atomic with respect
to other requests: 1,000 concurrent requests over 5 keys differ by at most one per key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .credentials import Credential
from .errors import NoCredentialError
from .logging import get_logger

__all__ = ["CooldownPolicy", "CredentialPool", "CredentialState", "ModelState", "PoolDiff"]

log = get_logger("cliproxy.pool")


@dataclass(slots=True)
class CooldownPolicy:
    """How long a credential rests after a failure (per model). Times in seconds."""

    auth_seconds: float = 30 * 60
    transient_seconds: float = 60.0
    quota_base_seconds: float = 1.0
    max_seconds: float = 30 * 60
    disable_cooling: bool = False

    def for_failure(self, status: int, retry_after: float | None, level: int) -> tuple[float, str]:
        """Cooldown length and reason for an upstream failure."""
        if self.disable_cooling:
            return 0.0, "quota" if status == 429 else "error"
        if status in (401, 402, 403):
            return self.auth_seconds, "unauthorized" if status == 401 else "forbidden"
        if status == 429:
            if retry_after is not None and retry_after > 0:
                return min(max(retry_after, 1.0), self.max_seconds), "quota"
            return min(self.quota_base_seconds * (2**level), self.max_seconds), "quota"
        if status in (408, 500, 502, 503, 504, 529) or status == 0:
            return self.transient_seconds, "transient"
        return 0.0, "error"


@dataclass(slots=True)
class ModelState:
    blocked_until: float = 0.0
    reason: str = ""
    backoff_level: int = 0
    last_status: int = 0
    last_error: str = ""


@dataclass(slots=True)
class CredentialState:
    cred: Credential
    models: dict[str, ModelState] = field(default_factory=dict)
    requests: int = 0
    successes: int = 0
    failures: int = 0
    in_flight: int = 0
    last_error: str = ""
    last_status: int = 0
    #: Set by the refresh scheduler when refreshing keeps failing; the credential is skipped, not deleted.
    unavailable_reason: str = ""

    def blocked(self, model: str, now: float) -> ModelState | None:
        st = self.models.get(model)
        if st is not None and st.blocked_until > now:
            return st
        return None


@dataclass(slots=True)
class PoolDiff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


class CredentialPool:
    def __init__(self, policy: CooldownPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or CooldownPolicy()
        self.clock = clock
        self._states: dict[str, CredentialState] = {}
        #: provider -> credential ids sorted by id (deterministic rotation).
        self._by_provider: dict[str, list[str]] = {}
        self._cursor: dict[str, int] = {}
        self._provider_cursor: dict[str, int] = {}

    # ------------------------------------------------------------------ snapshot management

    def update(self, creds: Iterable[Credential]) -> PoolDiff:
        """Replace the credential set; state (cooldowns, counters) survives for unchanged ids."""
        diff = PoolDiff()
        new: dict[str, CredentialState] = {}
        for cred in creds:
            old = self._states.get(cred.id)
            if old is None:
                new[cred.id] = CredentialState(cred)
                diff.added.append(cred.id)
            else:
                if old.cred != cred:
                    diff.changed.append(cred.id)
                    old.cred = cred
                    # A changed credential (new token, new key) gets a fresh chance.
                    old.models.clear()
                    old.unavailable_reason = ""
                new[cred.id] = old
        diff.removed = [cid for cid in self._states if cid not in new]
        by_provider: dict[str, list[str]] = {}
        for cid in sorted(new):
            by_provider.setdefault(new[cid].cred.provider, []).append(cid)
        self._states, self._by_provider = new, by_provider
        for cid in diff.added:
            log.info("credential added", credential=new[cid].cred.label or cid, provider=new[cid].cred.provider)
        for cid in diff.removed:
            log.info("credential removed", credential=cid)
        return diff

    def replace_credential(self, cred: Credential) -> None:
        """A refreshed token: same id, new secrets, state kept except errors caused by the old token."""
        st = self._states.get(cred.id)
        if st is None:
            return
        st.cred = cred
        st.unavailable_reason = ""
        for ms in st.models.values():
            if ms.reason in ("unauthorized", "forbidden"):
                ms.blocked_until = 0.0

    def credentials(self) -> list[Credential]:
        return [s.cred for s in self._states.values()]

    def get(self, cred_id: str) -> CredentialState | None:
        return self._states.get(cred_id)

    def providers(self) -> set[str]:
        return set(self._by_provider)

    # ------------------------------------------------------------------ selection

    def rotate_providers(self, model: str, providers: list[str]) -> list[str]:
        """Round-robin the starting provider per model so several providers share the load."""
        n = len(providers)
        if n <= 1:
            return providers
        off = self._provider_cursor.get(model, 0)
        self._provider_cursor[model] = (off + 1) % n
        off %= n
        return providers[off:] + providers[:off]

    def pick(
        self,
        provider: str,
        model: str,
        exclude: set[str] | frozenset[str] = frozenset(),
        serves: Callable[[str, str], bool] | None = None,
    ) -> Credential:
        """Next available credential of ``provider`` for ``model``, or ``NoCredentialError``."""
        now = self.clock()
        ids = self._by_provider.get(provider, ())
        available: list[CredentialState] = []
        soonest: float | None = None
        blocked_any = False
        all_quota = True
        for cid in ids:
            if cid in exclude:
                continue
            st = self._states[cid]
            if st.cred.disabled or st.unavailable_reason:
                continue
            if serves is not None and not serves(cid, model):
                continue
            b = st.blocked(model, now)
            if b is not None:
                blocked_any = True
                if b.reason != "quota":
                    all_quota = False
                soonest = b.blocked_until if soonest is None else min(soonest, b.blocked_until)
                continue
            available.append(st)
        if not available:
            if blocked_any and soonest is not None:
                wait = max(soonest - now, 0.0)
                if all_quota:
                    raise NoCredentialError(
                        429,
                        f"All credentials for model {model} are cooling down via provider {provider}",
                        retry_after=wait,
                        code="model_cooldown",
                    )
                raise NoCredentialError(
                    503,
                    f"No credential for model {model} via provider {provider} is available right now",
                    retry_after=wait,
                    code="auth_unavailable",
                )
            raise NoCredentialError(503, f"No credential available for model {model}", code="auth_not_found")
        key = provider + ":" + model
        cur = self._cursor.get(key, 0)
        self._cursor[key] = (cur + 1) & 0x3FFFFFFF
        st = available[cur % len(available)]
        st.requests += 1
        return st.cred

    def next_recovery(self, provider: str, model: str, serves: Callable[[str, str], bool] | None = None) -> float | None:
        """Seconds until the first cooling credential of ``provider`` can serve ``model`` again."""
        now = self.clock()
        best: float | None = None
        for cid in self._by_provider.get(provider, ()):
            st = self._states[cid]
            if st.cred.disabled or st.unavailable_reason or (serves is not None and not serves(cid, model)):
                continue
            b = st.blocked(model, now)
            wait = 0.0 if b is None else b.blocked_until - now
            best = wait if best is None else min(best, wait)
        return best

    # ------------------------------------------------------------------ result recording

    def mark_success(self, cred_id: str, model: str) -> None:
        st = self._states.get(cred_id)
        if st is None:
            return
        st.successes += 1
        ms = st.models.pop(model, None)
        if ms is not None and ms.blocked_until > 0:
            log.info("credential recovered", credential=st.cred.label or cred_id, model=model)

    def mark_failure(
        self, cred_id: str, model: str, status: int, message: str = "", retry_after: float | None = None
    ) -> float:
        """Record an upstream failure; returns the cooldown applied (0 when the credential stays usable)."""
        st = self._states.get(cred_id)
        if st is None:
            return 0.0
        st.failures += 1
        st.last_status = status
        st.last_error = message[:300]
        ms = st.models.get(model)
        if ms is None:
            ms = st.models[model] = ModelState()
        seconds, reason = self.policy.for_failure(status, retry_after, ms.backoff_level)
        ms.last_status = status
        ms.last_error = st.last_error
        if status == 429 and retry_after is None:
            ms.backoff_level = min(ms.backoff_level + 1, 20)
        if seconds > 0:
            ms.blocked_until = self.clock() + seconds
            ms.reason = reason
            log.warning(
                "credential cooling down",
                credential=st.cred.label or cred_id,
                provider=st.cred.provider,
                model=model,
                status=status,
                seconds=round(seconds, 1),
                reason=reason,
            )
        return seconds

    def set_unavailable(self, cred_id: str, reason: str) -> None:
        st = self._states.get(cred_id)
        if st is not None and st.unavailable_reason != reason:
            st.unavailable_reason = reason
            log.warning("credential unavailable", credential=st.cred.label or cred_id, reason=reason)

    def reset_cooldowns(self, cred_id: str | None = None) -> None:
        for cid, st in self._states.items():
            if cred_id is None or cid == cred_id:
                st.models.clear()

    # ------------------------------------------------------------------ observability

    def status(self) -> list[dict[str, Any]]:
        """State of each credential for the management API (no secrets)."""
        now = self.clock()
        wall = time.time()
        out: list[dict[str, Any]] = []
        for cid in sorted(self._states):
            st = self._states[cid]
            cooling = {
                m: {
                    "until": wall + (ms.blocked_until - now),
                    "seconds": round(ms.blocked_until - now, 1),
                    "reason": ms.reason,
                    "last_status": ms.last_status,
                }
                for m, ms in st.models.items()
                if ms.blocked_until > now
            }
            state = "disabled" if st.cred.disabled else "unavailable" if st.unavailable_reason else (
                "cooling" if cooling else "available"
            )
            out.append(
                {
                    **st.cred.redacted(),
                    "state": state,
                    "unavailable_reason": st.unavailable_reason or None,
                    "cooling": cooling,
                    "requests": st.requests,
                    "successes": st.successes,
                    "failures": st.failures,
                    "last_status": st.last_status or None,
                    "last_error": st.last_error or None,
                }
            )
        return out
