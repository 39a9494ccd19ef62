"""Gemini-CLI envelope codec: ``{"project","model","request"}`` in, ``{"response": ...}`` out (and per stream chunk)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from google.genai import types

from cliproxy import ir
from cliproxy.formats import gemini
from cliproxy.formats.base import Codec, CodecError
from cliproxy.formats.gemini_cli import CODEC
from cliproxy.sse import SSEEvent, SSEParser

dumps = msgspec.json.encode
loads = msgspec.json.decode

#: What Gemini CLI sends to ``v1internal:streamGenerateContent`` mid-task: tools, a signed call and its result.
CLI_ENVELOPE: dict[str, Any] = {
    "model": "gemini-2.5-pro",
    "project": "my-gcp-project-123",
    "user_prompt_id": "5f1c2d3e########1",
    "request": {
        "contents": [
            {"role": "user", "parts": [{"text": "<session_context>cwd: /repo</session_context>"}]},
            {"role": "user", "parts": [{"text": "List the python files"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "**Listing files**", "thought": True},
                    {
                        "functionCall": {"name": "glob", "args": {"pattern": "**/*.py"}},
                        "thoughtSignature": "CiQB0e2Kb3Jq",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "id": "glob-1730000000000-abc",
                            "name": "glob",
                            "response": {"output": "a.py\nb.py"},
                        }
                    }
                ],
            },
        ],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "glob",
                        "description": "Find files",
                        "parametersJsonSchema": {
                            "type": "object",
                            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
                            "required": ["pattern"],
                        },
                    },
                    {
                        "name": "run_shell_command",
                        "description": "Run a shell command",
                        "parametersJsonSchema": {
                            "$schema": "http://json-schema.org/draft-07/schema#",
                            "type": "object",
                            "properties": {
                                "command": {"type": "string"},
                                "directory": {"type": ["string", "null"]},
                            },
                            "required": ["command"],
                            "additionalProperties": False,
                        },
                    },
                ]
            }
        ],
        "generationConfig": {
            "temperature": 0,
            "topP": 1,
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": -1},
        },
        "session_id": "e2b3c4d5-session",
    },
}


def test_codec_protocol() -> None:
    assert isinstance(CODEC, Codec) and CODEC.name == "gemini-cli"


def test_decode_envelope() -> None:
    req = CODEC.decode_request(dumps(CLI_ENVELOPE))
    assert req.model == "gemini-2.5-pro"
    assert req.ext["gemini-cli"] == {"project": "my-gcp-project-123", "user_prompt_id": "5f1c2d3e########1"}
    assert req.ext["gemini"]["extra"] == {"sessionId": "e2b3c4d5-session"}
    assert [p.text for p in req.system] == ["You are an interactive CLI agent."]
    assert [m.role for m in req.messages] == ["user", "user", "assistant", "tool"]
    call = req.messages[2].parts[1]
    assert isinstance(call, ir.ToolCallPart) and call.signature == "CiQB0e2Kb3Jq"
    result = req.messages[3].parts[0]
    assert isinstance(result, ir.ToolResultPart)
    # Gemini CLI invents response ids for id-less calls: the result is still tied to the call it answers.
    assert result.call_id == call.id and result.name == "glob"
    assert result.ext["gemini"]["id"] == "glob-1730000000000-abc"
    assert result.content == [ir.TextPart(text="a.py\nb.py")]
    assert req.reasoning == ir.ReasoningConfig(budget=-1, include_thoughts=True)


def test_envelope_round_trip_keeps_project_and_signatures() -> None:
    req = CODEC.decode_request(dumps(CLI_ENVELOPE))
    body = loads(CODEC.encode_request(req))
    assert body["project"] == "my-gcp-project-123"
    assert body["model"] == "gemini-2.5-pro"
    assert body["user_prompt_id"] == "5f1c2d3e########1"
    inner = body["request"]
    assert "model" not in inner
    for content in inner["contents"]:
        types.Content.model_validate(content)
    for tool in inner["tools"]:
        types.Tool.model_validate(tool)
    types.GenerationConfig.model_validate(inner["generationConfig"])
    # Consecutive user turns merge into one (Gemini wants alternating roles).
    assert inner["contents"][0]["parts"] == [
        {"text": "<session_context>cwd: /repo</session_context>"},
        {"text": "List the python files"},
    ]
    model_turn = inner["contents"][1]
    assert model_turn["parts"][1]["thoughtSignature"] == "CiQB0e2Kb3Jq"
    assert model_turn["parts"][0] == {"text": "**Listing files**", "thought": True}
    fr = inner["contents"][2]["parts"][0]["functionResponse"]
    assert fr == {"name": "glob", "response": {"output": "a.py\nb.py"}, "id": "glob-1730000000000-abc"}
    shell = inner["tools"][0]["functionDeclarations"][1]["parametersJsonSchema"]
    assert "$schema" not in shell and "additionalProperties" not in shell
    assert shell["properties"]["directory"]["type"] == "string"
    back = CODEC.decode_request(dumps(body)).messages
    assert [m.role for m in back] == ["user", "assistant", "tool"]
    back_call, back_result = back[1].parts[1], back[2].parts[0]
    assert isinstance(back_call, ir.ToolCallPart) and isinstance(back_result, ir.ToolResultPart)
    assert back_result.call_id == back_call.id and back_call.signature == "CiQB0e2Kb3Jq"


def test_encode_from_other_dialect_has_empty_project_for_executor() -> None:
    body = loads(
        CODEC.encode_request(
            ir.Request(model="gemini-2.5-flash", messages=[ir.Message(role="user", parts=[ir.TextPart(text="hi")])])
        )
    )
    assert body["project"] == "" and body["model"] == "gemini-2.5-flash"
    assert body["request"]["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["request"]["safetySettings"] == gemini.DEFAULT_SAFETY_SETTINGS


def test_request_without_envelope_is_rejected() -> None:
    with pytest.raises(CodecError):
        CODEC.decode_request(b'{"contents": []}')
    with pytest.raises(CodecError):
        CODEC.decode_request(b"[]")


def test_response_is_wrapped_and_unwrapped() -> None:
    resp = ir.Response(
        id="r",
        model="gemini-2.5-pro",
        parts=[ir.TextPart(text="hi")],
        usage=ir.Usage(input_tokens=2, output_tokens=1),
    )
    raw = CODEC.encode_response(resp)
    body = loads(raw)
    assert set(body) == {"response"}
    types.GenerateContentResponse.model_validate(body["response"])
    back = CODEC.decode_response(raw)
    assert back.parts == [ir.TextPart(text="hi")] and back.usage == resp.usage


def test_response_without_envelope_is_an_error_not_empty() -> None:
    """A body without the ``response`` envelope is an error, not an empty answer."""
    with pytest.raises(CodecError):
        CODEC.decode_response(b'{"traceId": "x"}')
    with pytest.raises(CodecError):
        CODEC.decode_response(b'{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}')


def test_stream_chunks_wrapped_in_response() -> None:
    enc = CODEC.stream_encoder(ir.Request(model="gemini-2.5-pro"))
    raw = (
        b"".join(
            enc.encode(e)
            for e in [
                ir.Start(id="x", model="m"),
                ir.TextDelta(text="hi"),
                ir.UsageEvent(usage=ir.Usage(input_tokens=1, output_tokens=1)),
                ir.Finish(reason="stop"),
            ]
        )
        + enc.close()
    )
    parser = SSEParser()
    frames = parser.feed(raw) + parser.close()
    assert len(frames) == 2
    for f in frames:
        assert f.data.startswith(b'{"response":{')
        types.GenerateContentResponse.model_validate(loads(f.data)["response"])
    assert loads(frames[1].data)["response"]["candidates"][0]["finishReason"] == "STOP"


def test_stream_error_is_not_wrapped() -> None:
    enc = CODEC.stream_encoder(ir.Request(model="m"))
    assert enc.encode(ir.Error(status=500, message="boom")) == (
        b'data: {"error":{"code":500,"message":"boom","status":"INTERNAL"}}\n\n'
    )


def test_stream_decoder_unwraps() -> None:
    dec = CODEC.stream_decoder()
    chunk = {
        "response": {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"functionCall": {"name": "glob", "args": {}}}]},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
            "responseId": "rid",
        },
        "traceId": "t",
    }
    events = dec.feed(SSEEvent(dumps(chunk))) + dec.close()
    assert [type(e).__name__ for e in events] == [
        "Start",
        "ToolCallStart",
        "ToolArgsDelta",
        "BlockStop",
        "UsageEvent",
        "Finish",
    ]
    assert events[-1] == ir.Finish(reason="tool_calls")
    assert dec.feed(SSEEvent(b'{"error":{"code":429,"message":"quota"}}')) == [
        ir.Error(status=429, message="quota", kind="rate_limit")
    ]


def test_count_tokens_shapes() -> None:
    """The countTokens request carries no project, safety settings or generation config (the endpoint rejects them)."""
    req = CODEC.decode_request(dumps(CLI_ENVELOPE))
    body = loads(CODEC.encode_count_tokens_request(req))
    assert set(body) == {"request"}
    assert set(body["request"]) == {"model", "contents"}
    assert body["request"]["model"] == "models/gemini-2.5-pro"
    # The CLI client's count response is *not* wrapped in "response", unlike its other answers.
    assert loads(CODEC.encode_count_tokens_response(9)) == {
        "totalTokens": 9,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
    }
    assert CODEC.decode_count_tokens_response(b'{"totalTokens": 12}') == 12
