"""Gemini codec: requests, responses and streams, validated against the official ``google.genai`` types."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy import ir
from cliproxy.formats import gemini
from cliproxy.formats.base import Codec, CodecError, StreamDecoder, StreamEncoder
from cliproxy.formats.gemini import (
    CODEC,
    SKIP_THOUGHT_SIGNATURE,
    restore_function_name,
    sanitize_function_name,
)
from cliproxy.sse import SSEEvent, SSEParser

dumps = msgspec.json.encode
loads = msgspec.json.decode


def validate_request(body: dict[str, Any]) -> None:
    """Every piece of an encoded request must be accepted by the SDK's strict (extra='forbid') models."""
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", ()):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    for setting in body.get("safetySettings", ()):
        types.SafetySetting.model_validate(setting)


def encode(req: ir.Request) -> dict[str, Any]:
    body = loads(CODEC.encode_request(req))
    validate_request(body)
    return body


def sse(chunks: list[dict[str, Any]]) -> list[SSEEvent]:
    raw = b"".join(b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks)
    parser = SSEParser()
    return parser.feed(raw) + parser.close()


def decode_stream(chunks: list[dict[str, Any]], req: ir.Request | None = None) -> list[ir.Event]:
    dec = CODEC.stream_decoder(req)
    out: list[ir.Event] = []
    for ev in sse(chunks):
        out.extend(dec.feed(ev))
    out.extend(dec.close())
    return out


def encode_stream(events: list[ir.Event], req: ir.Request | None = None) -> list[dict[str, Any]]:
    enc = CODEC.stream_encoder(req or ir.Request(model="gemini-2.5-pro"))
    raw = b"".join(enc.encode(e) for e in events) + enc.close()
    parser = SSEParser()
    frames = parser.feed(raw) + parser.close()
    out = []
    for f in frames:
        assert f.event is None
        payload = loads(f.data)
        if "error" not in payload:
            types.GenerateContentResponse.model_validate_json(f.data)
        out.append(payload)
    assert raw.endswith(b"\n\n")
    return out


def test_codec_satisfies_protocols() -> None:
    assert isinstance(CODEC, Codec)
    assert CODEC.name == "gemini"
    assert isinstance(CODEC.stream_decoder(), StreamDecoder)
    assert isinstance(CODEC.stream_encoder(ir.Request(model="m")), StreamEncoder)


# --------------------------------------------------------------------------------------------- request decode

CAMEL_REQUEST: dict[str, Any] = {
    "contents": [
        {"role": "user", "parts": [{"text": "What's the weather in Paris and the time?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Let me check.", "thought": True, "thoughtSignature": "c2lnLXRob3VnaHQ="},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "c2lnLWZj",
                },
                {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21, "sky": "clear"}}},
            ],
        },
    ],
    "systemInstruction": {"parts": [{"text": "You are terse."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING"},
                            "unit": {"type": "STRING", "nullable": True},
                        },
                        "required": ["city"],
                    },
                },
                {
                    "name": "get_time",
                    "parametersJsonSchema": {"type": "object", "properties": {"tz": {"type": "string"}}},
                },
            ]
        },
        {"googleSearch": {}},
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    "generationConfig": {
        "maxOutputTokens": 2048,
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END"],
        "candidateCount": 1,
        "seed": 7,
        "responseModalities": ["TEXT"],
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
}


def _snake(obj: Any, opaque: bool = False) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            sk = k if opaque else "".join("_" + c.lower() if c.isupper() else c for c in k)
            out[sk] = _snake(v, opaque or k in ("args", "response", "parameters", "parametersJsonSchema"))
        return out
    if isinstance(obj, list):
        return [_snake(v, opaque) for v in obj]
    return obj


def test_decode_camel_case_request() -> None:
    req = CODEC.decode_request(dumps(CAMEL_REQUEST))
    assert [p.text for p in req.system] == ["You are terse."]
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    reasoning, call_a, call_b = req.messages[1].parts
    assert isinstance(reasoning, ir.ReasoningPart) and reasoning.origin == "gemini"
    assert reasoning.signature == "c2lnLXRob3VnaHQ="
    assert isinstance(call_a, ir.ToolCallPart) and call_a.signature == "c2lnLWZj"
    assert loads(call_a.arguments) == {"city": "Paris"}
    assert isinstance(call_b, ir.ToolCallPart)
    assert req.max_tokens == 2048 and req.temperature == 0.3 and req.top_p == 0.9 and req.top_k == 40
    assert req.stop == ["END"] and req.seed == 7 and req.candidate_count == 1
    assert req.reasoning == ir.ReasoningConfig(budget=1024, include_thoughts=True)
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="get_weather")
    assert [t.name for t in req.tools] == ["get_weather", "get_time"]
    # Gemini ``parameters`` (OpenAPI flavour) become JSON schema for other dialects.
    assert req.tools[0].parameters == {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
        "required": ["city"],
    }
    ext = req.ext["gemini"]
    assert ext["tools"] == [{"googleSearch": {}}]
    assert ext["generationConfig"] == {"responseModalities": ["TEXT"]}
    assert ext["safetySettings"] == CAMEL_REQUEST["safetySettings"]


def test_decode_snake_case_request_equals_camel_case() -> None:
    snake = _snake(CAMEL_REQUEST)
    assert "system_instruction" in snake and "function_call" in snake["contents"][1]["parts"][1]
    assert CODEC.decode_request(dumps(snake)) == CODEC.decode_request(dumps(CAMEL_REQUEST))


def test_snake_case_keeps_argument_and_schema_keys() -> None:
    body = {
        "contents": [
            {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"file_path": "/a"}}}]},
            {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"line_count": 3}}}]},
        ],
        "tools": [
            {
                "function_declarations": [
                    {
                        "name": "f",
                        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
                    }
                ]
            }
        ],
    }
    req = CODEC.decode_request(dumps(body))
    call = req.messages[0].parts[0]
    assert isinstance(call, ir.ToolCallPart) and loads(call.arguments) == {"file_path": "/a"}
    assert req.tools[0].parameters == {"type": "object", "properties": {"file_path": {"type": "string"}}}
    result = req.messages[1].parts[0]
    assert isinstance(result, ir.ToolResultPart) and loads(result.content[0].text) == {"line_count": 3}  # type: ignore[union-attr]


def test_function_responses_matched_to_calls_per_name_fifo() -> None:
    """Gemini has no call ids: ids are minted per call and each response gets the id of the call with its name."""
    req = CODEC.decode_request(dumps(CAMEL_REQUEST))
    calls = {p.name: p.id for p in req.messages[1].parts if isinstance(p, ir.ToolCallPart)}
    results = {p.name: p.call_id for p in req.messages[2].parts if isinstance(p, ir.ToolResultPart)}
    assert calls == results
    assert len(set(calls.values())) == 2
    assert all(i.startswith("call_") and len(i) == 29 for i in calls.values())


def test_minted_ids_are_stable_across_retries() -> None:
    a = CODEC.decode_request(dumps(CAMEL_REQUEST))
    b = CODEC.decode_request(dumps(CAMEL_REQUEST))
    assert a.messages[1].parts == b.messages[1].parts


def test_same_name_parallel_calls_matched_in_order() -> None:
    body = {
        "contents": [
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "read", "args": {"p": "a"}}},
                    {"functionCall": {"name": "read", "args": {"p": "b"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "read", "response": {"result": "A"}}},
                    {"functionResponse": {"name": "read", "response": {"result": "B"}}},
                ],
            },
        ]
    }
    req = CODEC.decode_request(dumps(body))
    ids = [p.id for p in req.messages[0].parts if isinstance(p, ir.ToolCallPart)]
    assert [p.call_id for p in req.messages[1].parts if isinstance(p, ir.ToolResultPart)] == ids


def test_invalid_roles_are_repaired_by_alternation() -> None:
    body = {
        "contents": [
            {"parts": [{"text": "a"}]},
            {"parts": [{"text": "b"}]},
            {"role": "bogus", "parts": [{"text": "c"}]},
        ]
    }
    req = CODEC.decode_request(dumps(body))
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]


def test_invalid_body_raises_codec_error() -> None:
    with pytest.raises(CodecError):
        CODEC.decode_request(b"[1,2]")
    with pytest.raises(CodecError):
        CODEC.decode_request(b'{"contents": "nope"}')
    with pytest.raises(CodecError):
        CODEC.decode_request(b"{not json")


def test_same_dialect_round_trip_is_lossless_for_gemini_fields() -> None:
    req = CODEC.decode_request(dumps(CAMEL_REQUEST))
    body = encode(req)
    assert body["contents"][2]["parts"][1]["functionResponse"]["response"] == {"temp_c": 21, "sky": "clear"}
    assert body["contents"][1]["parts"][0] == {
        "text": "Let me check.",
        "thought": True,
        "thoughtSignature": "c2lnLXRob3VnaHQ=",
    }
    assert body["safetySettings"] == CAMEL_REQUEST["safetySettings"]
    assert body["generationConfig"]["responseModalities"] == ["TEXT"]
    assert {"googleSearch": {}} in body["tools"]
    back = CODEC.decode_request(dumps(body))
    # Tool schemas are cleaned for Gemini (nullable dropped), everything else survives unchanged.
    assert back.messages == req.messages and back.system == req.system and back.ext == req.ext
    assert back.reasoning == req.reasoning and back.tool_choice == req.tool_choice
    assert [t.name for t in back.tools] == [t.name for t in req.tools]


# --------------------------------------------------------------------------------------------- request encode

OPENAI_STYLE = ir.Request(
    model="gemini-2.5-pro",
    system=[ir.TextPart(text="sys A"), ir.TextPart(text="sys B")],
    messages=[
        ir.Message(role="user", parts=[ir.TextPart(text="Weather in Paris and Rome?")]),
        ir.Message(
            role="assistant",
            parts=[
                ir.TextPart(text="Checking both."),
                ir.ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ir.ToolCallPart(id="call_2", name="get_weather", arguments='{"city":"Rome"}'),
            ],
        ),
        ir.Message(
            role="tool",
            parts=[ir.ToolResultPart(call_id="call_1", content=[ir.TextPart(text='{"temp":21}')])],
        ),
        ir.Message(role="tool", parts=[ir.ToolResultPart(call_id="call_2", content=[ir.TextPart(text="sunny, 25C")])]),
        ir.Message(role="user", parts=[ir.TextPart(text="Thanks!")]),
    ],
    tools=[
        ir.Tool(
            name="get_weather",
            description="Get weather",
            parameters={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "additionalProperties": False,
            },
            strict=True,
        )
    ],
    tool_choice=ir.ToolChoice(mode="required"),
    max_tokens=512,
    stop=["x"],
    reasoning=ir.ReasoningConfig(effort="medium"),
    response_format=ir.ResponseFormat(type="json_schema", schema={"type": "object"}),
)


def test_encode_openai_style_history() -> None:
    body = encode(OPENAI_STYLE)
    assert body["model"] == "gemini-2.5-pro"
    assert body["systemInstruction"] == {"role": "user", "parts": [{"text": "sys A"}, {"text": "sys B"}]}
    roles = [c["role"] for c in body["contents"]]
    assert roles == ["user", "model", "user", "user"]
    assert body["generationConfig"]["maxOutputTokens"] == 512
    assert body["generationConfig"]["stopSequences"] == ["x"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"] == {"type": "object"}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    decl = body["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "get_weather" and "parameters" not in decl
    assert decl["parametersJsonSchema"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "description": "no additional properties",
    }
    assert "strict" not in decl


def test_parallel_calls_and_results_grouped_into_one_turn_each() -> None:
    """N functionCalls in one model turn followed by one turn holding the N functionResponses (Gemini's rule)."""
    body = encode(OPENAI_STYLE)
    model_turn, response_turn, user_turn = body["contents"][1:]
    assert [("text" in p, "functionCall" in p) for p in model_turn["parts"]] == [
        (True, False),
        (False, True),
        (False, True),
    ]
    assert [p["functionResponse"]["name"] for p in response_turn["parts"]] == ["get_weather", "get_weather"]
    assert user_turn["parts"] == [{"text": "Thanks!"}]


def test_tool_responses_use_role_user() -> None:
    """Gemini rejects role ``tool``: results go in a ``user`` turn."""
    body = encode(OPENAI_STYLE)
    for content in body["contents"]:
        if any("functionResponse" in p for p in content["parts"]):
            assert content["role"] == "user"


def test_function_call_without_signature_gets_skip_sentinel() -> None:
    """Gemini 3 rejects replayed calls without ``thoughtSignature``: foreign history gets the sentinel."""
    body = encode(OPENAI_STYLE)
    calls = [p for p in body["contents"][1]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == SKIP_THOUGHT_SIGNATURE
    assert calls[1]["thoughtSignature"] == SKIP_THOUGHT_SIGNATURE


def test_real_signature_kept_and_parallel_sibling_not_faked() -> None:
    req = CODEC.decode_request(dumps(CAMEL_REQUEST))
    body = encode(req)
    calls = [p for p in body["contents"][1]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == "c2lnLWZj"
    assert "thoughtSignature" not in calls[1]


def test_tool_result_payload_encoding() -> None:
    """Tool results: JSON text stays structured under ``result``, plain text stays a string, images become parts."""
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                role="assistant",
                parts=[ir.ToolCallPart(id="t1", name="shot"), ir.ToolCallPart(id="t2", name="ls")],
            ),
            ir.Message(
                role="tool",
                parts=[
                    ir.ToolResultPart(
                        call_id="t1",
                        content=[
                            ir.TextPart(text="done"),
                            ir.ImagePart(media_type="image/png", data="iVBORw0KGgo="),
                        ],
                    ),
                    ir.ToolResultPart(call_id="t2", content=[ir.TextPart(text='["a.txt","b.txt"]')], is_error=True),
                ],
            ),
        ],
    )
    parts = encode(req)["contents"][1]["parts"]
    assert parts[0] == {"functionResponse": {"name": "shot", "response": {"result": "done"}}}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert parts[2] == {"functionResponse": {"name": "ls", "response": {"error": ["a.txt", "b.txt"]}}}


def test_function_response_name_recovered_from_claude_history() -> None:
    """Real Anthropic ids carry no name; it comes from the matching tool_use."""
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                role="assistant",
                parts=[ir.ToolCallPart(id="toolu_01X", name="Bash", arguments='{"command":"ls"}')],
            ),
            ir.Message(role="tool", parts=[ir.ToolResultPart(call_id="toolu_01X", content=[ir.TextPart(text="ok")])]),
        ],
    )
    assert encode(req)["contents"][1]["parts"][0]["functionResponse"]["name"] == "Bash"


def test_function_response_name_from_reference_style_id_when_history_lacks_call() -> None:
    req = ir.Request(
        model="m",
        messages=[ir.Message(role="tool", parts=[ir.ToolResultPart(call_id="get_weather-1730000000", content=[])])],
    )
    assert encode(req)["contents"][0]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_tool_names_are_sanitised_and_restored() -> None:
    """Invalid Gemini names are sanitised upstream and mapped back exactly (case-sensitive tools like ``Bash``)."""
    long_name = "mcp__server__tool_with_a_very_long_name_that_goes_on_and_on_and_on_forever_more"
    tools = [ir.Tool(name="my tool/v2"), ir.Tool(name=long_name), ir.Tool(name="Bash")]
    req = ir.Request(model="m", tools=tools)
    names = [d["name"] for d in encode(req)["tools"][0]["functionDeclarations"]]
    assert names[2] == "Bash"
    for n in names:
        assert len(n) <= 64 and sanitize_function_name(n) == n
    assert [restore_function_name(n, tools) for n in names] == ["my tool/v2", long_name, "Bash"]
    upstream = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"functionCall": {"name": names[0], "args": {}}}]},
                "finishReason": "STOP",
            }
        ]
    }
    resp = CODEC.decode_response(dumps(upstream), req)
    assert isinstance(resp.parts[0], ir.ToolCallPart) and resp.parts[0].name == "my tool/v2"
    events = decode_stream([upstream | {"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}], req)
    start = next(e for e in events if isinstance(e, ir.ToolCallStart))
    assert start.name == "my tool/v2"


def test_missing_parameters_become_empty_object_schema() -> None:
    body = encode(ir.Request(model="m", tools=[ir.Tool(name="noargs")]))
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == {
        "type": "object",
        "properties": {},
    }


def test_default_safety_settings_added() -> None:
    assert encode(ir.Request(model="m"))["safetySettings"] == gemini.DEFAULT_SAFETY_SETTINGS


@pytest.mark.parametrize(
    ("reasoning", "model", "expected"),
    [
        (ir.ReasoningConfig(effort="none"), "gemini-2.5-flash", {"thinkingBudget": 0}),
        (
            ir.ReasoningConfig(effort="auto"),
            "gemini-2.5-flash",
            {"thinkingBudget": -1, "includeThoughts": True},
        ),
        (
            ir.ReasoningConfig(effort="high"),
            "gemini-2.5-pro",
            {"thinkingBudget": 24576, "includeThoughts": True},
        ),
        (
            ir.ReasoningConfig(budget=2000, include_thoughts=False),
            "gemini-2.5-pro",
            {"thinkingBudget": 2000, "includeThoughts": False},
        ),
        (
            ir.ReasoningConfig(effort="low"),
            "gemini-3-pro-preview",
            {"thinkingLevel": "LOW", "includeThoughts": True},
        ),
        (
            ir.ReasoningConfig(effort="medium"),
            "gemini-3-pro-preview",
            {"thinkingLevel": "HIGH", "includeThoughts": True},
        ),
    ],
)
def test_thinking_config(reasoning: ir.ReasoningConfig, model: str, expected: dict[str, Any]) -> None:
    body = encode(ir.Request(model=model, reasoning=reasoning))
    assert body["generationConfig"]["thinkingConfig"] == expected


def test_data_url_and_http_images() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                role="user",
                parts=[
                    ir.ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
                    ir.ImagePart(url="https://example.com/cat.png", media_type="image/png"),
                ],
            )
        ],
    )
    parts = encode(req)["contents"][0]["parts"]
    assert parts[0] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    assert parts[1] == {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}}


def test_foreign_reasoning_is_not_sent_to_gemini() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                role="assistant",
                parts=[
                    ir.ReasoningPart(text="hmm", signature="claude-sig", origin="claude"),
                    ir.TextPart(text="hi"),
                ],
            )
        ],
    )
    assert encode(req)["contents"] == [{"role": "model", "parts": [{"text": "hi"}]}]


def test_mid_conversation_system_messages_join_system_instruction() -> None:
    req = ir.Request(
        model="m",
        system=[ir.TextPart(text="a")],
        messages=[
            ir.Message(role="user", parts=[ir.TextPart(text="q")]),
            ir.Message(role="system", parts=[ir.TextPart(text="b")]),
        ],
    )
    body = encode(req)
    assert body["systemInstruction"]["parts"] == [{"text": "a"}, {"text": "b"}]
    assert [c["role"] for c in body["contents"]] == ["user"]


def test_count_tokens_request_shape() -> None:
    """No safetySettings / generationConfig / top-level model in the countTokens body (the endpoint rejects them)."""
    body = loads(CODEC.encode_count_tokens_request(OPENAI_STYLE))
    assert set(body) == {"generateContentRequest"}
    inner = body["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-pro"
    assert set(inner) <= {"model", "contents", "systemInstruction", "tools"}
    assert loads(CODEC.encode_count_tokens_response(42)) == {
        "totalTokens": 42,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 42}],
    }
    assert CODEC.decode_count_tokens_response(b'{"totalTokens": 17}') == 17


# --------------------------------------------------------------------------------------------- response


def test_decode_response_with_thoughts_text_and_calls() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Planning", "thought": True},
                        {"text": " more", "thought": True},
                        {"text": "Hello "},
                        {"text": "world"},
                        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "c2ln"},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 22,
        },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "abc",
        "createTime": "2025-01-02T03:04:05.123456789Z",
    }
    resp = CODEC.decode_response(dumps(body))
    assert resp.id == "abc" and resp.model == "gemini-2.5-pro" and resp.created == 1735787045
    assert resp.parts[0] == ir.ReasoningPart(text="Planning more", origin="gemini")
    assert resp.parts[1] == ir.TextPart(text="Hello world")
    call = resp.parts[2]
    assert isinstance(call, ir.ToolCallPart) and call.signature == "c2ln" and call.arguments == '{"a":1}'
    assert resp.finish_reason == "tool_calls"
    # candidatesTokenCount excludes thoughts; IR output includes them (OpenAI semantics).
    assert resp.usage == ir.Usage(input_tokens=10, output_tokens=12, cached_tokens=4, reasoning_tokens=7)
    assert resp.usage.total_tokens == 22


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reason_mapping(native: str, expected: str) -> None:
    """Upper-case Gemini reasons never leak to other dialects; MAX_TOKENS → length."""
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": native}]}
    assert CODEC.decode_response(dumps(body)).finish_reason == expected


def test_prompt_blocked_without_candidates() -> None:
    resp = CODEC.decode_response(b'{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}')
    assert resp.parts == [] and resp.finish_reason == "content_filter"


def test_signature_only_parts_are_not_content() -> None:
    """Text sharing a part with a signature is kept; a signature-only part carries no text."""
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "hi", "thoughtSignature": "eA=="}, {"thoughtSignature": "eQ=="}],
                },
                "finishReason": "STOP",
            }
        ]
    }
    resp = CODEC.decode_response(dumps(body))
    texts = [p.text for p in resp.parts if isinstance(p, ir.TextPart)]
    assert texts == ["hi"]
    assert all(p.text == "" for p in resp.parts if isinstance(p, ir.ReasoningPart))


def test_encode_response_validates_and_maps_usage_back() -> None:
    resp = ir.Response(
        id="r1",
        model="claude-sonnet-4",
        created=1735787045,
        parts=[
            ir.ReasoningPart(text="think", signature="claude-only", origin="claude"),
            ir.TextPart(text="Answer"),
            ir.ToolCallPart(id="toolu_1", name="f", arguments='{"x":1}'),
        ],
        finish_reason="tool_calls",
        usage=ir.Usage(input_tokens=10, output_tokens=12, reasoning_tokens=7, cached_tokens=2),
    )
    raw = CODEC.encode_response(resp)
    model = types.GenerateContentResponse.model_validate_json(raw)
    body = loads(raw)
    parts = body["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "think", "thought": True}
    assert parts[1] == {"text": "Answer"}
    assert parts[2] == {"functionCall": {"name": "f", "args": {"x": 1}}}
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 7,
        "cachedContentTokenCount": 2,
        "totalTokenCount": 22,
    }
    assert model.create_time is not None and body["createTime"] == "2025-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("reason", "native"), [("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("stop", "STOP")]
)
def test_encode_finish_reasons(reason: ir.FinishReason, native: str) -> None:
    body = loads(CODEC.encode_response(ir.Response(id="x", model="m", finish_reason=reason)))
    assert body["candidates"][0]["finishReason"] == native


_text = st.text(min_size=1, max_size=20)
_parts = st.lists(
    st.one_of(
        st.builds(lambda t: ir.TextPart(text=t), _text),
        st.builds(
            lambda t, s: ir.ReasoningPart(text=t, signature=s, origin="gemini"),
            _text,
            st.none() | st.just("c2ln"),
        ),
        st.builds(
            lambda n, a: ir.ToolCallPart(id="", name=n, arguments=msgspec.json.encode(a).decode()),
            st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
            st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
        ),
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(_parts, st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_response_round_trip(parts: list[ir.Part], inp: int, out: int, reasoning: int) -> None:
    """decode(encode(resp)) keeps text, thoughts, calls and usage (modulo minted ids and merged adjacent text)."""
    resp = ir.Response(
        id="resp-1",
        model="gemini-2.5-flash",
        parts=parts,
        finish_reason="tool_calls" if any(isinstance(p, ir.ToolCallPart) for p in parts) else "stop",
        usage=ir.Usage(input_tokens=inp, output_tokens=out + reasoning, reasoning_tokens=reasoning),
    )
    raw = CODEC.encode_response(resp)
    types.GenerateContentResponse.model_validate_json(raw)
    back = CODEC.decode_response(raw)
    assert back.usage == resp.usage
    assert back.finish_reason == resp.finish_reason

    def shape(ps: list[ir.Part]) -> list[tuple[str, str]]:
        out_: list[tuple[str, str]] = []
        for p in ps:
            if isinstance(p, ir.ToolCallPart):
                out_.append(("call", p.name + loads(p.arguments).__repr__()))
            elif isinstance(p, (ir.TextPart, ir.ReasoningPart)):
                kind = "text" if isinstance(p, ir.TextPart) else "thought"
                if out_ and out_[-1][0] == kind:
                    out_[-1] = (kind, out_[-1][1] + p.text)
                else:
                    out_.append((kind, p.text))
        return out_

    assert shape(back.parts) == shape(resp.parts)


# --------------------------------------------------------------------------------------------- stream decoder


def chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.5-pro", "responseId": "rid"}
    if usage:
        out["usageMetadata"] = usage
    return out


def test_stream_decoder_text_and_thoughts() -> None:
    events = decode_stream(
        [
            chunk(
                [{"text": "Let me think", "thought": True}],
                usage={"promptTokenCount": 5, "totalTokenCount": 5},
            ),
            chunk([{"text": "Hel"}], usage={"promptTokenCount": 5, "totalTokenCount": 5}),
            chunk(
                [{"text": "lo"}],
                "STOP",
                {
                    "promptTokenCount": 5,
                    "candidatesTokenCount": 2,
                    "thoughtsTokenCount": 3,
                    "totalTokenCount": 10,
                },
            ),
        ]
    )
    assert events == [
        ir.Start(id="rid", model="gemini-2.5-pro"),
        ir.ReasoningDelta(text="Let me think"),
        ir.TextDelta(text="Hel"),
        ir.TextDelta(text="lo"),
        ir.UsageEvent(usage=ir.Usage(input_tokens=5, output_tokens=5, reasoning_tokens=3)),
        ir.Finish(reason="stop"),
    ]


def test_tool_call_finish_not_overwritten_by_later_stop() -> None:
    """functionCall in chunk 1, STOP + usage in chunk 2 → exactly one Finish, ``tool_calls`` (or agents never
    run the tool)."""
    events = decode_stream(
        [
            chunk(
                [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "c2ln",
                    }
                ]
            ),
            chunk(
                [{"text": ""}],
                "STOP",
                {"promptTokenCount": 5, "candidatesTokenCount": 9, "totalTokenCount": 14},
            ),
        ]
    )
    start = events[1]
    assert isinstance(start, ir.ToolCallStart)
    assert (
        start.index == 0 and start.name == "get_weather" and start.signature == "c2ln" and start.id.startswith("call_")
    )
    assert events[2] == ir.ToolArgsDelta(index=0, json='{"city":"Paris"}')
    assert events[3] == ir.BlockStop()
    finishes = [e for e in events if isinstance(e, ir.Finish)]
    assert finishes == [ir.Finish(reason="tool_calls")]


def test_usage_on_every_chunk_only_reported_once_at_the_end() -> None:
    """Gemini repeats usageMetadata on every chunk; only the terminal chunk reports usage and finishes."""
    usage = {"promptTokenCount": 5, "totalTokenCount": 5}
    events = decode_stream(
        [
            chunk([{"text": "a"}], usage=usage),
            chunk([{"text": "b"}], usage=usage),
            chunk(
                [{"text": "c"}],
                "STOP",
                {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
            ),
        ]
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Start", "TextDelta", "TextDelta", "TextDelta", "UsageEvent", "Finish"]


def test_second_finish_chunk_does_not_finish_twice() -> None:
    u = {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}
    events = decode_stream([chunk([{"text": "a"}], "STOP", u), chunk([{"text": "late"}], "STOP", u)])
    assert sum(isinstance(e, ir.Finish) for e in events) == 1
    assert ir.TextDelta(text="late") not in events


def test_finish_without_usage_is_flushed_on_close() -> None:
    events = decode_stream([chunk([{"text": "a"}], "MAX_TOKENS")])
    assert events[-1] == ir.Finish(reason="length")


def test_stream_without_finish_reason_emits_no_finish() -> None:
    events = decode_stream([chunk([{"text": "a"}])])
    assert not any(isinstance(e, ir.Finish) for e in events)


def test_signature_only_stream_part_yields_no_text() -> None:
    """Signature-only parts in streaming: ``{"thoughtSignature": "x"}`` → no text delta."""
    events = decode_stream(
        [
            chunk([{"text": "hi", "thoughtSignature": "eA=="}]),
            chunk([{"thoughtSignature": "eQ=="}], "STOP", {"promptTokenCount": 1, "candidatesTokenCount": 1}),
        ]
    )
    assert [e.text for e in events if isinstance(e, ir.TextDelta)] == ["hi"]
    reasoning = [e for e in events if isinstance(e, ir.ReasoningDelta)]
    assert reasoning == [ir.ReasoningDelta(text="", signature="eQ==", origin="gemini")]


def test_blocked_empty_candidate_stream_is_well_formed() -> None:
    """An empty/blocked answer still ends with one Start and one Finish."""
    events = decode_stream(
        [
            {
                "candidates": [{"finishReason": "SAFETY", "index": 0}],
                "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
            }
        ]
    )
    assert [type(e).__name__ for e in events] == ["Start", "UsageEvent", "Finish"]
    assert events[-1] == ir.Finish(reason="content_filter")


def test_stream_decoder_ignores_noise_and_reads_errors() -> None:
    dec = CODEC.stream_decoder()
    assert dec.feed(SSEEvent(b"[DONE]")) == []
    assert dec.feed(SSEEvent(b"not json")) == []
    assert dec.feed(SSEEvent(b"")) == []
    out = dec.feed(SSEEvent(b'{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}'))
    assert out == [ir.Error(status=429, message="quota", kind="rate_limit")]


def test_stream_decoder_json_array_framing() -> None:
    dec = CODEC.stream_decoder()
    c = dumps(chunk([{"text": "x"}]))
    assert [type(e).__name__ for e in dec.feed(SSEEvent(b"[" + c))] == ["Start", "TextDelta"]
    assert dec.feed(SSEEvent(b"," + c)) == [ir.TextDelta(text="x")]
    assert dec.feed(SSEEvent(b"]")) == []


def test_stream_tool_ids_unique_within_and_across_responses() -> None:
    two = [
        chunk(
            [{"functionCall": {"name": "f", "args": {}}}, {"functionCall": {"name": "f", "args": {}}}],
            "STOP",
            {"candidatesTokenCount": 1},
        )
    ]
    ids = [e.id for e in decode_stream(two) if isinstance(e, ir.ToolCallStart)]
    assert len(set(ids)) == 2
    other = [dict(two[0], responseId="rid-2")]
    assert not set(ids) & {e.id for e in decode_stream(other) if isinstance(e, ir.ToolCallStart)}


# --------------------------------------------------------------------------------------------- stream encoder


def test_stream_encoder_canonical_sequence() -> None:
    """Text flushed per event, whole functionCall args, terminal chunk with finishReason + usage."""
    frames = encode_stream(
        [
            ir.Start(id="abc", model="claude-sonnet-4"),
            ir.ReasoningDelta(text="hmm"),
            ir.ReasoningDelta(text="", signature="sig", origin="claude"),
            ir.TextDelta(text="Hel"),
            ir.TextDelta(text="lo"),
            ir.ToolCallStart(index=0, id="toolu_1", name="get_weather"),
            ir.ToolArgsDelta(index=0, json='{"city":'),
            ir.ToolArgsDelta(index=0, json='"Paris"}'),
            ir.ToolCallStart(index=1, id="toolu_2", name="get_time"),
            ir.UsageEvent(usage=ir.Usage(input_tokens=5, output_tokens=9, reasoning_tokens=4)),
            ir.Finish(reason="tool_calls"),
        ]
    )
    parts = [f["candidates"][0]["content"]["parts"] for f in frames]
    assert parts == [
        [{"text": "hmm", "thought": True}],
        [{"text": "Hel"}],
        [{"text": "lo"}],
        [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        [{"functionCall": {"name": "get_time", "args": {}}}],
    ]
    for f in frames:
        assert f["modelVersion"] == "gemini-2.5-pro" and f["responseId"] == "abc"
        assert f["candidates"][0]["index"] == 0
    assert all("finishReason" not in f["candidates"][0] and "usageMetadata" not in f for f in frames[:-1])
    assert frames[-1]["candidates"][0]["finishReason"] == "STOP"
    assert frames[-1]["usageMetadata"] == {
        "promptTokenCount": 5,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 4,
        "totalTokenCount": 14,
    }


def test_stream_encoder_flushes_tool_call_on_block_stop() -> None:
    frames = encode_stream(
        [
            ir.Start(id="a", model="m"),
            ir.ToolCallStart(index=0, id="c", name="f", signature="c2ln"),
            ir.ToolArgsDelta(index=0, json="{}"),
            ir.BlockStop(),
            ir.Finish(reason="tool_calls"),
        ]
    )
    assert frames[0]["candidates"][0]["content"]["parts"] == [
        {"thoughtSignature": "c2ln", "functionCall": {"name": "f", "args": {}}}
    ]
    assert frames[1]["candidates"][0]["content"]["parts"] == []


def test_stream_encoder_error_chunk() -> None:
    enc = CODEC.stream_encoder(ir.Request(model="m"))
    enc.encode(ir.Start(id="a", model="m"))
    raw = enc.encode(ir.Error(status=429, message="slow down"))
    assert raw == b'data: {"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}\n\n'
    assert enc.encode(ir.TextDelta(text="after")) == b""
    assert enc.close() == b""


def test_stream_encoder_max_tokens_and_close_without_finish() -> None:
    frames = encode_stream([ir.Start(id="a", model="m"), ir.TextDelta(text="x"), ir.Finish(reason="length")])
    assert frames[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    frames = encode_stream([ir.Start(id="a", model="m"), ir.ToolCallStart(index=0, id="c", name="f")])
    assert frames == [frames[0]] and frames[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "f"


def test_gemini_stream_round_trip() -> None:
    upstream = [
        chunk([{"text": "a", "thought": True, "thoughtSignature": "c2ln"}]),
        chunk([{"text": "b"}]),
        chunk([{"functionCall": {"name": "f", "args": {"k": [1, 2]}}, "thoughtSignature": "ZmM="}]),
        chunk(
            [],
            "STOP",
            {"promptTokenCount": 3, "candidatesTokenCount": 4, "thoughtsTokenCount": 1, "totalTokenCount": 8},
        ),
    ]
    frames = encode_stream(decode_stream(upstream))
    parts = [p for f in frames for p in f["candidates"][0]["content"]["parts"]]
    assert parts == [
        {"text": "a", "thought": True, "thoughtSignature": "c2ln"},
        {"text": "b"},
        {"thoughtSignature": "ZmM=", "functionCall": {"name": "f", "args": {"k": [1, 2]}}},
    ]
    assert frames[-1]["usageMetadata"] == upstream[-1]["usageMetadata"]


def test_stream_event_cost_is_small() -> None:
    """Per-event work must stay far below 20 µs (decoder chunk + encoder delta)."""
    n = 2000
    enc = CODEC.stream_encoder(ir.Request(model="gemini-2.5-pro"))
    enc.encode(ir.Start(id="abc", model="m"))
    ev = ir.TextDelta(text="hello world ")
    t0 = time.perf_counter()
    for _ in range(n):
        enc.encode(ev)
    enc_cost = (time.perf_counter() - t0) / n
    dec = CODEC.stream_decoder()
    raw = SSEEvent(dumps(chunk([{"text": "hello world "}], usage={"promptTokenCount": 5, "totalTokenCount": 5})))
    dec.feed(raw)
    t0 = time.perf_counter()
    for _ in range(n):
        dec.feed(raw)
    dec_cost = (time.perf_counter() - t0) / n
    assert enc_cost < 20e-6, enc_cost
    assert dec_cost < 20e-6, dec_cost
