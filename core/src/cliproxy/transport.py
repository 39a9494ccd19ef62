"""A lean HTTP/1.1 transport for httpx: plain asyncio (uvloop when the server runs on it) plus httptools.

httpx's default transport (httpcore) scans every pooled connection with a poll syscall per request, wraps
every read and write in an anyio cancel scope and parses HTTP in pure Python; behind a busy proxy that was
half of the CPU spent per request. This transport keeps httpx as the client API and replaces only the wire:

* one ``asyncio.Protocol`` per connection, responses parsed by httptools (C) as bytes arrive;
* a per-origin LIFO stack of idle connections: acquire and release are O(1), a connection the server closed
  is noticed through ``connection_lost`` (no syscall), and a request that finds a reused connection dead
  before any response byte is retried once on a fresh one;
* timeouts are ``loop.call_later`` timers armed only while actually waiting;
* response bodies are handed to httpx chunk by chunk as they arrive (httpx decodes content-encoding).

Proxies are not handled here: :class:`cliproxy.http.HttpClients` keeps httpx's own transport for them.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, cast

import httptools
import httpx

__all__ = ["FastTransport"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Buffered, not yet consumed response bytes above which the socket stops being read (back-pressure).
_HIGH_WATER: Final = 1 << 20
#: Request bodies below this are sent in the same write as the head (one syscall); larger ones are not copied.
_COALESCE: Final = 1 << 20
_NO_RESPONSE: Final = "Server disconnected without sending a response."


class _Exchange:
    """One request/response on a connection; holds the body chunks so it can outlive the connection's busy
    time (the connection goes back to the pool as soon as the parser saw the end of the message)."""

    __slots__ = (
        "body_until_close",
        "buffered",
        "chunks",
        "closing",
        "conn",
        "done",
        "error",
        "head_request",
        "headers",
        "headers_done",
        "http_version",
        "informational",
        "keep_alive",
        "reason",
        "received",
        "sent",
        "status",
        "waiter",
    )

    def __init__(self, conn: _Conn, head_request: bool, closing: bool) -> None:
        self.conn: _Conn | None = conn
        self.head_request = head_request
        self.closing = closing  # the request said ``Connection: close``
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_version = b"HTTP/1.1"
        self.headers_done = False
        self.informational = False
        self.keep_alive = False
        self.body_until_close = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.done = False
        self.received = False  # any response byte at all: past that point a retry is never safe
        self.sent = False  # the whole request is written; an early answer must not free a half-used connection
        self.error: httpx.TransportError | None = None
        self.waiter: asyncio.Future[bool] | None = None

    def wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(True)

    async def wait(self, limit: float | None) -> bool:
        """Until the protocol has news for us; False when ``limit`` seconds passed first."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self.waiter = fut
        if limit is None:
            return await fut
        handle = loop.call_later(limit, _expire, fut)
        try:
            return await fut
        finally:
            handle.cancel()


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


class _Conn(asyncio.Protocol):
    """A pooled connection; also the httptools callback object, routing parser events to the current exchange."""

    def __init__(self, pool: FastTransport, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.counted = True  # still counted against the transport's connection limit
        self.requests = 0
        self.idle_since = 0.0
        self.reading_paused = False
        self.drain_waiter: asyncio.Future[bool] | None = None
        self.writing_paused = False

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:  # bytes nobody asked for: the connection's framing can no longer be trusted
            self.abort()
            return
        ex.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))

    def eof_received(self) -> bool | None:
        self.closed = True
        return False  # let the transport close; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        w = self.drain_waiter
        if w is not None and not w.done():
            w.set_result(True)
        ex = self.exchange
        if ex is None:
            return
        self.exchange = None
        ex.conn = None
        if ex.headers_done and exc is None and _until_close(ex):
            ex.done = True  # a body delimited by the end of the connection
        elif exc is not None:
            ex.error = httpx.ReadError(str(exc) or type(exc).__name__)
        elif not ex.headers_done:
            ex.error = httpx.RemoteProtocolError(_NO_RESPONSE)
        else:
            ex.error = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        ex.wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        w = self.drain_waiter
        if w is not None:
            self.drain_waiter = None
            if not w.done():
                w.set_result(True)

    # ------------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        ex = self.exchange
        if ex is None or ex.headers_done:  # a response nobody asked for (e.g. after a complete one)
            self._fail(httpx.RemoteProtocolError("unexpected data after the response"))

    def on_status(self, status: bytes) -> None:
        ex = self.exchange
        if ex is not None:
            ex.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.exchange
        if ex is not None:
            ex.headers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.exchange
        if ex is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 1xx (e.g. 103 Early Hints): not the answer, the real one follows
            ex.informational = True
            ex.headers = []
            ex.reason = b""
            return
        ex.status = status
        ex.keep_alive = self.parser.should_keep_alive() and not ex.closing
        version = self.parser.get_http_version()
        if version != "1.1":
            ex.http_version = b"HTTP/" + version.encode()
        ex.headers_done = True
        ex.wake()
        if ex.head_request:  # no body follows, whatever the headers say; httptools cannot be told so
            ex.done = True
            self.exchange = None
            ex.conn = None
            self.abort()

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is None:
            return
        ex.chunks.append(body)
        ex.buffered += len(body)
        if ex.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        ex.wake()

    def on_message_complete(self) -> None:
        ex = self.exchange
        if ex is None:
            return
        if ex.informational:
            ex.informational = False
            return
        ex.done = True
        self.exchange = None
        ex.conn = None
        ex.wake()
        if ex.keep_alive and ex.sent and not self.closed:
            self.pool._release(self)
        else:
            self.close()

    # ------------------------------------------------------------------ helpers

    def _fail(self, error: httpx.TransportError) -> None:
        ex = self.exchange
        self.exchange = None
        if ex is not None:
            ex.conn = None
            ex.error = error
            ex.wake()
        self.abort()

    def resume(self) -> None:
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        """Graceful close (FIN): a connection we are done with."""
        self.closed = True
        self.pool._forget(self)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Immediate close: a connection in an unknown state (cancelled, broken, body left unread)."""
        self.closed = True
        self.pool._forget(self)
        if self.transport is not None:
            self.transport.abort()

    async def drain(self, limit: float | None) -> None:
        while self.writing_paused and not self.closed:
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[bool] = loop.create_future()
            self.drain_waiter = fut
            handle = loop.call_later(limit, _expire, fut) if limit is not None else None
            try:
                if not await fut:
                    raise httpx.WriteTimeout("timed out sending the request")
            finally:
                if handle is not None:
                    handle.cancel()


def _until_close(ex: _Exchange) -> bool:
    """Whether the body is delimited by the server closing the connection (no length, not chunked)."""
    if ex.status in (204, 304):
        return False
    for name, _ in ex.headers:
        low = name.lower()
        if low == b"content-length" or low == b"transfer-encoding":
            return False
    return True


def _detach(ex: _Exchange) -> None:
    """Abort the exchange's connection if it still owns it; once released, the connection may serve another."""
    conn = ex.conn
    if conn is not None:
        ex.conn = None
        if conn.exchange is ex:
            conn.exchange = None
        conn.abort()


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives: each wake-up hands over everything received so far, never waits
    for more than is there."""

    def __init__(self, ex: _Exchange, read_timeout: float | None) -> None:
        self._ex = ex
        self._timeout = read_timeout

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        ex = self._ex
        while True:
            chunks = ex.chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                ex.buffered = 0
                conn = ex.conn
                if conn is not None and conn.reading_paused:
                    conn.resume()
                return data
            if ex.done:
                raise StopAsyncIteration
            if ex.error is not None:
                raise ex.error
            try:
                ok = await ex.wait(self._timeout)
            except BaseException:  # cancelled mid-body: the rest of the response would poison the pool
                self._abort()
                raise
            if not ok:
                self._abort()
                raise httpx.ReadTimeout("timed out reading the response body")

    def _abort(self) -> None:
        ex = self._ex
        _detach(ex)
        if not ex.done and ex.error is None:
            ex.error = httpx.ReadError("response closed")

    async def aclose(self) -> None:
        if not self._ex.done:
            self._abort()
        self._ex.chunks.clear()


class FastTransport(httpx.AsyncBaseTransport):
    """Direct HTTP/1.1 (http and https) for ``httpx.AsyncClient(transport=...)``; see the module docstring.

    ``ssl_context`` may be a factory: it is called on the first https connection only, since building a
    default context is a noticeable share of start-up time.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
        *,
        max_connections: int = 1024,
        max_idle_per_origin: int = 64,
        idle_expiry: float = 60.0,
    ) -> None:
        self._ssl_source = ssl_context
        self._ssl: ssl.SSLContext | None = ssl_context if isinstance(ssl_context, ssl.SSLContext) else None
        self._max_connections = max_connections
        self._max_idle = max_idle_per_origin
        self._expiry = idle_expiry
        self._idle: dict[tuple[str, str, int], collections.deque[_Conn]] = {}
        self._conns: set[_Conn] = set()
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    # ------------------------------------------------------------------ pool

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = self._ssl
        if ctx is None:
            source = self._ssl_source
            ctx = self._ssl = source() if callable(source) else ssl.create_default_context()
        return ctx

    def _release(self, conn: _Conn) -> None:
        """Back on top of its origin's stack; the oldest idle ones fall off the bottom when stale or too many."""
        conn.resume()
        now = asyncio.get_running_loop().time()
        conn.idle_since = now
        stack = self._idle.get(conn.key)
        if stack is None:
            stack = self._idle[conn.key] = collections.deque()
        while stack and (len(stack) >= self._max_idle or stack[0].closed or now - stack[0].idle_since > self._expiry):
            stack.popleft().close()
        stack.append(conn)
        if self._slot_waiters:
            self._wake_slot()

    def _forget(self, conn: _Conn) -> None:
        if conn.counted:
            conn.counted = False
            self._conns.discard(conn)
            if self._slot_waiters:
                self._wake_slot()

    def _wake_slot(self) -> None:
        while self._slot_waiters:
            w = self._slot_waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def _evict_idle(self) -> bool:
        for stack in self._idle.values():
            while stack:
                conn = stack.popleft()
                if conn.counted:
                    conn.close()
                    return True
        return False

    async def _acquire(self, key: tuple[str, str, int], timeouts: dict[str, Any], fresh: bool = False) -> _Conn:
        stack = None if fresh else self._idle.get(key)
        if stack:
            now = asyncio.get_running_loop().time()
            while stack:
                conn = stack.pop()
                if not conn.closed and now - conn.idle_since <= self._expiry:
                    return conn
                conn.close()
        while len(self._conns) >= self._max_connections and not self._evict_idle():
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._slot_waiters.append(fut)
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await fut
            except TimeoutError:
                raise httpx.PoolTimeout("no connection became available in time") from None
            finally:
                if not fut.done():
                    fut.cancel()
            if not fresh and self._idle.get(key):  # someone released one to our origin while we waited
                return await self._acquire(key, timeouts)
        return await self._connect(key, timeouts.get("connect"))

    async def _connect(self, key: tuple[str, str, int], limit: float | None) -> _Conn:
        scheme, host, port = key
        ctx = self._ssl_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        conn = _Conn(self, key)
        self._conns.add(conn)
        try:
            async with asyncio.timeout(limit) as cm:
                await loop.create_connection(
                    lambda: conn, host, port, ssl=ctx, server_hostname=host if ctx is not None else None
                )
        except TimeoutError as exc:
            self._forget(conn)
            if cm.expired():
                raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        except (OSError, ssl.SSLError) as exc:
            self._forget(conn)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        except BaseException:
            conn.abort()
            raise
        return conn

    # ------------------------------------------------------------------ httpx API

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        port = url.port or _DEFAULT_PORTS.get(scheme)
        if port is None:
            raise httpx.UnsupportedProtocol(f"{scheme!r} URLs are not supported by this transport")
        key = (scheme, url.raw_host.decode("ascii"), port)
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        head, closing = _head(request)
        body: bytes | None
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = None
        head_request = request.method == "HEAD"
        read_timeout = timeouts.get("read")

        attempt = 0
        while True:
            conn = await self._acquire(key, timeouts, fresh=attempt > 0)
            reused = conn.requests > 0
            conn.requests += 1
            ex = _Exchange(conn, head_request, closing)
            conn.exchange = ex
            try:
                await self._send(conn, head, body, request, timeouts.get("write"))
                ex.sent = True
                while not ex.headers_done:
                    if ex.error is not None:
                        raise ex.error
                    if not await ex.wait(read_timeout):
                        raise httpx.ReadTimeout("timed out waiting for the response")
            except httpx.TransportError as exc:
                _detach(ex)
                if (
                    reused
                    and attempt == 0
                    and body is not None
                    and not ex.received
                    and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))
                ):
                    attempt += 1  # the server had closed the idle connection under us: once more, fresh
                    continue
                raise
            except BaseException:  # cancelled: the connection is mid-exchange, never reuse it
                _detach(ex)
                raise
            break
        return httpx.Response(
            ex.status,
            headers=ex.headers,
            stream=_Body(ex, read_timeout),
            extensions={"http_version": ex.http_version, "reason_phrase": ex.reason},
        )

    async def _send(
        self, conn: _Conn, head: bytes, body: bytes | None, request: httpx.Request, limit: float | None
    ) -> None:
        transport = conn.transport
        if transport is None or conn.closed:
            raise httpx.RemoteProtocolError(_NO_RESPONSE)
        if body is not None:
            if len(body) < _COALESCE:
                transport.write(head + body)
            else:
                transport.write(head)
                transport.write(body)
            if conn.writing_paused:
                await conn.drain(limit)
            return
        chunked = b"chunked" in (request.headers.get("transfer-encoding") or "").encode()
        transport.write(head)
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise RuntimeError("FastTransport needs an async request body")
        async for chunk in stream:
            if conn.closed:
                raise httpx.WriteError("connection closed while sending the request")
            if chunk:
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if conn.writing_paused:
                await conn.drain(limit)
        if chunked:
            transport.write(b"0\r\n\r\n")
        if conn.writing_paused:
            await conn.drain(limit)

    async def aclose(self) -> None:
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()
        self._idle.clear()
        while self._slot_waiters:
            w = self._slot_waiters.popleft()
            if not w.done():
                w.cancel()


def _head(request: httpx.Request) -> tuple[bytes, bool]:
    """The request line and headers, and whether the request asked to close the connection afterwards.

    httpx already added Host, Content-Length or Transfer-Encoding; CR/LF inside a name or value (header
    injection) is refused, as h11 would.
    """
    raw = request.headers.raw
    parts = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in raw:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    head = b"".join(parts)
    n = len(raw) + 2
    if head.count(b"\n") != n or head.count(b"\r") != n:
        raise httpx.LocalProtocolError("illegal CR or LF in a request header")
    closing = False
    if b"lose" in head or b"LOSE" in head:
        for name, value in raw:
            if name.lower() == b"connection" and b"close" in value.lower():
                closing = True
    return head, closing
