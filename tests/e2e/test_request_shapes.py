"""Malformed requests get a 400 in the caller's shape before any upstream call, on the pass-through path too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.usefixtures("fresh_pool")]

USER = [{"role": "user", "content": "x"}]
CONTENTS = [{"role": "user", "parts": [{"text": "x"}]}]

#: (route, upstream of the same dialect, path suffix, body, what the message names)
CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("openai", "openai", "/v1/chat/completions", {"messages": "hello"}, "messages: expected an array, got a string"),
    ("openai", "openai", "/v1/chat/completions", {"messages": {"a": 1}}, "messages: expected an array, got an object"),
    ("openai", "openai", "/v1/chat/completions", {"messages": []}, "messages: must contain at least one message"),
    ("openai", "openai", "/v1/chat/completions", {"messages": ["hi"]}, "messages[0]: expected an object"),
    ("openai", "openai", "/v1/chat/completions", {}, "messages: required"),
    ("responses", "responses", "/v1/responses", {"input": {"a": 1}}, "input: expected a string or an array"),
    ("responses", "responses", "/v1/responses", {}, "input: required"),
    ("claude", "claude", "/v1/messages", {"messages": USER}, "max_tokens: required"),
    ("claude", "claude", "/v1/messages", {"messages": "hi", "max_tokens": 5}, "messages: expected an array"),
    ("claude", "claude", "/v1/messages", {"messages": [], "max_tokens": 5}, "messages: must contain"),
    ("claude", "claude", "/v1/messages", {"messages": USER, "max_tokens": "5"}, "max_tokens: expected an integer"),
    ("claude", "claude", "/v1/messages/count_tokens", {}, "messages: required"),
    ("gemini", "gemini", ":generateContent", {}, "contents: required"),
    ("gemini", "gemini", ":streamGenerateContent?alt=sse", {"contents": []}, "contents: required"),
    ("gemini", "gemini", ":generateContent", {"contents": "hi"}, "contents: expected an array, got a string"),
    ("gemini", "gemini", ":countTokens", {"contents": [1]}, "contents[0]: expected an object"),
]


def shape_message(route: str, body: dict[str, Any]) -> str:
    """The error message, from the body shape the caller's API uses (and only that shape)."""
    if route == "claude":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        return str(body["error"]["message"])
    err = body["error"]
    if route == "gemini":
        assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT", body
    else:
        assert err["type"] == "invalid_request_error" and set(err) == {"message", "type", "param", "code"}, body
    return str(err["message"])


@pytest.mark.parametrize(("route", "upstream", "path", "body", "expected"), CASES)
async def test_malformed_request_is_refused_before_the_upstream(
    env: Any, route: str, upstream: str, path: str, body: dict[str, Any], expected: str
) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    model = env.models[upstream]
    if route == "gemini":
        url = f"{env.proxy.url}/v1beta/models/{model}{path}"
    else:
        url, body = env.proxy.url + path, {"model": model, **body}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(url, headers={"Authorization": f"Bearer {env.key}"}, json=body)
    assert r.status_code == 400, r.text
    assert expected in shape_message(route, r.json())
    assert len(fake.requests) == 0, "a malformed request reached the upstream"


async def test_well_formed_requests_still_pass(env: Any) -> None:
    """The checks accept what the real APIs accept: count_tokens without max_tokens, wrapped Gemini counts."""
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {env.key}"}) as http:
        r = await http.post(
            env.proxy.url + "/v1/messages/count_tokens", json={"model": env.models["claude"], "messages": USER}
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            f"{env.proxy.url}/v1beta/models/{env.models['gemini']}:countTokens",
            json={"generateContentRequest": {"model": f"models/{env.models['gemini']}", "contents": CONTENTS}},
        )
        assert r.status_code == 200, r.text
        r = await http.post(env.proxy.v1 + "/responses", json={"model": env.models["responses"], "input": "hi"})
        assert r.status_code == 200, r.text


async def test_code_assist_request_needs_contents(env: Any) -> None:
    fake = env.fakes["gemini"]
    fake.reset()
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {env.key}"}) as http:
        for body, expected in [
            ({"model": env.models["gemini"], "project": "p"}, "request: required"),
            ({"model": env.models["gemini"], "request": {"contents": []}}, "request.contents: required"),
            ({"model": env.models["gemini"], "request": "hi"}, "request: expected an object, got a string"),
        ]:
            r = await http.post(env.proxy.url + "/v1internal:generateContent", json=body)
            assert r.status_code == 400, r.text
            assert expected in shape_message("gemini", r.json())
    assert len(fake.requests) == 0
