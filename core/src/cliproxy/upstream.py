"""Shared HTTP executor: POST a translated body, map failures to ``UpstreamError``, stream SSE as it arrives.

Provider plugins subclass :class:`HttpExecutor` and override ``url``/``headers`` (and ``prepare`` for body
quirks, ``retry_after_hint`` for a provider's own reset fields); transport, error mapping and incremental SSE
parsing live here once.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

import httpx

from .credentials import Credential
from .errors import UpstreamError, upstream_message
from .http import HttpClients
from .protocols import UpstreamCall, UpstreamResponse
from .sse import SSEEvent, SSEParser

__all__ = ["HttpExecutor", "hint_seconds", "retry_after_header", "retry_hint_in_text"]

#: How upstreams phrase a wait in error messages ("Please try again in 20ms", "quota will reset after 5s").
_TEXT_HINT = re.compile(rb"(?:reset after|retry in|try again in)\s+([0-9.]+)\s*(ms|s|seconds?)?", re.I)
#: Hints are looked for in the head of an error body only: bodies can be large and the hint comes early.
HINT_SCAN_BYTES = 20000


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (ValueError, TypeError):
            return None  # a malformed header is no hint; it must not turn the upstream's answer into a crash
        return max(parsed.timestamp() - time.time(), 0.0)
    return None


def hint_seconds(match: re.Match[bytes]) -> float:
    """Seconds from a match whose group 1 is a number and optional group 2 a unit (``ms``, else seconds)."""
    seconds = float(match.group(1))
    unit = match.group(2) if match.lastindex and match.lastindex >= 2 else None
    return seconds / 1000 if unit == b"ms" else seconds


def retry_hint_in_text(body: bytes) -> float | None:
    """A wait stated in words inside an error body, or ``None``."""
    m = _TEXT_HINT.search(body[:HINT_SCAN_BYTES])
    return hint_seconds(m) if m else None


class HttpExecutor:
    name = "http"
    wire_format = "openai"
    #: Response header values an upstream needs in error messages are never echoed: only status + message.

    def __init__(self, http: HttpClients) -> None:
        self.http = http
        self._urls: dict[str, httpx.URL] = {}

    def _parsed(self, url: str) -> httpx.URL:
        """Parsing a URL costs httpx tens of µs; upstream URLs repeat, so parse each once."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    # ------------------------------------------------------------------ per-provider hooks

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        """Where to send ``call``; every provider executor overrides this."""
        raise NotImplementedError(f"{type(self).__name__} must define url()")

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def prepare(self, call: UpstreamCall, cred: Credential) -> bytes:
        return call.body

    # ------------------------------------------------------------------ transport

    async def _send(
        self, cred: Credential, url: str, body: bytes, headers: dict[str, str], *, stream: bool
    ) -> httpx.Response:
        try:
            self.http.client(cred.proxy_url)
        except Exception as exc:  # bad proxy-url: a configuration problem, reported without the URL's secrets
            raise UpstreamError(502, f"cannot use the configured proxy-url: {exc}", network=True) from None
        return await self.http.send(
            self._parsed(url), content=body, headers=headers, proxy_url=cred.proxy_url, stream=stream
        )

    def retry_after_hint(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        """Seconds until the upstream wants this credential back after an error answer, else ``None``.

        The pool cools the credential that long (clamped) instead of guessing with a backoff. Only a 429 has a
        hint: other statuses cool for fixed times. The default reads ``Retry-After``, then a wait stated in the
        message text; a provider whose error bodies carry a reset field of their own overrides this, keeping
        ``Retry-After`` first (see ``retry_after_header``, ``retry_hint_in_text``).
        """
        if status != 429:
            return None
        hint = retry_after_header(headers)
        return hint if hint is not None else retry_hint_in_text(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        message = upstream_message(body, f"upstream answered HTTP {status}")
        return UpstreamError(status, message, body=body, retry_after=self.retry_after_hint(status, headers, body))

    async def execute(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse:
        headers = self.headers(call, cred)
        try:
            resp = await self._send(cred, self.url(call, cred), self.prepare(call, cred), headers, stream=False)
        except httpx.TimeoutException as exc:
            raise UpstreamError(504, f"upstream timed out: {type(exc).__name__}", network=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"upstream unreachable: {_describe(exc)}", network=True) from None
        if resp.status_code >= 400:
            raise self.error(resp.status_code, resp.headers, resp.content)
        return UpstreamResponse(resp.status_code, resp.content, dict(resp.headers))

    def first_event_error(self, ev: SSEEvent) -> UpstreamError | None:
        """An error an upstream reports as its first SSE event (HTTP 200) is raised so failover still works."""
        return None

    async def stream(self, call: UpstreamCall, cred: Credential) -> AsyncIterator[SSEEvent]:
        batches = self.stream_batches(call, cred)
        try:
            async for batch in batches:
                for ev in batch:
                    yield ev
        finally:
            await batches.aclose()

    async def stream_batches(self, call: UpstreamCall, cred: Credential) -> AsyncGenerator[list[SSEEvent], None]:
        """Events grouped per network read: one downstream write per read instead of one per event."""
        headers = self.headers(call, cred)
        headers.setdefault("Accept", "text/event-stream")
        url, body = self.url(call, cred), self.prepare(call, cred)
        started = False
        try:
            resp = await self._send(cred, url, body, headers, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamError(504, f"upstream timed out: {type(exc).__name__}", network=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"upstream unreachable: {_describe(exc)}", network=True) from None
        try:
            if resp.status_code >= 400:
                body = await resp.aread()
                raise self.error(resp.status_code, resp.headers, body)
            parser = SSEParser()
            async for chunk in resp.aiter_bytes():
                events = parser.feed(chunk)
                if events:
                    if not started:
                        started = True
                        err = self.first_event_error(events[0])
                        if err is not None:
                            raise err
                    yield events
            events = parser.close()
            if events:
                if not started:
                    err = self.first_event_error(events[0])
                    if err is not None:
                        raise err
                yield events
        except httpx.HTTPError as exc:
            where = "during the stream" if started else "before the stream started"
            raise UpstreamError(502, f"upstream connection failed {where}: {_describe(exc)}", network=True) from None
        finally:
            await resp.aclose()


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
