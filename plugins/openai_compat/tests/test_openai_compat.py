"""cliproxy-openai-compat on its own: credentials from config and the executor against a fake upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.config import load_settings
from cliproxy.errors import UpstreamError
from cliproxy.http import HttpClients
from cliproxy.protocols import UpstreamCall
from cliproxy.testing import FakeOpenAIChat, Reply, serve_on_loopback
from cliproxy_openai_compat.executor import OpenAICompatExecutor
from cliproxy_openai_compat.plugin import credentials_from_config

CONFIG = """\
openai-compatibility:
  - name: OpenRouter
    base-url: {base}
    headers:
      HTTP-Referer: https://example.com
    api-key-entries:
      - api-key: k1
        proxy-url: socks5://127.0.0.1:1080
      - api-key: k2
    models:
      - name: moonshotai/kimi-k2:free
        alias: kimi-k2
  - name: legacy
    base-url: http://legacy/v1
    api-keys: [a, b]
  - name: local
    base-url: http://localhost:11434/v1
"""


def creds(tmp_path: Path, base: str = "http://x/v1") -> list:  # type: ignore[type-arg]
    p = tmp_path / "config.yaml"
    p.write_text(CONFIG.format(base=base))
    return credentials_from_config(load_settings(p))


def test_one_credential_per_key_with_stable_ids(tmp_path: Path) -> None:
    cs = creds(tmp_path)
    assert [(c.provider, c.api_key, c.proxy_url) for c in cs] == [
        ("openrouter", "k1", "socks5://127.0.0.1:1080"),
        ("openrouter", "k2", None),
        ("legacy", "a", None),
        ("legacy", "b", None),
        ("local", None, None),  # a key-less entry still yields one credential
    ]
    assert all(c.executor == "openai-compat" for c in cs)
    assert [c.id for c in cs] == [c.id for c in creds(tmp_path)]  # same config, same ids
    assert len({c.id for c in cs}) == len(cs)
    assert cs[0].upstream_model("KIMI-K2") == "moonshotai/kimi-k2:free"
    assert cs[0].headers == {"HTTP-Referer": "https://example.com"}


async def test_executor_posts_to_chat_completions_with_bearer_and_headers(tmp_path: Path) -> None:
    fake = FakeOpenAIChat(keys=["k1", "k2"])
    async with serve_on_loopback(fake) as url:
        cred = creds(tmp_path, url + "/v1")[1]
        http = HttpClients()
        ex = OpenAICompatExecutor(http)
        try:
            fake.script(Reply(text="ok"))
            call = UpstreamCall(
                model="m", body=b'{"model":"m","messages":[{"role":"user","content":"x"}]}', stream=False
            )
            resp = await ex.execute(call, cred)
            assert b'"ok"' in resp.body
            rec = fake.last
            assert rec.path == "/v1/chat/completions"
            assert rec.header("authorization") == "Bearer k2"
            assert rec.header("http-referer") == "https://example.com"
            assert rec.header("user-agent") == "cliproxy-openai-compat"
            fake.script(Reply(status=429, error_message="slow down", retry_after=7))
            with pytest.raises(UpstreamError) as exc:
                await ex.execute(call, cred)
            assert exc.value.status == 429 and exc.value.retry_after == 7
        finally:
            await http.aclose()
