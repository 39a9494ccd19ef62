"""Secrets never reach log output."""

from __future__ import annotations

import logging
from pathlib import Path

from cliproxy.logging import configure_logging, get_logger, redact, register_secret


def test_redact_patterns() -> None:
    assert "abcdef123456" not in redact("Authorization: Bearer abcdef123456")
    assert "sk-proj-SECRET123456" not in redact("key sk-proj-SECRET123456 here")
    assert "AIzaSyA1234567890abcdef" not in redact("?key=AIzaSyA1234567890abcdef")
    assert "hunter2pass" not in redact("socks5://user:hunter2pass@host:1080")
    assert "refresh-xyz-123" not in redact('{"refresh_token": "refresh-xyz-123"}')
    register_secret("plainsecretvalue")
    assert redact("x plainsecretvalue y") == "x [REDACTED] y"


def test_file_logging_is_json_and_redacted(tmp_path: Path) -> None:
    configure_logging(to_file=True, log_dir=tmp_path)
    try:
        get_logger("t").info(
            "calling upstream", api_key="sk-live-abcdefghijkl", url="https://h/?key=AIzaSyZZZZZZZZZZZZZZ"
        )
        logging.getLogger("other").warning("header was Bearer tok_1234567890")
        for h in logging.getLogger().handlers:
            h.flush()
        text = (tmp_path / "main.log").read_text()
    finally:
        configure_logging()
    assert '"event": "calling upstream"' in text
    assert "sk-live-abcdefghijkl" not in text and "AIzaSyZZZZZZZZZZZZZZ" not in text
    assert "tok_1234567890" not in text
