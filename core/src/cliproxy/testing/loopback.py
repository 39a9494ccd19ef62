"""Serve an ASGI app on a real 127.0.0.1 socket with uvicorn, in-loop or in a background thread.

Tests talk to the proxy and to the fake upstreams over real TCP so HTTP framing, streaming and disconnects
behave as in production; no subprocesses, ports are picked by the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeAlias

import uvicorn

__all__ = ["ASGIApp", "serve_in_thread", "serve_on_loopback"]

ASGIApp: TypeAlias = Callable[..., Awaitable[None]]


class _Server(uvicorn.Server):
    """uvicorn without signal handling (pytest owns SIGINT) and with a 10 ms tick so shutdown is quick."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        ticks = 0
        while not await self.on_tick(0 if ticks % 100 == 0 else 1):
            ticks += 1
            await asyncio.sleep(0.01)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(app: ASGIApp, uvicorn_kwargs: dict[str, Any]) -> _Server:
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "auto",
        "timeout_graceful_shutdown": 1,
    }
    options.update(uvicorn_kwargs)
    return _Server(uvicorn.Config(app, **options))


async def _run(server: _Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits the process when lifespan startup fails
        raise RuntimeError(f"ASGI app failed to start (exit code {exc.code})") from None


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve_on_loopback(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    **uvicorn_kwargs: Any,
) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn in the current event loop; yields ``http://127.0.0.1:<port>``.

    The server is stopped (open streams cancelled after ``timeout_graceful_shutdown``) when the block exits,
    including when it raises.
    """
    sock = _bind(host, port)
    server = _server(app, uvicorn_kwargs)
    task = asyncio.get_running_loop().create_task(_run(server, sock), name=f"uvicorn-{_url(sock)}")
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped before it started")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start in time")
            await asyncio.sleep(0.002)
        yield _url(sock)
    finally:
        server.should_exit = True
        grace = float(server.config.timeout_graceful_shutdown or 0) + 5.0
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        except Exception:
            pass
        finally:
            sock.close()


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    **uvicorn_kwargs: Any,
) -> Iterator[str]:
    """Run ``app`` under uvicorn on a background thread with its own event loop; yields the base URL.

    For sync clients (``openai.OpenAI``, ``requests``) and for subprocesses that need a server to reach.
    """
    sock = _bind(host, port)
    server = _server(app, uvicorn_kwargs)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_run(server, sock))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{_url(sock)}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                cause = failure[0] if failure else None
                raise RuntimeError("server stopped before it started") from cause
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start in time")
            time.sleep(0.002)
        yield _url(sock)
    finally:
        server.should_exit = True
        thread.join(float(server.config.timeout_graceful_shutdown or 0) + 5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(2.0)
        sock.close()
