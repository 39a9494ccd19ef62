"""Default plugin: registers the built-in dialect codecs through the public ``register_formats`` hook."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registries import FormatRegistrar
from . import claude, gemini, gemini_cli, openai_chat, openai_responses


@hookimpl
def register_formats(register: FormatRegistrar) -> None:
    for module in (openai_chat, openai_responses, claude, gemini, gemini_cli):
        register(module.CODEC)
