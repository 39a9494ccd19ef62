"""A fast fake OpenAI-compatible upstream: raw asyncio protocol + httptools, on uvloop when available.

Serves ``POST /v1/chat/completions`` (a small ``chat.completion``, or ``--chunks`` ``chat.completion.chunk``
SSE events then ``data: [DONE]`` when the body asks for ``"stream": true``) and ``GET /v1/models``.
All answers are pre-rendered bytes so the upstream costs as little CPU per request as possible.

Usage: ``python bench/fake_upstream.py --port 18999 [--chunks 50] [--chunk-delay 0]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from typing import Any

import httptools

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_MODEL = "real-model"


def _http(status: bytes, ctype: bytes, body: bytes) -> bytes:
    """A complete keep-alive HTTP/1.1 response with Content-Length."""
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: "
        + ctype
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _chunked(data: bytes) -> bytes:
    """One HTTP/1.1 chunked-transfer chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def build_responses(chunks: int) -> dict[str, Any]:
    """Pre-render every answer the fake can give."""
    created = int(time.time())
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": created,
        "model": _MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the fake upstream."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    }
    models = {
        "object": "list",
        "data": [{"id": _MODEL, "object": "model", "created": created, "owned_by": "fake"}],
    }
    events: list[bytes] = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": created,
            "model": _MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if i == chunks - 1 else None}],
        }
        events.append(_chunked(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"))
    events.append(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return {
        "unary": _http(b"200 OK", b"application/json", json.dumps(completion, separators=(",", ":")).encode()),
        "models": _http(b"200 OK", b"application/json", json.dumps(models, separators=(",", ":")).encode()),
        "not_found": _http(b"404 Not Found", b"application/json", b'{"error":{"message":"not found"}}'),
        "stream_head": (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        ),
        "events": events,
    }


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered in order (no pipelining reordering)."""

    def __init__(self, responses: dict[str, Any], delay: float) -> None:
        self.r = responses
        self.delay = delay
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.busy: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Feed the parser; a malformed request closes the connection."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        """Reset per-request state."""
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        """Accumulate the request target."""
        self.url += url

    def on_body(self, body: bytes) -> None:
        """Accumulate the request body."""
        self.body.append(body)

    def on_message_complete(self) -> None:
        """Answer the request."""
        t = self.transport
        assert t is not None
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        keep = self.parser.should_keep_alive()
        if method == b"POST" and path.endswith(b"/chat/completions"):
            if _STREAM_RE.search(b"".join(self.body)):
                if self.delay > 0:
                    self.busy = asyncio.ensure_future(self._slow_stream(keep))
                    return
                t.write(self.r["stream_head"])
                for ev in self.r["events"]:
                    t.write(ev)
            else:
                t.write(self.r["unary"])
        elif method == b"GET" and path.endswith(b"/models"):
            t.write(self.r["models"])
        else:
            t.write(self.r["not_found"])
        if not keep:
            t.close()

    async def _slow_stream(self, keep: bool) -> None:
        t = self.transport
        assert t is not None
        t.write(self.r["stream_head"])
        for ev in self.r["events"]:
            await asyncio.sleep(self.delay)
            if t.is_closing():
                return
            t.write(ev)
        if not keep:
            t.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop a delayed stream whose client went away."""
        if self.busy is not None:
            self.busy.cancel()


async def serve(host: str, port: int, chunks: int, delay: float) -> None:
    """Listen until cancelled."""
    responses = build_responses(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(responses, delay), host, port, backlog=1024)
    print(f"fake upstream on http://{host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18999)
    ap.add_argument("--chunks", type=int, default=50, help="SSE chunks per streamed answer")
    ap.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between SSE chunks")
    args = ap.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - plain asyncio still works, just slower
        runner = asyncio.run  # type: ignore[assignment]
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, args.chunks, args.chunk_delay))


if __name__ == "__main__":
    main()
