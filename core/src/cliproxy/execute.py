"""The request pipeline: model routing, credential selection with failover, translation, streaming.

Per request: resolve the model to providers, pick a credential (round-robin, skipping cooling ones), translate
the body into the executor's dialect (raw pass-through when client and upstream speak the same one), call the
upstream, translate back. Streams are peeked for their first event so failures before the first byte can still
fail over; after that, errors are sent in-band in the client's dialect.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import ir
from .api.errors import stream_error_bytes
from .credentials import Credential
from .errors import NoCredentialError, ProxyError, UpstreamError
from .formats.base import Codec, CodecError
from .logging import get_logger
from .models import ModelRegistry
from .pool import CredentialPool
from .protocols import Executor, UpstreamCall
from .registries import QuotaFallback
from .sse import SSEEvent, frame

__all__ = ["Answer", "ExecutionService", "RequestContext", "RetryPolicy", "StreamAnswer"]

log = get_logger("cliproxy.execute")

#: Statuses caused by the request itself: answered after one upstream call, never retried elsewhere.
CLIENT_ERRORS = frozenset({400, 404, 413, 422})
_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


@dataclass(slots=True)
class RequestContext:
    """What the route layer knows about the client request besides the body."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    #: ``generate`` or ``count_tokens``.
    action: str = "generate"


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(slots=True)
class StreamAnswer:
    chunks: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=lambda: dict(SSE_HEADERS))
    media_type: str = "text/event-stream"


@dataclass(slots=True)
class RetryPolicy:
    #: Extra sweeps over the credentials after every one failed (``request-retry``).
    request_retry: int = 0
    #: Longest wait for a cooling credential before giving up (``max-retry-interval``).
    max_retry_interval: float = 30.0
    #: ``quota-exceeded.switch-project``: fail over to another credential on 429.
    switch_on_quota: bool = True
    #: ``quota-exceeded.switch-preview-model``: provider fallbacks on 429.
    quota_fallbacks: bool = True
    backoff_base: float = 0.25


class _Attempt:
    """Translation state shared by the attempts of one request (the IR is decoded at most once)."""

    __slots__ = ("body", "client", "client_format", "ir_req", "model", "stream")

    def __init__(self, client_format: str, client: Codec | None, body: bytes, model: str, stream: bool) -> None:
        self.client_format = client_format
        self.client = client
        self.body = body
        self.model = model
        self.stream = stream
        self.ir_req: ir.Request | None = None

    def ir(self) -> ir.Request:
        if self.ir_req is None:
            if self.client is None:
                raise ProxyError(500, f"no codec for dialect {self.client_format}")
            try:
                self.ir_req = self.client.decode_request(self.body)
            except CodecError as exc:
                raise ProxyError(400, str(exc)) from None
            self.ir_req.stream = self.stream
        return self.ir_req


class ExecutionService:
    def __init__(
        self,
        *,
        registry: ModelRegistry,
        pool: CredentialPool,
        executors: Mapping[str, Executor],
        formats: Mapping[str, Codec],
        fallbacks: Mapping[str, QuotaFallback] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.executors = executors
        self.formats = formats
        self.fallbacks = fallbacks or {}
        self.retry = retry or RetryPolicy()

    # ------------------------------------------------------------------ entry point

    async def handle(
        self, client_format: str, body: bytes, model: str, stream: bool, ctx: RequestContext
    ) -> Answer | StreamAnswer:
        if not model:
            raise ProxyError(400, "the request has no model", code="model_required")
        providers = self.registry.providers_for(model)
        if not providers:
            raise ProxyError(404, f"unknown provider for model {model}", code="model_not_found")
        attempt = _Attempt(client_format, self.formats.get(client_format), body, model, stream)
        last: ProxyError | None = None
        sweeps = 1 + max(self.retry.request_retry, 0)
        deadline = time.monotonic() + self.retry.max_retry_interval
        for sweep in range(sweeps):
            tried: set[str] = set()
            for provider in self.pool.rotate_providers(model, providers):
                while True:
                    try:
                        cred = self.pool.pick(provider, model, tried, self.registry.serves)
                    except NoCredentialError as exc:
                        if last is None or not isinstance(last, UpstreamError):
                            last = exc
                        break
                    tried.add(cred.id)
                    try:
                        return await self._call(attempt, cred, ctx)
                    except UpstreamError as exc:
                        last = exc
                        if not self._should_fail_over(exc):
                            raise
            if sweep + 1 >= sweeps:
                break
            wait = self._wait_before_sweep(model, providers, sweep)
            if wait is None or time.monotonic() + wait > deadline:
                break
            log.info("retrying after cooldown", model=model, wait=round(wait, 2), sweep=sweep + 1)
            await asyncio.sleep(wait)
        assert last is not None
        raise last

    def _should_fail_over(self, exc: UpstreamError) -> bool:
        if exc.network:
            return True
        if exc.status in CLIENT_ERRORS:
            return False
        if exc.status == 429 and not self.retry.switch_on_quota:
            return False
        return exc.status in (401, 402, 403, 408, 429) or exc.status >= 500

    def _wait_before_sweep(self, model: str, providers: list[str], sweep: int) -> float | None:
        best: float | None = None
        for p in providers:
            w = self.pool.next_recovery(p, model, self.registry.serves)
            if w is not None:
                best = w if best is None else min(best, w)
        if best is None:
            return None
        backoff = self.retry.backoff_base * (2**sweep) * (1 + random.random() * 0.2)
        return max(best, backoff)

    # ------------------------------------------------------------------ one credential

    async def _call(self, attempt: _Attempt, cred: Credential, ctx: RequestContext) -> Answer | StreamAnswer:
        executor = self.executors.get(cred.executor)
        if executor is None:
            raise ProxyError(500, f"no executor {cred.executor!r} is installed for provider {cred.provider}")
        upstream_model = cred.upstream_model(attempt.model)
        fallback = self.fallbacks.get(cred.provider) if self.retry.quota_fallbacks else None
        n = 0
        while True:
            call = self._build_call(attempt, executor, upstream_model, ctx)
            try:
                if attempt.stream and ctx.action == "generate":
                    result: Answer | StreamAnswer = await self._stream(attempt, executor, call, cred)
                else:
                    result = await self._unary(attempt, executor, call, cred)
                    self.pool.mark_success(cred.id, attempt.model)
                return result
            except UpstreamError as exc:
                if exc.status == 429 and fallback is not None:
                    nxt = fallback(cred, upstream_model, n)
                    if nxt:
                        log.info("quota fallback", provider=cred.provider, model=upstream_model, next=nxt)
                        upstream_model, n = nxt, n + 1
                        continue
                self.pool.mark_failure(cred.id, attempt.model, exc.status, exc.message, exc.retry_after)
                log.warning(
                    "upstream error",
                    provider=cred.provider,
                    credential=cred.label or cred.id,
                    model=attempt.model,
                    status=exc.status,
                )
                raise

    def _build_call(
        self, attempt: _Attempt, executor: Executor, upstream_model: str, ctx: RequestContext
    ) -> UpstreamCall:
        wire = executor.wire_format
        if wire == attempt.client_format:
            body = _rewrite_model(attempt.body, wire, upstream_model)
        else:
            codec = self.formats.get(wire)
            if codec is None:
                raise ProxyError(500, f"no codec for upstream dialect {wire}")
            req = attempt.ir()
            req.model = upstream_model
            body = codec.encode_request(req)
        return UpstreamCall(
            model=upstream_model,
            body=body,
            stream=attempt.stream,
            action=ctx.action,
            client_format=attempt.client_format,
            client_headers=ctx.headers,
        )

    async def _unary(self, attempt: _Attempt, executor: Executor, call: UpstreamCall, cred: Credential) -> Answer:
        resp = await executor.execute(call, cred)
        if executor.wire_format == attempt.client_format or call.action != "generate":
            return Answer(200, resp.body, _passthrough_headers(resp.headers))
        client = attempt.client
        assert client is not None
        try:
            ir_resp = self.formats[executor.wire_format].decode_response(resp.body)
        except CodecError as exc:
            raise UpstreamError(502, f"upstream answered an unreadable body: {exc}") from None
        ir_resp.model = attempt.model
        return Answer(200, client.encode_response(ir_resp))

    async def _stream(
        self, attempt: _Attempt, executor: Executor, call: UpstreamCall, cred: Credential
    ) -> StreamAnswer:
        upstream = executor.stream(call, cred)
        try:
            first = await anext(upstream)
        except StopAsyncIteration:
            raise UpstreamError(502, "upstream closed the stream without sending anything", network=True) from None
        except BaseException:
            await upstream.aclose()
            raise
        if executor.wire_format == attempt.client_format:
            chunks = self._relay(attempt, upstream, first, cred)
        else:
            chunks = self._translate_stream(attempt, executor.wire_format, upstream, first, cred)
        return StreamAnswer(chunks)

    async def _relay(
        self, attempt: _Attempt, upstream: AsyncIterator[SSEEvent], first: SSEEvent, cred: Credential
    ) -> AsyncIterator[bytes]:
        """Same dialect: re-frame each upstream event as it arrives."""
        ok = False
        try:
            yield frame(first.data, first.event)
            async for ev in upstream:
                yield frame(ev.data, ev.event)
            ok = True
        except UpstreamError as exc:
            self.pool.mark_failure(cred.id, attempt.model, exc.status, exc.message, exc.retry_after)
            yield stream_error_bytes(attempt.client_format, exc)
        finally:
            await _aclose(upstream)
            if ok:
                self.pool.mark_success(cred.id, attempt.model)

    async def _translate_stream(
        self,
        attempt: _Attempt,
        wire: str,
        upstream: AsyncIterator[SSEEvent],
        first: SSEEvent,
        cred: Credential,
    ) -> AsyncIterator[bytes]:
        client = attempt.client
        upstream_codec = self.formats[wire]
        assert client is not None
        decoder = upstream_codec.stream_decoder()
        encoder = client.stream_encoder(attempt.ir())
        finished = False
        ok = False
        try:
            ev: SSEEvent | None = first
            while ev is not None:
                out = b""
                for e in decoder.feed(ev):
                    if isinstance(e, ir.Finish):
                        finished = True
                    elif isinstance(e, ir.Error):
                        finished = True
                    out += encoder.encode(e)
                if out:
                    yield out
                ev = await anext(upstream, None)
            out = b""
            for e in decoder.close():
                if isinstance(e, (ir.Finish, ir.Error)):
                    finished = True
                out += encoder.encode(e)
            if not finished:
                out += encoder.encode(ir.Error(502, "upstream stream ended before the response was complete"))
                self.pool.mark_failure(cred.id, attempt.model, 502, "truncated stream")
            else:
                ok = True
            out += encoder.close()
            if out:
                yield out
        except UpstreamError as exc:
            self.pool.mark_failure(cred.id, attempt.model, exc.status, exc.message, exc.retry_after)
            yield encoder.encode(ir.Error(exc.status, exc.message)) + encoder.close()
        finally:
            await _aclose(upstream)
            if ok:
                self.pool.mark_success(cred.id, attempt.model)


async def _aclose(it: AsyncIterator[Any]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # pragma: no cover - closing a broken upstream must not mask the real outcome
            log.debug("error while closing upstream stream", exc_info=True)


def _rewrite_model(body: bytes, wire: str, model: str) -> bytes:
    """Identity path: only the model changes; unknown fields pass through untouched."""
    if wire == "gemini":
        return body  # the model lives in the URL
    try:
        data = _json_decode(body)
    except msgspec.DecodeError as exc:
        raise ProxyError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "request body must be a JSON object")
    if data.get("model") == model:
        return body
    data["model"] = model
    return _json_encode(data)


_HOP_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive",
                          "content-type", "date", "server"})


def _passthrough_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Upstream response headers worth keeping on a pass-through answer (rate-limit and request ids)."""
    return {
        k: v
        for k, v in headers.items()
        if k.lower() not in _HOP_HEADERS
        and (k.lower().startswith(("x-ratelimit", "anthropic-ratelimit", "x-request-id", "request-id", "openai-")))
    }
