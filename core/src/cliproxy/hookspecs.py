"""Hook specifications: the whole plugin API of cliproxy.

Every hook runs at startup, on a config reload, or once per CLI command, never per request: hooks *register*
objects (codecs, executors, model catalogs ...) and the request path calls those objects through plain dict
registries. Each hook is documented with its exact signature in ``docs/plugins/hooks.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import click

    from .config import Settings
    from .container import Container
    from .credentials import Credential
    from .registries import (
        AuthenticatorRegistrar,
        ConfigRegistrar,
        ExecutorRegistrar,
        FormatRegistrar,
        ModelRegistrar,
        ModelRuleRegistrar,
        QuotaFallbackRegistrar,
        RouteRegistrar,
    )

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("cliproxy")
hookimpl = pluggy.HookimplMarker("cliproxy")


@hookspec
def register_config(register: ConfigRegistrar) -> None:
    """Claim a top-level ``config.yaml`` key and the msgspec type that validates it.

    Runs first, before the configuration is loaded. ``register("my-key", list[MyEntry], default=[])``.
    The validated value is read back with ``settings.section("my-key")``. Keys nobody claims produce a warning.
    """


@hookspec
def register_formats(register: FormatRegistrar) -> None:
    """Register wire-format codecs (``register(codec)``) that map a dialect to and from the IR.

    A codec subclasses ``cliproxy.formats.base.Codec``, which also gives it the dialect's error envelope,
    stream-end check and token-count shapes (defaults to override where the dialect differs). The built-in
    dialects (``openai``, ``openai-response``, ``claude``, ``gemini``, ``gemini-cli``) are
    registered by core through this same hook.
    """


@hookspec
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    """Register a provider's static model catalog: ``register(provider, ModelInfo(...))``.

    Runs at startup and after every config reload. Credentials that list their own models (aliases in
    config) override the catalog for themselves.
    """


@hookspec
def register_model_rules(register: ModelRuleRegistrar, settings: Settings) -> None:
    """Register how a provider reads model names it has no catalog entry for: ``register(provider, rule)``.

    ``rule(model) -> (base model, ReasoningConfig) | None`` turns a name such as ``<model>-thinking-4096`` into a
    model the provider serves plus the thinking setting the name asks for (it wins over the request body's).
    Runs at startup and after every config reload; the rule itself runs on requests for unknown model names.
    """


@hookspec
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    """Register one executor factory per executor name: ``register("claude", factory)``.

    ``factory(services: ExecutorServices) -> Executor`` is called once at startup; the executor sends
    translated requests upstream with the pooled HTTP clients in ``services``.
    """


@hookspec
def register_authenticators(register: AuthenticatorRegistrar) -> None:
    """Register login flows and token refreshers: ``register(authenticator)``, one per provider."""


@hookspec
def credentials_from_config(settings: Settings) -> list[Credential] | None:
    """Return the credentials your config sections define (API keys, compat entries), or ``None``.

    Called at startup and on every reload; ids must be stable so cooldown state survives a reload.
    """


@hookspec(firstresult=True)
def credential_from_file(path: Path, data: dict[str, Any]) -> Credential | None:
    """Parse one ``auth-dir`` JSON file; return a credential if its ``type`` is yours, else ``None``."""


@hookspec
def register_quota_fallbacks(register: QuotaFallbackRegistrar, settings: Settings) -> None:
    """Register per-provider quota fallbacks used when a credential answers 429.

    ``register(provider, fallback)`` where ``fallback(credential, model, attempt) -> str | None`` returns the
    next model to try on the same credential (``quota-exceeded.switch-preview-model``), or ``None``.
    """


@hookspec
def register_routes(register: RouteRegistrar, container: Container) -> None:
    """Register extra Litestar route handlers, controllers or routers (OAuth callbacks, management endpoints)."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add CLI subcommands to ``cliproxy`` (e.g. a provider's own ``login`` helpers)."""


@hookspec
def lifespan(container: Container) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager entered at server start and exited at shutdown (background tasks)."""
