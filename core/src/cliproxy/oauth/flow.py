"""The shape of one login: started by a provider's authenticator, completed by a callback or by polling."""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from ..credentials import Credential
    from ..http import HttpClients

__all__ = [
    "LOGIN_TIMEOUT",
    "DeviceLogin",
    "LoginContext",
    "LoginError",
    "LoginResult",
    "PendingLogin",
    "Prompt",
    "RedirectLogin",
]

#: How long a started login waits for the user (callback or device approval), in seconds.
LOGIN_TIMEOUT = 300.0

#: Ask the user to choose: ``await prompt(question, choices, default)`` returns the answer (a choice, or free
#: text when ``choices`` is empty). Absent when nobody can answer (no terminal, a web-started login).
Prompt = Callable[[str, Sequence[str], str | None], Awaitable[str]]


class LoginError(Exception):
    """A login failed; ``str()`` is one line fit to show the user (never a token)."""


@dataclass(slots=True)
class LoginResult:
    """One credential a login produced and the auth-dir file name it is saved under."""

    credential: Credential
    filename: str


@dataclass(slots=True)
class LoginContext:
    """What a flow may use: the HTTP clients (global proxy), the settings (endpoint overrides), the user."""

    http: HttpClients
    settings: Settings
    prompt: Prompt | None = None
    #: Progress and warnings for the user (stderr on the CLI, the log for web-started logins).
    notify: Callable[[str], None] = field(default=lambda _msg: None)


class PendingLogin(abc.ABC):  # noqa: B024 - abstract through its two subclasses only
    """A started login: what the user must open, and when it stops waiting."""

    def __init__(self, *, provider: str, state: str, url: str, timeout: float = LOGIN_TIMEOUT) -> None:
        self.provider = provider
        self.state = state
        self.url = url
        self.deadline = time.monotonic() + timeout

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class RedirectLogin(PendingLogin):
    """Authorization-code login: the browser comes back to ``http://localhost:<port><path>?code=..&state=..``."""

    def __init__(
        self,
        *,
        provider: str,
        state: str,
        url: str,
        callback_port: int,
        callback_path: str,
        success_path: str | None = None,
        timeout: float = LOGIN_TIMEOUT,
    ) -> None:
        super().__init__(provider=provider, state=state, url=url, timeout=timeout)
        self.callback_port = callback_port
        self.callback_path = callback_path
        #: A page the provider's own CLI serves beside the callback (Codex and Claude: ``/success``); the
        #: callback server answers it too, with how the login ended.
        self.success_path = success_path

    def callback_state(self, query: Mapping[str, str]) -> str:
        """The state a callback carries; providers that smuggle it elsewhere (``code#state``) override this."""
        return query.get("state", "")

    def accepts(self, query: Mapping[str, str]) -> bool:
        """Does this callback belong to this login? A wrong or missing state is ignored, never exchanged."""
        import hmac

        got = self.callback_state(query)
        return bool(got) and hmac.compare_digest(got.encode(), self.state.encode())

    async def complete(self, query: Mapping[str, str], ctx: LoginContext) -> list[LoginResult]:
        """Finish with a callback's query: provider errors and state are checked before any code is exchanged."""
        if not self.accepts(query):
            raise LoginError("the OAuth callback carried a wrong or missing state; it was ignored")
        error = query.get("error", "")
        if error:
            detail = query.get("error_description", "")
            raise LoginError(f"authorization was denied: {error}" + (f" ({detail})" if detail else ""))
        code = query.get("code", "")
        if not code:
            raise LoginError("the OAuth callback carried no authorization code")
        return await self.exchange(code, query, ctx)

    @abc.abstractmethod
    async def exchange(self, code: str, query: Mapping[str, str], ctx: LoginContext) -> list[LoginResult]:
        """Trade the authorization code for tokens and build the credential(s)."""


class DeviceLogin(PendingLogin):
    """Device-authorization login: the user approves ``url`` (showing ``user_code``) while we poll."""

    def __init__(
        self, *, provider: str, state: str, url: str, user_code: str = "", timeout: float = LOGIN_TIMEOUT
    ) -> None:
        super().__init__(provider=provider, state=state, url=url, timeout=timeout)
        self.user_code = user_code

    @abc.abstractmethod
    async def poll(self, ctx: LoginContext) -> list[LoginResult]:
        """Poll the token endpoint (honouring the server's interval and ``slow_down``) until approved."""
