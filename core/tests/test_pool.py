"""Credential pool: rotation fairness, cooldown table, all-cooling answers, observability."""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec
import pytest

from cliproxy.api.errors import render_error
from cliproxy.credentials import Credential
from cliproxy.errors import NoCredentialError
from cliproxy.pool import CooldownPolicy, CredentialPool


class Clock:
    """Injected monotonic clock: cooldown expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cred(cid: str, provider: str = "p", key: str | None = None) -> Credential:
    return Credential(id=cid, provider=provider, executor="x", api_key=key or f"sk-secret-{cid}-0123456789")


def pool_of(n: int, provider: str = "p", clock: Clock | None = None) -> CredentialPool:
    pool = CredentialPool(clock=clock or Clock())
    pool.update([cred(f"k{i}", provider) for i in range(n)])
    return pool


async def test_thousand_concurrent_picks_over_five_keys_are_exactly_even() -> None:
    pool = pool_of(5)

    async def one() -> str:
        await asyncio.sleep(0)
        return pool.pick("p", "m").id

    counts = Counter(await asyncio.gather(*(one() for _ in range(1000))))
    assert sorted(counts) == [f"k{i}" for i in range(5)]
    assert max(counts.values()) - min(counts.values()) <= 1
    assert set(counts.values()) == {200}


def test_rotation_is_per_model_and_in_id_order() -> None:
    pool = pool_of(3)
    assert [pool.pick("p", "a").id for _ in range(4)] == ["k0", "k1", "k2", "k0"]
    # Another model has its own cursor.
    assert pool.pick("p", "b").id == "k0"


def test_skipped_credentials_do_not_shift_the_others_turns() -> None:
    clock = Clock()
    pool = pool_of(4, clock=clock)
    pool.mark_failure("k1", "m", 500)
    picks = [pool.pick("p", "m").id for _ in range(9)]
    assert Counter(picks) == {"k0": 3, "k2": 3, "k3": 3}
    # A request that already tried k2 moves to the next one in order, and the cursor follows it.
    assert pool.pick("p", "m", exclude={"k0"}).id == "k2"
    assert pool.pick("p", "m").id == "k3"


def test_cooldown_table() -> None:
    p = CooldownPolicy()
    assert p.for_failure(401, None, 0) == (1800.0, "unauthorized")
    assert p.for_failure(402, None, 0) == (1800.0, "payment_required")
    assert p.for_failure(403, None, 0) == (1800.0, "forbidden")
    for status in (408, 500, 502, 503, 504):
        assert p.for_failure(status, None, 0) == (60.0, "transient")
    assert p.for_failure(400, None, 0)[0] == 0.0
    assert p.for_failure(429, 7.0, 0) == (7.0, "quota")
    assert p.for_failure(429, 0.2, 0) == (1.0, "quota")  # hints are clamped to >= 1 s
    assert p.for_failure(429, 9 * 86400.0, 0) == (1800.0, "quota")  # ... and <= 30 min
    assert [p.for_failure(429, None, lvl)[0] for lvl in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert p.for_failure(429, None, 30)[0] == 1800.0
    off = CooldownPolicy(disable_cooling=True)
    assert off.for_failure(429, 5.0, 3)[0] == 0.0
    assert off.for_failure(401, None, 0)[0] == 0.0


def test_quota_backoff_grows_with_consecutive_429s_and_success_resets_it() -> None:
    clock = Clock()
    pool = pool_of(1, clock=clock)
    assert [pool.mark_failure("k0", "m", 429) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    clock.now += 9
    pool.mark_success("k0", "m")
    assert pool.mark_failure("k0", "m", 429) == 1.0
    # An upstream hint wins over the backoff.
    assert pool.mark_failure("k0", "m", 429, retry_after=12.0) == 12.0


def test_cooldown_is_per_model_and_expires() -> None:
    clock = Clock()
    pool = pool_of(1, clock=clock)
    pool.mark_failure("k0", "m", 500)
    assert pool.pick("p", "other").id == "k0"
    with pytest.raises(NoCredentialError):
        pool.pick("p", "m")
    clock.now += 61
    assert pool.pick("p", "m").id == "k0"


def test_allow_cooling_only_bypasses_transient_cooldowns() -> None:
    clock = Clock()
    pool = pool_of(2, clock=clock)
    pool.mark_failure("k0", "m", 503)
    pool.mark_failure("k1", "m", 429, retry_after=30)
    assert pool.pick("p", "m", allow_cooling={"k0", "k1"}).id == "k0"
    assert pool.next_recovery("p", "m", allow_cooling={"k0"}) == 0.0
    assert pool.next_recovery("p", "m") == pytest.approx(30.0)


def test_all_cooling_answers_429_with_earliest_recovery_in_each_dialect() -> None:
    clock = Clock()
    pool = pool_of(3, clock=clock)
    pool.mark_failure("k0", "m", 429, retry_after=40)
    pool.mark_failure("k1", "m", 401)
    pool.mark_failure("k2", "m", 429, retry_after=12.5)
    with pytest.raises(NoCredentialError) as info:
        pool.pick("p", "m")
    err = info.value
    assert err.status == 429
    assert err.code == "model_cooldown"
    assert err.retry_after == pytest.approx(12.5)
    status, body, headers = render_error("openai", err)
    assert (status, headers["Retry-After"]) == (429, "13")
    data = msgspec.json.decode(body)
    assert data["error"]["type"] == "rate_limit_error"
    assert data["error"]["code"] == "model_cooldown"
    status, body, headers = render_error("claude", err)
    assert (status, headers["Retry-After"]) == (429, "13")
    data = msgspec.json.decode(body)
    assert data == {"type": "error", "error": {"type": "rate_limit_error", "message": err.message}}


def test_unavailable_credentials_are_skipped_and_503_when_none_left() -> None:
    pool = pool_of(2)
    pool.set_unavailable("k0", "token refresh failed")
    assert {pool.pick("p", "m").id for _ in range(4)} == {"k1"}
    pool.set_unavailable("k1", "token refresh failed")
    with pytest.raises(NoCredentialError) as info:
        pool.pick("p", "m")
    assert (info.value.status, info.value.code) == (503, "auth_unavailable")
    with pytest.raises(NoCredentialError) as info:
        pool.pick("nobody", "m")
    assert (info.value.status, info.value.code) == (503, "auth_not_found")
    pool.replace_credential(cred("k0"))
    assert pool.pick("p", "m").id == "k0"


def test_replace_credential_clears_auth_cooldowns_but_keeps_quota() -> None:
    pool = pool_of(1)
    pool.mark_failure("k0", "a", 401)
    pool.mark_failure("k0", "b", 429, retry_after=60)
    pool.replace_credential(cred("k0", key="sk-new-token-0123456789"))
    assert pool.pick("p", "a").id == "k0"
    with pytest.raises(NoCredentialError):
        pool.pick("p", "b")


def test_update_keeps_state_of_unchanged_and_resets_changed_credentials() -> None:
    pool = pool_of(3)
    pool.mark_failure("k0", "m", 500)
    pool.mark_failure("k1", "m", 500)
    diff = pool.update([cred("k0"), cred("k1", key="sk-rotated-key-0123456789"), cred("k9")])
    assert (diff.added, diff.changed, diff.removed) == (["k9"], ["k1"], ["k2"])
    got = {pool.pick("p", "m").id for _ in range(4)}
    assert got == {"k1", "k9"}  # k0 still cooling; k1 changed so it gets a fresh chance; k2 is gone


def test_provider_rotation_alternates_the_first_provider() -> None:
    pool = CredentialPool()
    firsts = [pool.rotate_providers("m", ["a", "b", "c"])[0] for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]


def test_status_reports_state_without_secrets() -> None:
    clock = Clock()
    pool = pool_of(3, clock=clock)
    pool.pick("p", "m")
    pool.mark_failure("k0", "m", 429, "Too many requests", retry_after=20)
    pool.set_unavailable("k1", "token refresh failed 3 times")
    pool.mark_success("k2", "m")
    status = {s["id"]: s for s in pool.status()}
    assert status["k0"]["state"] == "cooling"
    assert status["k0"]["cooling"]["m"]["reason"] == "quota"
    assert status["k0"]["cooling"]["m"]["seconds"] == pytest.approx(20.0)
    assert status["k0"]["last_status"] == 429
    assert status["k0"]["last_error"] == "Too many requests"
    assert (status["k0"]["requests"], status["k0"]["failures"]) == (1, 1)
    assert status["k1"]["state"] == "unavailable"
    assert status["k2"]["state"] == "available"
    assert status["k2"]["successes"] == 1
    text = msgspec.json.encode(pool.status()).decode()
    assert "sk-secret" not in text
    assert "0123456789" not in text


def test_dynamic_prefixes_are_indexed_per_credential_set() -> None:
    """``<prefix>://<model>`` routing: credentials declare the prefix, the pool maps it to their provider."""
    pool = CredentialPool()
    router = Credential(id="r1", provider="router", executor="x", dynamic_prefix="Router")
    pool.update([cred("k0"), router, Credential(id="r2", provider="router", executor="x", dynamic_prefix="Router")])
    assert pool.dynamic_provider("Router") == "router"
    assert pool.dynamic_provider("router") is None  # as configured: case-sensitive
    assert pool.dynamic_provider("p") is None
    pool.update([cred("k0")])  # the credentials went away with a reload: so did their prefix
    assert pool.dynamic_provider("Router") is None
