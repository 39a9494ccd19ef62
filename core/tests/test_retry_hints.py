"""How long a 429 asks us to wait: ``HttpExecutor.retry_after_hint`` and the helpers providers reuse."""

from __future__ import annotations

import email.utils
import time

import pytest

from cliproxy.http import HttpClients
from cliproxy.upstream import HttpExecutor, retry_after_header, retry_hint_in_text


@pytest.fixture
def executor() -> HttpExecutor:
    return HttpExecutor(HttpClients())


def test_retry_after_header_seconds_and_dates() -> None:
    assert retry_after_header({"retry-after": " 12 "}) == 12.0
    assert retry_after_header({"retry-after": "-3"}) == 0.0
    soon = email.utils.formatdate(time.time() + 60, usegmt=True)
    hint = retry_after_header({"retry-after": soon})
    assert hint is not None and 55 < hint <= 60
    assert retry_after_header({"retry-after": "soon"}) is None
    assert retry_after_header({}) is None


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        (b'{"error":{"message":"Rate limit reached. Please try again in 20ms."}}', 0.02),
        (b'{"error":{"message":"Your quota will reset after 5s."}}', 5.0),
        (b'{"error":{"message":"Please retry in 38.5 seconds"}}', 38.5),
        (b'{"error":{"message":"slow down"}}', None),
        (b" " * 20000 + b"try again in 3s", None),  # only the head of a body is searched
    ],
)
def test_retry_hint_in_text(body: bytes, seconds: float | None) -> None:
    assert retry_hint_in_text(body) == (pytest.approx(seconds) if seconds is not None else None)


def test_default_hint_reads_retry_after_then_the_message(executor: HttpExecutor) -> None:
    body = b'{"error":{"message":"Please try again in 7s."}}'
    assert executor.retry_after_hint(429, {"retry-after": "3"}, body) == 3.0
    assert executor.retry_after_hint(429, {}, body) == 7.0
    # Other statuses cool for fixed times: no hint even when one is sent.
    assert executor.retry_after_hint(503, {"retry-after": "3"}, body) is None
    # Provider-specific reset fields are the provider executor's business, not the default's.
    assert executor.retry_after_hint(429, {}, b'{"error":{"details":[{"retryDelay":"9s"}]}}') is None
    assert executor.retry_after_hint(429, {}, b'{"error":{"resets_in_seconds":42}}') is None


def test_error_carries_the_hint(executor: HttpExecutor) -> None:
    err = executor.error(429, {"retry-after": "4"}, b'{"error":{"message":"too many"}}')
    assert (err.status, err.retry_after, err.message) == (429, 4.0, "too many")
    assert executor.error(500, {"retry-after": "4"}, b"boom").retry_after is None
