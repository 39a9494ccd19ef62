"""Credential pool: round-robin selection with per-(credential, model) cooldowns.

Selection and bookkeeping are synchronous and run on the event loop thread, so a pick is atomic with respect
to other requests. Rotation remembers the *last id picked* per ``provider:model`` and moves to the next
eligible id after it (in sorted order), so a credential that is skipped (cooling, already tried by this
request) does not shift the others' turns: 1,000 concurrent picks over 5 keys give exactly 200 each.

Cooldowns (per credential and model): 401/402/403 rest 30 min; 429 rests for the upstream's hint
(``Retry-After`` or the provider's own reset field, see ``HttpExecutor.retry_after_hint``) clamped to
[1 s, 30 min], else an exponential backoff 1 s, 2 s, 4 s ... 30 min that grows with consecutive 429s;
408/5xx/network errors rest 1 min. Any success clears the model's state, including the backoff level.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from .credentials import Credential
from .errors import NoCredentialError
from .logging import get_logger

__all__ = ["CooldownPolicy", "CredentialPool", "CredentialState", "ModelState", "PoolDiff"]

log = get_logger("cliproxy.pool")

#: Statuses that say the upstream is struggling, not that this credential is bad.
TRANSIENT_STATUSES = frozenset({0, 408, 500, 502, 503, 504, 529})


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
        if status in (401, 402, 403):
            reason = {401: "unauthorized", 402: "payment_required", 403: "forbidden"}[status]
            return (0.0 if self.disable_cooling else self.auth_seconds), reason
        if status == 429:
            if self.disable_cooling:
                return 0.0, "quota"
            if retry_after is not None and retry_after > 0:
                # Hints are clamped: providers have sent multi-day hints that would park a key for good.
                return min(max(retry_after, 1.0), self.max_seconds), "quota"
            return min(self.quota_base_seconds * (2 ** min(level, 40)), self.max_seconds), "quota"
        if status in TRANSIENT_STATUSES or status >= 500:
            return (0.0 if self.disable_cooling else self.transient_seconds), "transient"
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
    last_error: str = ""
    last_status: int = 0
    #: Wall-clock times (epoch seconds) for the management API; 0 means never.
    last_used: float = 0.0
    last_success: float = 0.0
    last_failure: float = 0.0
    #: Set by the refresh scheduler when refreshing keeps failing; the credential is skipped, not deleted.
    unavailable_reason: str = ""
    #: Token refresh bookkeeping, owned by ``refresh.TokenRefresher`` (wall clock).
    refreshed_at: float = 0.0
    refresh_failures: int = 0
    refresh_error: str = ""
    next_refresh_attempt: float = 0.0

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


def _name(st: CredentialState) -> str:
    return st.cred.label or st.cred.id


class CredentialPool:
    def __init__(self, policy: CooldownPolicy | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or CooldownPolicy()
        self.clock = clock
        self._states: dict[str, CredentialState] = {}
        #: provider -> credential ids sorted by id (deterministic rotation).
        self._by_provider: dict[str, list[str]] = {}
        #: ``provider:model`` -> id picked last; the next pick starts after it.
        self._last: dict[str, str] = {}
        self._provider_cursor: dict[str, int] = {}
        #: ``Credential.dynamic_prefix`` -> provider, for ``<prefix>://<model>`` requests.
        self._prefixes: dict[str, str] = {}

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
                    old.refresh_failures = 0
                    old.refresh_error = ""
                    old.next_refresh_attempt = 0.0
                new[cred.id] = old
        diff.removed = [cid for cid in self._states if cid not in new]
        by_provider: dict[str, list[str]] = {}
        for cid in sorted(new):
            by_provider.setdefault(new[cid].cred.provider, []).append(cid)
        prefixes: dict[str, str] = {}
        for st in new.values():
            if st.cred.dynamic_prefix:
                prefixes.setdefault(st.cred.dynamic_prefix, st.cred.provider)
        self._states, self._by_provider, self._prefixes = new, by_provider, prefixes
        for cid in diff.added:
            log.info("credential added", credential=_name(new[cid]), provider=new[cid].cred.provider)
        for cid in diff.changed:
            log.info("credential changed", credential=_name(new[cid]), provider=new[cid].cred.provider)
        for cid in diff.removed:
            log.info("credential removed", credential=cid)
        return diff

    def replace_credential(self, cred: Credential) -> None:
        """A refreshed token: same id, new secrets, state kept except errors caused by the old token."""
        st = self._states.get(cred.id)
        if st is None:
            return
        st.cred = cred
        self.clear_unavailable(cred.id)
        for ms in st.models.values():
            if ms.reason in ("unauthorized", "forbidden"):
                ms.blocked_until = 0.0

    def credentials(self) -> list[Credential]:
        return [s.cred for s in self._states.values()]

    def get(self, cred_id: str) -> CredentialState | None:
        return self._states.get(cred_id)

    def states(self) -> list[CredentialState]:
        return list(self._states.values())

    def providers(self) -> set[str]:
        return set(self._by_provider)

    def dynamic_provider(self, prefix: str) -> str | None:
        """The provider whose credentials declared ``dynamic_prefix == prefix`` (case-sensitive), if any."""
        return self._prefixes.get(prefix)

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
        exclude: Collection[str] = frozenset(),
        serves: Callable[[str, str], bool] | None = None,
        allow_cooling: Collection[str] = frozenset(),
    ) -> Credential:
        """Next available credential of ``provider`` for ``model``, or ``NoCredentialError``.

        ``allow_cooling`` lists credentials whose *transient* cooldown the caller may ignore: a request
        retrying after a 5xx it saw itself (``request-retry``) may go back to that credential after its
        backoff; the 1-minute rest only keeps other requests away.
        """
        now = self.clock()
        ids = self._by_provider.get(provider, [])
        n = len(ids)
        key = provider + ":" + model
        last = self._last.get(key)
        start = bisect.bisect_right(ids, last) if last is not None else 0
        soonest: float | None = None
        blocked_any = False
        candidates = 0
        for i in range(n):
            cid = ids[(start + i) % n]
            if cid in exclude:
                continue
            st = self._states[cid]
            if st.cred.disabled or st.unavailable_reason:
                continue
            if serves is not None and not serves(cid, model):
                continue
            candidates += 1
            b = st.blocked(model, now)
            if b is not None and not (b.reason == "transient" and cid in allow_cooling):
                blocked_any = True
                soonest = b.blocked_until if soonest is None else min(soonest, b.blocked_until)
                continue
            self._last[key] = cid
            st.requests += 1
            st.last_used = time.time()
            return st.cred
        if blocked_any and soonest is not None:
            raise NoCredentialError(
                429,
                f"All credentials for model {model} are cooling down via provider {provider}",
                retry_after=max(soonest - now, 0.0),
                code="model_cooldown",
            )
        if candidates == 0 and any(
            not self._states[c].cred.disabled and self._states[c].unavailable_reason for c in ids
        ):
            raise NoCredentialError(
                503,
                f"No credential for model {model} via provider {provider} is usable right now",
                code="auth_unavailable",
            )
        raise NoCredentialError(503, f"No credential available for model {model}", code="auth_not_found")

    def next_recovery(
        self,
        provider: str,
        model: str,
        serves: Callable[[str, str], bool] | None = None,
        allow_cooling: Collection[str] = frozenset(),
    ) -> float | None:
        """Seconds until the first credential of ``provider`` can serve ``model`` (0: one can now)."""
        now = self.clock()
        best: float | None = None
        for cid in self._by_provider.get(provider, ()):
            st = self._states[cid]
            if st.cred.disabled or st.unavailable_reason or (serves is not None and not serves(cid, model)):
                continue
            b = st.blocked(model, now)
            if b is None or (b.reason == "transient" and cid in allow_cooling):
                return 0.0
            wait = b.blocked_until - now
            best = wait if best is None else min(best, wait)
        return best

    # ------------------------------------------------------------------ result recording

    def mark_success(self, cred_id: str, model: str) -> None:
        st = self._states.get(cred_id)
        if st is None:
            return
        st.successes += 1
        st.last_success = time.time()
        ms = st.models.pop(model, None)
        if ms is not None and ms.blocked_until > 0:
            log.info("credential recovered", credential=_name(st), provider=st.cred.provider, model=model)

    def mark_failure(
        self, cred_id: str, model: str, status: int, message: str = "", retry_after: float | None = None
    ) -> float:
        """Record an upstream failure; returns the cooldown applied (0 when the credential stays usable)."""
        st = self._states.get(cred_id)
        if st is None:
            return 0.0
        st.failures += 1
        st.last_failure = time.time()
        st.last_status = status
        st.last_error = message[:300]
        ms = st.models.get(model)
        if ms is None:
            ms = st.models[model] = ModelState()
        seconds, reason = self.policy.for_failure(status, retry_after, ms.backoff_level)
        ms.last_status = status
        ms.last_error = st.last_error
        if status == 429:
            ms.backoff_level = min(ms.backoff_level + 1, 40)
        if seconds > 0:
            ms.blocked_until = self.clock() + seconds
            ms.reason = reason
            log.warning(
                "credential cooling down",
                credential=_name(st),
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
            log.warning("credential unavailable", credential=_name(st), provider=st.cred.provider, reason=reason)

    def clear_unavailable(self, cred_id: str) -> None:
        st = self._states.get(cred_id)
        if st is not None and st.unavailable_reason:
            st.unavailable_reason = ""
            log.info("credential available again", credential=_name(st), provider=st.cred.provider)

    def reset_cooldowns(self, cred_id: str | None = None) -> None:
        for cid, st in self._states.items():
            if cred_id is None or cid == cred_id:
                st.models.clear()

    # ------------------------------------------------------------------ observability

    def status(self) -> list[dict[str, Any]]:
        """State of each credential for the management API (no secrets; times are epoch seconds)."""
        now = self.clock()
        wall = time.time()
        out: list[dict[str, Any]] = []
        for cid in sorted(self._states):
            st = self._states[cid]
            cooling: dict[str, dict[str, Any]] = {
                m: {
                    "until": wall + (ms.blocked_until - now),
                    "seconds": round(ms.blocked_until - now, 1),
                    "reason": ms.reason,
                    "last_status": ms.last_status,
                    "last_error": ms.last_error or None,
                }
                for m, ms in st.models.items()
                if ms.blocked_until > now
            }
            if st.cred.disabled:
                state = "disabled"
            elif st.unavailable_reason:
                state = "unavailable"
            else:
                state = "cooling" if cooling else "available"
            out.append(
                {
                    **st.cred.redacted(),
                    "state": state,
                    "unavailable_reason": st.unavailable_reason or None,
                    "cooling": cooling,
                    "cooling_until": max((float(c["until"]) for c in cooling.values()), default=None),
                    "requests": st.requests,
                    "successes": st.successes,
                    "failures": st.failures,
                    "last_status": st.last_status or None,
                    "last_error": st.last_error or None,
                    "last_used": st.last_used or None,
                    "last_success": st.last_success or None,
                    "last_failure": st.last_failure or None,
                    "refreshed_at": st.refreshed_at or None,
                    "refresh_failures": st.refresh_failures,
                    "refresh_error": st.refresh_error or None,
                    "next_refresh_attempt": st.next_refresh_attempt or None,
                }
            )
        return out
