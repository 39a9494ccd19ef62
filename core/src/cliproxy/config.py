"""``config.yaml``: typed settings in the reference key names, loaded with precise error locations.

An existing CLIProxyAPI config loads unchanged: the server-wide reference keys are typed here, each provider's
section (``gemini-api-key``, ``openai-compatibility`` ...) is claimed and validated by its plugin through
``register_config``, and anything else is reported as a warning instead of stopping startup. A provider key
whose plugin is missing names the package to install. Invalid values stop startup with
``<file>:<line>: <key>: <problem>``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import msgspec
import yaml

from .registries import ConfigSection

__all__ = [
    "DEFAULT_CONFIG_YAML",
    "PLUGIN_KEYS",
    "ConfigError",
    "QuotaExceeded",
    "RemoteManagement",
    "Settings",
    "load_settings",
    "parse_settings",
]


class _Base(msgspec.Struct, rename="kebab", omit_defaults=True):
    pass


class QuotaExceeded(_Base):
    #: On 429, fail over to another credential/project (``false``: return the 429 to the client).
    switch_project: bool = True
    #: On 429, first retry the same credential on the provider's fallback models (``register_quota_fallbacks``).
    switch_preview_model: bool = True


class RemoteManagement(_Base):
    allow_remote: bool = False
    secret_key: str = ""
    disable_control_panel: bool = False
    panel_github_repository: str = ""


class LegacyAccessProvider(_Base):
    name: str = ""
    type: str = ""
    api_keys: list[str] = []


class LegacyAuth(_Base):
    providers: list[LegacyAccessProvider] = []


class Settings(_Base, kw_only=True):
    #: Bind address. Empty means all interfaces when ``api-keys`` are set, else 127.0.0.1 only.
    host: str = ""
    port: int = 8317
    auth_dir: str = "~/.cli-proxy-api"
    api_keys: list[str] = []
    auth: LegacyAuth | None = None
    debug: bool = False
    logging_to_file: bool = False
    logs_max_total_size_mb: int = 0
    #: ``console`` or ``json``; empty picks console on a TTY, JSON otherwise.
    log_format: str = ""
    usage_statistics_enabled: bool = False
    disable_cooling: bool = False
    proxy_url: str = ""
    request_log: bool = False
    request_retry: int = 0
    #: Longest wait (seconds) for a cooling credential before answering 429 when ``request-retry`` is set.
    max_retry_interval: int = 30
    quota_exceeded: QuotaExceeded = msgspec.field(default_factory=QuotaExceeded)
    ws_auth: bool = False
    remote_management: RemoteManagement = msgspec.field(default_factory=RemoteManagement)
    #: Per-provider URL overrides of subscription logins and their upstreams (``endpoints.claude.token-url``):
    #: providers move these URLs, gateways and mirrors need others, and tests point them at local fakes.
    endpoints: dict[str, dict[str, str]] = {}
    #: Plugin-claimed sections, validated with the plugin's registered type.
    extra: dict[str, Any] = msgspec.field(default_factory=dict, name="__extra__")
    #: Where this config was read from (``None`` for the embedded default).
    path: str | None = msgspec.field(default=None, name="__path__")
    warnings: list[str] = msgspec.field(default_factory=list, name="__warnings__")

    def section(self, key: str) -> Any:
        return self.extra.get(key)

    @property
    def auth_path(self) -> Path:
        return Path(os.path.expanduser(self.auth_dir))

    @property
    def bind_host(self) -> str:
        # The reference listened on every interface even with no client keys, i.e. an open relay.
        if self.host:
            return self.host
        return "0.0.0.0" if self.api_keys else "127.0.0.1"


DEFAULT_CONFIG_YAML = """\
# cliproxy configuration. Keys follow CLIProxyAPI's config.yaml.
port: 8317
auth-dir: "~/.cli-proxy-api"
# Client keys accepted by the proxy. With none, the server only listens on 127.0.0.1.
api-keys: []
request-retry: 1
"""

_REFERENCE_FIELDS = {f.encode_name for f in msgspec.structs.fields(Settings) if not f.encode_name.startswith("__")}

#: Reference keys that a provider plugin handles, and the distribution that provides it. Core only uses this to
#: tell someone whose config has such a key, but not the plugin, what to install.
PLUGIN_KEYS: Final[Mapping[str, str]] = {
    "gemini-api-key": "cliproxy-gemini",
    "generative-language-api-key": "cliproxy-gemini",
    "claude-api-key": "cliproxy-claude",
    "codex-api-key": "cliproxy-codex",
    "openai-compatibility": "cliproxy-openai-compat",
}


class ConfigError(Exception):
    """Invalid configuration; ``str()`` is ready to show (``config.yaml:3: port: expected an integer ...``)."""


def _expand(value: str) -> str:
    return os.path.expanduser(value) if value.startswith("~") else value


def load_settings(
    path: str | os.PathLike[str] | None,
    sections: Mapping[str, ConfigSection] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read and validate a config file; ``None`` (or a missing default file) gives the embedded default."""
    if path is None:
        text, name = DEFAULT_CONFIG_YAML, None
    else:
        p = Path(os.path.expanduser(os.fspath(path)))
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
        name = str(p)
    settings = parse_settings(text, name, sections or {})
    if overrides:
        settings = msgspec.structs.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    return settings


def parse_settings(text: str, name: str | None, sections: Mapping[str, ConfigSection]) -> Settings:
    label = os.path.basename(name) if name else "<default config>"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}:1: the config must be a mapping of keys, got {type(raw).__name__}")
    warnings: list[str] = []
    extra: dict[str, Any] = {}
    core_raw: dict[str, Any] = {}
    for key, value in raw.items():
        k = str(key)
        if k in sections:
            sec = sections[k]
            if value is None:
                extra[k] = sec.default
                continue
            converted = _convert(value, sec.type, root, label, [k])
            _warn_nested(value, sec.type, root, label, [k], warnings)
            if sec.check is not None:
                try:
                    converted = sec.check(converted, _Issues(root, label, k, warnings))
                except ConfigError:
                    raise
                except Exception as exc:  # a plugin bug: one clear line, not a traceback at startup
                    line = _line_of(root, [k])
                    raise ConfigError(f"{label}:{line}: {k}: checking failed: {type(exc).__name__}: {exc}") from None
            extra[k] = converted
        elif k in _REFERENCE_FIELDS:
            if value is not None:
                core_raw[k] = value
        elif k in PLUGIN_KEYS:
            if value:  # an empty section loses nothing without its plugin
                warnings.append(f"{label}:{_line_of(root, [k])}: {_missing_plugin(k, PLUGIN_KEYS[k])}")
        else:
            line = _line_of(root, [k])
            warnings.append(f"{label}:{line}: unknown key {k!r} ignored")
    for sec in sections.values():
        extra.setdefault(sec.key, sec.default)
    settings: Settings = _convert(core_raw, Settings, root, label, [])
    _warn_nested(core_raw, Settings, root, label, [], warnings)
    settings.extra = extra
    settings.path = name
    settings.warnings = warnings
    _normalise(settings, root, label)
    return settings


def _normalise(s: Settings, root: yaml.Node | None, label: str) -> None:
    if not 0 <= s.port <= 65535:
        raise ConfigError(f"{label}:{_line_of(root, ['port'])}: port: must be between 0 and 65535, got {s.port}")
    if s.request_retry < 0:
        line = _line_of(root, ["request-retry"])
        raise ConfigError(f"{label}:{line}: request-retry: must be >= 0, got {s.request_retry}")
    s.auth_dir = _expand(s.auth_dir.strip()) if s.auth_dir.strip() else _expand("~/.cli-proxy-api")
    s.api_keys = [k.strip() for k in s.api_keys if k and k.strip()]
    if s.auth is not None:
        # Legacy ``auth.providers`` of type config-api-key feed api-keys when the top-level list is empty.
        if not s.api_keys:
            for prov in s.auth.providers:
                if prov.type in ("", "config-api-key"):
                    s.api_keys.extend(k.strip() for k in prov.api_keys if k.strip())
        s.auth = None


def _missing_plugin(key: str, dist: str) -> str:
    if _installed(dist):
        return (
            f"{key} is handled by the {dist} plugin, which is installed but not loaded "
            "(disabled in CLIPROXY_DISABLE_PLUGINS, or it failed to load: see `cliproxy plugins list`)"
        )
    return f"{key} is handled by the {dist} plugin, which is not installed: pip install {dist}"


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


class _Issues:
    """``ConfigIssues`` for one plugin section: problems located at ``<file>:<line>: <key path>``."""

    __slots__ = ("key", "label", "root", "warnings")

    def __init__(self, root: yaml.Node | None, label: str, key: str, warnings: list[str]) -> None:
        self.root, self.label, self.key, self.warnings = root, label, key, warnings

    def _where(self, path: Sequence[str | int]) -> str:
        full: list[str | int] = [self.key, *path]
        return f"{self.label}:{_line_of(self.root, full)}: {_dotted(full)}"

    def warn(self, path: Sequence[str | int], message: str) -> None:
        self.warnings.append(f"{self._where(path)}: {message}")

    def error(self, path: Sequence[str | int], message: str) -> NoReturn:
        raise ConfigError(f"{self._where(path)}: {message}")


# ------------------------------------------------------------------------------------ error locations

_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_TYPE_WORDS = {
    "int": "an integer",
    "str": "a string",
    "bool": "a boolean (true/false)",
    "float": "a number",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _convert(value: Any, typ: Any, root: yaml.Node | None, label: str, prefix: list[str | int]) -> Any:
    try:
        return msgspec.convert(value, typ, strict=True)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        msg = str(exc)
        path: list[str | int] = list(prefix)
        m = _MSGSPEC_PATH.search(msg)
        if m:
            msg = msg[: m.start()]
            for key, idx in _PATH_TOKEN.findall(m.group(1)):
                path.append(int(idx) if idx else key)
        problem = _describe(msg, _value_at(value, path[len(prefix) :]))
        raise ConfigError(f"{label}:{_line_of(root, path)}: {_dotted(path)}: {problem}") from None


def _describe(msg: str, actual: Any) -> str:
    m = re.match(r"Expected `([^`]+)`, got `([^`]+)`", msg)
    if m:
        wanted = " or ".join(_TYPE_WORDS.get(t.strip(), t.strip()) for t in m.group(1).split("|"))
        got = f'"{actual}"' if isinstance(actual, str) else repr(actual) if actual is not None else "nothing"
        if isinstance(actual, (dict, list)):
            got = _TYPE_WORDS["object" if isinstance(actual, dict) else "array"]
        return f"expected {wanted}, got {got}"
    return msg[0].lower() + msg[1:] if msg else "invalid value"


def _value_at(value: Any, path: list[str | int]) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _dotted(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "<root>"


def _line_of(root: yaml.Node | None, path: list[str | int]) -> int:
    """1-based line of the deepest node on ``path`` that exists in the YAML tree."""
    node = root
    line = (node.start_mark.line + 1) if node is not None else 1
    for part in path:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for k, v in node.value:
                if getattr(k, "value", None) == part:
                    line = k.start_mark.line + 1
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return line


def _warn_nested(raw: Any, typ: Any, root: yaml.Node | None, label: str, path: list[str | int], out: list[str]) -> None:
    """Unknown keys inside known sections are warnings: newer reference versions add fields there."""
    if isinstance(typ, type) and issubclass(typ, msgspec.Struct) and isinstance(raw, dict):
        fields = {f.encode_name: f.type for f in msgspec.structs.fields(typ)}
        for key, value in raw.items():
            sub = [*path, str(key)]
            if key not in fields:
                if path:
                    out.append(f"{label}:{_line_of(root, sub)}: unknown key {_dotted(sub)!r} ignored")
                continue
            _warn_nested(value, fields[key], root, label, sub, out)
    elif isinstance(raw, list):
        args = getattr(typ, "__args__", ())
        if args:
            for i, item in enumerate(raw):
                _warn_nested(item, args[0], root, label, [*path, i], out)
    elif getattr(typ, "__args__", None):
        for arg in typ.__args__:
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                _warn_nested(raw, arg, root, label, path, out)
