"""Shared end-to-end fixture: one cliproxy serving four fake upstream dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from cliproxy.testing import (
    FakeClaude,
    FakeGemini,
    FakeOpenAIChat,
    FakeOpenAIResponses,
    FakeUpstream,
    serve_on_loopback,
)
from cliproxy.testing.proxy import ProxyHandle, run_proxy

KEY = "sk-matrix-client"
#: Which client-facing model each upstream dialect serves in the shared config.
UPSTREAMS = {
    "openai": "m-openai",
    "responses": "gpt-5",
    "claude": "m-claude",
    "gemini": "gemini-2.5-flash",
}


@dataclass
class Env:
    proxy: ProxyHandle
    fakes: dict[str, FakeUpstream]
    key: str = KEY
    #: upstream dialect -> the client-facing model it serves
    models: dict[str, str] = field(default_factory=lambda: dict(UPSTREAMS))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[Env]:
    fakes: dict[str, FakeUpstream] = {
        "openai": FakeOpenAIChat(keys=["up-openai"]),
        "responses": FakeOpenAIResponses(keys=["up-codex"]),
        "claude": FakeClaude(keys=["up-claude"]),
        "gemini": FakeGemini(keys=["up-gemini"]),
    }
    async with (
        serve_on_loopback(fakes["openai"]) as u_openai,
        serve_on_loopback(fakes["responses"]) as u_resp,
        serve_on_loopback(fakes["claude"]) as u_claude,
        serve_on_loopback(fakes["gemini"]) as u_gemini,
    ):
        config = f"""
api-keys: [{KEY}]
openai-compatibility:
  - name: oai
    base-url: {u_openai}/v1
    api-key-entries:
      - api-key: up-openai
    models:
      - name: gpt-4o-mini
        alias: m-openai
claude-api-key:
  - api-key: up-claude
    base-url: {u_claude}
    models:
      - name: claude-sonnet-4-5-20250929
        alias: m-claude
gemini-api-key:
  - api-key: up-gemini
    base-url: {u_gemini}
codex-api-key:
  - api-key: up-codex
    base-url: {u_resp}/v1
"""
        async with run_proxy(config) as proxy:
            yield Env(proxy, fakes)


@pytest.fixture
def fresh_pool(env: Env) -> None:
    """Cooldowns from a previous test's deliberate failures must not leak into the next test."""
    env.proxy.container.pool().reset_cooldowns()
