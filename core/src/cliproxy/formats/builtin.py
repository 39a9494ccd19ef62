"""Default plugin: registers the built-in dialect codecs through the public ``register_formats`` hook."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ..hookspecs import hookimpl
from ..registries import FormatRegistrar
from . import claude, gemini, gemini_cli, openai_chat, openai_responses
from .base import Codec

__all__ = ["CODECS", "register_formats"]

#: The built-in codecs by dialect. The running server uses the registry the container builds (these plus any
#: plugin's); this table serves callers outside a server, such as a unit test rendering an error.
CODECS: Final[Mapping[str, Codec]] = MappingProxyType(
    {m.CODEC.name: m.CODEC for m in (openai_chat, openai_responses, claude, gemini, gemini_cli)}
)


@hookimpl
def register_formats(register: FormatRegistrar) -> None:
    for codec in CODECS.values():
        register(codec)
