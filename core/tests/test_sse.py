"""The byte-level SSE parser must survive any chunking of any framing an upstream uses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cliproxy.sse import SSEEvent, SSEParser, frame

WIRE = (
    b": keep-alive\n\n"
    b'event: message_start\ndata: {"a":1}\n\n'
    b'data: {"b":2}\r\n\r\n'
    b"data: line1\ndata: line2\n\n"
    b'id: 7\nretry: 10\ndata:{"nospace":true}\n\n'
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(b'{"a":1}', "message_start"),
    SSEEvent(b'{"b":2}'),
    SSEEvent(b"line1\nline2"),
    SSEEvent(b'{"nospace":true}'),
    SSEEvent(b"[DONE]"),
]


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    p = SSEParser()
    out: list[SSEEvent] = []
    for c in chunks:
        out += p.feed(c)
    return out + p.close()


def test_parses_whole_body() -> None:
    assert parse_all([WIRE]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_any_chunking_gives_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [WIRE[a:b] for a, b in zip([0, *points], [*points, len(WIRE)], strict=True)]
    assert parse_all(chunks) == EXPECTED


def test_crlf_split_across_chunks_and_cr_only() -> None:
    assert parse_all([b"data: x\r", b"\n\r\n"]) == [SSEEvent(b"x")]
    assert parse_all([b"data: y\r\r"]) == [SSEEvent(b"y")]


def test_final_event_without_blank_line_is_flushed() -> None:
    assert parse_all([b"data: tail"]) == [SSEEvent(b"tail")]


def test_bare_json_lines_are_events() -> None:
    assert parse_all([b'{"x":1}\n{"y":2}\n']) == [SSEEvent(b'{"x":1}'), SSEEvent(b'{"y":2}')]


def test_frame() -> None:
    assert frame(b"{}") == b"data: {}\n\n"
    assert frame(b"{}", "ping") == b"event: ping\ndata: {}\n\n"


def test_huge_line_in_small_reads_is_linear() -> None:
    """Spec §7.11: a 30 MB ``data:`` line (base64 image output) must parse, and quickly."""
    import time

    payload = b'{"b64":"' + b"A" * (30 * 1024 * 1024) + b'"}'
    wire = b"data: " + payload + b"\n\n"
    p = SSEParser()
    t = time.perf_counter()
    events = []
    for i in range(0, len(wire), 65536):
        events += p.feed(wire[i : i + 65536])
    events += p.close()
    elapsed = time.perf_counter() - t
    assert len(events) == 1 and events[0].data == payload
    # Relative bound, not an absolute time: parsing must cost about as much as copying the bytes a few times.
    t = time.perf_counter()
    for _ in range(4):
        b"".join([wire[i : i + 65536] for i in range(0, len(wire), 65536)])
    assert elapsed < 30 * (time.perf_counter() - t)
