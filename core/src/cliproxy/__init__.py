"""cliproxy: serve AI subscriptions and API keys through the OpenAI, Claude and Gemini APIs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .hookspecs import hookimpl

try:
    __version__ = version("cliproxy")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["__version__", "hookimpl"]
