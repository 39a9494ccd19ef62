"""Server-sent events at the byte level: an incremental parser and a framer.

Upstream streams are parsed here as bytes arrive (no line-by-line string building), and every outbound event is
framed here, so each codec only deals with event payloads.
"""

from __future__ import annotations

__all__ = ["DONE", "SSEEvent", "SSEParser", "frame"]

DONE = b"[DONE]"


class SSEEvent:
    """One dispatched event: optional ``event:`` name and the joined ``data:`` payload."""

    __slots__ = ("data", "event")

    def __init__(self, data: bytes, event: str | None = None) -> None:
        self.data = data
        self.event = event

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data[:80]!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and other.data == self.data and other.event == self.event

    __hash__ = None  # type: ignore[assignment]


class SSEParser:
    """Incremental SSE parser (WHATWG rules: ``\\n``, ``\\r\\n`` or ``\\r`` line ends; comments ignored).

    Some upstreams send bare JSON lines without ``data:`` (or JSON arrays for Gemini ``alt=json``); a line that
    starts with ``{`` outside an event is treated as a complete ``data`` payload so those still work.
    """

    __slots__ = ("_data", "_event", "_parts")

    def __init__(self) -> None:
        #: The unfinished line, in pieces: joined only once its line break arrives, so a 30 MB base64 line
        #: received in 64 KB reads costs linear, not quadratic, copying.
        self._parts: list[bytes] = []
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if b"\n" not in chunk and b"\r" not in chunk:
            if chunk:
                self._parts.append(chunk)
            return []
        if self._parts:
            self._parts.append(chunk)
            buf = b"".join(self._parts)
            self._parts = []
        else:
            buf = chunk
        if b"\r" in buf:
            # A trailing CR may be the first half of CRLF: keep it until the next chunk decides.
            keep_cr = buf.endswith(b"\r")
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        out: list[SSEEvent] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._line(buf[start:nl], out)
            start = nl + 1
        if start < len(buf):
            self._parts.append(buf[start:])
        return out

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream: a final event without its blank line is still delivered."""
        out: list[SSEEvent] = []
        rest = b"".join(self._parts).rstrip(b"\r")
        self._parts = []
        if rest:
            self._line(rest, out)
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                out.append(SSEEvent(b"\n".join(self._data), self._event))
            self._data = []
            self._event = None
            return
        first = line[0]
        if first == 0x3A:  # ':' comment / keep-alive
            return
        if first == 0x7B and not self._data:  # bare JSON line
            out.append(SSEEvent(line, self._event))
            self._event = None
            return
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        # id / retry / unknown fields carry nothing the proxy needs.


def frame(data: bytes, event: str | None = None) -> bytes:
    """Frame one SSE event; ``data`` must be a single line (JSON from msgspec never contains newlines)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
