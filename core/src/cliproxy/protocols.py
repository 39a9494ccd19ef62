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
    from .oauth.flow import LoginContext, PendingLogin
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
    """How the user started a login (``cliproxy login`` flags, or a management API query)."""

    no_browser: bool = False
    #: Local port of the OAuth callback; ``None`` means the provider's own (8085, 54545, 1455, 11451).
    callback_port: int | None = None
    proxy_url: str | None = None
    #: Google: the Cloud project to use (``ALL`` for every project of the account).
    project_id: str | None = None
    #: Qwen: the name of the account (its tokens carry no identity).
    alias: str | None = None
    #: Started from the web (management API): file names follow the reference's web-login names.
    web: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Authenticator(Protocol):
    """Interactive login and token refresh for one provider's OAuth credentials."""

    provider: str
    #: Names ``cliproxy login <name>`` accepts for this provider (``gemini`` for ``gemini-cli``).
    login_names: tuple[str, ...]
    #: How long before expiry to refresh; ``None`` when tokens never need refreshing.
    refresh_lead: timedelta | None

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        """Begin a login: build the authorize (or device) URL and the flow object that completes it."""
        ...

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential: ...
