from __future__ import annotations

import time
from typing import Any

import msgspec
import openai.types.chat as oat
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
from openai.types.chat import completion_create_params as ccp

from cliproxy import ir
from cliproxy.formats.base import Codec, CodecError, StreamDecoder, StreamEncoder
from cliproxy.formats.claude import CODEC as CLAUDE
from cliproxy.formats.openai_chat import CODEC
from cliproxy.sse import SSEEvent, SSEParser

NON_STREAM = pydantic.TypeAdapter(ccp.CompletionCreateParamsNonStreaming)
STREAM = pydantic.TypeAdapter(ccp.CompletionCreateParamsStreaming)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="


def enc(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def dec(data: bytes) -> Any:
    return msgspec.json.decode(data)


def sse_payloads(raw: bytes) -> list[bytes]:
    parser = SSEParser()
    return [e.data for e in [*parser.feed(raw), *parser.close()]]


def run_encoder(encoder: StreamEncoder, events: list[ir.Event]) -> bytes:
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def run_decoder(decoder: StreamDecoder, raw: bytes) -> list[ir.Event]:
    parser = SSEParser()
    out: list[ir.Event] = []
    for event in [*parser.feed(raw), *parser.close()]:
        out.extend(decoder.feed(event))
    return out + decoder.close()


def validate_body(body: bytes) -> dict[str, Any]:
    data = dec(body)
    (STREAM if data.get("stream") else NON_STREAM).validate_python(data)
    return data  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------- fixtures

REALISTIC: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "developer", "content": [{"type": "text", "text": "Prefer metric units."}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "What is the weather in Paris and Berlin? Also, what is in this image?",
                },
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
            "name": "alice",
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Two cities, call the tool twice.",
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_berlin",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Berlin"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": "18°C, sunny"},
        {"role": "tool", "tool_call_id": "call_berlin", "content": [{"type": "text", "text": "12°C, rain"}]},
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "Thanks! Summarise."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "strict": True,
            },
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "max_completion_tokens": 2048,
    "temperature": 0.3,
    "top_p": 0.9,
    "stop": "END",
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "n": 1,
    "user": "user-123",
    "reasoning_effort": "medium",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    },
    "stream": True,
    "stream_options": {"include_usage": True},
    "logit_bias": {"50256": -100},
    "metadata": {"trace": "abc"},
}


# ---------------------------------------------------------------------------------------- request decode


def test_codec_satisfies_protocols() -> None:
    assert isinstance(CODEC, Codec)
    assert CODEC.name == "openai"
    assert isinstance(CODEC.stream_decoder(), StreamDecoder)
    assert isinstance(CODEC.stream_encoder(ir.Request(model="m")), StreamEncoder)


def test_decode_realistic_request() -> None:
    req = CODEC.decode_request(enc(REALISTIC))
    assert req.model == "gpt-4o"
    assert [p.text for p in req.system] == ["You are a helpful assistant.", "Prefer metric units."]
    assert req.system[1].ext == {"openai": {"role": "developer"}}
    roles = [m.role for m in req.messages]
    assert roles == ["user", "assistant", "tool", "tool", "system", "user"]

    user = req.messages[0]
    assert user.name == "alice"
    text, data_img, url_img = user.parts
    assert isinstance(text, ir.TextPart) and text.text.startswith("What is the weather")
    assert data_img == ir.ImagePart(media_type="image/png", data=PNG, detail="high")
    assert url_img == ir.ImagePart(url="https://example.com/cat.jpg")

    assistant = req.messages[1].parts
    assert assistant[0] == ir.ReasoningPart(text="Two cities, call the tool twice.")
    assert assistant[1:] == [
        ir.ToolCallPart(id="call_paris", name="get_weather", arguments='{"city":"Paris"}'),
        ir.ToolCallPart(id="call_berlin", name="get_weather", arguments='{"city":"Berlin"}'),
    ]
    # Tool results learn their function name from the history (Gemini needs it).
    assert req.messages[2].parts == [
        ir.ToolResultPart(call_id="call_paris", name="get_weather", content=[ir.TextPart("18°C, sunny")])
    ]
    assert req.messages[3].parts == [
        ir.ToolResultPart(call_id="call_berlin", name="get_weather", content=[ir.TextPart("12°C, rain")])
    ]
    assert req.messages[4].parts == [ir.TextPart("Answer in one sentence.")]

    assert req.tools == [
        ir.Tool(
            name="get_weather",
            description="Current weather for a city",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            strict=True,
        )
    ]
    assert req.tool_choice == ir.ToolChoice(mode="auto")
    assert req.parallel_tool_calls is True
    assert req.max_tokens == 2048
    assert (req.temperature, req.top_p, req.seed) == (0.3, 0.9, 7)
    assert req.stop == ["END"]
    assert (req.presence_penalty, req.frequency_penalty, req.candidate_count) == (0.1, 0.2, 1)
    assert req.user == "user-123"
    assert req.reasoning == ir.ReasoningConfig(effort="medium")
    assert req.response_format == ir.ResponseFormat(
        type="json_schema", schema={"type": "object"}, name="answer", strict=True
    )
    assert req.stream is True and req.include_usage is True
    assert req.ext == {
        "openai": {
            "logit_bias": {"50256": -100},
            "metadata": {"trace": "abc"},
            "max_completion_tokens": True,
        }
    }


def test_decode_audio_file_and_stop_list() -> None:
    body = {
        "model": "m",
        "stop": ["a", "b"],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}},
                    {"type": "file", "file": {"filename": "report.pdf", "file_data": "JVBERi0="}},
                    {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}},
                    {"type": "file", "file": {"file_id": "file-abc"}},
                ],
            }
        ],
    }
    req = CODEC.decode_request(enc(body))
    assert req.stop == ["a", "b"]
    assert req.messages[0].parts == [
        ir.ImagePart(media_type="audio/mpeg", data="UklGRg=="),
        ir.ImagePart(media_type="application/pdf", data="JVBERi0=", ext={"openai": {"filename": "report.pdf"}}),
        ir.ImagePart(media_type="text/csv", data="YSxi"),
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"reasoning_effort": "none"}, ir.ReasoningConfig(effort="none")),
        (
            {"extra_body": {"google": {"thinking_config": {"thinking_budget": 2048}}}},
            ir.ReasoningConfig(budget=2048, include_thoughts=True),
        ),
        (
            {"extra_body": {"google": {"thinkingConfig": {"thinkingBudget": 0}}}},
            ir.ReasoningConfig(budget=0, include_thoughts=False),
        ),
        (
            {"google": {"thinking_config": {"thinking_budget": -1, "include_thoughts": False}}},
            ir.ReasoningConfig(budget=-1, include_thoughts=False),
        ),
        ({"thinking": {"type": "enabled", "budget_tokens": 5000}}, ir.ReasoningConfig(budget=5000)),
        ({"thinking": {"type": "disabled"}}, ir.ReasoningConfig(budget=0)),
        ({"enable_thinking": True, "thinking_budget": 300}, ir.ReasoningConfig(budget=300)),
        ({}, None),
    ],
)
def test_decode_thinking_controls(extra: dict[str, Any], expected: ir.ReasoningConfig | None) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    assert CODEC.decode_request(enc(body)).reasoning == expected


def test_reasoning_effort_wins_over_google_thinking_config() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "low",
        "extra_body": {"google": {"thinking_config": {"thinking_budget": 9999}}},
    }
    assert CODEC.decode_request(enc(body)).reasoning == ir.ReasoningConfig(effort="low")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b'{"model":"m","messages":"hi"}', "$.messages"),
        (b'{"messages":[]}', "model"),
        (b'{"model":"m"}', "messages"),
        (b'{"model":"m","messages":[{"role":"wizard","content":"x"}]}', "messages[0].role"),
        (b'{"model":"m","messages":[{"content":"x"}]}', "role"),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","content":"r"}]}',
            "messages[1].tool_call_id",
        ),
        (b'{"model":"m","messages":[],"tool_choice":"sometimes"}', "tool_choice"),
        (
            b'{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}',
            "messages[0].content[0].image_url",
        ),
        (b'{"model":"m","messages":[],"temperature":"hot"}', "temperature"),
    ],
)
def test_malformed_requests_raise_codec_error_naming_the_field(body: bytes, needle: str) -> None:
    with pytest.raises(CodecError) as info:
        CODEC.decode_request(body)
    assert needle in str(info.value)


def test_tool_choice_forms() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    for raw, expected in [
        ("required", ir.ToolChoice(mode="required")),
        ("none", ir.ToolChoice(mode="none")),
        ({"type": "function", "function": {"name": "f"}}, ir.ToolChoice(mode="tool", name="f")),
        ({"type": "function", "name": "g"}, ir.ToolChoice(mode="tool", name="g")),
    ]:
        assert CODEC.decode_request(enc({**base, "tool_choice": raw})).tool_choice == expected


# ---------------------------------------------------------------------------------------- request encode


def test_openai_round_trip_through_ir_is_lossless() -> None:
    first = CODEC.decode_request(enc(REALISTIC))
    body = CODEC.encode_request(first)
    data = validate_body(body)
    assert data["max_completion_tokens"] == 2048 and "max_tokens" not in data
    assert data["stop"] == "END"
    assert data["stream_options"] == {"include_usage": True}
    again = CODEC.decode_request(body)
    # Leading system + developer collapse into one system message with two parts (same text, same order).
    assert [p.text for p in again.system] == [p.text for p in first.system]
    assert again.messages == first.messages
    assert again.tools == first.tools
    assert msgspec.structs.replace(again, system=first.system) == first


def test_tool_messages_follow_the_assistant_turn_and_images_move_to_user() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(role="user", parts=[ir.TextPart("go")]),
            ir.Message(
                role="assistant",
                parts=[
                    ir.TextPart("calling"),
                    ir.ToolCallPart(id="a", name="shot", arguments=""),
                    ir.ToolCallPart(id="b", name="read", arguments='{"p":1}'),
                ],
            ),
            ir.Message(
                role="user",
                parts=[
                    ir.ToolResultPart(call_id="a", content=[ir.ImagePart(media_type="image/jpeg", data="QUJD")]),
                    ir.ToolResultPart(call_id="b", content=[ir.TextPart("line1"), ir.TextPart("line2")]),
                    ir.TextPart("   "),
                    ir.TextPart("what now?"),
                ],
            ),
        ],
    )
    data = validate_body(CODEC.encode_request(req))
    msgs = data["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "user"]
    assert msgs[1]["content"] == "calling"
    assert [c["function"]["arguments"] for c in msgs[1]["tool_calls"]] == ["{}", '{"p":1}']
    assert msgs[2] == {"role": "tool", "content": "", "tool_call_id": "a"}
    assert msgs[3] == {"role": "tool", "content": "line1\nline2", "tool_call_id": "b"}
    assert msgs[4]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
        {"type": "text", "text": "what now?"},
    ]


def test_encode_media_and_reasoning_effort_mapping() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                role="user",
                parts=[
                    ir.ImagePart(media_type="audio/wav", data="UklGRg=="),
                    ir.ImagePart(media_type="application/pdf", data="JVBERi0="),
                    ir.ImagePart(url="https://x/y.png", detail="low"),
                ],
            )
        ],
        reasoning=ir.ReasoningConfig(effort="minimal"),
        tool_choice=ir.ToolChoice(mode="auto"),  # dropped: no tools
    )
    data = validate_body(CODEC.encode_request(req))
    assert data["messages"][0]["content"] == [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "file.pdf"},
        },
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
    ]
    assert data["reasoning_effort"] == "low"  # compatible upstreams do not know "minimal"
    assert "tool_choice" not in data
    budget = ir.Request(model="m", messages=[], reasoning=ir.ReasoningConfig(budget=31999))
    assert dec(CODEC.encode_request(budget))["reasoning_effort"] == "high"
    off = ir.Request(model="m", messages=[], reasoning=ir.ReasoningConfig(budget=0))
    assert dec(CODEC.encode_request(off))["reasoning_effort"] == "none"


def test_stream_request_always_asks_for_usage() -> None:
    req = ir.Request(model="m", messages=[ir.Message(role="user", parts=[ir.TextPart("x")])], stream=True)
    data = validate_body(CODEC.encode_request(req))
    assert data["stream"] is True
    assert data["stream_options"] == {"include_usage": True}


CLAUDE_HISTORY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 4096,
    "system": [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."},
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "List files and show the date."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two tools.", "signature": "EqQBCkYIBxgC"},
                {"type": "text", "text": "  "},
                {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "Bash", "input": {"command": "date"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.txt\nb.txt"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "is_error": True,
                    "content": [{"type": "text", "text": "date: not found"}],
                },
                {"type": "text", "text": "Continue."},
            ],
        },
    ],
    "tools": [
        {
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "any"},
    "stop_sequences": ["\n\nHuman:"],
    "temperature": 0.7,
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "metadata": {"user_id": "u-1"},
    "stream": True,
}


def test_claude_request_to_openai_body_is_valid_and_grouped() -> None:
    req = CLAUDE.decode_request(enc(CLAUDE_HISTORY))
    data = validate_body(CODEC.encode_request(req))
    msgs = data["messages"]
    assert msgs[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You are Claude Code."}, {"type": "text", "text": "Be brief."}],
    }
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool", "user"]
    assistant = msgs[2]
    assert assistant["content"] is None  # whitespace-only text is not sent (f092801b6)
    assert assistant["reasoning_content"] == "Two tools."
    assert [(c["id"], c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        ("toolu_01A", '{"command":"ls"}'),
        ("toolu_01B", '{"command":"date"}'),
    ]
    assert msgs[3] == {"role": "tool", "content": "a.txt\nb.txt", "tool_call_id": "toolu_01A"}
    assert msgs[4]["tool_call_id"] == "toolu_01B"
    assert msgs[5] == {"role": "user", "content": "Continue."}
    assert data["tool_choice"] == "required"
    assert data["stop"] == "\n\nHuman:"
    assert data["user"] == "u-1"
    assert data["reasoning_effort"] == "medium"
    assert data["tools"][0]["function"]["parameters"]["properties"] == {"command": {"type": "string"}}


@pytest.mark.parametrize(
    "system",
    ["Plain string system prompt.", [{"type": "text", "text": "Block system prompt."}]],
)
def test_claude_system_prompt_reaches_openai_intact(system: Any) -> None:
    # No injected text, and the system message is only sent when there is one.
    body = {"model": "c", "max_tokens": 10, "system": system, "messages": [{"role": "user", "content": "hi"}]}
    data = validate_body(CODEC.encode_request(CLAUDE.decode_request(enc(body))))
    text = system if isinstance(system, str) else system[0]["text"]
    assert data["messages"][0] == {"role": "system", "content": text}
    no_system = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    data = validate_body(CODEC.encode_request(CLAUDE.decode_request(enc(no_system))))
    assert [m["role"] for m in data["messages"]] == ["user"]


# ---------------------------------------------------------------------------------------- responses


def test_decode_response_with_reasoning_tools_and_cached_usage() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1730000000,
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Calling the tool.",
                    "reasoning_content": "Need weather.",
                    "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "w", "arguments": ""}}],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 40,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 25},
        },
    }
    resp = CODEC.decode_response(enc(body))
    assert resp.id == "chatcmpl-1" and resp.model == "deepseek-reasoner" and resp.created == 1730000000
    assert resp.parts == [
        ir.ReasoningPart(text="Need weather."),
        ir.TextPart("Calling the tool."),
        ir.ToolCallPart(id="call_9", name="w", arguments="{}"),
    ]
    assert resp.finish_reason == "tool_calls"  # upstream said "stop" despite calling a tool
    assert resp.usage == ir.Usage(input_tokens=100, output_tokens=40, cached_tokens=64, reasoning_tokens=25)


def test_encode_response_parses_with_the_sdk() -> None:
    resp = ir.Response(
        id="msg_01",
        model="claude-sonnet-4-5",
        created=1730000000,
        parts=[
            ir.ReasoningPart(text="think", signature="sig", origin="claude"),
            ir.TextPart("Hello "),
            ir.TextPart("world"),
            ir.ToolCallPart(id="toolu_1", name="f", arguments='{"x":1}'),
        ],
        finish_reason="stop",
        usage=ir.Usage(input_tokens=30, output_tokens=12, cached_tokens=20, reasoning_tokens=3),
    )
    raw = CODEC.encode_response(resp)
    cc = oat.ChatCompletion.model_validate_json(raw)
    assert cc.object == "chat.completion" and cc.id == "msg_01" and cc.created == 1730000000
    choice = cc.choices[0]
    assert choice.index == 0
    assert choice.message.content == "Hello world"
    assert dec(raw)["choices"][0]["message"]["reasoning_content"] == "think"
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert isinstance(call, oat.ChatCompletionMessageFunctionToolCall)
    assert (call.id, call.function.name, call.function.arguments) == ("toolu_1", "f", '{"x":1}')
    assert cc.usage is not None
    assert (cc.usage.prompt_tokens, cc.usage.completion_tokens, cc.usage.total_tokens) == (30, 12, 42)
    assert cc.usage.prompt_tokens_details is not None and cc.usage.prompt_tokens_details.cached_tokens == 20
    assert cc.usage.completion_tokens_details is not None
    assert cc.usage.completion_tokens_details.reasoning_tokens == 3
    assert CODEC.decode_response(raw).parts == [
        ir.ReasoningPart(text="think"),
        ir.TextPart("Hello world"),
        ir.ToolCallPart(id="toolu_1", name="f", arguments='{"x":1}'),
    ]


def test_encode_response_without_text_has_null_content() -> None:
    raw = CODEC.encode_response(ir.Response(id="x", model="m", parts=[], finish_reason="length"))
    cc = oat.ChatCompletion.model_validate_json(raw)
    assert cc.choices[0].message.content is None
    assert cc.choices[0].finish_reason == "length"
    assert cc.created > 0 and cc.usage is None


# ---------------------------------------------------------------------------------------- stream encoder

EVENTS: list[ir.Event] = [
    ir.Start(id="chatcmpl-7", model="upstream-model", created=1730000000),
    ir.ReasoningDelta(text="Thinking..."),
    ir.ReasoningDelta(signature="sig-only", origin="claude"),
    ir.BlockStop(),
    ir.TextDelta("Hel"),
    ir.TextDelta(""),
    ir.TextDelta("lo"),
    ir.ToolCallStart(index=0, id="call_1", name="get_weather"),
    ir.ToolArgsDelta(index=0, json='{"city":'),
    ir.ToolArgsDelta(index=0, json='"Paris"}'),
    ir.ToolCallStart(index=1, id="call_2", name="get_time"),
    ir.ToolArgsDelta(index=1, json="{}"),
    ir.UsageEvent(ir.Usage(input_tokens=12, output_tokens=30, reasoning_tokens=20)),
    ir.Finish("stop"),
]


def chunks_of(raw: bytes) -> list[oat.ChatCompletionChunk]:
    payloads = sse_payloads(raw)
    assert payloads[-1] == b"[DONE]"
    return [oat.ChatCompletionChunk.model_validate_json(p) for p in payloads[:-1]]


def test_stream_encoder_follows_the_canonical_order() -> None:
    req = ir.Request(model="gpt-4o", messages=[])
    raw = run_encoder(CODEC.stream_encoder(req), EVENTS)
    assert raw.endswith(b"data: [DONE]\n\n") and raw.count(b"[DONE]") == 1
    chunks = chunks_of(raw)
    # Same envelope everywhere; the client's model name, not the upstream's.
    assert {(c.id, c.created, c.model, c.object) for c in chunks} == {
        ("chatcmpl-7", 1730000000, "gpt-4o", "chat.completion.chunk")
    }
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta for c in chunks]
    assert dec(sse_payloads(raw)[1])["choices"][0]["delta"] == {"reasoning_content": "Thinking..."}
    assert "".join(d.content or "" for d in deltas) == "Hello"
    calls = [tc for d in deltas for tc in d.tool_calls or ()]
    assert [(tc.index, tc.id, tc.function and tc.function.name) for tc in calls if tc.id] == [
        (0, "call_1", "get_weather"),
        (1, "call_2", "get_time"),
    ]
    # Later fragments carry only index + arguments.
    assert [
        (tc.index, tc.id, tc.type, tc.function.arguments if tc.function else None) for tc in calls if not tc.id
    ] == [
        (0, None, None, '{"city":'),
        (0, None, None, '"Paris"}'),
        (1, None, None, "{}"),
    ]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]  # exactly one; "stop" upgraded because tools were called
    last = chunks[-1]
    assert last.choices[0].finish_reason == "tool_calls"
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (12, 30, 42)
    assert all(c.usage is None for c in chunks[:-1])

    state = ChatCompletionStreamState()
    for c in chunks:
        state.handle_chunk(c)
    final = state.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "Hello"
    assert msg.tool_calls is not None
    assert [(t.id, t.function.name, t.function.arguments) for t in msg.tool_calls] == [
        ("call_1", "get_weather", '{"city":"Paris"}'),
        ("call_2", "get_time", "{}"),
    ]


def test_stream_encoder_include_usage_emits_native_trailing_chunk() -> None:
    req = ir.Request(model="gpt-4o", messages=[], include_usage=True)
    events: list[ir.Event] = [
        ir.Start(id="c1", model="m"),
        ir.TextDelta("hi"),
        ir.UsageEvent(ir.Usage(input_tokens=5, output_tokens=1, cached_tokens=2)),
        ir.Finish("length"),
    ]
    chunks = chunks_of(run_encoder(CODEC.stream_encoder(req), events))
    finish, trailer = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "length" and finish.usage is None
    assert trailer.choices == []
    assert trailer.usage is not None and trailer.usage.total_tokens == 6
    assert trailer.usage.prompt_tokens_details is not None
    assert trailer.usage.prompt_tokens_details.cached_tokens == 2
    # Requested usage is reported even when the upstream sent none.
    no_usage = chunks_of(run_encoder(CODEC.stream_encoder(req), [ir.Start(id="c", model="m"), ir.Finish()]))
    assert no_usage[-1].choices == [] and no_usage[-1].usage is not None
    assert no_usage[-1].usage.total_tokens == 0


def test_stream_encoder_error_mid_stream_has_no_done() -> None:
    enc_ = CODEC.stream_encoder(ir.Request(model="m", messages=[]))
    raw = run_encoder(
        enc_,
        [
            ir.Start(id="c", model="m"),
            ir.TextDelta("par"),
            ir.Error(429, "slow down", kind="rate_limit"),
            ir.TextDelta("ignored"),
            ir.Finish(),
        ],
    )
    payloads = sse_payloads(raw)
    assert b"[DONE]" not in payloads
    assert dec(payloads[-1]) == {"error": {"message": "slow down", "type": "rate_limit_error", "code": None}}
    assert b"ignored" not in raw


def test_stream_encoder_without_start_or_finish_still_terminates() -> None:
    raw = run_encoder(CODEC.stream_encoder(ir.Request(model="gpt-x", messages=[])), [ir.TextDelta("x")])
    chunks = chunks_of(raw)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].model == "gpt-x"
    assert chunks[0].id.startswith("chatcmpl-")
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, "stop"]


def test_stream_encoder_is_cheap_per_event() -> None:
    events: list[ir.Event] = [ir.TextDelta("token ")] * 2000
    best = float("inf")
    for _ in range(3):
        encoder = CODEC.stream_encoder(ir.Request(model="m", messages=[]))
        encoder.encode(ir.Start(id="c", model="m"))
        t0 = time.perf_counter()
        for e in events:
            encoder.encode(e)
        best = min(best, (time.perf_counter() - t0) / len(events))
    assert best < 20e-6


# ---------------------------------------------------------------------------------------- stream decoder


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
    }
    body["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body.update(extra)
    return b"data: " + enc(body) + b"\n\n"


def test_stream_decoder_full_transcript() -> None:
    raw = b"".join(
        [
            b": OPENROUTER PROCESSING\n\n",
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "hmm"}),
            chunk({"content": "Hi"}),
            b"event: ignored\ndata: not-json\n\n",
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            chunk({}, "tool_calls"),
            chunk(
                None,
                usage={
                    "prompt_tokens": 9,
                    "completion_tokens": 4,
                    "total_tokens": 13,
                    "prompt_tokens_details": {"cached_tokens": 3},
                    "completion_tokens_details": {"reasoning_tokens": 1},
                },
            ),
            b"data: [DONE]\n\n",
            chunk({"content": "after done"}),
        ]
    )
    events = run_decoder(CODEC.stream_decoder(), raw)
    assert events == [
        ir.Start(id="chatcmpl-9", model="up", created=1),
        ir.ReasoningDelta(text="hmm"),
        ir.TextDelta("Hi"),
        ir.ToolCallStart(index=0, id="call_a", name="f"),
        ir.ToolArgsDelta(index=0, json='{"x":'),
        ir.ToolArgsDelta(index=0, json="1}"),
        ir.UsageEvent(ir.Usage(input_tokens=9, output_tokens=4, cached_tokens=3, reasoning_tokens=1)),
        ir.Finish("tool_calls"),
    ]


def test_stream_decoder_interleaved_parallel_calls_keep_their_arguments() -> None:
    # Two tool-call indices interleaved, the second header arriving before the first's arguments.
    raw = b"".join(
        [
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": ""}},
                        {"index": 1, "id": "call_b", "function": {"name": "g", "arguments": '{"y":'}},
                    ],
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":1}'}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "2}"}}]}),
            chunk({}, "tool_calls", usage={"prompt_tokens": 1, "completion_tokens": 1}),
        ]
    )
    events = run_decoder(CODEC.stream_decoder(), raw)
    args: dict[int, str] = {}
    for e in events:
        if isinstance(e, ir.ToolArgsDelta):
            args[e.index] = args.get(e.index, "") + e.json
    assert [(e.index, e.id, e.name) for e in events if isinstance(e, ir.ToolCallStart)] == [
        (0, "call_a", "f"),
        (1, "call_b", "g"),
    ]
    assert args == {0: '{"x":1}', 1: '{"y":2}'}
    assert isinstance(events[-1], ir.Finish) and events[-1].reason == "tool_calls"
    assert isinstance(events[-2], ir.UsageEvent)  # usage on the finish chunk: no waiting


def test_stream_decoder_synthesises_missing_ids_and_waits_for_names() -> None:
    # vLLM-style gateways omit ids; some send arguments before the name.
    raw = b"".join(
        [
            chunk({"tool_calls": [{"index": 3, "function": {"arguments": '{"q"'}}]}),
            chunk({"tool_calls": [{"index": 3, "function": {"name": "search", "arguments": ':"x"}'}}]}),
            chunk({}, "stop"),
            b"data: [DONE]\n\n",
        ]
    )
    events = run_decoder(CODEC.stream_decoder(), raw)
    assert events == [
        ir.Start(id="chatcmpl-9", model="up", created=1),  # no role needed to start
        ir.ToolCallStart(index=0, id="call_chatcmpl-9_0_3", name="search"),
        ir.ToolArgsDelta(index=0, json='{"q":"x"}'),
        ir.Finish("tool_calls"),
    ]


def test_stream_decoder_finishes_on_done_without_finish_reason() -> None:
    # Content then [DONE] with no finish_reason still ends the stream properly.
    raw = chunk({"role": "assistant", "content": "partial"}) + b"data: [DONE]\n\n"
    events = run_decoder(CODEC.stream_decoder(), raw)
    assert events[-1] == ir.Finish("stop")
    assert sum(isinstance(e, ir.Finish) for e in events) == 1


def test_stream_decoder_close_without_done() -> None:
    decoder = CODEC.stream_decoder()
    events = decoder.feed(SSEEvent(chunk({"content": "x"}, "length")[6:-2]))
    assert events == [ir.Start(id="chatcmpl-9", model="up", created=1), ir.TextDelta("x")]
    assert decoder.close() == [ir.Finish("length")]
    silent = CODEC.stream_decoder()
    silent.feed(SSEEvent(chunk({"content": "x"})[6:-2]))
    assert silent.close() == []  # no finish seen: the pipeline decides


def test_stream_decoder_error_chunk() -> None:
    events = run_decoder(
        CODEC.stream_decoder(),
        b'data: {"error":{"message":"quota","type":"insufficient_quota","code":429}}\n\n' + chunk({"content": "x"}),
    )
    assert events == [ir.Error(status=429, message="quota", kind="rate_limit")]


def test_openai_upstream_stream_to_openai_client_is_stable() -> None:
    upstream = b"".join(
        [
            chunk({"role": "assistant", "content": "Hello"}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_z",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            chunk(None, usage={"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}),
            b"data: [DONE]\n\n",
        ]
    )
    events = run_decoder(CODEC.stream_decoder(), upstream)
    raw = run_encoder(CODEC.stream_encoder(ir.Request(model="up", messages=[], include_usage=True)), events)
    again = run_decoder(CODEC.stream_decoder(), raw)
    assert again == events


# ---------------------------------------------------------------------------------------- property

_text = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
_ids = st.from_regex(r"call_[a-z0-9]{4,8}", fullmatch=True)


@st.composite
def chat_requests(draw: st.DrawFn) -> ir.Request:
    messages: list[ir.Message] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["user", "assistant", "tool", "system"]))
        if kind == "user":
            parts: list[ir.Part] = [ir.TextPart(t) for t in draw(st.lists(_text, min_size=1, max_size=3))]
            if draw(st.booleans()):
                parts.append(ir.ImagePart(media_type="image/png", data="QUFB"))
            messages.append(ir.Message(role="user", parts=parts))
        elif kind == "assistant":
            calls: list[ir.Part] = [
                ir.ToolCallPart(id=i, name=n, arguments='{"a":1}')
                for i, n in draw(st.lists(st.tuples(_ids, st.sampled_from(["f", "g"])), max_size=2))
            ]
            messages.append(ir.Message(role="assistant", parts=[ir.TextPart(draw(_text)), *calls]))
        elif kind == "tool":
            result = ir.ToolResultPart(call_id=draw(_ids), content=[ir.TextPart(draw(_text))])
            messages.append(ir.Message(role="tool", parts=[result]))
        elif messages:
            messages.append(ir.Message(role="system", parts=[ir.TextPart(draw(_text))]))
    return ir.Request(
        model=draw(st.sampled_from(["gpt-4o", "qwen3-coder-plus"])),
        system=[ir.TextPart(draw(_text))] if draw(st.booleans()) else [],
        messages=messages,
        temperature=draw(st.none() | st.floats(0, 2)),
        max_tokens=draw(st.none() | st.integers(1, 10**5)),
        stop=draw(st.lists(_text, max_size=3)),
        reasoning=draw(st.none() | st.sampled_from([ir.ReasoningConfig(effort=e) for e in ("low", "high", "none")])),
        user=draw(st.none() | _text),
    )


@settings(max_examples=150, deadline=None)
@given(chat_requests())
def test_property_encode_decode_round_trip(req: ir.Request) -> None:
    body = CODEC.encode_request(req)
    validate_body(body)
    back = CODEC.decode_request(body)
    # Only tool names are learnt on decode (from the preceding assistant calls).
    for m in back.messages:
        for p in m.parts:
            if isinstance(p, ir.ToolResultPart):
                p.name = None
    assert back == req


def test_stream_decoder_ignores_usage_on_intermediate_chunks() -> None:
    # Providers that repeat (cumulative) usage on every chunk must not end the stream early.
    raw = b"".join(
        [
            chunk({"role": "assistant", "content": "a"}, usage={"prompt_tokens": 5, "completion_tokens": 1}),
            chunk({"content": "b"}, usage={"prompt_tokens": 5, "completion_tokens": 2}),
            chunk({}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 3}),
            b"data: [DONE]\n\n",
        ]
    )
    events = run_decoder(CODEC.stream_decoder(), raw)
    assert [type(e).__name__ for e in events] == ["Start", "TextDelta", "TextDelta", "UsageEvent", "Finish"]
    usage = events[3]
    assert isinstance(usage, ir.UsageEvent) and usage.usage.output_tokens == 3


def test_stream_decoder_handles_a_30mb_line() -> None:
    # Base64 images from image models produce enormous single lines.
    big = "A" * (30 * 1024 * 1024)
    events = run_decoder(CODEC.stream_decoder(), chunk({"content": big}, "stop") + b"data: [DONE]\n\n")
    text = [e for e in events if isinstance(e, ir.TextDelta)]
    assert len(text) == 1 and len(text[0].text) == len(big)


def test_stream_encoder_flushes_every_event() -> None:
    # Each IR event yields its bytes immediately (nothing is held back for batching).
    encoder = CODEC.stream_encoder(ir.Request(model="m", messages=[]))
    assert encoder.encode(ir.Start(id="c", model="m")).startswith(b"data: ")
    assert b'"content":"first"' in encoder.encode(ir.TextDelta("first"))


def test_stream_decoder_is_cheap_per_event() -> None:
    events = [SSEEvent(chunk({"content": "token "})[6:-2]) for _ in range(2000)]
    best = float("inf")
    for _ in range(3):
        decoder = CODEC.stream_decoder()
        t0 = time.perf_counter()
        for e in events:
            decoder.feed(e)
        best = min(best, (time.perf_counter() - t0) / len(events))
    assert best < 20e-6
