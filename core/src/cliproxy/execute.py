"""The request pipeline: model routing, credential selection with failover, translation, streaming.

Per request: resolve the model to providers, pick a credential (round-robin, skipping cooling ones), translate
the body into the executor's dialect (raw pass-through when client and upstream speak the same one), call the
upstream, translate back. Streams are peeked for their first event so failures before the first byte can still
fail over; after that, errors are sent in-band in the client's dialect.

Retry semantics (``request-retry: N``, ``max-retry-interval: S``, ``quota-exceeded.*``):

* **Client errors** (400, 404, 413, 422 and any other 4xx not listed below) are the request's fault: the
  client gets them after exactly one upstream call, and the credential is not penalised.
* **Failover within a sweep** (always on, even with ``request-retry: 0``, as the reference did): a failure
  specific to the credential (401, 402, 403, 429) or to the upstream (408, 5xx, network) cools that credential
  (see ``pool``) and the request moves on to the next available credential of the provider, then of the next
  provider serving the model. Each credential is tried at most once per sweep. With
  ``quota-exceeded.switch-project: false`` a 429 is answered at once instead of failing over; with
  ``switch-preview-model`` the provider's quota fallback (``register_quota_fallbacks``) first retries the same
  credential on its fallback models.
* **Retry sweeps** (``request-retry``): when a sweep ran out of credentials, up to N more sweeps follow.
  Before sweep k (k = 1..N) the request waits ``max(backoff, time until a credential recovers)`` with
  backoff = 0.5 s x 2^(k-1) (+0-20 % jitter); credentials that failed *in this request* with a retryable
  status (403, 408, 5xx, network) count as recovered after the backoff, so a flaky upstream is retried on the
  same credential, while 429/401 cooldowns (and Retry-After hints) are waited out. Waiting is bounded: the sum
  of waits never exceeds ``max-retry-interval`` seconds; if the next wait would, the request gives up at once.
* **Streams** fail over only before their first event; once a byte was sent to the client, an upstream failure
  becomes an in-band error event and the credential is marked failed.
* **Giving up**: the client gets the last upstream error, except that a 429 seen during the request wins over
  auth/server errors of other credentials (the client should come back, not fix its key); a 429 carries
  ``Retry-After`` = seconds until the earliest credential recovers. If no upstream call was possible because
  every credential is cooling, the answer is 429 ``model_cooldown`` with that ``Retry-After``.
* **OAuth 401**: when a credential with an authenticator answers 401, its token is refreshed once (single
  flight, see ``refresh``) and the call is repeated on the refreshed credential before failing over.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import ir
from .credentials import Credential
from .errors import NoCredentialError, ProxyError, UpstreamError
from .formats.base import TRUNCATED_STREAM, Codec, CodecError
from .logging import get_logger
from .models import ModelRegistry
from .pool import CredentialPool
from .protocols import Executor, UpstreamCall
from .registries import QuotaFallback
from .sse import SSEEvent, frame
from .tokens import estimate_request

__all__ = ["Answer", "ExecutionService", "RequestContext", "RetryPolicy", "StreamAnswer"]

log = get_logger("cliproxy.execute")

#: Statuses caused by the request itself: answered after one upstream call, never retried elsewhere.
CLIENT_ERRORS = frozenset({400, 404, 413, 422})
#: Statuses ``request-retry`` retries on the same credential after a backoff (429 waits for its cooldown).
RETRYABLE = frozenset({403, 408, 500, 502, 503, 504, 529})
#: Statuses that move the request to the next credential (429 only with ``switch-project``).
FAILOVER = frozenset({401, 402, 403, 408, 429})
#: What a model request answers while the server has no upstream credential at all (a fresh install).
NO_CREDENTIALS = (
    "cliproxy has no upstream credentials configured, so it cannot serve any model yet: add provider API keys "
    "to config.yaml ('cliproxy plugins list' shows the config keys each provider reads) or run "
    "'cliproxy login <provider>', then retry"
)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


@dataclass(slots=True)
class RequestContext:
    """What the route layer knows about the client request besides the body."""

    headers: dict[str, str] = field(default_factory=dict)
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
    backoff_base: float = 0.5


class _Attempt:
    """Translation state shared by the attempts of one request (the IR is decoded at most once)."""

    __slots__ = ("body", "client_model", "codec", "dialect", "ir_req", "model", "reasoning_override", "stream")

    def __init__(
        self, dialect: str, codec: Codec | None, body: bytes, model: str, stream: bool, client_model: str = ""
    ) -> None:
        #: The client's dialect and its codec (``None`` when no plugin registered one).
        self.dialect = dialect
        self.codec = codec
        self.body = body
        self.model = model
        #: The model exactly as the client named it (alias, thinking suffix, ``compat://`` prefix): answers
        #: carry this name, whatever the upstream calls its model.
        self.client_model = client_model or model
        self.stream = stream
        self.ir_req: ir.Request | None = None
        #: Thinking settings from a model-name suffix; they win over the body's.
        self.reasoning_override: ir.ReasoningConfig | None = None

    def client(self) -> Codec:
        if self.codec is None:
            raise ProxyError(500, f"no codec for dialect {self.dialect}")
        return self.codec

    def ir(self) -> ir.Request:
        if self.ir_req is None:
            try:
                self.ir_req = self.client().decode_request(self.body)
            except CodecError as exc:
                raise ProxyError(400, str(exc)) from None
            self.ir_req.stream = self.stream
            if self.reasoning_override is not None:
                self.ir_req.reasoning = self.reasoning_override
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
        #: On-demand token refresh after a 401 (``refresh.TokenRefresher.on_unauthorized``); returns the
        #: refreshed credential or ``None``.
        self.reauthorize: Callable[[Credential], Awaitable[Credential | None]] | None = None

    # ------------------------------------------------------------------ entry point

    async def handle(
        self, dialect: str, body: bytes, model: str, stream: bool, ctx: RequestContext
    ) -> Answer | StreamAnswer:
        """Answer one client request written in ``dialect`` (a codec name)."""
        if not model:
            raise ProxyError(400, "the request has no model", code="model_required")
        requested = model
        providers = self.registry.providers_for(model)
        override: ir.ReasoningConfig | None = None
        serves: Callable[[str, str], bool] | None = self.registry.serves
        if not providers:
            dynamic = self._dynamic_provider(model)
            if dynamic is not None:
                # ``<prefix>://<vendor>/<model>``: any model of a provider that takes them all, sent verbatim.
                providers, model, serves = [dynamic[0]], dynamic[1], None
            else:
                # ``<model>-thinking-4096``, ``<model>-high``: a provider's model rule (the base model plus that
                # thinking setting).
                base, override, providers = self.registry.resolve_rule(model)
                if not providers:
                    if not self.pool.credentials():
                        # 400, not 503: the condition lasts until someone edits the config, and SDKs and
                        # CLIs retry 5xx with backoff for minutes before they show the message.
                        raise ProxyError(400, NO_CREDENTIALS, code="no_credentials")
                    raise ProxyError(400, f"unknown provider for model {model}", code="model_not_found")
                model = base
        attempt = _Attempt(dialect, self.formats.get(dialect), body, model, stream, requested)
        attempt.reasoning_override = override
        policy = self.retry  # a reload swaps the policy; this request keeps the one it started with
        sweeps = 1 + max(policy.request_retry, 0)
        budget = max(policy.max_retry_interval, 0.0)
        last: UpstreamError | None = None
        quota: UpstreamError | None = None
        no_cred: NoCredentialError | None = None
        #: Credentials that failed in this request with a retryable status: eligible again in retry sweeps.
        retryable: set[str] = set()
        for sweep in range(sweeps):
            tried: set[str] = set()
            allow = frozenset(retryable) if sweep else frozenset()
            for provider in self.pool.rotate_providers(model, providers):
                while True:
                    try:
                        cred = self.pool.pick(provider, model, tried, serves, allow)
                    except NoCredentialError as exc:
                        no_cred = _worse(no_cred, exc)
                        break
                    tried.add(cred.id)
                    try:
                        return await self._call(attempt, cred, ctx)
                    except UpstreamError as exc:
                        last = exc
                        if exc.status == 429:
                            quota = exc
                        if not self._should_fail_over(exc, policy):
                            raise self._final(exc, model, providers) from None
                        if exc.network or exc.status in RETRYABLE:
                            retryable.add(cred.id)
                        log.info(
                            "failing over",
                            model=model,
                            credential=cred.label or cred.id,
                            status=exc.status,
                            sweep=sweep,
                        )
            if sweep + 1 >= sweeps:
                break
            wait = self._wait_before_sweep(model, providers, sweep, frozenset(retryable), policy)
            if wait is None or wait > budget:
                break
            budget -= wait
            log.info("retrying", model=model, wait=round(wait, 2), sweep=sweep + 1)
            await asyncio.sleep(wait)
        err: ProxyError | None = quota or last or no_cred
        assert err is not None
        raise self._final(err, model, providers)

    def _dynamic_provider(self, model: str) -> tuple[str, str] | None:
        """``<prefix>://<upstream model>`` when a credential declared that ``dynamic_prefix``."""
        name, sep, rest = model.partition("://")
        if not sep or not rest or not name:
            return None
        provider = self.pool.dynamic_provider(name)
        return (provider, rest) if provider is not None else None

    def _should_fail_over(self, exc: UpstreamError, policy: RetryPolicy | None = None) -> bool:
        """Move on to the next credential? Client errors, and 429 without switch-project, are answered."""
        policy = policy or self.retry
        if exc.network:
            return True
        if exc.status == 429:
            return policy.switch_on_quota
        return exc.status in FAILOVER or exc.status >= 500

    def _wait_before_sweep(
        self,
        model: str,
        providers: list[str],
        sweep: int,
        retryable: frozenset[str] = frozenset(),
        policy: RetryPolicy | None = None,
    ) -> float | None:
        """Seconds to sleep before retry sweep ``sweep + 1``; ``None`` when no credential will recover."""
        policy = policy or self.retry
        best: float | None = None
        for p in providers:
            w = self.pool.next_recovery(p, model, self.registry.serves, retryable)
            if w is not None:
                best = w if best is None else min(best, w)
        if best is None:
            return None
        backoff = policy.backoff_base * (2.0**sweep) * (1 + random.random() * 0.2)
        return max(best, backoff)

    def _final(self, exc: ProxyError, model: str, providers: list[str]) -> ProxyError:
        """The error the client gets; a 429 tells it when the first credential recovers."""
        if isinstance(exc, UpstreamError) and exc.status == 429 and "Retry-After" not in exc.headers:
            waits = [w for p in providers if (w := self.pool.next_recovery(p, model, self.registry.serves))]
            wait = min(waits) if waits else exc.retry_after
            if wait is not None and wait > 0:
                exc.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return exc

    # ------------------------------------------------------------------ one credential

    async def _call(self, attempt: _Attempt, cred: Credential, ctx: RequestContext) -> Answer | StreamAnswer:
        executor = self.executors.get(cred.executor)
        if executor is None:
            raise ProxyError(500, f"no executor {cred.executor!r} is installed for provider {cred.provider}")
        upstream_model = cred.upstream_model(attempt.model)
        fallback = self.fallbacks.get(cred.provider) if self.retry.quota_fallbacks else None
        n = 0
        reauthorized = False
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
                if exc.status == 401 and not reauthorized and self.reauthorize is not None and cred.metadata:
                    reauthorized = True
                    fresh = await self.reauthorize(cred)
                    if fresh is not None:
                        log.info(
                            "retrying with a refreshed token", provider=cred.provider, credential=cred.label or cred.id
                        )
                        cred = fresh
                        continue
                if not exc.network and 400 <= exc.status < 500 and exc.status not in FAILOVER:
                    # The request's fault: the credential is fine, nothing to record against it.
                    log.info(
                        "upstream rejected the request", provider=cred.provider, model=attempt.model, status=exc.status
                    )
                    raise
                self.pool.mark_failure(cred.id, attempt.model, exc.status, exc.message, exc.retry_after)
                log.warning(
                    "upstream error",
                    provider=cred.provider,
                    credential=cred.label or cred.id,
                    model=attempt.model,
                    status=exc.status,
                    network=exc.network or None,
                )
                raise

    def _build_call(
        self, attempt: _Attempt, executor: Executor, upstream_model: str, ctx: RequestContext
    ) -> UpstreamCall:
        codec = self._upstream_codec(executor)
        if codec.name == attempt.dialect and attempt.reasoning_override is None:
            try:
                body = codec.rewrite_model(attempt.body, upstream_model)
            except CodecError as exc:
                raise ProxyError(400, str(exc)) from None
        else:
            req = attempt.ir()
            req.model = upstream_model
            body = codec.encode_request(req)
        return UpstreamCall(
            model=upstream_model,
            body=body,
            stream=attempt.stream,
            action=ctx.action,
            client_format=attempt.dialect,
            client_headers=ctx.headers,
        )

    def _upstream_codec(self, executor: Executor) -> Codec:
        codec = self.formats.get(executor.wire_format)
        if codec is None:
            raise ProxyError(500, f"no codec for upstream dialect {executor.wire_format}")
        return codec

    async def _unary(self, attempt: _Attempt, executor: Executor, call: UpstreamCall, cred: Credential) -> Answer:
        if call.action == "count_tokens":
            return await self._count(attempt, executor, call, cred)
        resp = await executor.execute(call, cred)
        upstream = self._upstream_codec(executor)
        if upstream.name == attempt.dialect:
            body = resp.body
            if attempt.client_model != call.model:
                body = _ModelName(upstream, call.model, attempt.client_model).unary(body)
            return Answer(200, body, _passthrough_headers(resp.headers, upstream))
        client = attempt.client()
        try:
            ir_resp = upstream.decode_response(resp.body, attempt.ir())
        except (CodecError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamError(502, f"upstream answered an unreadable body: {exc}") from None
        ir_resp.model = attempt.client_model
        return Answer(200, client.encode_response(ir_resp, attempt.ir()))

    async def _count(self, attempt: _Attempt, executor: Executor, call: UpstreamCall, cred: Credential) -> Answer:
        """Token counting: the upstream's own count endpoint when it has one, else a local estimate."""
        upstream = self._upstream_codec(executor)
        client = attempt.client()
        counts = getattr(executor, "counts_tokens", None)
        if counts if counts is not None else upstream.counts_tokens:
            resp = await executor.execute(call, cred)
            if upstream.name == attempt.dialect:
                return Answer(200, resp.body, _passthrough_headers(resp.headers, upstream))
            try:
                n = upstream.decode_count_tokens_response(resp.body)
            except CodecError:
                raise UpstreamError(502, "upstream answered the token count in an unknown shape") from None
            return Answer(200, client.encode_count_tokens_response(n))
        try:
            n = estimate_request(attempt.ir())
        except ProxyError:
            n = max(1, len(attempt.body) // 4)
        return Answer(200, client.encode_count_tokens_response(n))

    async def _stream(
        self, attempt: _Attempt, executor: Executor, call: UpstreamCall, cred: Credential
    ) -> StreamAnswer:
        upstream = _batches(executor, call, cred)
        try:
            first = await anext(upstream)
        except StopAsyncIteration:
            raise UpstreamError(502, "upstream closed the stream without sending anything", network=True) from None
        except BaseException:
            await _aclose(upstream)
            raise
        codec = self._upstream_codec(executor)
        if codec.name == attempt.dialect:
            rename = None
            if attempt.client_model != call.model:
                rename = _ModelName(codec, call.model, attempt.client_model)
            chunks = self._relay(attempt, codec, upstream, first, cred, rename)
        else:
            chunks = self._translate_stream(attempt, codec, upstream, first, cred)
        return StreamAnswer(chunks)

    async def _relay(
        self,
        attempt: _Attempt,
        codec: Codec,
        upstream: AsyncIterator[list[SSEEvent]],
        first: list[SSEEvent],
        cred: Credential,
        rename: _ModelName | None = None,
    ) -> AsyncIterator[bytes]:
        """Same dialect: re-frame each upstream event as it arrives, checked for a proper ending by the codec."""
        ok = False
        check = codec.relay_check()
        try:
            batch: list[SSEEvent] | None = first
            while batch is not None:
                if rename is None:
                    out = b"".join([frame(ev.data, ev.event) for ev in batch if check.forward(ev)])
                else:
                    events = [ev for ev in batch if check.forward(ev)]
                    out = rename.frames(b"".join([frame(ev.data, ev.event) for ev in events]), events)
                if out:
                    yield out
                # Keep reading after the terminator: a fully read response returns its connection to the pool.
                batch = await anext(upstream, None)
            tail = check.finish()
            if tail is None:
                ok = True
            else:
                self.pool.mark_failure(cred.id, attempt.model, 502, "truncated stream")
                yield tail
        except UpstreamError as exc:
            self.pool.mark_failure(cred.id, attempt.model, exc.status, exc.message, exc.retry_after)
            yield codec.stream_error(exc)
        finally:
            await _aclose(upstream)
            if ok:
                self.pool.mark_success(cred.id, attempt.model)

    async def _translate_stream(
        self,
        attempt: _Attempt,
        codec: Codec,
        upstream: AsyncIterator[list[SSEEvent]],
        first: list[SSEEvent],
        cred: Credential,
    ) -> AsyncIterator[bytes]:
        """Other dialect: decode each upstream event to IR events and encode them for the client at once."""
        req = attempt.ir()
        decoder = codec.stream_decoder(req)
        # The client's encoder names the model as the client did; the upstream's decoder keeps the real name.
        encoder = attempt.client().stream_encoder(msgspec.structs.replace(req, model=attempt.client_model))
        finished = False
        ok = False
        try:
            batch: list[SSEEvent] | None = first
            while batch is not None:
                out = b""
                for ev in batch:
                    for e in decoder.feed(ev):
                        if isinstance(e, (ir.Finish, ir.Error)):
                            finished = True
                        elif isinstance(e, ir.Start):
                            e.model = attempt.client_model
                        out += encoder.encode(e)
                if out:
                    yield out
                batch = await anext(upstream, None)
            out = b""
            for e in decoder.close():
                if isinstance(e, (ir.Finish, ir.Error)):
                    finished = True
                out += encoder.encode(e)
            if not finished:
                out += encoder.encode(ir.Error(502, TRUNCATED_STREAM))
                self.pool.mark_failure(cred.id, attempt.model, 502, "truncated stream")
            else:
                ok = True
            out += encoder.close()
            if out:
                yield out
        except UpstreamError as exc:
            self.pool.mark_failure(cred.id, attempt.model, exc.status, exc.message, exc.retry_after)
            yield encoder.encode(ir.Error(exc.status, exc.message, exc.kind)) + encoder.close()
        finally:
            await _aclose(upstream)
            if ok:
                self.pool.mark_success(cred.id, attempt.model)


def _worse(old: NoCredentialError | None, new: NoCredentialError) -> NoCredentialError:
    """Of two providers' selection errors keep the most useful: cooling (429, with a wait) over not-found."""
    if old is None:
        return new
    if new.status == 429 and old.status == 429:
        return new if (new.retry_after or 0.0) < (old.retry_after or 0.0) else old
    if new.status == 429 or (old.code == "auth_not_found" and new.code != "auth_not_found"):
        return new
    return old


async def _batches(executor: Executor, call: UpstreamCall, cred: Credential) -> AsyncIterator[list[SSEEvent]]:
    """Upstream events grouped per network read when the executor can (``HttpExecutor``), else one by one."""
    batched = getattr(executor, "stream_batches", None)
    if batched is not None:
        inner: AsyncIterator[list[SSEEvent]] = batched(call, cred)
        try:
            async for batch in inner:
                yield batch
        finally:
            await _aclose(inner)
        return
    events = executor.stream(call, cred)
    try:
        async for ev in events:
            yield [ev]
    finally:
        await _aclose(events)


async def _aclose(it: AsyncIterator[Any]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # pragma: no cover - closing a broken upstream must not mask the real outcome
            log.debug("error while closing upstream stream", exc_info=True)


_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_json_encode = msgspec.json.encode


class _ModelName:
    """Identity path: put the client's model name back into answers that carry the upstream's.

    Only the one field changes, so unknown fields and the upstream's formatting survive. Whole responses
    are split at their top level (values stay raw bytes), because a tool's input object may itself hold a
    ``model`` key. Streams are rewritten per network read, without buffering: the exact upstream
    ``"model":"<name>"`` pair is replaced in place (the events that carry it hold no other objects with
    that key and value, and string contents escape their quotes), and only when some mention of the key
    is left over (a dated model name, other spacing) is each event rewritten on its own.
    """

    __slots__ = ("key", "name", "needle", "replacement", "stream_path", "unary_path")

    def __init__(self, codec: Codec, upstream: str, client: str) -> None:
        key, self.unary_path, self.stream_path = codec.model_paths
        self.key = b'"' + key.encode() + b'"'
        self.name = _json_encode(client)
        self.needle = self.key + b":" + _json_encode(upstream)
        self.replacement = self.key + b":" + self.name

    def unary(self, body: bytes) -> bytes:
        if self.key not in body:
            return body
        return _set_string(body, self.unary_path, self.name)

    def frames(self, framed: bytes, events: list[SSEEvent]) -> bytes:
        """``framed`` (``events``, SSE-framed) naming the client's model: one replace for the usual batch."""
        out = framed.replace(self.needle, self.replacement)
        if out.count(self.key) == out.count(self.replacement):
            return out  # every mention of the key now carries the client's name
        return b"".join([frame(self.event(ev.data), ev.event) for ev in events])

    def event(self, data: bytes) -> bytes:
        out = data.replace(self.needle, self.replacement)  # ``data`` itself when there is no match
        if out is not data or self.key not in data:
            return out
        return _set_string(data, self.stream_path, self.name)


def _set_string(data: bytes, path: tuple[str, ...], value: bytes) -> bytes:
    """``data`` with the string at ``path`` (object keys) set to the JSON ``value``; unchanged if absent."""
    try:
        obj = _raw_object(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return data
    raw = obj.get(path[0])
    if raw is None:
        return data
    current = bytes(raw)
    if len(path) > 1:
        inner = _set_string(current, path[1:], value)
        if inner is current:
            return data
        obj[path[0]] = msgspec.Raw(inner)
    elif current.startswith(b'"') and current != value:
        obj[path[0]] = msgspec.Raw(value)
    else:
        return data
    return _json_encode(obj)


_HOP_HEADERS = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "content-type",
        "date",
        "server",
    }
)


def _passthrough_headers(headers: Mapping[str, str], codec: Codec) -> dict[str, str]:
    """Upstream response headers worth keeping on a pass-through answer: the dialect's rate-limit and ids."""
    keep = codec.passthrough_header_prefixes
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS and k.lower().startswith(keep)}
