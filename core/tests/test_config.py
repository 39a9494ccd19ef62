"""Config loading: reference configs load unchanged, bad values name file, line and key."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from cliproxy.config import NOT_YET_ACTIVE, ConfigError, inactive_settings, load_settings
from cliproxy.registries import ConfigSection

#: The example config.yaml published in CLIProxyAPI's README, kept verbatim as test data.
REFERENCE_EXAMPLE = Path(__file__).resolve().parent / "data" / "reference-example-config.yaml"

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


def test_reference_style_config_loads_unchanged(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, REFERENCE_STYLE))
    assert s.warnings == []
    assert s.port == 8317 and s.request_retry == 3
    assert s.api_keys == ["your-api-key-1", "your-api-key-2"]
    assert s.auth_dir == str(Path.home() / ".cli-proxy-api")  # ~ expanded
    # legacy generative-language keys merged into gemini-api-key, de-duplicated
    assert [g.api_key for g in s.gemini_api_key] == ["AIzaSy...01", "AIzaSy...02", "AIzaSy...03"]
    assert s.gemini_api_key[0].headers == {"X-Custom-Header": "custom-value"}
    assert s.claude_api_key[1].models[0].alias == "sonnet"
    compat = s.openai_compatibility[0]
    assert compat.name == "openrouter" and len(compat.api_key_entries) == 2
    assert compat.api_key_entries[0].proxy_url == "socks5://proxy.example.com:1080"
    assert s.quota_exceeded.switch_project is True


def test_example_from_reference_readme_loads(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, REFERENCE_EXAMPLE.read_text()))
    assert s.warnings == []
    assert s.openai_compatibility[0].models[0].alias == "kimi-k2"


def test_keys_without_effect_yet_are_named_only_when_set(tmp_path: Path) -> None:
    assert inactive_settings(load_settings(write(tmp_path, "port: 1\nws-auth: false\nrequest-log: false\n"))) == []
    # The reference example leaves the management API off but turns usage statistics on.
    example = load_settings(write(tmp_path, REFERENCE_EXAMPLE.read_text()))
    assert inactive_settings(example) == [
        "'usage-statistics-enabled' is set but has no effect: cliproxy does not implement usage statistics yet"
    ]
    every = load_settings(
        write(
            tmp_path,
            "remote-management:\n  secret-key: s3cret\nws-auth: true\nusage-statistics-enabled: true\n"
            "request-log: true\n",
        )
    )
    notices = inactive_settings(every)
    assert [n.split("'")[1] for n in notices] == list(NOT_YET_ACTIVE)
    assert every.warnings == []  # accepted keys: notices, not config problems
    assert not any("s3cret" in n for n in notices)


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
        load_settings(write(tmp_path, text))
    assert str(exc.value).startswith(expected)


def test_unknown_keys_are_warnings_with_lines(tmp_path: Path) -> None:
    s = load_settings(
        write(
            tmp_path,
            "port: 1\nfrobnicate: 1\nopenai-compatibility:\n  - name: a\n    base-url: http://x\n    api-kye: z\n",
        )
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
    s = load_settings(write(tmp_path, "openai-compatibility:\n  - name: a\n"))
    assert s.openai_compatibility == []
    assert "has no base-url" in s.warnings[0]


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
