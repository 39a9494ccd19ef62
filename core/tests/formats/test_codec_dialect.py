"""What each dialect's codec answers beyond IR mapping, reached through the codec registry the server builds:
error bodies and stream error events, the relay check, token-count shapes and the identity-path model rewrite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import pytest

from cliproxy import ir
from cliproxy.api.errors import codec_for, render_error
from cliproxy.errors import ProxyError, UpstreamError
from cliproxy.formats.base import TRUNCATED_STREAM, Codec, CodecError, RelayCheck, StreamDecoder, StreamEncoder
from cliproxy.formats.builtin import CODECS
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.sse import SSEEvent, SSEParser

loads = msgspec.json.decode
dumps = msgspec.json.encode

DIALECTS = ("openai", "openai-response", "claude", "gemini", "gemini-cli")


@pytest.fixture(scope="module")
def registry() -> Mapping[str, Codec]:
    """The registry as the container builds it: every codec registered through ``register_formats``."""
    return dict(PluginHost(make_plugin_manager(entry_points=False)).formats().items)


def events(raw: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(raw) + parser.close()


def relay(check: RelayCheck, evs: list[SSEEvent]) -> tuple[list[SSEEvent], bytes | None]:
    forwarded = [ev for ev in evs if check.forward(ev)]
    return forwarded, check.finish()


def test_registry_holds_every_builtin_dialect_under_its_name(registry: Mapping[str, Codec]) -> None:
    assert set(DIALECTS) <= set(registry)
    for dialect in DIALECTS:
        codec = registry[dialect]
        assert isinstance(codec, Codec) and codec.name == dialect
        assert CODECS[dialect] is codec


# ------------------------------------------------------------------ error bodies


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("openai", {"error": {"message": "slow", "type": "rate_limit_error", "param": None, "code": "c1"}}),
        ("openai-response", {"error": {"message": "slow", "type": "rate_limit_error", "param": None, "code": "c1"}}),
        ("claude", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
        ("gemini", {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}),
        ("gemini-cli", {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}),
    ],
)
def test_error_body_per_dialect(registry: Mapping[str, Codec], dialect: str, expected: dict[str, Any]) -> None:
    assert loads(registry[dialect].error_body(429, "slow", "rate_limit", "c1")) == expected


@pytest.mark.parametrize(
    ("status", "kind", "openai", "claude", "gemini"),
    [
        (400, None, "invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
        (401, None, "authentication_error", "authentication_error", "UNAUTHENTICATED"),
        (404, None, "invalid_request_error", "not_found_error", "NOT_FOUND"),
        (413, None, "invalid_request_error", "request_too_large", "INVALID_ARGUMENT"),
        (500, None, "server_error", "api_error", "INTERNAL"),
        (529, None, "server_error", "overloaded_error", "UNAVAILABLE"),
        (504, None, "server_error", "api_error", "DEADLINE_EXCEEDED"),
        (403, "permission", "permission_error", "permission_error", "PERMISSION_DENIED"),
    ],
)
def test_error_kinds_map_to_each_dialects_own_names(
    registry: Mapping[str, Codec], status: int, kind: Any, openai: str, claude: str, gemini: str
) -> None:
    assert loads(registry["openai"].error_body(status, "m", kind))["error"]["type"] == openai
    assert loads(registry["claude"].error_body(status, "m", kind))["error"]["type"] == claude
    assert loads(registry["gemini"].error_body(status, "m", kind))["error"]["status"] == gemini


def test_error_bodies_never_carry_secrets(registry: Mapping[str, Codec]) -> None:
    for dialect in DIALECTS:
        body = registry[dialect].error_body(401, "bad key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789")
        assert b"abcdefghijklmnop" not in body, dialect


OPENAI_ERR = b'{"error":{"message":"x","type":"invalid_request_error","param":null,"code":null}}'
CLAUDE_ERR = b'{"type":"error","error":{"type":"invalid_request_error","message":"x"}}'
GOOGLE_ERR = b'{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT"}}'
GOOGLE_STREAM_ERR = b'[{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED"}}]'


@pytest.mark.parametrize(
    ("dialect", "native"),
    [
        ("openai", {OPENAI_ERR}),
        ("openai-response", {OPENAI_ERR}),
        ("claude", {CLAUDE_ERR}),
        ("gemini", {GOOGLE_ERR, GOOGLE_STREAM_ERR}),
        ("gemini-cli", {GOOGLE_ERR, GOOGLE_STREAM_ERR}),
    ],
)
def test_each_dialect_recognises_only_its_own_error_shape(
    registry: Mapping[str, Codec], dialect: str, native: set[bytes]
) -> None:
    for body in (OPENAI_ERR, CLAUDE_ERR, GOOGLE_ERR, GOOGLE_STREAM_ERR, b"upstream exploded", b"[]", b"{}"):
        assert registry[dialect].is_native_error(body) is (body in native), (dialect, body)


def test_render_error_passes_native_bodies_and_rewraps_foreign_ones(registry: Mapping[str, Codec]) -> None:
    exc = UpstreamError(400, "upstream said no", body=CLAUDE_ERR)
    assert render_error("claude", exc, registry)[1] == CLAUDE_ERR
    status, body, _ = render_error("gemini", exc, registry)
    assert status == 400 and loads(body) == {"error": {"code": 400, "message": "x", "status": "INVALID_ARGUMENT"}}
    # A path no codec claims answers in the OpenAI envelope.
    assert loads(render_error("nobody", exc, registry)[1])["error"]["type"] == "invalid_request_error"


def test_render_error_uses_the_registry_it_is_given(registry: Mapping[str, Codec]) -> None:
    class Plain(PlainCodec):
        def error_body(self, status: int, message: str, kind: Any = None, code: str | None = None) -> bytes:
            return b'{"plain":"' + message.encode() + b'"}'

    custom = {**registry, "openai": Plain()}
    assert render_error("openai", ProxyError(400, "nope"), custom)[1] == b'{"plain":"nope"}'
    assert codec_for("openai", custom).name == "plain"
    assert codec_for("openai") is CODECS["openai"]


# ------------------------------------------------------------------ stream error events


def test_stream_error_events_per_dialect(registry: Mapping[str, Codec]) -> None:
    exc = UpstreamError(429, "quota", body=b'{"error":{"message":"daily quota reached"}}')

    (ev,) = events(registry["openai"].stream_error(exc))
    assert ev.event is None and loads(ev.data)["error"]["message"] == "daily quota reached"

    (ev,) = events(registry["openai-response"].stream_error(exc))
    assert ev.event == "error"
    assert loads(ev.data) == {
        "type": "error",
        "code": "rate_limit_error",
        "message": "daily quota reached",
        "param": None,
        "sequence_number": 0,
    }

    (ev,) = events(registry["claude"].stream_error(exc))
    assert ev.event == "error" and loads(ev.data)["error"] == {
        "type": "rate_limit_error",
        "message": "daily quota reached",
    }

    for dialect in ("gemini", "gemini-cli"):
        (ev,) = events(registry[dialect].stream_error(exc))
        assert ev.event is None and loads(ev.data)["error"]["status"] == "RESOURCE_EXHAUSTED"


# ------------------------------------------------------------------ relay checks


def sse(*frames: tuple[str | None, bytes]) -> list[SSEEvent]:
    return [SSEEvent(data, event) for event, data in frames]


def test_openai_relay_drops_vendor_events_and_what_follows_done(registry: Mapping[str, Codec]) -> None:
    stream = sse(
        (None, b'{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}'),
        ("vendor.stats", b"{}"),
        (None, b'{"choices":[{"delta":{},"finish_reason":"stop"}]}'),
        (None, b"[DONE]"),
        (None, b'{"cost":0.1}'),
    )
    forwarded, tail = relay(registry["openai"].relay_check(), stream)
    assert [ev.data for ev in forwarded] == [stream[0].data, stream[2].data, b"[DONE]"]
    assert tail is None


def test_openai_relay_adds_a_missing_done_after_a_finish(registry: Mapping[str, Codec]) -> None:
    stream = sse((None, b'{"choices":[{"delta":{},"finish_reason":"stop"}]}'))
    _, tail = relay(registry["openai"].relay_check(), stream)
    assert tail == b"data: [DONE]\n\n"


def test_responses_relay_keeps_only_response_events(registry: Mapping[str, Codec]) -> None:
    stream = sse(
        ("response.created", b"{}"),
        ("codex.rate_limits", b"{}"),
        ("response.completed", b"{}"),
        ("response.output_text.delta", b"{}"),
    )
    forwarded, tail = relay(registry["openai-response"].relay_check(), stream)
    assert [ev.event for ev in forwarded] == ["response.created", "response.completed"]
    assert tail is None


def test_claude_relay_ends_at_message_stop(registry: Mapping[str, Codec]) -> None:
    stream = sse(("message_start", b"{}"), ("message_stop", b"{}"), ("ping", b"{}"))
    forwarded, tail = relay(registry["claude"].relay_check(), stream)
    assert [ev.event for ev in forwarded] == ["message_start", "message_stop"] and tail is None


@pytest.mark.parametrize(
    "chunk",
    [
        b'{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}]}',
        b'{"response":{"candidates":[{"finishReason": "MAX_TOKENS"}]}}',
        b'{"error":{"code":500,"message":"x","status":"INTERNAL"}}',
    ],
)
def test_gemini_relay_accepts_a_finish_reason_or_an_error(registry: Mapping[str, Codec], chunk: bytes) -> None:
    for dialect in ("gemini", "gemini-cli"):
        forwarded, tail = relay(registry[dialect].relay_check(), sse((None, chunk)))
        assert len(forwarded) == 1 and tail is None


@pytest.mark.parametrize(
    ("dialect", "first"),
    [
        ("openai", (None, b'{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}')),
        ("openai-response", ("response.created", b"{}")),
        ("claude", ("message_start", b"{}")),
        ("gemini", (None, b'{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}')),
        ("gemini-cli", (None, b'{"response":{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}}')),
    ],
)
def test_truncated_relayed_stream_ends_with_the_dialects_error_event(
    registry: Mapping[str, Codec], dialect: str, first: tuple[str | None, bytes]
) -> None:
    codec = registry[dialect]
    _, tail = relay(codec.relay_check(), sse(first))
    assert tail is not None
    assert tail == codec.stream_error(UpstreamError(502, TRUNCATED_STREAM, network=True))
    assert TRUNCATED_STREAM.encode() in tail


def test_relay_checks_are_per_stream(registry: Mapping[str, Codec]) -> None:
    codec = registry["claude"]
    done = codec.relay_check()
    relay(done, sse(("message_stop", b"{}")))
    assert codec.relay_check().forward(SSEEvent(b"{}", "message_start"))


# ------------------------------------------------------------------ token counting


def test_which_dialects_count_upstream(registry: Mapping[str, Codec]) -> None:
    assert {d for d in DIALECTS if registry[d].counts_tokens} == {"claude", "gemini", "gemini-cli"}


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("openai", {"input_tokens": 7}),
        ("openai-response", {"input_tokens": 7}),
        ("claude", {"input_tokens": 7}),
        ("gemini", {"totalTokens": 7, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}]}),
        ("gemini-cli", {"totalTokens": 7, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}]}),
    ],
)
def test_count_answer_in_client_shape(registry: Mapping[str, Codec], dialect: str, expected: dict[str, Any]) -> None:
    assert loads(registry[dialect].encode_count_tokens_response(7)) == expected


def test_upstream_count_answers_per_dialect(registry: Mapping[str, Codec]) -> None:
    assert registry["claude"].decode_count_tokens_response(b'{"input_tokens": 12}') == 12
    assert registry["gemini"].decode_count_tokens_response(b'{"totalTokens": 13}') == 13
    assert registry["gemini-cli"].decode_count_tokens_response(b'{"totalTokens": 14}') == 14
    assert registry["gemini-cli"].decode_count_tokens_response(b'{"response": {"totalTokens": 15}}') == 15
    for dialect, body in [
        ("claude", b'{"totalTokens": 3}'),
        ("gemini", b'{"input_tokens": 3}'),
        ("gemini", b"not json"),
        ("gemini-cli", b"{}"),
    ]:
        with pytest.raises(CodecError):
            registry[dialect].decode_count_tokens_response(body)


def test_claude_count_request_drops_create_only_fields(registry: Mapping[str, Codec]) -> None:
    body = dumps({"model": "m", "max_tokens": 5, "stream": True, "temperature": 1, "messages": [], "system": "s"})
    assert loads(registry["claude"].count_tokens_request(body, "m")) == {"model": "m", "messages": [], "system": "s"}
    plain = b'{"model":"m","messages":[]}'
    assert registry["claude"].count_tokens_request(plain, "m") is plain


def test_gemini_count_request_wraps_rich_bodies(registry: Mapping[str, Codec]) -> None:
    rich = dumps(
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "systemInstruction": {"parts": [{"text": "s"}]},
            "generationConfig": {"temperature": 0.1},
            "safetySettings": [],
        }
    )
    wrapped = loads(registry["gemini"].count_tokens_request(rich, "gemini-2.5-pro"))
    assert set(wrapped) == {"generateContentRequest"}
    assert set(wrapped["generateContentRequest"]) == {"model", "contents", "systemInstruction"}
    assert wrapped["generateContentRequest"]["model"] == "models/gemini-2.5-pro"
    plain = b'{"contents":[]}'
    assert registry["gemini"].count_tokens_request(plain, "m") is plain


# ------------------------------------------------------------------ identity-path model rewrite


@pytest.mark.parametrize("dialect", ["openai", "openai-response", "claude", "gemini-cli"])
def test_rewrite_model_changes_only_the_model(registry: Mapping[str, Codec], dialect: str) -> None:
    body = b'{"model":"alias","x_unknown":{"kept":[1,2]},"stream":true}'
    out = loads(registry[dialect].rewrite_model(body, "upstream-1"))
    assert out == {"model": "upstream-1", "x_unknown": {"kept": [1, 2]}, "stream": True}
    same = b'{"model":"upstream-1"}'
    assert registry[dialect].rewrite_model(same, "upstream-1") is same
    for bad in (b"{nope", b"[1]"):
        with pytest.raises(CodecError):
            registry[dialect].rewrite_model(bad, "m")


def test_gemini_bodies_name_no_model(registry: Mapping[str, Codec]) -> None:
    body = b'{"contents":[]}'
    assert registry["gemini"].rewrite_model(body, "gemini-2.5-pro") is body


# ------------------------------------------------------------------ base-class defaults for third-party dialects


class PlainCodec(Codec):
    """A minimal third-party dialect: only the IR methods, everything else from the base class."""

    name = "plain"

    def decode_request(self, body: bytes) -> ir.Request:
        return ir.Request(model="m")

    def encode_request(self, req: ir.Request) -> bytes:
        return b"{}"

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return ir.Response(id="r", model="m")

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return b"{}"

    def stream_decoder(self, req: ir.Request | None = None) -> StreamDecoder:
        return CODECS["openai"].stream_decoder(req)

    def stream_encoder(self, req: ir.Request) -> StreamEncoder:
        return CODECS["openai"].stream_encoder(req)


def test_base_class_defaults() -> None:
    codec = PlainCodec()
    assert loads(codec.error_body(503, "down")) == {"error": {"message": "down", "type": "unavailable", "code": None}}
    assert codec.is_native_error(OPENAI_ERR) is False
    (ev,) = events(codec.stream_error(ProxyError(400, "bad", code="c")))
    assert ev.event is None and loads(ev.data) == {"error": {"message": "bad", "type": "invalid_request", "code": "c"}}
    forwarded, tail = relay(codec.relay_check(), sse((None, b"a"), ("anything", b"b")))
    assert len(forwarded) == 2 and tail is None
    assert codec.counts_tokens is False
    assert codec.count_tokens_request(b"{}", "m") == b"{}"
    assert loads(codec.encode_count_tokens_response(3)) == {"input_tokens": 3}
    assert codec.decode_count_tokens_response(b'{"input_tokens": 4}') == 4
    assert loads(codec.rewrite_model(b'{"model":"a"}', "b")) == {"model": "b"}


def test_a_codec_must_implement_the_ir_methods() -> None:
    class Incomplete(Codec):
        name = "incomplete"

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]
