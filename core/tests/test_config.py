"""Config loading: reference configs load unchanged, bad values name file, line and key."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cliproxy import config
from cliproxy.config import ConfigError, load_settings
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.registries import ConfigIssues, ConfigSection

# CI checks the repository out with ../shared beside it.
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "CLIProxyAPI-README.md"

REFERENCE_STYLE = """\
port: 8317
remote-management:
  allow-remote: false
  secret-key: ""
  disable-control-panel: false
auth-dir: "~/.cli-proxy-api"
api-keys:
  - "your-api-key-1"
  - "your-api-key-2"
debug: false
logging-to-file: false
usage-statistics-enabled: true
proxy-url: ""
request-retry: 3
quota-exceeded:
   switch-project: true
   switch-preview-model: true
gemini-api-key:
  - api-key: "AIzaSy...01"
    base-url: "https://generativelanguage.googleapis.com"
    headers:
      X-Custom-Header: "custom-value"
    proxy-url: "socks5://proxy.example.com:1080"
  - api-key: "AIzaSy...02"
generative-language-api-key:
  - "AIzaSy...02"
  - "AIzaSy...03"
codex-api-key:
  - api-key: "sk-atSM..."
    base-url: "https://www.example.com"
    proxy-url: "socks5://proxy.example.com:1080"
claude-api-key:
  - api-key: "sk-atSM..."
  - api-key: "sk-atSM..."
    base-url: "https://www.example.com"
    models:
      - name: claude-sonnet-4-5-20250929
        alias: sonnet
openai-compatibility:
  - name: "openrouter"
    base-url: "https://openrouter.ai/api/v1"
    api-key-entries:
      - api-key: "sk-or-v1-...b780"
        proxy-url: "socks5://proxy.example.com:1080"
      - api-key: "sk-or-v1-...b781"
    models:
      - name: "moonshotai/kimi-k2:free"
        alias: "kimi-k2"
ws-auth: false
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@cache
def plugin_sections() -> Mapping[str, ConfigSection]:
    """The sections the installed provider plugins claim (they own the reference provider keys)."""
    return dict(PluginHost(make_plugin_manager(disabled=())).config_sections().items)


def test_reference_style_config_loads_unchanged(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, REFERENCE_STYLE), plugin_sections())
    assert s.warnings == []
    assert s.port == 8317 and s.request_retry == 3
    assert s.api_keys == ["your-api-key-1", "your-api-key-2"]
    assert s.auth_dir == str(Path.home() / ".cli-proxy-api")  # ~ expanded
    assert [g.api_key for g in s.section("gemini-api-key")] == ["AIzaSy...01", "AIzaSy...02"]
    assert s.section("generative-language-api-key") == ["AIzaSy...02", "AIzaSy...03"]
    assert s.section("gemini-api-key")[0].headers == {"X-Custom-Header": "custom-value"}
    assert s.section("claude-api-key")[1].models[0].alias == "sonnet"
    compat = s.section("openai-compatibility")[0]
    assert compat.name == "openrouter" and len(compat.api_key_entries) == 2
    assert compat.api_key_entries[0].proxy_url == "socks5://proxy.example.com:1080"
    assert s.quota_exceeded.switch_project is True
    # The plugins turn it into the same credentials (ids keep cooldowns across versions) as before they owned it.
    host = PluginHost(make_plugin_manager(disabled=()))
    creds = sorted(host.credentials_from_config(s), key=lambda c: c.id)
    assert [(c.id, c.api_key, c.base_url, c.proxy_url) for c in creds] == [
        ("claude:apikey:2f04386ee144", "sk-atSM...", "https://www.example.com", None),
        ("claude:apikey:6221bee0865a", "sk-atSM...", None, None),
        ("codex:apikey:80fa5aa45c22", "sk-atSM...", "https://www.example.com", "socks5://proxy.example.com:1080"),
        (
            "gemini:apikey:440e3fdf69c9",
            "AIzaSy...01",
            "https://generativelanguage.googleapis.com",
            "socks5://proxy.example.com:1080",
        ),
        ("gemini:apikey:a23b2a078579", "AIzaSy...03", None, None),
        ("gemini:apikey:a57d845c29f0", "AIzaSy...02", None, None),
        (
            "openai-compatibility:openrouter:39b247d672fd",
            "sk-or-v1-...b780",
            "https://openrouter.ai/api/v1",
            "socks5://proxy.example.com:1080",
        ),
        ("openai-compatibility:openrouter:bf6c2eecf7d1", "sk-or-v1-...b781", "https://openrouter.ai/api/v1", None),
    ]


def test_example_from_reference_readme_loads(tmp_path: Path) -> None:
    text = REFERENCE.read_text()
    start = text.index("### Example Configuration File")
    block = text[text.index("```yaml", start) + len("```yaml") : text.index("```", text.index("```yaml", start) + 7)]
    s = load_settings(write(tmp_path, block), plugin_sections())
    assert s.warnings == []
    assert s.section("openai-compatibility")[0].models[0].alias == "kimi-k2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('debug: false\n\nport: "abc"\n', 'config.yaml:3: port: expected an integer, got "abc"'),
        ("api-keys: 5\n", "config.yaml:1: api-keys: expected a list, got 5"),
        (
            "openai-compatibility:\n  - name: x\n    base-url: http://h\n    models:\n      - name: 3\n",
            "config.yaml:5: openai-compatibility[0].models[0].name: expected a string, got 3",
        ),
        ("request-retry: -1\n", "config.yaml:1: request-retry: must be >= 0, got -1"),
        ("port: 70000\n", "config.yaml:1: port: must be between 0 and 65535, got 70000"),
        ("debug: [\n", "config.yaml:2: invalid YAML"),
        ("- just\n- a list\n", "config.yaml:1: the config must be a mapping"),
        (
            "remote-management:\n  allow-remote: maybe\n",
            'config.yaml:2: remote-management.allow-remote: expected a boolean (true/false), got "maybe"',
        ),
    ],
)
def test_invalid_values_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, text), plugin_sections())
    assert str(exc.value).startswith(expected)


def test_unknown_keys_are_warnings_with_lines(tmp_path: Path) -> None:
    s = load_settings(
        write(
            tmp_path,
            "port: 1\nfrobnicate: 1\nopenai-compatibility:\n  - name: a\n    base-url: http://x\n    api-kye: z\n",
        ),
        plugin_sections(),
    )
    assert s.port == 1
    assert s.warnings == [
        "config.yaml:2: unknown key 'frobnicate' ignored",
        "config.yaml:6: unknown key 'openai-compatibility[0].api-kye' ignored",
    ]


def test_missing_file_and_embedded_default(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")
    s = load_settings(None)
    assert s.path is None and s.port == 8317 and s.bind_host == "127.0.0.1"


def test_bind_host_is_local_without_client_keys(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "port: 1\n")).bind_host == "127.0.0.1"
    assert load_settings(write(tmp_path, "api-keys: [k]\n")).bind_host == "0.0.0.0"
    assert load_settings(write(tmp_path, "host: 10.1.2.3\n")).bind_host == "10.1.2.3"


def test_compat_entry_without_base_url_is_dropped_with_warning(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "openai-compatibility:\n  - name: a\n"), plugin_sections())
    assert s.section("openai-compatibility") == []
    assert "has no base-url" in s.warnings[0]


@pytest.mark.parametrize(
    ("installed", "tail"),
    [
        (False, "which is not installed: pip install {dist}"),
        (True, "which is installed but not loaded (disabled in CLIPROXY_DISABLE_PLUGINS, or it failed to load: "),
    ],
)
def test_provider_key_without_its_plugin_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: bool, tail: str
) -> None:
    monkeypatch.setattr(config, "_installed", lambda dist: installed)
    s = load_settings(write(tmp_path, REFERENCE_STYLE + "claude-api-key-empty: 1\n"))  # no plugin sections at all
    expected = [
        (18, "gemini-api-key", "cliproxy-gemini"),
        (25, "generative-language-api-key", "cliproxy-gemini"),
        (28, "codex-api-key", "cliproxy-codex"),
        (32, "claude-api-key", "cliproxy-claude"),
        (39, "openai-compatibility", "cliproxy-openai-compat"),
    ]
    assert len(s.warnings) == len(expected) + 1
    for warning, (line, key, dist) in zip(s.warnings, expected, strict=False):
        assert warning.startswith(f"config.yaml:{line}: {key} is handled by the {dist} plugin, ")
        assert tail.format(dist=dist) in warning
    assert s.warnings[len(expected) :] == ["config.yaml:50: unknown key 'claude-api-key-empty' ignored"]
    # An empty section loses nothing, so it is not worth a warning.
    assert load_settings(write(tmp_path, "claude-api-key: []\ngemini-api-key:\n")).warnings == []


class Upstream(msgspec.Struct, rename="kebab"):
    name: str = ""
    url: str = ""


def check_upstreams(value: list[Upstream], issues: ConfigIssues) -> list[Upstream]:
    for i, entry in enumerate(value):
        if entry.name == "forbidden":
            issues.error([i, "name"], "this name is reserved")
    kept = [u for u in value if u.url]
    for i, u in enumerate(value):
        if not u.url:
            issues.warn([i], f"{u.name} has no url; ignored")
    return kept


def test_plugin_section_check_reports_located_problems(tmp_path: Path) -> None:
    sections = {"upstreams": ConfigSection("upstreams", list[Upstream], [], check_upstreams)}
    text = "port: 1\nupstreams:\n  - name: a\n    url: http://a\n  - name: b\n    colour: red\n"
    s = load_settings(write(tmp_path, text), sections)
    assert s.section("upstreams") == [Upstream("a", "http://a")]
    # Unknown fields inside a plugin's section are warnings, as they are in core's sections.
    assert s.warnings == [
        "config.yaml:6: unknown key 'upstreams[1].colour' ignored",
        "config.yaml:5: upstreams[1]: b has no url; ignored",
    ]
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "upstreams:\n  - url: http://x\n  - name: forbidden\n"), sections)
    assert str(exc.value) == "config.yaml:3: upstreams[1].name: this name is reserved"
    # The check sees only values that passed type validation, and never runs for an absent section.
    calls: list[Any] = []

    def spy(value: Any, issues: ConfigIssues) -> Any:
        calls.append(value)
        return value

    spied = {"upstreams": ConfigSection("upstreams", list[Upstream], [], spy)}
    assert load_settings(write(tmp_path, "port: 1\n"), spied).section("upstreams") == [] and calls == []

    def broken(value: Any, issues: ConfigIssues) -> Any:
        raise KeyError("oops")

    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "upstreams: []\n"), {"upstreams": ConfigSection("upstreams", list, [], broken)})
    assert str(exc.value) == "config.yaml:1: upstreams: checking failed: KeyError: 'oops'"


def test_legacy_auth_providers_feed_api_keys(tmp_path: Path) -> None:
    text = "auth:\n  providers:\n    - name: x\n      type: config-api-key\n      api-keys: [a, b]\n"
    s = load_settings(write(tmp_path, text))
    assert s.api_keys == ["a", "b"] and s.auth is None


class PluginSection(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    api_key: str
    weight: int = 1


def test_plugin_claimed_sections_are_validated(tmp_path: Path) -> None:
    sections = {"my-plugin": ConfigSection("my-plugin", list[PluginSection], [])}
    s = load_settings(write(tmp_path, "my-plugin:\n  - api-key: a\n    weight: 2\n"), sections)
    assert s.section("my-plugin") == [PluginSection("a", 2)]
    assert load_settings(write(tmp_path, "port: 1\n"), sections).section("my-plugin") == []
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "my-plugin:\n  - api-key: a\n    weight: heavy\n"), sections)
    assert str(exc.value) == 'config.yaml:3: my-plugin[0].weight: expected an integer, got "heavy"'


def test_overrides_apply(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "port: 1\n"), overrides={"port": 9, "host": None})
    assert s.port == 9 and s.host == ""
