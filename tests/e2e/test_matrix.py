"""Every client dialect against every upstream dialect, through the official SDKs and faithful fakes.

Clients: OpenAI chat and Responses (``openai``), Claude Messages (``anthropic``), Gemini (``google-genai``)
and Gemini CLI's Code Assist envelope (raw HTTP, as the CLI speaks it). Upstreams: an OpenAI-compatible
provider, Codex/Responses, Claude and Gemini, each a fake on loopback that validates what it receives
against the providers' SDK types. Scenarios: text (stream and not), a full tool round trip, an image, thinking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest
from google import genai
from google.genai import types as gt

from cliproxy.testing import (
    Reply,
    ToolCall,
)
from cliproxy.testing.proxy import ProxyHandle

KEY = "sk-matrix-client"  # the client key configured by the ``env`` fixture (tests/e2e/conftest.py)
UPSTREAMS = ["openai", "responses", "claude", "gemini"]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.usefixtures("fresh_pool")]

# 1x1 red PNG
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
CLIENTS = ["openai", "responses", "claude", "gemini", "gemini-cli"]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}


@dataclass
class Result:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (id, name, args)


# ------------------------------------------------------------------------------------------ clients


async def call_openai(p: ProxyHandle, model: str, stream: bool, turn: str, tool_id: str = "") -> Result:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    kwargs: dict[str, Any] = {}
    if turn == "image":
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this image"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            }
        ]
    if turn in ("tool", "tool_result"):
        kwargs["tools"] = [
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
            }
        ]
    if turn == "tool_result":
        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": tool_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": tool_id, "content": "sunny, 24C"},
        ]
    if turn == "thinking":
        kwargs["reasoning_effort"] = "high"
    out = Result()
    async with openai.AsyncOpenAI(base_url=p.v1, api_key=KEY, max_retries=0) as c:
        if not stream:
            r = await c.chat.completions.create(model=model, messages=messages, **kwargs)  # type: ignore[call-overload]
            msg = r.choices[0].message
            out.text = msg.content or ""
            out.reasoning = (msg.model_extra or {}).get("reasoning_content") or ""
            for tc in msg.tool_calls or []:
                out.tool_calls.append((tc.id, tc.function.name, msgspec.json.decode(tc.function.arguments)))
            return out
        s = await c.chat.completions.create(model=model, messages=messages, stream=True, **kwargs)  # type: ignore[call-overload]
        calls: dict[int, list[str]] = {}
        async for chunk in s:
            if not chunk.choices:
                continue
            d = chunk.choices[0].delta
            out.text += d.content or ""
            out.reasoning += (d.model_extra or {}).get("reasoning_content") or ""
            for tc in d.tool_calls or []:
                slot = calls.setdefault(tc.index, ["", "", ""])
                slot[0] = tc.id or slot[0]
                slot[1] += (tc.function.name or "") if tc.function else ""
                slot[2] += (tc.function.arguments or "") if tc.function else ""
        for _, (cid, name, args) in sorted(calls.items()):
            out.tool_calls.append((cid, name, msgspec.json.decode(args or "{}")))
        return out


async def call_responses(p: ProxyHandle, model: str, stream: bool, turn: str, tool_id: str = "") -> Result:
    inp: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    kwargs: dict[str, Any] = {}
    if turn == "image":
        inp = [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe this image"},
                    {"type": "input_image", "detail": "auto", "image_url": f"data:image/png;base64,{PNG_B64}"},
                ],
            }
        ]
    if turn in ("tool", "tool_result"):
        kwargs["tools"] = [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather",
                "parameters": WEATHER_SCHEMA,
                "strict": False,
            }
        ]
    if turn == "tool_result":
        inp += [
            {"type": "function_call", "call_id": tool_id, "name": "get_weather", "arguments": '{"city": "Paris"}'},
            {"type": "function_call_output", "call_id": tool_id, "output": "sunny, 24C"},
        ]
    if turn == "thinking":
        kwargs["reasoning"] = {"effort": "high", "summary": "auto"}
    async with openai.AsyncOpenAI(base_url=p.v1, api_key=KEY, max_retries=0) as c:
        if stream:
            async with c.responses.stream(model=model, input=inp, **kwargs) as s:  # type: ignore[arg-type]
                async for _ in s:
                    pass
                resp = await s.get_final_response()
        else:
            resp = await c.responses.create(model=model, input=inp, **kwargs)  # type: ignore[arg-type]
    out = Result()
    for item in resp.output:
        if item.type == "message":
            out.text += "".join(getattr(part, "text", "") for part in item.content)
        elif item.type == "function_call":
            out.tool_calls.append((item.call_id, item.name, msgspec.json.decode(item.arguments or "{}")))
        elif item.type == "reasoning":
            out.reasoning += "".join(s.text for s in item.summary)
            out.reasoning += "".join(c.text for c in (item.content or []))
    return out


async def call_claude(p: ProxyHandle, model: str, stream: bool, turn: str, tool_id: str = "") -> Result:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    kwargs: dict[str, Any] = {"max_tokens": 4096}
    if turn == "image":
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this image"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                ],
            }
        ]
    if turn in ("tool", "tool_result"):
        kwargs["tools"] = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}]
    if turn == "tool_result":
        messages += [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": "Paris"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "sunny, 24C"}]},
        ]
    if turn == "thinking":
        kwargs["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    async with anthropic.AsyncAnthropic(base_url=p.url, api_key=KEY, max_retries=0) as c:
        if stream:
            async with c.messages.stream(model=model, messages=messages, **kwargs) as s:  # type: ignore[arg-type]
                msg = await s.get_final_message()
        else:
            msg = await c.messages.create(model=model, messages=messages, **kwargs)  # type: ignore[arg-type]
    out = Result()
    for block in msg.content:
        if block.type == "text":
            out.text += block.text
        elif block.type == "thinking":
            out.reasoning += block.thinking
        elif block.type == "tool_use":
            out.tool_calls.append((block.id, block.name, dict(block.input)))  # type: ignore[arg-type]
    return out


def gemini_contents(turn: str, tool_id: str) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": "What is the weather in Paris?"}]}]
    if turn == "image":
        contents = [
            {
                "role": "user",
                "parts": [{"text": "Describe this image"}, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}],
            }
        ]
    if turn == "tool_result":
        contents += [
            {
                "role": "model",
                "parts": [{"functionCall": {"id": tool_id, "name": "get_weather", "args": {"city": "Paris"}}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": tool_id, "name": "get_weather", "response": {"result": "sunny, 24C"}}}
                ],
            },
        ]
    return contents


def gemini_result(resp: dict[str, Any], out: Result) -> None:
    for cand in resp.get("candidates") or []:
        for part in (cand.get("content") or {}).get("parts") or []:
            if "text" in part:
                if part.get("thought"):
                    out.reasoning += part["text"]
                else:
                    out.text += part["text"]
            if "functionCall" in part:
                fc = part["functionCall"]
                out.tool_calls.append((fc.get("id") or "", fc["name"], fc.get("args") or {}))


async def call_gemini(p: ProxyHandle, model: str, stream: bool, turn: str, tool_id: str = "") -> Result:
    client = genai.Client(api_key=KEY, http_options=gt.HttpOptions(base_url=p.url, api_version="v1beta"))
    config: dict[str, Any] = {}
    if turn in ("tool", "tool_result"):
        config["tools"] = [
            gt.Tool(
                function_declarations=[
                    gt.FunctionDeclaration(
                        name="get_weather", description="Weather", parameters_json_schema=WEATHER_SCHEMA
                    )
                ]
            )
        ]
        config["automatic_function_calling"] = gt.AutomaticFunctionCallingConfig(disable=True)
    if turn == "thinking":
        config["thinking_config"] = gt.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
    contents = [gt.Content.model_validate(c) for c in gemini_contents(turn, tool_id)]
    out = Result()
    cfg = gt.GenerateContentConfig(**config) if config else None
    if stream:
        async for chunk in await client.aio.models.generate_content_stream(model=model, contents=contents, config=cfg):
            gemini_result(chunk.model_dump(mode="json", by_alias=True, exclude_none=True), out)
    else:
        r = await client.aio.models.generate_content(model=model, contents=contents, config=cfg)
        gemini_result(r.model_dump(mode="json", by_alias=True, exclude_none=True), out)
    return out


async def call_gemini_cli(p: ProxyHandle, model: str, stream: bool, turn: str, tool_id: str = "") -> Result:
    request: dict[str, Any] = {"contents": gemini_contents(turn, tool_id)}
    if turn in ("tool", "tool_result"):
        request["tools"] = [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "description": "Weather", "parametersJsonSchema": WEATHER_SCHEMA}
                ]
            }
        ]
    if turn == "thinking":
        request["generationConfig"] = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048}}
    body = {"model": model, "project": "my-project", "user_prompt_id": "p1", "request": request}
    out = Result()
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(timeout=30) as http:
        if stream:
            async with http.stream(
                "POST", p.url + "/v1internal:streamGenerateContent?alt=sse", json=body, headers=headers
            ) as r:
                assert r.status_code == 200, await r.aread()
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        chunk = msgspec.json.decode(line[5:].strip())
                        assert "response" in chunk, chunk
                        gemini_result(chunk["response"], out)
        else:
            r = await http.post(p.url + "/v1internal:generateContent", json=body, headers=headers)
            assert r.status_code == 200, r.text
            gemini_result(r.json()["response"], out)
    return out


CALLERS = {
    "openai": call_openai,
    "responses": call_responses,
    "claude": call_claude,
    "gemini": call_gemini,
    "gemini-cli": call_gemini_cli,
}


def combos() -> list[Any]:
    return [pytest.param(c, u, id=f"{c}->{u}") for c in CLIENTS for u in UPSTREAMS]


# ------------------------------------------------------------------------------------------ scenarios


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("client", "upstream"), combos())
async def test_text(env: Any, client: str, upstream: str, stream: bool) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(Reply(text="Hello from the upstream model", chunks=4))
    out = await CALLERS[client](env.proxy, env.models[upstream], stream, "text")
    assert out.text == "Hello from the upstream model"
    assert fake.validation_errors == []
    assert len(fake.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("client", "upstream"), combos())
async def test_tool_round_trip(env: Any, client: str, upstream: str, stream: bool) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(
        Reply(tool_calls=[ToolCall(id="call_abc123", name="get_weather", arguments={"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    model = env.models[upstream]
    first = await CALLERS[client](env.proxy, model, stream, "tool")
    assert len(first.tool_calls) == 1, first
    tool_id, name, args = first.tool_calls[0]
    assert name == "get_weather" and args == {"city": "Paris"}
    sent_tools = fake.requests[0].body.decode()
    assert "get_weather" in sent_tools and "City name" in sent_tools
    second = await CALLERS[client](env.proxy, model, stream, "tool_result", tool_id or "call_abc123")
    assert second.text == "It is sunny in Paris."
    upstream_body = fake.requests[1].body.decode()
    assert "sunny, 24C" in upstream_body and "get_weather" in upstream_body
    assert fake.validation_errors == []


@pytest.mark.parametrize(("client", "upstream"), combos())
async def test_image(env: Any, client: str, upstream: str) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(Reply(text="A red pixel."))
    out = await CALLERS[client](env.proxy, env.models[upstream], False, "image")
    assert out.text == "A red pixel."
    assert PNG_B64 in fake.requests[0].body.decode()
    assert fake.validation_errors == []


THINKING_MARKERS = {
    "openai": "reasoning_effort",
    "responses": '"reasoning"',
    "claude": '"thinking"',
    "gemini": "thinkingConfig",
}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(("client", "upstream"), combos())
async def test_thinking(env: Any, client: str, upstream: str, stream: bool) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(Reply(reasoning="Let me think about Paris.", signature="c2lnbmF0dXJl", text="Sunny."))
    out = await CALLERS[client](env.proxy, env.models[upstream], stream, "thinking")
    assert out.text == "Sunny."
    assert THINKING_MARKERS[upstream] in fake.requests[0].body.decode()
    # Every client dialect has a place for reasoning text; it must arrive there.
    assert "Let me think about Paris." in out.reasoning
    assert fake.validation_errors == []
