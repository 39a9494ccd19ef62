"""A fresh install with no upstream credential says so, and how to add one, in every caller's shape."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from cliproxy.testing.proxy import run_proxy

KEY = "sk-fresh-install"


def assert_explains(message: str) -> None:
    assert "no upstream credentials configured" in message
    assert "config.yaml" in message and "cliproxy login <provider>" in message
    assert "unknown provider" not in message


async def test_model_request_without_any_credential_explains_how_to_add_one() -> None:
    async with run_proxy(f"api-keys: [{KEY}]\n") as proxy:
        assert proxy.container.pool().credentials() == []
        oai = openai.AsyncOpenAI(base_url=proxy.v1, api_key=KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError) as exc:
            await oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        body = exc.value.body
        assert isinstance(body, dict) and body["code"] == "no_credentials"
        assert_explains(str(body["message"]))

        claude = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=KEY, max_retries=0)
        with pytest.raises(anthropic.BadRequestError) as cexc:
            await claude.messages.create(model="sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert_explains(cexc.value.message)

        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{proxy.url}/v1beta/models/gemini-2.5-pro:generateContent",
                headers={"x-goog-api-key": KEY},
                json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            )
        assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert_explains(r.json()["error"]["message"])
