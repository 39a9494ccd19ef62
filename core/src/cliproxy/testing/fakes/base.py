"""Shared machinery of the fake upstreams: the neutral ``Reply``, request recording, scripting and streaming.

Each dialect module only decides routes and how a ``Reply`` looks on the wire; everything that must behave the
same for every provider (auth checks, validation bookkeeping, chunk delays, disconnect counting, aborting a
stream mid-way) lives here so the fakes cannot drift apart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import logging
import math
import re
import secrets
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeAlias
from urllib.parse import parse_qsl

import msgspec

__all__ = [
    "Endpoint",
    "FakeApp",
    "FakeUpstream",
    "Handler",
    "Recorded",
    "Reply",
    "ToolCall",
    "Usage",
    "split_text",
]

Message: TypeAlias = dict[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(obj: Any) -> bytes:
    """Compact JSON, the way every provider sends it."""
    return _encoder.encode(obj)


def loads(data: bytes | str) -> Any:
    return _decoder.decode(data)


class ToolCall(msgspec.Struct):
    """A function call the model makes; ``id=""`` lets each dialect mint an id in its own style."""

    id: str
    name: str
    arguments: dict[str, Any] | str = msgspec.field(default_factory=dict)

    def arguments_json(self) -> str:
        """Arguments as the JSON text OpenAI-style APIs carry (a ``str`` is passed through untouched)."""
        if isinstance(self.arguments, str):
            return self.arguments
        return dumps(self.arguments).decode()

    def arguments_dict(self) -> dict[str, Any]:
        """Arguments as the object Claude/Gemini carry."""
        if isinstance(self.arguments, dict):
            return self.arguments
        value = loads(self.arguments) if self.arguments else {}
        return value if isinstance(value, dict) else {"value": value}


class Usage(msgspec.Struct):
    """Token counts in OpenAI semantics; each fake converts them to its provider's native accounting.

    ``input`` includes ``cached`` and ``output`` includes ``reasoning`` (as OpenAI counts them); Claude
    reports ``input - cached`` as ``input_tokens``, Gemini ``output - reasoning`` as ``candidatesTokenCount``.
    """

    input: int = 10
    output: int = 5
    cached: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output


class Reply(msgspec.Struct, kw_only=True):
    """What the fake model answers, independent of the wire dialect.

    ``finish`` is neutral (``stop`` / ``length`` / ``tool_calls``; default ``tool_calls`` when there are tool
    calls, else ``stop``); any other value is sent verbatim as the provider's own reason (e.g. ``SAFETY``).
    ``status >= 400`` makes it an error reply in the provider's error shape (``error_body`` overrides the
    body byte for byte; ``error_type`` overrides the provider's error type/status string, ``error_code`` the
    OpenAI ``code``, e.g. ``insufficient_quota``). ``chunks`` splits text/reasoning/arguments into that many
    stream deltas (default: per word), ``chunk_delay`` sleeps between stream events, ``fail_mid_stream``
    drops the connection after ``fail_after`` events, ``delay`` waits before the response head is sent.
    """

    text: str = ""
    reasoning: str = ""
    signature: str | None = None
    tool_calls: list[ToolCall] = []
    finish: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    status: int = 200
    error_body: bytes | None = None
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    headers: dict[str, str] = {}
    retry_after: float | None = None
    chunks: int | None = None
    chunk_delay: float = 0.0
    fail_mid_stream: bool = False
    fail_after: int = 3
    delay: float = 0.0
    model: str | None = None
    id: str | None = None

    @property
    def finish_reason(self) -> str:
        if self.finish:
            return self.finish
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def reasoning_signature(self) -> str:
        """The given signature, or a stable base64 one derived from the reasoning text (valid for Gemini)."""
        if self.signature is not None:
            return self.signature
        return base64.b64encode(hashlib.sha256(self.reasoning.encode()).digest()).decode()


class Recorded(msgspec.Struct):
    """One request as the fake received it, for assertions."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] | None = None
    key: str | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def model(self) -> str | None:
        body = self.json
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return str(body["model"])
        return None


Handler: TypeAlias = Callable[[Recorded], "Reply | Awaitable[Reply]"]


def split_text(text: str, n: int | None) -> list[str]:
    """Split into ``n`` near-equal pieces, or per word (keeping the spaces) when ``n`` is None."""
    if not text:
        return []
    if n is None:
        return re.findall(r"\s*\S+\s*|\s+", text) or [text]
    n = max(1, min(n, len(text)))
    size, extra = divmod(len(text), n)
    out: list[str] = []
    pos = 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def split_fragments(text: str, n: int | None, default: int = 3) -> list[str]:
    """Split JSON argument text into fragments the way providers stream them (never valid JSON alone)."""
    return split_text(text, n if n is not None else default) if text else []


def new_id(prefix: str, nbytes: int = 12) -> str:
    return prefix + secrets.token_hex(nbytes)


def retry_after_value(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def sse(data: bytes, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One SSE frame; Google terminates lines with CRLF, everyone else with LF."""
    nl = b"\r\n" if crlf else b"\n"
    head = b"event: " + event.encode() + nl if event else b""
    return head + b"data: " + data + nl + nl


class AbortConnection(Exception):
    """Raised inside the app to make uvicorn drop the socket without finishing the response."""


class _QuietAbort(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, AbortConnection)


_filter_installed = False


def _install_abort_filter() -> None:
    """Keep uvicorn from logging the deliberate abort as an application crash."""
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_QuietAbort())
        _filter_installed = True


class Conn:
    """Thin wrapper over ASGI send/receive that notices the client going away while we stream."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.gone = asyncio.Event()
        self.started = False
        self._watcher: asyncio.Task[None] | None = None

    def watch(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    async def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher

    async def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.started = True
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes, *, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(
        self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        await self.start(status, [("content-type", content_type), ("content-length", str(len(body))), *headers])
        await self.write(body, more=False)


Render: TypeAlias = Callable[[Recorded, Reply, Conn], Awaitable[None]]
Validator: TypeAlias = Callable[[Recorded], "str | None"]


@dataclass(frozen=True)
class Endpoint:
    """A route: how to render, how to validate, whether it consumes a scripted reply and needs a key."""

    render: Render
    validate: Validator | None = None
    scripted: bool = True
    auth: bool = True


class FakeApp:
    """Raw ASGI app that records every request; base of the AI fakes and the OAuth server."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []

    def reset(self) -> None:
        self.requests.clear()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def serve(self, **uvicorn_kwargs: Any) -> contextlib.AbstractAsyncContextManager[str]:
        """``async with fake.serve() as url`` — shorthand for ``serve_on_loopback(fake)``."""
        from ..loopback import serve_on_loopback

        return serve_on_loopback(self, **uvicorn_kwargs)

    def serve_in_thread(self, **uvicorn_kwargs: Any) -> contextlib.AbstractContextManager[str]:
        """``with fake.serve_in_thread() as url`` — for sync clients and subprocesses."""
        from ..loopback import serve_in_thread

        return serve_in_thread(self, **uvicorn_kwargs)

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        rec = self._record(scope, b"".join(chunks))
        self.requests.append(rec)
        conn = Conn(receive, send)
        conn.watch()
        try:
            await self.handle(rec, conn)
        finally:
            await conn.stop_watching()

    def _record(self, scope: dict[str, Any], body: bytes) -> Recorded:
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            headers[k.decode("latin-1").lower()] = v.decode("latin-1")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        parsed: Any = None
        form: dict[str, str] | None = None
        ctype = headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in ctype:
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif body:
            with contextlib.suppress(msgspec.DecodeError):
                parsed = loads(body)
        return Recorded(
            method=scope["method"],
            path=scope["path"],
            query=query,
            headers=headers,
            body=body,
            json=parsed,
            form=form,
            key=self.extract_key(headers, query),
        )

    async def handle(self, rec: Recorded, conn: Conn) -> None:
        raise NotImplementedError


class FakeUpstream(FakeApp):
    """Common behaviour of the provider fakes: keys, scripted replies, validation, streaming.

    Reply choice per request: ``key_behaviour[key]`` → next scripted reply → ``handler(rec)`` → a short echo
    of the last user message. Every generation/count request consumes one reply; listings do not.
    """

    dialect: ClassVar[str] = "fake"
    error_content_type: ClassVar[str] = "application/json"
    request_id_header: ClassVar[str | None] = None
    retry_after_header: ClassVar[bool] = True

    def __init__(
        self,
        *,
        keys: Iterable[str] | None = None,
        handler: Handler | None = None,
        validate: bool = True,
        models: Sequence[str] | None = None,
        allow_fields: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.keys: set[str] | None = set(keys) if keys is not None else None
        self.key_behaviour: dict[str, Reply] = {}
        self.handler: Handler | None = handler
        self.validate = validate
        # Top-level body fields accepted beyond the SDK type: extensions of "OpenAI-compatible" servers
        # (vLLM/OpenRouter ``top_k``, ``min_p`` ...) that the real first-party API would reject.
        self.allow_fields: set[str] = set(allow_fields)
        self.models: list[str] = list(models) if models else self.default_models()
        self.validation_errors: list[str] = []
        self.disconnects = 0
        self.completed_streams = 0
        self._script: deque[Reply] = deque()

    # -- configuration -------------------------------------------------------------------------------------
    def script(self, *replies: Reply) -> Self:
        """Queue replies for the next requests, in order (returns self for chaining)."""
        self._script.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """How many scripted replies are still queued."""
        return len(self._script)

    def reset(self) -> None:
        super().reset()
        self.validation_errors.clear()
        self._script.clear()
        self.disconnects = 0
        self.completed_streams = 0

    async def wait_for_disconnects(self, n: int = 1, within: float = 5.0) -> bool:
        """Disconnects are noticed asynchronously; poll until ``n`` were counted."""
        deadline = time.monotonic() + within
        while self.disconnects < n:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- dialect hooks ---------------------------------------------------------------------------------------
    def default_models(self) -> list[str]:
        return ["fake-model"]

    def route(self, method: str, path: str) -> Endpoint | None:
        raise NotImplementedError

    def error_body(self, status: int, message: str, reply: Reply) -> bytes:
        raise NotImplementedError

    def unauthorized(self, key: str | None) -> Reply:
        return Reply(status=401, error_message="Invalid API key provided.")

    def not_found(self, rec: Recorded) -> Reply:
        return Reply(status=404, error_message=f"Unknown route {rec.method} {rec.path}")

    def last_user_text(self, rec: Recorded) -> str:
        return ""

    def default_reply(self, rec: Recorded) -> Reply:
        text = self.last_user_text(rec).strip()
        return Reply(text=f"echo: {text[:200]}" if text else "Hello from the fake upstream.")

    # -- request flow ----------------------------------------------------------------------------------------
    async def next_reply(self, rec: Recorded) -> Reply:
        if self._script:
            return self._script.popleft()
        if self.handler is not None:
            result = self.handler(rec)
            if inspect.isawaitable(result):
                result = await result
            assert isinstance(result, Reply)
            return result
        return self.default_reply(rec)

    async def handle(self, rec: Recorded, conn: Conn) -> None:
        endpoint = self.route(rec.method, rec.path)
        if endpoint is None:
            await self.send_error(conn, self.not_found(rec))
            return
        forced: Reply | None = None
        if endpoint.auth:
            if rec.key is not None and rec.key in self.key_behaviour:
                forced = self.key_behaviour[rec.key]
            elif self.keys is not None and rec.key not in self.keys:
                await self.send_error(conn, self.unauthorized(rec.key))
                return
        if forced is None or not forced.is_error:
            problem = self.check(rec, endpoint)
            if problem is not None:
                self.validation_errors.append(f"{rec.method} {rec.path}: {problem}")
                await self.send_error(conn, Reply(status=400, error_message=problem[:2000]))
                return
        if forced is not None:
            reply = forced
        elif endpoint.scripted:
            reply = await self.next_reply(rec)
        else:
            reply = Reply()
        if reply.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.gone.wait(), reply.delay)
            if conn.gone.is_set():  # the client gave up waiting (a timeout test): nothing left to answer
                return
        if reply.is_error:
            await self.send_error(conn, reply)
            return
        await endpoint.render(rec, reply, conn)

    def check(self, rec: Recorded, endpoint: Endpoint) -> str | None:
        if not self.validate or endpoint.validate is None:
            return None
        if rec.method in ("POST", "PUT", "PATCH") and not isinstance(rec.json, dict):
            return "request body is not a JSON object"
        if self.allow_fields and isinstance(rec.json, dict):
            body = {k: v for k, v in rec.json.items() if k not in self.allow_fields}
            rec = msgspec.structs.replace(rec, json=body)
        try:
            return endpoint.validate(rec)
        except Exception as exc:  # a validator bug must surface as a failure, not a hang
            return f"validator crashed: {exc!r}"

    # -- response helpers ------------------------------------------------------------------------------------
    def base_headers(self) -> list[tuple[str, str]]:
        if self.request_id_header:
            return [(self.request_id_header, new_id("req_"))]
        return []

    def extra_headers(self, reply: Reply) -> list[tuple[str, str]]:
        headers = self.base_headers()
        if reply.retry_after is not None and self.retry_after_header:
            headers.append(("retry-after", retry_after_value(reply.retry_after)))
        headers.extend(reply.headers.items())
        return headers

    async def send_error(self, conn: Conn, reply: Reply) -> None:
        message = reply.error_message or _default_message(reply.status)
        body = reply.error_body if reply.error_body is not None else self.error_body(reply.status, message, reply)
        await conn.respond(reply.status, body, self.error_content_type, self.extra_headers(reply))

    async def send_json(self, conn: Conn, reply: Reply, obj: Any, content_type: str = "application/json") -> None:
        """A complete JSON body, or half of it and a dropped connection when ``fail_mid_stream`` is set."""
        body = dumps(obj)
        if not reply.fail_mid_stream:
            await conn.respond(200, body, content_type, self.extra_headers(reply))
            return
        _install_abort_filter()
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        await conn.start(200, headers + self.extra_headers(reply))
        await conn.write(body[: len(body) // 2])
        raise AbortConnection("fail_mid_stream")

    async def send_stream(
        self, conn: Conn, reply: Reply, frames: Sequence[bytes], content_type: str = "text/event-stream"
    ) -> None:
        """One ``send`` per frame, honouring ``chunk_delay``, disconnects and ``fail_mid_stream``."""
        headers = [("content-type", content_type), ("cache-control", "no-cache")]
        await conn.start(200, headers + self.extra_headers(reply))
        fail_at = min(max(reply.fail_after, 0), len(frames) - 1) if reply.fail_mid_stream else -1
        for i, frame in enumerate(frames):
            if i == fail_at:
                _install_abort_filter()
                raise AbortConnection("fail_mid_stream")
            if conn.gone.is_set():
                self.disconnects += 1
                return
            await conn.write(frame)
            if reply.chunk_delay > 0 and i < len(frames) - 1:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.gone.wait(), reply.chunk_delay)
            else:
                await asyncio.sleep(0)
        if conn.gone.is_set():
            self.disconnects += 1
            return
        await conn.write(b"", more=False)
        self.completed_streams += 1


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


def _default_message(status: int) -> str:
    return f"Fake upstream error: {_REASONS.get(status, 'HTTP ' + str(status))}"


_adapters: dict[str, Any] = {}


class _Invalid(Exception):
    pass


def validate_sdk_type(cache_key: str, load_type: Callable[[], Any], body: Any) -> str | None:
    """Validate ``body`` against an SDK request type (TypedDict or pydantic model), unknown keys forbidden.

    The providers reject unknown fields, so extras are forbidden at every depth. SDK ``Iterable[...]`` fields
    validate lazily in pydantic, so the result is drained to force validation of every nested item.
    """
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    adapter = _adapters.get(cache_key)
    if adapter is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adapter = TypeAdapter(list[load_type()], config=ConfigDict(extra="forbid"))  # type: ignore[misc,arg-type]
        _adapters[cache_key] = adapter
    try:
        _drain(adapter.validate_python([body])[0], "")
    except ValidationError as exc:
        return _format_errors(exc, skip=1)
    except _Invalid as exc:
        return str(exc)
    return None


def _drain(value: Any, path: str) -> None:
    from pydantic import ValidationError

    if isinstance(value, dict):
        for k, v in value.items():
            _drain(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _drain(v, f"{path}.{i}")
    elif type(value).__name__ == "ValidatorIterator":
        items: list[Any] = []
        try:
            for item in value:
                items.append(item)
        except ValidationError as exc:
            raise _Invalid(f"{path}: {_format_errors(exc, skip=0)}") from None
        for i, item in enumerate(items):
            _drain(item, f"{path}.{i}")


def _format_errors(exc: Any, skip: int) -> str:
    parts = []
    for err in exc.errors()[:6]:
        loc = ".".join(str(p) for p in err["loc"][skip:])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def duration_json(seconds: float) -> str:
    """google.protobuf.Duration JSON form (``"7s"``, ``"1.500s"``)."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{math.floor(seconds * 1000) / 1000:.3f}s"
