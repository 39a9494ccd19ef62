"""OpenAI Responses codec, validated against the official ``openai`` SDK models.

Covers request, response and stream shapes, and the quirks of the Codex upstream.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import ResponseCreateParamsStreaming

from cliproxy import ir
from cliproxy.formats.base import Codec, CodecError, StreamDecoder, StreamEncoder
from cliproxy.formats.openai_responses import CODEC, restore_tool_name, shorten_tool_names
from cliproxy.sse import SSEEvent, SSEParser

dumps = msgspec.json.encode
loads = msgspec.json.decode
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
CREATE = pydantic.TypeAdapter(ResponseCreateParamsStreaming)

#: A Codex-CLI-style turn: instructions, function tools, reasoning, and a completed tool round trip.
CODEX_REQUEST: dict[str, Any] = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex, based on GPT-5. You are running as a coding agent in the Codex CLI.",
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>",
                }
            ],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Run the tests"}]},
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "**Running tests**"}],
            "content": None,
            "encrypted_content": "gAAAAABo-encrypted-blob",
        },
        {
            "type": "function_call",
            "name": "shell",
            "arguments": '{"command":["bash","-lc","pytest -q"],"workdir":"/repo"}',
            "call_id": "call_abc123",
        },
        {"type": "function_call_output", "call_id": "call_abc123", "output": "3 passed in 0.12s"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "All 3 tests pass."}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Runs a shell command and returns its output.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {
                    "command": {"type": "array", "items": {"type": "string"}},
                    "workdir": {"type": "string"},
                    "timeout_ms": {"type": "number"},
                },
                "required": ["command"],
                "additionalProperties": False,
            },
        },
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "text": {"verbosity": "medium"},
}


def validate_create(body: dict[str, Any]) -> None:
    """Validate a request body against the SDK's create-params TypedDict.

    The SDK types require ``id`` (and ``status``/``annotations``) on replayed reasoning and assistant items, but
    ``store=false`` upstreams (Codex) reject ids they never stored and Codex CLI itself sends neither, so the
    codec omits them; placeholders are added here only for the type check.
    """

    def placeholder(item: dict[str, Any]) -> dict[str, Any]:
        if item.get("type") == "reasoning":
            return dict(item, id="rs_placeholder")
        if item.get("type") == "message" and item.get("role") == "assistant":
            content = [dict(c, annotations=[]) for c in item["content"]]
            return dict(item, id="msg_placeholder", status="completed", content=content)
        return item

    items = [placeholder(i) for i in body["input"]]
    CREATE.validate_python(dict(body, input=items, stream=True))


def events_of(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    parser = SSEParser()
    frames = parser.feed(raw) + parser.close()
    out = []
    for f in frames:
        assert f.event is not None
        EVENT.validate_json(f.data)
        payload = loads(f.data)
        assert payload["type"] == f.event
        out.append((f.event, payload))
    assert raw.endswith(b"\n\n") and b"[DONE]" not in raw
    return out


def run_encoder(events: list[ir.Event], req: ir.Request | None = None) -> list[tuple[str, dict[str, Any]]]:
    enc = CODEC.stream_encoder(req or ir.Request(model="gpt-5"))
    raw = b"".join(enc.encode(e) for e in events) + enc.close()
    out = events_of(raw)
    seqs = [p["sequence_number"] for _, p in out]
    assert seqs == list(range(1, len(out) + 1))
    terminal = [n for n, _ in out if n in ("response.completed", "response.incomplete", "response.failed")]
    assert len(terminal) == 1 and out[-1][0] == terminal[0]
    Response.model_validate(out[-1][1]["response"])
    return out


def decode_sse(lines: list[tuple[str, dict[str, Any]]], req: ir.Request | None = None) -> list[ir.Event]:
    raw = b"".join(b"event: " + n.encode() + b"\ndata: " + dumps(p) + b"\n\n" for n, p in lines)
    parser = SSEParser()
    dec = CODEC.stream_decoder(req)
    out: list[ir.Event] = []
    for ev in parser.feed(raw) + parser.close():
        out.extend(dec.feed(ev))
    return out + dec.close()


def test_codec_protocol() -> None:
    assert isinstance(CODEC, Codec) and CODEC.name == "openai-response"
    assert isinstance(CODEC.stream_decoder(), StreamDecoder)
    assert isinstance(CODEC.stream_encoder(ir.Request(model="m")), StreamEncoder)


# --------------------------------------------------------------------------------------------- request


def test_decode_codex_request() -> None:
    req = CODEC.decode_request(dumps(CODEX_REQUEST))
    assert req.model == "gpt-5-codex" and req.stream is True
    assert [p.text for p in req.system] == [CODEX_REQUEST["instructions"]]
    assert [m.role for m in req.messages] == ["user", "user", "assistant", "tool", "assistant", "user"]
    reasoning, call = req.messages[2].parts
    assert reasoning == ir.ReasoningPart(
        text="**Running tests**", encrypted="gAAAAABo-encrypted-blob", origin="openai-response"
    )
    assert call == ir.ToolCallPart(id="call_abc123", name="shell", arguments=CODEX_REQUEST["input"][3]["arguments"])
    result = req.messages[3].parts[0]
    assert result == ir.ToolResultPart(
        call_id="call_abc123", name="shell", content=[ir.TextPart(text="3 passed in 0.12s")]
    )
    assert [t.name for t in req.tools] == ["shell"] and req.tools[0].strict is False
    assert req.tool_choice == ir.ToolChoice(mode="auto")
    assert req.parallel_tool_calls is False
    assert req.reasoning == ir.ReasoningConfig(effort="medium", summary="auto")
    ext = req.ext["openai-response"]
    assert ext["tools"] == [{"type": "web_search"}]
    assert ext["store"] is False and ext["include"] == ["reasoning.encrypted_content"]
    assert ext["prompt_cache_key"] == CODEX_REQUEST["prompt_cache_key"] and ext["verbosity"] == "medium"


def test_codex_request_round_trip_validates() -> None:
    req = CODEC.decode_request(dumps(CODEX_REQUEST))
    body = loads(CODEC.encode_request(req))
    validate_create(body)
    assert body["instructions"] == CODEX_REQUEST["instructions"]
    assert body["tools"] == [CODEX_REQUEST["tools"][0], {"type": "web_search"}]
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"] == CODEX_REQUEST["prompt_cache_key"]
    assert body["text"] == {"verbosity": "medium"}
    types_ = [i["type"] for i in body["input"]]
    assert types_ == [
        "message",
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    assert body["input"][2] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "**Running tests**"}],
        "encrypted_content": "gAAAAABo-encrypted-blob",
    }
    assert body["input"][3] == {k: v for k, v in CODEX_REQUEST["input"][3].items()}
    assert CODEC.decode_request(dumps(body)) == req


def test_string_input_becomes_user_message() -> None:
    """``{"input": "hi"}`` is a user turn, not silently dropped."""
    req = CODEC.decode_request(b'{"model":"gpt-5","input":"hi"}')
    assert req.messages == [ir.Message(role="user", parts=[ir.TextPart(text="hi")])]


def test_role_only_items_and_string_content() -> None:
    """Message items without ``type`` and with string content are accepted."""
    req = CODEC.decode_request(
        dumps(
            {
                "model": "m",
                "input": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "q"}],
            }
        )
    )
    assert req.system == [ir.TextPart(text="be brief", ext={"openai-response": {"role": "developer"}})]
    assert req.messages == [ir.Message(role="user", parts=[ir.TextPart(text="q")])]
    body = loads(CODEC.encode_request(req))
    assert "instructions" not in body
    assert body["input"][0] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "be brief"}],
    }


def test_orphan_function_call_output_becomes_user_message() -> None:
    """An output whose call lives behind ``previous_response_id`` never becomes an orphan tool message."""
    req = CODEC.decode_request(
        dumps(
            {
                "model": "m",
                "previous_response_id": "resp_1",
                "input": [{"type": "function_call_output", "call_id": "call_gone", "output": "42"}],
            }
        )
    )
    assert [m.role for m in req.messages] == ["user"]
    text = req.messages[0].parts[0]
    assert isinstance(text, ir.TextPart) and "call_gone" in text.text and "42" in text.text
    assert req.ext["openai-response"]["previous_response_id"] == "resp_1"


def test_parallel_calls_form_one_assistant_turn_and_one_tool_turn() -> None:
    """Parallel calls: consecutive function_call items → one assistant message; their outputs → one tool message."""
    req = CODEC.decode_request(
        dumps(
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": "weather?"},
                    {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"city":"Paris"}'},
                    {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"city":"Rome"}'},
                    {"type": "function_call_output", "call_id": "c1", "output": "20"},
                    {"type": "function_call_output", "call_id": "c2", "output": "25"},
                ],
            }
        )
    )
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    assert [p.id for p in req.messages[1].parts if isinstance(p, ir.ToolCallPart)] == ["c1", "c2"]
    assert [p.call_id for p in req.messages[2].parts if isinstance(p, ir.ToolResultPart)] == ["c1", "c2"]


def test_images_and_files() -> None:
    req = CODEC.decode_request(
        dumps(
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_image",
                                "image_url": "data:image/png;base64,iVBORw0KGgo=",
                                "detail": "high",
                            },
                            {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                            {
                                "type": "input_file",
                                "filename": "spec.pdf",
                                "file_data": "data:application/pdf;base64,JVBERi0=",
                            },
                        ],
                    }
                ],
            }
        )
    )
    img, url_img, pdf = req.messages[0].parts
    assert img == ir.ImagePart(media_type="image/png", data="iVBORw0KGgo=", detail="high")
    assert isinstance(url_img, ir.ImagePart) and url_img.url == "https://example.com/cat.jpg"
    assert isinstance(pdf, ir.ImagePart) and pdf.media_type == "application/pdf" and pdf.data == "JVBERi0="
    body = loads(CODEC.encode_request(req))
    validate_create(body)
    content = body["input"][0]["content"]
    assert content[0] == {
        "type": "input_image",
        "image_url": "data:image/png;base64,iVBORw0KGgo=",
        "detail": "high",
    }
    assert content[2] == {
        "type": "input_file",
        "file_data": "data:application/pdf;base64,JVBERi0=",
        "filename": "spec.pdf",
    }


def test_encode_from_foreign_ir() -> None:
    req = ir.Request(
        model="gpt-5",
        system=[ir.TextPart(text="You are helpful.")],
        messages=[
            ir.Message(role="user", parts=[ir.TextPart(text="hi")]),
            ir.Message(
                role="assistant",
                parts=[
                    ir.ReasoningPart(text="thinking", signature="claude-sig", origin="claude"),
                    ir.TextPart(text="calling"),
                    ir.ToolCallPart(id="toolu_1", name="Bash", arguments='{"command":"ls"}'),
                ],
            ),
            ir.Message(role="tool", parts=[ir.ToolResultPart(call_id="toolu_1", content=[ir.TextPart(text="a\nb")])]),
        ],
        tools=[ir.Tool(name="Bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}})],
        tool_choice=ir.ToolChoice(mode="tool", name="Bash"),
        reasoning=ir.ReasoningConfig(budget=8192),
        max_tokens=1000,
        temperature=0.2,
        response_format=ir.ResponseFormat(type="json_schema", schema={"type": "object"}, name="out", strict=True),
    )
    body = loads(CODEC.encode_request(req))
    validate_create(body)
    assert body["instructions"] == "You are helpful."
    assert [i["type"] for i in body["input"]] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert body["input"][1] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "calling"}],
    }
    # OpenAI defaults strict to true for Responses: an unknown strictness must be sent as false.
    assert body["tools"][0]["strict"] is False
    assert body["tool_choice"] == {"type": "function", "name": "Bash"}
    assert body["reasoning"] == {"effort": "medium"}
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}
    }
    assert body["max_output_tokens"] == 1000


def test_long_tool_names_shortened_and_restored() -> None:
    """Names over Codex's 64-char limit are shortened (mcp__ rule, ``_N`` suffixes) and mapped back."""
    long_a = "mcp__server__tool_with_a_very_long_name_that_goes_on_and_on_and_on_forever_more_x"
    long_b = "mcp__other__tool_with_a_very_long_name_that_goes_on_and_on_and_on_forever_more_x"
    plain = "x" * 70
    mapping = shorten_tool_names([long_a, long_b, plain, "short"])
    assert mapping[long_a] == "mcp__tool_with_a_very_long_name_that_goes_on_and_on_and_on_forever_more_x"[:64]
    assert mapping[long_b].endswith("_1") and len(mapping[long_b]) <= 64
    assert mapping[plain] == "x" * 64 and "short" not in mapping
    assert "~" not in "".join(mapping.values())
    tools = [ir.Tool(name=n) for n in (long_a, long_b, plain)]
    req = ir.Request(
        model="m",
        tools=tools,
        messages=[ir.Message(role="assistant", parts=[ir.ToolCallPart(id="c", name=long_a)])],
    )
    body = loads(CODEC.encode_request(req))
    assert [t["name"] for t in body["tools"]] == [mapping[long_a], mapping[long_b], mapping[plain]]
    assert body["input"][0]["name"] == mapping[long_a]
    assert restore_tool_name(mapping[long_b], tools) == long_b
    upstream = {
        "id": "resp_1",
        "model": "m",
        "created_at": 1,
        "status": "completed",
        "output": [
            {
                "type": "function_call",
                "id": "fc_c",
                "call_id": "c",
                "name": mapping[long_b],
                "arguments": "{}",
                "status": "completed",
            }
        ],
    }
    resp = CODEC.decode_response(dumps(upstream), req)
    assert isinstance(resp.parts[0], ir.ToolCallPart) and resp.parts[0].name == long_b
    item = {"type": "function_call", "id": "fc_c", "call_id": "c", "name": mapping[long_b], "arguments": ""}
    events = decode_sse(
        [
            (
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": 0, "item": item},
            )
        ],
        req,
    )
    assert any(isinstance(e, ir.ToolCallStart) and e.name == long_b for e in events)


def test_invalid_request_raises() -> None:
    with pytest.raises(CodecError):
        CODEC.decode_request(b'{"model": 3}')
    with pytest.raises(CodecError):
        CODEC.decode_request(b'{"model":"m","tools":[{"type":"function"}]}')


# --------------------------------------------------------------------------------------------- response


COMPLETED = {
    "id": "resp_0a1b",
    "object": "response",
    "created_at": 1735787045,
    "status": "completed",
    "model": "gpt-5-codex",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Plan"}],
            "encrypted_content": "enc",
        },
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello ", "annotations": []},
                {"type": "output_text", "text": "there", "annotations": []},
            ],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "shell",
            "arguments": '{"command":["ls"]}',
        },
    ],
    "usage": {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 40},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 150,
    },
}


def test_decode_response() -> None:
    resp = CODEC.decode_response(dumps(COMPLETED))
    assert resp.id == "resp_0a1b" and resp.model == "gpt-5-codex" and resp.created == 1735787045
    assert resp.parts == [
        ir.ReasoningPart(text="Plan", encrypted="enc", origin="openai-response"),
        ir.TextPart(text="Hello there"),
        ir.ToolCallPart(id="call_1", name="shell", arguments='{"command":["ls"]}'),
    ]
    assert resp.finish_reason == "tool_calls"
    assert resp.usage == ir.Usage(input_tokens=100, output_tokens=50, cached_tokens=40, reasoning_tokens=20)


def test_decode_completed_event_wrapper_and_incomplete() -> None:
    """Codex non-stream bodies are the ``response.completed`` payload."""
    wrapped = {"type": "response.completed", "sequence_number": 9, "response": COMPLETED}
    assert CODEC.decode_response(dumps(wrapped)).id == "resp_0a1b"
    incomplete = dict(COMPLETED, status="incomplete", incomplete_details={"reason": "max_output_tokens"}, output=[])
    assert CODEC.decode_response(dumps(incomplete)).finish_reason == "length"


def test_encode_response_validates_with_sdk() -> None:
    resp = ir.Response(
        id="abc",
        model="gemini-2.5-pro",
        created=1735787045,
        parts=[
            ir.ReasoningPart(text="Plan", signature="gemini-sig", origin="gemini"),
            ir.TextPart(text="Hi"),
            ir.ToolCallPart(id="call_9", name="f", arguments='{"a":1}'),
        ],
        finish_reason="tool_calls",
        usage=ir.Usage(input_tokens=10, output_tokens=5, cached_tokens=2, reasoning_tokens=3),
    )
    req = ir.Request(
        model="gemini-2.5-pro", system=[ir.TextPart(text="be nice")], tools=[ir.Tool(name="f")], max_tokens=99
    )
    body = loads(CODEC.encode_response(resp, req))
    model = Response.model_validate(body)
    assert model.status == "completed" and body["id"] == "resp_abc"
    assert [o["type"] for o in body["output"]] == ["reasoning", "message", "function_call"]
    # Foreign signatures are not OpenAI encrypted content.
    assert "encrypted_content" not in body["output"][0]
    assert body["output"][2] == {
        "type": "function_call",
        "id": "fc_call_9",
        "status": "completed",
        "arguments": '{"a":1}',
        "call_id": "call_9",
        "name": "f",
    }
    assert body["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 15,
    }
    assert body["instructions"] == "be nice" and body["max_output_tokens"] == 99
    assert body["tools"][0]["name"] == "f"
    assert body["error"] is None and body["incomplete_details"] is None


def test_encode_response_truncated_is_incomplete() -> None:
    body = loads(
        CODEC.encode_response(ir.Response(id="r", model="m", parts=[ir.TextPart(text="x")], finish_reason="length"))
    )
    Response.model_validate(body)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


# --------------------------------------------------------------------------------------------- stream encoder

FULL_STREAM: list[ir.Event] = [
    ir.Start(id="abc", model="gemini-2.5-pro", created=1735787045),
    ir.ReasoningDelta(text="Think"),
    ir.ReasoningDelta(text="ing"),
    ir.TextDelta(text="Hel"),
    ir.TextDelta(text="lo"),
    ir.ToolCallStart(index=0, id="call_1", name="get_weather"),
    ir.ToolArgsDelta(index=0, json='{"city":'),
    ir.ToolArgsDelta(index=0, json='"Paris"}'),
    ir.BlockStop(),
    ir.ToolCallStart(index=1, id="call_2", name="get_time"),
    ir.ToolArgsDelta(index=1, json="{}"),
    ir.UsageEvent(usage=ir.Usage(input_tokens=12, output_tokens=30, reasoning_tokens=20, cached_tokens=4)),
    ir.Finish(reason="tool_calls"),
]


def test_stream_encoder_full_event_order() -> None:
    """OpenAI's event order exactly: created, in_progress, reasoning, message, function calls, completed."""
    out = run_encoder(FULL_STREAM, ir.Request(model="gpt-5-codex", system=[ir.TextPart(text="inst")]))
    assert [n for n, _ in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    by = dict(out)
    created = out[0][1]["response"]
    assert created["id"] == "resp_abc" and created["status"] == "in_progress" and created["instructions"] == "inst"
    assert created["model"] == "gpt-5-codex" and created["created_at"] == 1735787045 and created["output"] == []
    assert out[4][1]["delta"] == "Think" and out[4][1]["item_id"] == "rs_abc_0"
    assert out[6][1]["text"] == "Thinking"
    assert out[8][1]["item"] == {
        "type": "reasoning",
        "id": "rs_abc_0",
        "summary": [{"type": "summary_text", "text": "Thinking"}],
    }
    assert out[10][1]["output_index"] == 1 and out[10][1]["item_id"] == "msg_abc_1"
    assert out[13][1]["text"] == "Hello"
    assert out[15][1]["item"]["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}
    ]
    assert out[16][1]["item"] == {
        "type": "function_call",
        "id": "fc_call_1",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_1",
        "name": "get_weather",
    }
    assert out[19][1]["arguments"] == '{"city":"Paris"}' and out[19][1]["output_index"] == 2
    assert out[20][1]["item"]["status"] == "completed" and out[20][1]["item"]["arguments"] == '{"city":"Paris"}'
    final = by["response.completed"]["response"]
    assert final["status"] == "completed"
    assert [o["type"] for o in final["output"]] == ["reasoning", "message", "function_call", "function_call"]
    assert final["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 42,
    }


def test_stream_without_finish_still_completes_once() -> None:
    """Content then end of stream with no finish → items closed, one ``response.completed`` (Codex CLI reports
    "stream disconnected before completion" otherwise)."""
    out = run_encoder([ir.Start(id="x", model="m"), ir.TextDelta(text="partial")])
    assert [n for n, _ in out][-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_duplicate_finish_emits_single_completed() -> None:
    """A second finish never produces a second ``response.completed``."""
    enc = CODEC.stream_encoder(ir.Request(model="m"))
    raw = b"".join(
        enc.encode(e)
        for e in [
            ir.Start(id="x", model="m"),
            ir.TextDelta(text="a"),
            ir.Finish(),
            ir.Finish(),
            ir.TextDelta(text="late"),
        ]
    )
    raw += enc.close()
    names = [n for n, _ in events_of(raw)]
    assert names.count("response.completed") == 1 and names[-1] == "response.completed"


def test_stream_encoder_without_start_still_opens_response() -> None:
    out = run_encoder([ir.TextDelta(text="hi"), ir.Finish()])
    assert out[0][0] == "response.created" and out[1][0] == "response.in_progress"


def test_truncated_stream_is_incomplete() -> None:
    out = run_encoder([ir.Start(id="x", model="m"), ir.TextDelta(text="a"), ir.Finish(reason="length")])
    assert out[-1][0] == "response.incomplete"
    assert out[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_error_becomes_response_failed() -> None:
    out = run_encoder([ir.Start(id="x", model="m"), ir.TextDelta(text="a"), ir.Error(status=429, message="slow down")])
    assert out[-1][0] == "response.failed"
    assert out[-1][1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    # The open message item was closed before the terminal event.
    assert "response.output_item.done" in [n for n, _ in out]


def test_parallel_tool_calls_are_two_items() -> None:
    """Two tool calls → two function_call items with their own arguments (never collapsed into one)."""
    out = run_encoder(
        [
            ir.Start(id="x", model="m"),
            ir.ToolCallStart(index=0, id="a", name="f"),
            ir.ToolArgsDelta(index=0, json='{"n":1}'),
            ir.ToolCallStart(index=1, id="b", name="f"),
            ir.ToolArgsDelta(index=1, json='{"n":2}'),
            ir.Finish(reason="tool_calls"),
        ]
    )
    items = out[-1][1]["response"]["output"]
    assert [(i["call_id"], i["arguments"]) for i in items] == [("a", '{"n":1}'), ("b", '{"n":2}')]


def test_openai_reasoning_encrypted_content_reaches_item() -> None:
    out = run_encoder(
        [
            ir.Start(id="x", model="m"),
            ir.ReasoningDelta(text="plan"),
            ir.ReasoningDelta(text="", encrypted="gAAAA", origin="openai-response"),
            ir.TextDelta(text="ok"),
            ir.Finish(),
        ]
    )
    done = next(p for n, p in out if n == "response.output_item.done")
    assert done["item"]["encrypted_content"] == "gAAAA"


def test_foreign_signature_alone_opens_nothing() -> None:
    out = run_encoder(
        [
            ir.Start(id="x", model="m"),
            ir.ReasoningDelta(text="", signature="s", origin="gemini"),
            ir.TextDelta(text="a"),
            ir.Finish(),
        ]
    )
    assert not any(p.get("item", {}).get("type") == "reasoning" for _, p in out)


# --------------------------------------------------------------------------------------------- stream decoder

CODEX_SSE: list[tuple[str, dict[str, Any]]] = [
    (
        "response.created",
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {
                "id": "resp_1",
                "object": "response",
                "created_at": 1735787045,
                "status": "in_progress",
                "model": "gpt-5-codex",
                "output": [],
            },
        },
    ),
    ("codex.rate_limits", {"type": "codex.rate_limits", "primary": {"used_percent": 3.0}}),
    (
        "response.in_progress",
        {
            "type": "response.in_progress",
            "sequence_number": 1,
            "response": {
                "id": "resp_1",
                "status": "in_progress",
                "model": "gpt-5-codex",
                "created_at": 1735787045,
                "output": [],
            },
        },
    ),
    (
        "response.output_item.added",
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": []},
        },
    ),
    (
        "response.reasoning_summary_part.added",
        {
            "type": "response.reasoning_summary_part.added",
            "sequence_number": 3,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        },
    ),
    (
        "response.reasoning_summary_text.delta",
        {
            "type": "response.reasoning_summary_text.delta",
            "sequence_number": 4,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "delta": "**Plan**",
        },
    ),
    (
        "response.reasoning_summary_part.added",
        {
            "type": "response.reasoning_summary_part.added",
            "sequence_number": 5,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 1,
            "part": {"type": "summary_text", "text": ""},
        },
    ),
    (
        "response.reasoning_summary_text.delta",
        {
            "type": "response.reasoning_summary_text.delta",
            "sequence_number": 6,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 1,
            "delta": "More",
        },
    ),
    (
        "response.output_item.done",
        {
            "type": "response.output_item.done",
            "sequence_number": 7,
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA"},
        },
    ),
    (
        "response.output_item.added",
        {
            "type": "response.output_item.added",
            "sequence_number": 8,
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
    ),
    (
        "response.output_text.delta",
        {
            "type": "response.output_text.delta",
            "sequence_number": 9,
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "delta": "Running",
        },
    ),
    (
        "response.output_item.done",
        {
            "type": "response.output_item.done",
            "sequence_number": 10,
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [],
            },
        },
    ),
    (
        "response.output_item.added",
        {
            "type": "response.output_item.added",
            "sequence_number": 11,
            "output_index": 2,
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "status": "in_progress",
                "call_id": "call_1",
                "name": "shell",
                "arguments": "",
            },
        },
    ),
    (
        "response.function_call_arguments.delta",
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 12,
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '{"command":',
        },
    ),
    (
        "response.function_call_arguments.delta",
        {
            "type": "response.function_call_arguments.delta",
            "sequence_number": 13,
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '["ls"]}',
        },
    ),
    (
        "response.output_item.done",
        {
            "type": "response.output_item.done",
            "sequence_number": 14,
            "output_index": 2,
            "item": {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "shell",
                "arguments": '{"command":["ls"]}',
            },
        },
    ),
    (
        "response.output_item.added",
        {
            "type": "response.output_item.added",
            "sequence_number": 15,
            "output_index": 3,
            "item": {
                "id": "fc_2",
                "type": "function_call",
                "call_id": "call_2",
                "name": "shell",
                "arguments": "",
            },
        },
    ),
    (
        "response.output_item.done",
        {
            "type": "response.output_item.done",
            "sequence_number": 16,
            "output_index": 3,
            "item": {
                "id": "fc_2",
                "type": "function_call",
                "call_id": "call_2",
                "name": "shell",
                "arguments": '{"command":["pwd"]}',
            },
        },
    ),
    (
        "response.completed",
        {"type": "response.completed", "sequence_number": 17, "response": dict(COMPLETED, id="resp_1")},
    ),
]


def test_stream_decoder_codex_transcript() -> None:
    events = decode_sse(CODEX_SSE)
    assert events == [
        ir.Start(id="resp_1", model="gpt-5-codex", created=1735787045),
        ir.ReasoningDelta(text="**Plan**"),
        ir.ReasoningDelta(text="\n\n"),
        ir.ReasoningDelta(text="More"),
        ir.ReasoningDelta(text="", encrypted="gAAAA", origin="openai-response"),
        ir.BlockStop(),
        ir.TextDelta(text="Running"),
        ir.BlockStop(),
        ir.ToolCallStart(index=0, id="call_1", name="shell"),
        ir.ToolArgsDelta(index=0, json='{"command":'),
        ir.ToolArgsDelta(index=0, json='["ls"]}'),
        ir.BlockStop(),
        ir.ToolCallStart(index=1, id="call_2", name="shell"),
        ir.ToolArgsDelta(index=1, json='{"command":["pwd"]}'),
        ir.BlockStop(),
        ir.UsageEvent(usage=ir.Usage(input_tokens=100, output_tokens=50, cached_tokens=40, reasoning_tokens=20)),
        ir.Finish(reason="tool_calls"),
    ]


def test_non_standard_events_are_ignored() -> None:
    """``codex.*`` and other foreign events produce nothing (they break strict Responses clients)."""
    dec = CODEC.stream_decoder()
    assert dec.feed(SSEEvent(b'{"type":"codex.rate_limits"}', "codex.rate_limits")) == []
    assert dec.feed(SSEEvent(b'{"type":"responsesapi.websocket_timing"}')) == []
    assert dec.feed(SSEEvent(b": keep-alive")) == []


def test_stream_decoder_incomplete_failed_and_error() -> None:
    inc = decode_sse(
        [
            (
                "response.incomplete",
                {
                    "type": "response.incomplete",
                    "response": dict(
                        COMPLETED,
                        status="incomplete",
                        incomplete_details={"reason": "max_output_tokens"},
                        output=[],
                    ),
                },
            )
        ]
    )
    assert inc[-1] == ir.Finish(reason="length")
    failed = decode_sse(
        [
            (
                "response.failed",
                {
                    "type": "response.failed",
                    "response": dict(
                        COMPLETED,
                        status="failed",
                        error={"code": "rate_limit_exceeded", "message": "Rate limit"},
                        output=[],
                    ),
                },
            )
        ]
    )
    assert failed[-1] == ir.Error(status=429, message="Rate limit", kind="rate_limit")
    err = decode_sse([("error", {"type": "error", "code": "server_error", "message": "boom", "sequence_number": 1})])
    assert err == [ir.Error(status=500, message="boom")]


def test_codex_stream_round_trip_through_encoder() -> None:
    """Upstream Codex SSE → IR → Responses SSE: the client sees a valid, complete stream."""
    out = run_encoder(decode_sse(CODEX_SSE), ir.Request(model="gpt-5-codex"))
    final = out[-1][1]["response"]
    assert [o["type"] for o in final["output"]] == ["reasoning", "message", "function_call", "function_call"]
    assert final["output"][0]["encrypted_content"] == "gAAAA"
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "**Plan**\n\nMore"}]
    assert [o["arguments"] for o in final["output"][2:]] == ['{"command":["ls"]}', '{"command":["pwd"]}']


def test_stream_event_cost_is_small() -> None:
    n = 2000
    enc = CODEC.stream_encoder(ir.Request(model="gpt-5"))
    enc.encode(ir.Start(id="x", model="m"))
    enc.encode(ir.TextDelta(text="a"))
    ev = ir.TextDelta(text="hello world ")
    t0 = time.perf_counter()
    for _ in range(n):
        enc.encode(ev)
    enc_cost = (time.perf_counter() - t0) / n
    dec = CODEC.stream_decoder()
    raw = SSEEvent(dumps(CODEX_SSE[10][1]), "response.output_text.delta")
    dec.feed(SSEEvent(dumps(CODEX_SSE[0][1])))
    t0 = time.perf_counter()
    for _ in range(n):
        dec.feed(raw)
    dec_cost = (time.perf_counter() - t0) / n
    assert enc_cost < 20e-6, enc_cost
    assert dec_cost < 20e-6, dec_cost
