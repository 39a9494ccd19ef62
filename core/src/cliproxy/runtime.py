"""Live state that follows config.yaml and auth-dir: settings, credentials, model registry, retry policy.

Reloads build new values off to the side and swap them in synchronously on the event loop, so a request sees
either the old or the new world, never a mix; in-flight requests keep the credential objects they started
with. Everything that depends on settings is rebuilt here: credentials (config hooks + auth files), the model
catalog (compat models come from config), the pool's cooldown policy, the execution retry policy and quota
fallbacks, the HTTP default proxy, executors' view of the settings, client api-keys (``settings.api_keys``,
read per request by the access middleware) and the log level.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from .config import ConfigError, Settings, load_settings
from .credentials import Credential
from .execute import RetryPolicy
from .http import HttpClients
from .logging import get_logger, register_secret
from .models import ModelRegistry
from .plugins import PluginHost
from .pool import CooldownPolicy, CredentialPool, PoolDiff

if TYPE_CHECKING:
    from .execute import ExecutionService
    from .protocols import ExecutorServices

__all__ = ["Runtime", "is_auth_file", "retry_policy"]

log = get_logger("cliproxy.runtime")

_decode = msgspec.json.decode
#: Settings fields that are bookkeeping, not configuration (never reported as "changed").
_META_FIELDS = frozenset({"path", "warnings"})


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        request_retry=settings.request_retry,
        max_retry_interval=float(settings.max_retry_interval),
        switch_on_quota=settings.quota_exceeded.switch_project,
        quota_fallbacks=settings.quota_exceeded.switch_preview_model,
    )


def is_auth_file(name: str) -> bool:
    """Top-level ``*.json`` that is not hidden (atomic-write temp files and ``.oauth-*`` state are hidden)."""
    return name.endswith(".json") and not name.startswith(".")


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Runtime:
    def __init__(
        self,
        *,
        host: PluginHost,
        settings: Settings,
        pool: CredentialPool,
        registry: ModelRegistry,
        http: HttpClients,
        overrides: Mapping[str, Any] | None = None,
        services: ExecutorServices | None = None,
    ) -> None:
        self.host = host
        self.settings = settings
        self.pool = pool
        self.registry = registry
        self.http = http
        #: CLI overrides (``--host``/``--port``) re-applied on every reload.
        self.overrides = dict(overrides or {})
        self.services = services
        self.execution: ExecutionService | None = None
        #: Called with the new settings after every successful config reload.
        self.listeners: list[Callable[[Settings], None]] = []
        #: Credentials parsed from auth files, keyed by absolute file path.
        self.file_credentials: dict[str, Credential] = {}
        self.file_errors: dict[str, str] = {}
        self._file_hashes: dict[str, bytes] = {}
        self._config_hash: bytes | None = self._read_config_hash()
        self.reloads = 0

    # ------------------------------------------------------------------ paths

    @property
    def config_path(self) -> Path | None:
        return Path(os.path.abspath(self.settings.path)) if self.settings.path else None

    @property
    def auth_dir(self) -> Path:
        return Path(os.path.abspath(self.settings.auth_path))

    def _read_config_hash(self) -> bytes | None:
        path = self.config_path
        if path is None:
            return None
        try:
            return _digest(path.read_bytes())
        except OSError:
            return None

    # ------------------------------------------------------------------ wiring

    def bind_execution(self, execution: ExecutionService) -> None:
        """The execution service follows reloads (retry policy, quota fallbacks) from now on."""
        self.execution = execution
        self._apply_execution(self.settings)

    def _apply_execution(self, settings: Settings) -> None:
        if self.execution is not None:
            self.execution.retry = retry_policy(settings)
            self.execution.fallbacks = dict(self.host.quota_fallbacks(settings).items)

    # ------------------------------------------------------------------ loading

    def load(self) -> PoolDiff:
        """Initial load: config credentials plus every auth file."""
        self.scan_auth_dir()
        return self.apply()

    def apply(self) -> PoolDiff:
        """Recompute everything derived from the current settings and files, and swap it in."""
        s = self.settings
        creds = self.host.credentials_from_config(s) + list(self.file_credentials.values())
        for c in creds:
            register_secret(c.api_key)
        self.pool.policy = CooldownPolicy(disable_cooling=s.disable_cooling)
        catalog, _ = self.host.model_catalog(s)
        self.registry.catalog = {k: list(v) for k, v in catalog.items()}
        self.registry.rules = dict(self.host.model_rules(s).items)
        diff = self.pool.update(creds)
        self.registry.rebuild(self.pool.credentials())
        self.http.set_default_proxy(s.proxy_url)
        if self.services is not None:
            self.services.settings = s
        self._apply_execution(s)
        return diff

    def scan_auth_dir(self) -> None:
        directory = self.auth_dir
        found: dict[str, Credential] = {}
        hashes: dict[str, bytes] = {}
        self.file_errors = {}
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if not is_auth_file(path.name) or not path.is_file():
                    continue
                try:
                    raw = path.read_bytes()
                except OSError as exc:
                    self.file_errors[str(path)] = f"unreadable: {exc.strerror}"
                    continue
                hashes[str(path)] = _digest(raw)
                cred = self._parse_auth(path, raw)
                if cred is not None:
                    found[str(path)] = cred
        self.file_credentials = found
        self._file_hashes = hashes

    def read_auth_file(self, path: Path) -> Credential | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.file_errors[str(path)] = f"unreadable: {exc.strerror}"
            return None
        return self._parse_auth(path, raw)

    def _parse_auth(self, path: Path, raw: bytes) -> Credential | None:
        self.file_errors.pop(str(path), None)
        if not raw.strip():
            return None
        try:
            data = _decode(raw)
        except msgspec.DecodeError as exc:
            self.file_errors[str(path)] = f"invalid JSON: {exc}"
            log.warning("auth file is not valid JSON; skipped", file=path.name)
            return None
        if not isinstance(data, dict):
            self.file_errors[str(path)] = "not a JSON object"
            return None
        cred = self.host.credential_from_file(path, data)
        if cred is None and data.get("type"):
            log.warning("no installed plugin handles this auth file", file=path.name, type=str(data.get("type")))
        if cred is not None:
            for key in ("access_token", "refresh_token", "api_key"):
                value = data.get(key)
                if isinstance(value, str):
                    register_secret(value)
        return cred

    def ensure_auth_dir(self) -> None:
        try:
            os.makedirs(self.settings.auth_path, mode=0o700, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create auth-dir", path=str(self.settings.auth_path), error=exc.strerror)

    # ------------------------------------------------------------------ hot reload

    def reload_config(self, *, force: bool = False) -> bool:
        """Re-read config.yaml; an invalid file is rejected and the running config stays. True if applied."""
        path = self.config_path
        if path is None:
            return False
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            log.warning("config file disappeared; keeping the running config", file=str(path))
            return False
        except OSError as exc:
            log.error("cannot read config; keeping the running config", file=str(path), error=exc.strerror)
            return False
        if not raw.strip():
            # Editors truncate before writing; the write that follows brings the content.
            return False
        digest = _digest(raw)
        if digest == self._config_hash and not force:
            return False
        try:
            new = load_settings(path, self.host.config_sections().items, self.overrides)
        except ConfigError as exc:
            self._config_hash = digest  # the same broken content is not reported again
            log.error("config reload rejected; the running config stays in effect", error=str(exc))
            return False
        self._config_hash = digest
        old = self.settings
        self.settings = new
        for warning in new.warnings:
            log.warning(warning)
        if Path(os.path.abspath(new.auth_path)) != Path(os.path.abspath(old.auth_path)):
            log.info("auth-dir changed; rescanning", auth_dir=str(new.auth_path))
            self.scan_auth_dir()
        if new.debug != old.debug:
            _set_log_level(new.debug)
        diff = self.apply()
        self.reloads += 1
        log.info(
            "config reloaded",
            changed=_changed_keys(old, new),
            added=len(diff.added),
            changed_credentials=len(diff.changed),
            removed=len(diff.removed),
            credentials=len(self.pool.credentials()),
        )
        if new.port != old.port or new.host != old.host:
            log.warning("host/port changes take effect after a restart")
        for listener in list(self.listeners):
            try:
                listener(new)
            except Exception:
                log.exception("config reload listener failed")
        return True

    def reload_auth_files(self, paths: Iterable[Path]) -> PoolDiff | None:
        """Apply added, changed and removed auth files (absolute paths); unchanged content is skipped."""
        changed = False
        for path in paths:
            key = str(path)
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                if key in self._file_hashes or key in self.file_credentials:
                    self._file_hashes.pop(key, None)
                    self.file_credentials.pop(key, None)
                    self.file_errors.pop(key, None)
                    log.info("auth file removed", file=path.name)
                    changed = True
                continue
            except (IsADirectoryError, PermissionError, OSError) as exc:
                log.warning("cannot read auth file", file=path.name, error=exc.strerror)
                continue
            if not raw.strip():
                continue
            digest = _digest(raw)
            if self._file_hashes.get(key) == digest:
                continue
            self._file_hashes[key] = digest
            cred = self._parse_auth(path, raw)
            if cred is None:
                if self.file_credentials.pop(key, None) is not None:
                    changed = True
                continue
            if self.file_credentials.get(key) != cred:
                self.file_credentials[key] = cred
                changed = True
        if not changed:
            return None
        diff = self.apply()
        self.reloads += 1
        log.info(
            "auth files reloaded",
            added=len(diff.added),
            changed=len(diff.changed),
            removed=len(diff.removed),
            credentials=len(self.pool.credentials()),
        )
        return diff

    def note_auth_file(self, path: Path, raw: bytes) -> Credential | None:
        """We just wrote ``path`` (a refreshed token): record it so the watcher's event is a no-op.

        Returns the credential as the provider plugin parses it back, which is what the pool should hold.
        """
        key = str(Path(os.path.abspath(path)))
        self._file_hashes[key] = _digest(raw)
        cred = self._parse_auth(Path(key), raw)
        if cred is not None:
            self.file_credentials[key] = cred
        return cred


def _changed_keys(old: Settings, new: Settings) -> list[str]:
    """Names of top-level keys whose value changed (never the values: they may hold secrets)."""
    out: list[str] = []
    for f in msgspec.structs.fields(Settings):
        if f.name in _META_FIELDS:
            continue
        if f.name == "extra":
            keys = set(old.extra) | set(new.extra)
            out.extend(sorted(k for k in keys if old.extra.get(k) != new.extra.get(k)))
            continue
        if getattr(old, f.name) != getattr(new, f.name):
            out.append(f.encode_name)
    return out


def _set_log_level(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    logging.getLogger().setLevel(level)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    log.info("log level changed", level="debug" if debug else "info")
