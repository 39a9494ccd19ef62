"""Live state that follows config.yaml and auth-dir: settings, credentials, model registry, retry policy.

Reloads build new values off to the side and swap them in, so in-flight requests keep the credential objects
they started with.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from .config import Settings
from .credentials import Credential
from .execute import RetryPolicy
from .http import HttpClients
from .logging import get_logger, register_secret
from .models import ModelRegistry
from .plugins import PluginHost
from .pool import CooldownPolicy, CredentialPool, PoolDiff

__all__ = ["Runtime", "retry_policy"]

log = get_logger("cliproxy.runtime")

_decode = msgspec.json.decode


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        request_retry=settings.request_retry,
        max_retry_interval=float(settings.max_retry_interval),
        switch_on_quota=settings.quota_exceeded.switch_project,
        quota_fallbacks=settings.quota_exceeded.switch_preview_model,
    )


class Runtime:
    def __init__(
        self,
        *,
        host: PluginHost,
        settings: Settings,
        pool: CredentialPool,
        registry: ModelRegistry,
        http: HttpClients,
    ) -> None:
        self.host = host
        self.settings = settings
        self.pool = pool
        self.registry = registry
        self.http = http
        #: Credentials parsed from auth files, keyed by file path.
        self.file_credentials: dict[str, Credential] = {}
        self.file_errors: dict[str, str] = {}

    # ------------------------------------------------------------------ loading

    def load(self) -> PoolDiff:
        """Initial load: config credentials plus every auth file."""
        self.scan_auth_dir()
        return self.apply()

    def apply(self) -> PoolDiff:
        creds = self.host.credentials_from_config(self.settings) + list(self.file_credentials.values())
        for c in creds:
            register_secret(c.api_key)
        self.pool.policy = CooldownPolicy(disable_cooling=self.settings.disable_cooling)
        diff = self.pool.update(creds)
        self.registry.rebuild(self.pool.credentials())
        self.http.set_default_proxy(self.settings.proxy_url)
        return diff

    def scan_auth_dir(self) -> None:
        directory = self.settings.auth_path
        found: dict[str, Credential] = {}
        self.file_errors = {}
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                cred = self.read_auth_file(path)
                if cred is not None:
                    found[str(path)] = cred
        self.file_credentials = found

    def read_auth_file(self, path: Path) -> Credential | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.file_errors[str(path)] = f"unreadable: {exc.strerror}"
            return None
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
            log.warning(
                "no installed plugin handles this auth file", file=path.name, type=str(data.get("type"))
            )
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
