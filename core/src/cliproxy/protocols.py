"""Interfaces that provider plugins implement (executors, authenticators) and the values they exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .config import Settings
    from .credentials import Credential
    from .http import HttpClients
    from .sse import SSEEvent

__all__ = [
    "Authenticator",
    "Executor",
    "ExecutorFactory",
    "ExecutorServices",
    "LoginOptions",
    "UpstreamCall",
    "UpstreamResponse",
]


@dataclass(slots=True)
class UpstreamCall:
    """A request already translated into the executor's wire format."""

    #: Upstream model name (aliases resolved).
    model: str
    body: bytes
    stream: bool
    #: ``generate`` or ``count_tokens``.
    action: str = "generate"
    #: Client dialect, for executors that special-case a client (e.g. Claude Code identity).
    client_format: str = ""
    #: Client headers an upstream may need (``anthropic-beta``, ``user-agent`` ...), lower-case names.
    client_headers: dict[str, str] = field(default_factory=dict)
    #: Routing extras (thinking-suffix overrides, original model name ...).
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Executor(Protocol):
    """Sends calls upstream. Raises ``UpstreamError`` for non-2xx answers and transport failures."""

    name: str
    #: Dialect of the bodies this executor sends and receives (a codec name).
    wire_format: str

    async def execute(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse: ...

    def stream(self, call: UpstreamCall, cred: Credential) -> AsyncIterator[SSEEvent]:
        """Async generator of upstream SSE events; errors before the first event are raised from it."""
        ...


@dataclass(slots=True)
class ExecutorServices:
    """What core hands to an executor factory."""

    http: HttpClients
    settings: Settings


ExecutorFactory = Callable[[ExecutorServices], Executor]


@dataclass(slots=True)
class LoginOptions:
    no_browser: bool = False
    callback_port: int | None = None
    proxy_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Authenticator(Protocol):
    """Interactive login and token refresh for one provider's OAuth credentials."""

    provider: str
    #: How long before expiry to refresh; ``None`` when tokens never need refreshing.
    refresh_lead: timedelta | None

    async def login(self, opts: LoginOptions, http: HttpClients) -> Credential: ...

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential: ...
