"""The local callback server of a CLI login: 127.0.0.1 only, one path, state checked before anything else.

The reference listened on every interface and did not check Google's ``state``. Here a callback with a wrong or
missing state gets a 400 page and the login keeps waiting for the right one; the code of a foreign callback is
never exchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from ..logging import get_logger
from .flow import LoginContext, LoginError, LoginResult, RedirectLogin

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["CallbackServer"]

log = get_logger("cliproxy.oauth")

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>cliproxy login</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>"""


def _page(title: str, text: str) -> bytes:
    return _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()


_SUCCESS = _page("Login successful", "cliproxy saved your login. You can close this window.")


class CallbackServer:
    """Serve ``pending.callback_path`` on ``127.0.0.1:<port>`` until a callback with the right state arrives.

    ``await server.result()`` exchanges that callback's code (through ``pending.complete``) and returns the
    credentials, or raises :class:`LoginError` (denied consent, failed exchange, timeout). The browser gets a
    page saying how it ended.
    """

    def __init__(self, pending: RedirectLogin, ctx: LoginContext, *, host: str = "127.0.0.1") -> None:
        self.pending = pending
        self.ctx = ctx
        self.host = host
        self._server: asyncio.Server | None = None
        self._done: asyncio.Future[list[LoginResult]] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        self._done = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.pending.callback_port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LoginError(
                    f"port {self.pending.callback_port} on {self.host} is already in use; free it or pass "
                    "--callback-port N (the provider must then accept that redirect port)"
                ) from None
            raise LoginError(f"cannot listen on {self.host}:{self.pending.callback_port}: {exc.strerror}") from None

    async def __aenter__(self) -> CallbackServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def result(self) -> list[LoginResult]:
        """Wait (up to the login's deadline) for the accepted callback and its outcome."""
        assert self._done is not None, "start() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self._done), self.pending.remaining())
        except TimeoutError:
            raise LoginError(
                "timed out waiting for the OAuth callback; run the login again and finish it in the browser"
            ) from None

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await asyncio.wait_for(self._respond(reader), 120)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            status, body = 400, _page("Bad request", "This request could not be read.")
        except Exception:  # pragma: no cover - never leave a browser hanging on our bug
            log.exception("login callback failed")
            status, body = 500, _page("Login failed", "cliproxy hit an internal error; see its output.")
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        request_line = (await reader.readuntil(b"\r\n")).decode("latin-1").strip()
        while (await reader.readuntil(b"\r\n")) not in (b"\r\n", b""):
            pass  # headers carry nothing we need
        parts = request_line.split(" ")
        if len(parts) != 3:
            return 400, _page("Bad request", "This request could not be read.")
        method, target, _ = parts
        url = urlsplit(target)
        if url.path == self.pending.success_path and url.path != self.pending.callback_path:
            if method != "GET":
                return 405, _page("Method not allowed", "This page only answers GET.")
            return self._status()
        if url.path != self.pending.callback_path:
            return 404, _page("Not found", "This is cliproxy's login callback; nothing else lives here.")
        if method != "GET":
            return 405, _page("Method not allowed", "The login callback only answers GET.")
        # parse_qsl decodes percent-escapes properly (Google's codes contain '/').
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if not self.pending.accepts(query):
            log.warning("ignored a login callback with a wrong or missing state", provider=self.pending.provider)
            return 400, _page("Login not accepted", "This callback does not belong to the running login.")
        done = self._done
        assert done is not None
        if done.done():
            return 200, _page("Already done", "This login has already finished; you can close this window.")
        try:
            results = await self.pending.complete(query, self.ctx)
        except LoginError as exc:
            if not done.done():
                done.set_exception(exc)
            return 400, _page("Login failed", str(exc))
        if not done.done():
            done.set_result(results)
        return 200, _SUCCESS

    def _status(self) -> tuple[int, bytes]:
        """The success page: how the login ended, or that it is still waiting for the callback."""
        done = self._done
        if done is None or not done.done():
            return 200, _page("Waiting", "cliproxy is still waiting for the login to come back from the provider.")
        if done.cancelled() or done.exception() is not None:
            return 200, _page("Login failed", "The login did not finish; see cliproxy's output.")
        return 200, _SUCCESS
