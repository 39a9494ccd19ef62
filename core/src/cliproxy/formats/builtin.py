"""Default plugin: registers the built-in dialect codecs through the public ``register_formats`` hook."""

from __future__ import annotations

import importlib

from ..hookspecs import hookimpl
from ..registries import FormatRegistrar

BUILTIN_CODECS = (
    "cliproxy.formats.openai_chat",
    "cliproxy.formats.openai_responses",
    "cliproxy.formats.claude",
    "cliproxy.formats.gemini",
    "cliproxy.formats.gemini_cli",
)


@hookimpl
def register_formats(register: FormatRegistrar) -> None:
    for dotted in BUILTIN_CODECS:
        try:
            module = importlib.import_module(dotted)
        except ModuleNotFoundError as exc:  # TEMP until all codecs land
            if exc.name == dotted:
                continue
            raise
        register(module.CODEC)
