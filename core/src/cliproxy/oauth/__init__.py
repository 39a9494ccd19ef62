"""Subscription logins shared by every OAuth provider plugin.

A login is one object with two front doors: the ``cliproxy login`` command (which runs a callback server on
127.0.0.1 and prints or opens the URL) and, later, the management API (which keeps pending logins in memory keyed
by their ``state``). A provider plugin only implements :meth:`Authenticator.start_login` returning a
:class:`RedirectLogin` or :class:`DeviceLogin`; nothing about a flow touches the disk until the credential file
itself is written, atomically and with mode 0600.
"""

from __future__ import annotations

from .callback import CallbackServer
from .flow import (
    LOGIN_TIMEOUT,
    DeviceLogin,
    LoginContext,
    LoginError,
    LoginResult,
    PendingLogin,
    Prompt,
    RedirectLogin,
)
from .util import (
    decode_jwt_claims,
    endpoint,
    expiry_in,
    new_state,
    pkce_pair,
    request_json,
    safe_name,
)

__all__ = [
    "LOGIN_TIMEOUT",
    "CallbackServer",
    "DeviceLogin",
    "LoginContext",
    "LoginError",
    "LoginResult",
    "PendingLogin",
    "Prompt",
    "RedirectLogin",
    "decode_jwt_claims",
    "endpoint",
    "expiry_in",
    "new_state",
    "pkce_pair",
    "request_json",
    "safe_name",
]
