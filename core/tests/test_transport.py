"""FastTransport against real loopback servers: framing, streaming, keep-alive, failures, timeouts, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from cliproxy.http import HttpClients
from cliproxy.testing import serve_on_loopback
from cliproxy.transport import FastTransport

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# ---------------------------------------------------------------------------------------------- servers


class App:
    """A small raw ASGI app: ``/echo`` (body back + the client's port), ``/chunked``, ``/slow``, ``/gzip``,
    ``/big``, ``/forever``, ``/close`` (answers with ``Connection: close``)."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.sent_at: dict[str, float] = {}
        self.release = asyncio.Event()
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        self.ports.append(scope["client"][1])
        path = scope["path"]
        port = str(scope["client"][1]).encode()
        if path == "/echo":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"x-port", port)],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif path == "/close":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"2"), (b"connection", b"close"), (b"x-port", port)],
                }
            )
            await send({"type": "http.response.body", "body": b"ok"})
        elif path == "/chunked":  # no content-length: uvicorn uses chunked transfer-encoding
            await send({"type": "http.response.start", "status": 201, "headers": [(b"x-port", port)]})
            for i in range(5):
                await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/slow":  # first chunk, then wait until the test lets the rest go
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            self.sent_at["first"] = time.monotonic()
            await self.release.wait()
            self.sent_at["last"] = time.monotonic()
            await send({"type": "http.response.body", "body": b"last", "more_body": False})
        elif path == "/gzip":
            data = gzip.compress(b"hello gzip " * 1000)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-encoding", b"gzip"), (b"content-length", str(len(data)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": data})
        elif path == "/big":
            block = bytes(range(256)) * 4096  # 1 MiB
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(30 * len(block)).encode())],
                }
            )
            for _ in range(30):
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/forever":  # until the client goes away (uvicorn then drops sends; receive() tells)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            gone = asyncio.ensure_future(receive())
            while not gone.done():
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await asyncio.sleep(0.005)
            if gone.result()["type"] == "http.disconnect":
                self.disconnected.set()
        else:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def served(**kwargs: Any) -> AsyncIterator[tuple[App, str]]:
    app = App()
    async with serve_on_loopback(app, **kwargs) as url:
        yield app, url


@contextlib.asynccontextmanager
async def client(**kwargs: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FastTransport]]:
    transport = FastTransport(**kwargs)
    async with httpx.AsyncClient(transport=transport, timeout=10.0) as c:
        yield c, transport


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawServer:
    """A raw asyncio server scripted per connection (``handler(reader, writer, connection_index)``), to misbehave."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.lost = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = self.connections
        self.connections += 1
        try:
            await self.handler(reader, writer, n)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.lost.set()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


def ok(body: bytes = b"ok") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


# ---------------------------------------------------------------------------------------------- framing


async def test_content_length_and_chunked_bodies() -> None:
    async with served() as (_, url), client() as (c, _):
        r = await c.post(url + "/echo", content=b"hello")
        assert (r.status_code, r.content, r.http_version, r.reason_phrase) == (200, b"hello", "HTTP/1.1", "OK")
        r = await c.post(url + "/chunked", content=b"")
        assert r.status_code == 201
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.content == b"part0;part1;part2;part3;part4;"
        r = await c.get(url + "/nope")
        assert (r.status_code, r.content) == (404, b"")


async def test_async_request_body_is_sent_chunked() -> None:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"piece%d " % i

    async with served() as (_, url), client() as (c, _):
        r = await c.post(url + "/echo", content=gen())
        assert r.content == b"piece0 piece1 piece2 "


async def test_streaming_arrives_incrementally() -> None:
    async with served() as (app, url), client() as (c, _):
        async with c.stream("POST", url + "/slow", content=b"") as r:
            it = r.aiter_bytes()
            first = await it.__anext__()
            got_first = time.monotonic()
            assert first == b"first"
            app.release.set()
            rest = b"".join([chunk async for chunk in it])
        assert rest == b"last"
        assert got_first < app.sent_at["last"]


async def test_gzip_is_decoded_by_httpx() -> None:
    async with served() as (_, url), client() as (c, _):
        r = await c.get(url + "/gzip")
        assert r.headers["content-encoding"] == "gzip"
        assert r.text == "hello gzip " * 1000
        async with c.stream("GET", url + "/gzip") as s:
            assert b"".join([b async for b in s.aiter_bytes()]) == b"hello gzip " * 1000


async def test_large_body_is_streamed() -> None:
    async with served() as (_, url), client() as (c, _):
        total, chunks, biggest = 0, 0, 0
        async with c.stream("GET", url + "/big") as r:
            async for chunk in r.aiter_raw():
                total += len(chunk)
                chunks += 1
                biggest = max(biggest, len(chunk))
        assert total == 30 * 1024 * 1024
        assert chunks >= 10  # handed over as it arrived (back-pressure at 1 MiB), not as one 30 MB buffer
        assert biggest < 4 * 1024 * 1024
        r = await c.post(url + "/echo", content=b"after")  # the connection went back to the pool intact
        assert r.content == b"after"


async def test_body_delimited_by_close_and_informational_responses() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end")
        await writer.drain()

    async with RawServer(handler) as url, client() as (c, _):
        r = await c.post(url, content=b"x")
        assert (r.status_code, r.headers["x-a"], r.content) == (200, "1", b"until the end")
        assert "link" not in r.headers


async def test_truncated_and_malformed_responses_are_protocol_errors() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this" if n == 0 else b"NOT HTTP\r\n\r\n")
        await writer.drain()

    async with RawServer(handler) as url, client() as (c, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(url, content=b"x")
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(url, content=b"x")


async def test_extra_response_poisons_only_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            await read_request(reader)
            writer.write(ok(b"%d" % n) + (ok(b"unasked") if n == 0 else b""))
            await writer.drain()

    server = RawServer(handler)
    async with server as url, client() as (c, _):
        assert (await c.post(url, content=b"")).content == b"0"
        await asyncio.sleep(0.05)
        assert (await c.post(url, content=b"")).content == b"1"
        assert server.connections == 2


async def test_header_injection_is_refused() -> None:
    async with served() as (_, url), client() as (c, _):
        with pytest.raises(httpx.LocalProtocolError):
            await c.post(url + "/echo", content=b"x", headers={"x-a": "b\r\nx-evil: 1"})


# ---------------------------------------------------------------------------------------------- keep-alive


async def test_keep_alive_reuses_one_connection() -> None:
    async with served() as (app, url), client() as (c, _):
        for i in range(20):
            assert (await c.post(url + "/echo", content=b"%d" % i)).content == b"%d" % i
        assert len(set(app.ports)) == 1


async def test_connection_close_is_honoured() -> None:
    async with served() as (_app, url), client() as (c, t):
        ports = [int((await c.post(url + "/close", content=b"")).headers["x-port"]) for _ in range(3)]
        assert len(set(ports)) == 3
        # ...and so is the request's own Connection: close.
        a = await c.post(url + "/echo", content=b"", headers={"connection": "close"})
        b = await c.post(url + "/echo", content=b"")
        assert a.headers["x-port"] != b.headers["x-port"]
        assert len(t._conns) == 1


async def test_idle_connection_closed_by_server_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(ok(b"%d" % n))
        await writer.drain()  # then close, as an idle-timeout on the server would

    async with RawServer(handler) as url, client() as (c, _):
        assert (await c.post(url, content=b"")).content == b"0"
        await asyncio.sleep(0.05)  # the FIN has arrived: noticed without any syscall on acquire
        assert (await c.post(url, content=b"")).content == b"1"


async def test_stale_reused_connection_is_retried_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(ok(b"%d" % n))
        await writer.drain()
        await read_request(reader)  # the second request on a connection is dropped without an answer

    server = RawServer(handler)
    async with server as raw, client() as (c, _):
        assert (await c.post(raw, content=b"a")).content == b"0"
        assert (await c.post(raw, content=b"b")).content == b"1"  # retried on a fresh connection
        answers = await asyncio.gather(c.post(raw, content=b"c"), c.post(raw, content=b"d"))
        assert sorted(r.content for r in answers) == [b"2", b"3"]
        # Two idle connections, both dead: the retry opens a new one instead of trying the other.
        assert (await c.post(raw, content=b"e")).content == b"4"
        assert server.connections == 5


async def test_fresh_connection_without_answer_is_not_retried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)

    async with RawServer(handler) as url, client() as (c, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(url, content=b"x")


async def test_idle_expiry() -> None:
    async with served() as (app, url), client(idle_expiry=0.0) as (c, _):
        await c.post(url + "/echo", content=b"")
        await asyncio.sleep(0.01)
        await c.post(url + "/echo", content=b"")
        assert len(set(app.ports)) == 2


async def test_early_close_of_a_stream_drops_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        if n == 1:
            writer.write(ok(b"healthy"))
            await writer.drain()
            await reader.read()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.005)

    server = RawServer(handler)
    async with server as url, client() as (c, t):
        async with c.stream("POST", url, content=b"") as r:
            async for _ in r.aiter_raw():
                break
        await asyncio.wait_for(server.lost.wait(), 5)  # the server saw the disconnect
        assert not t._conns
        assert (await c.post(url, content=b"")).content == b"healthy"


async def test_early_close_against_uvicorn_and_pool_stays_healthy() -> None:
    async with served() as (app, url), client() as (c, _):
        async with c.stream("GET", url + "/forever") as r:
            async for _ in r.aiter_raw():
                break
        await asyncio.wait_for(app.disconnected.wait(), 5)
        assert (await c.post(url + "/echo", content=b"again")).content == b"again"


async def test_cancelled_request_never_returns_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            body = await read_request(reader)
            if body == b"hang":
                await reader.read()
                return
            writer.write(ok(body))
            await writer.drain()

    server = RawServer(handler)
    async with server as url, client() as (c, _t):
        await c.post(url, content=b"warm")
        task = asyncio.create_task(c.post(url, content=b"hang"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.lost.wait(), 5)
        assert (await c.post(url, content=b"next")).content == b"next"
        assert server.connections == 2


async def test_concurrency_64_no_lost_or_mixed_responses() -> None:
    async with served() as (app, url), client() as (c, t):

        async def worker(w: int) -> None:
            for i in range(10):
                body = b"worker %d request %d " % (w, i) * (1 + i * 50)
                r = await c.post(url + "/echo", content=body)
                assert r.content == body

        await asyncio.gather(*(worker(w) for w in range(64)))
        assert len(app.ports) == 640
        assert len(set(app.ports)) <= 64
        assert sum(len(s) for s in t._idle.values()) <= 64


# ---------------------------------------------------------------------------------------------- failures


async def test_connection_refused_is_connect_error() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    async with client() as (c, _):
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{port}/")


async def test_read_timeouts() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        if n == 1:  # headers, then silence mid-body
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
        await reader.read()

    async with RawServer(handler) as url, client() as (c, t):
        with pytest.raises(httpx.ReadTimeout):
            await c.post(url, content=b"", timeout=httpx.Timeout(5.0, read=0.1))
        with pytest.raises(httpx.ReadTimeout):
            await c.post(url, content=b"", timeout=httpx.Timeout(5.0, read=0.1))
        assert not t._conns


async def test_write_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await asyncio.sleep(10)  # never reads

    async with RawServer(handler) as url, client() as (c, _):
        with pytest.raises(httpx.WriteTimeout):
            await c.post(url, content=b"x" * (64 << 20), timeout=httpx.Timeout(5.0, write=0.2))


async def test_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    async with client() as (c, t):
        with pytest.raises(httpx.ConnectTimeout):
            await c.get("http://127.0.0.1:9/", timeout=httpx.Timeout(5.0, connect=0.05))
        assert not t._conns


async def test_pool_timeout_when_all_connections_are_busy() -> None:
    async with served() as (app, url), client(max_connections=1) as (c, _):
        async with c.stream("POST", url + "/slow", content=b"") as r:
            it = r.aiter_bytes()
            await it.__anext__()
            with pytest.raises(httpx.PoolTimeout):
                await c.post(url + "/echo", content=b"", timeout=httpx.Timeout(5.0, pool=0.1))
            app.release.set()
            assert b"".join([chunk async for chunk in it]) == b"last"
        assert (await c.post(url + "/echo", content=b"ok")).content == b"ok"


async def test_aclose_closes_every_connection() -> None:
    async with served() as (_app, url):
        c = httpx.AsyncClient(transport=(t := FastTransport()))
        await asyncio.gather(*(c.post(url + "/echo", content=b"x") for _ in range(8)))
        assert t._conns
        await c.aclose()
        assert not t._conns and not t._idle


# ---------------------------------------------------------------------------------------------- TLS


@pytest.fixture
def tls(tmp_path: Path) -> tuple[trustme.CA, dict[str, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    key, chain = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(key)
    cert.cert_chain_pems[0].write_to_path(chain)
    return ca, {"ssl_keyfile": str(key), "ssl_certfile": str(chain)}


async def test_tls_with_private_ca(tls: tuple[trustme.CA, dict[str, str]]) -> None:
    ca, files = tls
    made: list[ssl.SSLContext] = []

    def factory() -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        made.append(ctx)
        return ctx

    async with served(**files) as (app, url), client(ssl_context=factory) as (c, _):
        https = url.replace("http://", "https://")
        for _ in range(3):
            assert (await c.post(https + "/echo", content=b"secure")).content == b"secure"
        assert len(set(app.ports)) == 1
        assert len(made) == 1  # built once, on the first https connection
        r = await c.get(https.replace("127.0.0.1", "localhost") + "/big")  # SNI by name, 30 MB over TLS
        assert len(r.content) == 30 * 1024 * 1024


async def test_tls_untrusted_certificate_is_connect_error(tls: tuple[trustme.CA, dict[str, str]]) -> None:
    _, files = tls
    async with served(**files) as (_, url), client(ssl_context=ssl.create_default_context()) as (c, _):
        with pytest.raises(httpx.ConnectError):
            await c.get(url.replace("http://", "https://") + "/echo")


# ---------------------------------------------------------------------------------------------- HttpClients


async def test_http_clients_pick_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    clients = HttpClients()
    try:
        direct = clients.client()
        assert isinstance(direct._transport, FastTransport)
        assert clients._verify is None  # no TLS context until an https request needs one
        proxied = clients.client("http://127.0.0.1:1")
        assert not isinstance(proxied._transport, FastTransport)
        async with served() as (_, url):
            r = await direct.post(url + "/echo", content=b"x", headers={"set-cookie-test": "1"})
            assert r.content == b"x"
            assert not direct.cookies
    finally:
        await clients.aclose()

    monkeypatch.setenv("CLIPROXY_HTTP_TRANSPORT", "httpcore")
    clients = HttpClients()
    try:
        assert not isinstance(clients.client()._transport, FastTransport)
    finally:
        await clients.aclose()


async def test_http_clients_keep_no_cookies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            cookie = b"cookie:" in head.lower()
            writer.write(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: s=1; Path=/\r\nContent-Length: 1\r\n\r\n" + (b"Y" if cookie else b"N")
            )
            await writer.drain()

    clients = HttpClients()
    try:
        async with RawServer(handler) as url:
            assert (await clients.client().get(url)).content == b"N"
            assert (await clients.client().get(url)).content == b"N"  # not echoed to the next caller
    finally:
        await clients.aclose()
