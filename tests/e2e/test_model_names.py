"""Every route answers with the model name the client used, whatever the upstream calls its model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import pytest_asyncio

from cliproxy.sse import DONE, SSEParser
from cliproxy.testing import (
    FakeClaude,
    FakeGemini,
    FakeOpenAIChat,
    FakeOpenAIResponses,
    FakeUpstream,
    Reply,
    serve_on_loopback,
)
from cliproxy.testing.proxy import run_proxy

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "sk-model-names"
#: upstream dialect -> (the alias clients use, the upstream's own name)
ALIASES = {
    "openai": ("alias-openai", "up-openai-model"),
    "responses": ("alias-responses", "gpt-5"),
    "claude": ("alias-claude", "claude-sonnet-4-5-20250929"),
    "gemini": ("alias-gemini", "gemini-2.5-flash"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[tuple[str, dict[str, FakeUpstream]]]:
    fakes: dict[str, FakeUpstream] = {
        "openai": FakeOpenAIChat(keys=["k-openai"]),
        "responses": FakeOpenAIResponses(keys=["k-responses"]),
        "claude": FakeClaude(keys=["k-claude"]),
        "gemini": FakeGemini(keys=["k-gemini"]),
    }
    async with (
        serve_on_loopback(fakes["openai"]) as u_openai,
        serve_on_loopback(fakes["responses"]) as u_resp,
        serve_on_loopback(fakes["claude"]) as u_claude,
        serve_on_loopback(fakes["gemini"]) as u_gemini,
    ):

        def models(upstream: str) -> str:
            alias, name = ALIASES[upstream]
            return f"    models: [{{name: {name}, alias: {alias}}}]\n"

        config = (
            f"api-keys: [{KEY}]\n"
            "openai-compatibility:\n"
            f"  - name: oai\n    base-url: {u_openai}/v1\n    api-key-entries: [{{api-key: k-openai}}]\n"
            + models("openai")
            + f"codex-api-key:\n  - api-key: k-responses\n    base-url: {u_resp}/v1\n"
            + models("responses")
            + f"claude-api-key:\n  - api-key: k-claude\n    base-url: {u_claude}\n"
            + models("claude")
            + f"gemini-api-key:\n  - api-key: k-gemini\n    base-url: {u_gemini}\n"
            + models("gemini")
        )
        async with run_proxy(config) as proxy:
            yield proxy.url, fakes


def request(route: str, model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    messages = [{"role": "user", "content": "x"}]
    if route == "openai":
        return "/v1/chat/completions", {"model": model, "stream": stream, "messages": messages}
    if route == "responses":
        return "/v1/responses", {"model": model, "stream": stream, "input": "x"}
    if route == "claude":
        return "/v1/messages", {"model": model, "stream": stream, "max_tokens": 50, "messages": messages}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{action}", {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}


def names(route: str, stream: bool, content: bytes) -> list[str]:
    """Every model name the answer states, in order."""
    if not stream:
        body = msgspec.json.decode(content)
        return [body["modelVersion" if route == "gemini" else "model"]]
    out: list[str] = []
    for ev in SSEParser().feed(content):
        if ev.data == DONE:
            continue
        data = msgspec.json.decode(ev.data)
        if route == "openai" or route == "gemini":
            out.append(data["modelVersion" if route == "gemini" else "model"])
        elif route == "responses" and isinstance(data.get("response"), dict):
            out.append(data["response"]["model"])
        elif route == "claude" and ev.event == "message_start":
            out.append(data["message"]["model"])
    return out


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("upstream", list(ALIASES))
@pytest.mark.parametrize("route", ["openai", "responses", "claude", "gemini"])
async def test_answer_names_the_alias(
    env: tuple[str, dict[str, FakeUpstream]], route: str, upstream: str, stream: bool
) -> None:
    url, fakes = env
    alias, upstream_name = ALIASES[upstream]
    fake = fakes[upstream]
    fake.reset()
    fake.script(Reply(text="a b c", chunks=3))
    path, body = request(route, alias, stream)
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(url + path, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    assert fake.last.model == upstream_name or upstream_name in fake.last.path
    seen = names(route, stream, r.content)
    assert seen and set(seen) == {alias}, seen
