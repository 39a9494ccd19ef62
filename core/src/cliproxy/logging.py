"""structlog setup: console or JSON lines, optional rotating files, secrets redacted in every event."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger", "redact"]

#: Bearer tokens, API-key-looking strings and key=value query parameters.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(
        r"(?i)((?:api[-_]?key|x-api-key|x-goog-api-key|access_token|refresh_token|token|secret|password|key)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{4,}"
    ),
    re.compile(r"\b(sk-[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{6,}"),
    re.compile(r"\b(AIza[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{10,}"),
    re.compile(r"\b(ya29\.)[A-Za-z0-9._-]{10,}"),
    re.compile(r"(://[^:/@\s]+:)[^@/\s]+(@)"),
]
_SENSITIVE_KEYS = {
    "api_key",
    "api-key",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "secret",
    "password",
    "secret_key",
    "key",
}
_extra_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Known secrets (configured keys) are redacted verbatim wherever they appear."""
    if value and len(value) >= 6:
        _extra_secrets.add(value)


def redact(text: str) -> str:
    # Patterns first: a known key inside a longer token must not leave the token's tail behind.
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "[REDACTED]" + (m.group(2) if m.lastindex == 2 else ""), text)
    for secret in _extra_secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in _SENSITIVE_KEYS and value:
        return "[REDACTED]"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value("", v) for v in value]
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(key, value)
    return event_dict


def configure_logging(
    *,
    debug: bool = False,
    json: bool | None = None,
    to_file: bool = False,
    log_dir: str | os.PathLike[str] | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> None:
    """Route structlog and stdlib logging through one redacting pipeline (idempotent: safe on reload)."""
    level = logging.DEBUG if debug else logging.INFO
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json or to_file
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler: logging.Handler
    if to_file:
        directory = Path(log_dir or "logs")
        directory.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            directory / "main.log", maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_cliproxy", False):
            root.removeHandler(old)
            old.close()
    setattr(handler, "_cliproxy", True)  # noqa: B010 - marks our handler for replacement on reload
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs one INFO line per upstream request: noise and hot-path cost.
    for noisy in ("httpx", "httpcore", "hpack", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "cliproxy") -> Any:
    return structlog.get_logger(name)
