"""cliproxy-openai-compat on its own: credentials from config and the executor against a fake upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.config import ConfigError, Settings, load_settings
from cliproxy.errors import UpstreamError
from cliproxy.http import HttpClients
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import UpstreamCall
from cliproxy.testing import FakeOpenAIChat, Reply, serve_on_loopback
from cliproxy_openai_compat import plugin
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


def settings_from(tmp_path: Path, text: str) -> Settings:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[plugin]))
    return load_settings(p, dict(host.config_sections().items))


def creds(tmp_path: Path, base: str = "http://x/v1") -> list:  # type: ignore[type-arg]
    return credentials_from_config(settings_from(tmp_path, CONFIG.format(base=base)))


def test_section_is_checked_with_file_and_line(tmp_path: Path) -> None:
    s = settings_from(
        tmp_path,
        "port: 1\nopenai-compatibility:\n  - name: ' a '\n    base-url: http://x\n    api-kye: z\n  - name: nourl\n",
    )
    [entry] = s.section("openai-compatibility")
    assert (entry.name, entry.base_url) == ("a", "http://x")
    assert s.warnings == [
        "config.yaml:5: unknown key 'openai-compatibility[0].api-kye' ignored",
        "config.yaml:6: openai-compatibility[1]: entry 'nourl' has no base-url; ignored",
    ]
    with pytest.raises(ConfigError) as exc:
        settings_from(tmp_path, "openai-compatibility:\n  - base-url: http://x\n")
    assert str(exc.value) == "config.yaml:2: openai-compatibility[0].name: required"
    with pytest.raises(ConfigError) as exc:
        settings_from(tmp_path, "openai-compatibility:\n  - name: x\n    base-url: http://h\n    models: [{name: 3}]\n")
    assert str(exc.value) == "config.yaml:4: openai-compatibility[0].models[0].name: expected a string, got 3"


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
    # ``OpenRouter://<any model>`` reaches these credentials (the name as configured is the prefix).
    assert [c.dynamic_prefix for c in cs] == ["OpenRouter", "OpenRouter", "legacy", "legacy", "local"]
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
