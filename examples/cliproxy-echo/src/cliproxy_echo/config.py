"""The ``echo-provider`` config section this plugin claims through ``register_config``."""

from __future__ import annotations

import msgspec

__all__ = ["CONFIG_KEY", "DEFAULT_MODELS", "EchoConfig"]

CONFIG_KEY = "echo-provider"
DEFAULT_MODELS = ("echo-1",)


class EchoConfig(msgspec.Struct, rename="kebab", forbid_unknown_fields=True, frozen=True):
    """Unknown fields are rejected so a typo fails at startup with ``config.yaml:<line>``, not silently."""

    models: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_MODELS))
    prefix: str = "echo: "
