"""``cliproxy login``'s side of a login: callback server or device polling, URL shown, files written."""

from __future__ import annotations

import asyncio
import contextlib
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..credentials_store import save_credential_file
from .callback import CallbackServer
from .flow import DeviceLogin, LoginContext, LoginError, LoginResult, PendingLogin, RedirectLogin

if TYPE_CHECKING:
    from ..protocols import Authenticator, LoginOptions

__all__ = ["run_login", "save_results"]


def _open_browser(url: str) -> bool:
    with contextlib.suppress(Exception):
        return bool(webbrowser.open(url))
    return False


async def run_login(
    auth: Authenticator,
    opts: LoginOptions,
    ctx: LoginContext,
    *,
    show_url: Callable[[str], None],
    open_browser: Callable[[str], bool] = _open_browser,
) -> list[LoginResult]:
    """Drive one login to its end. ``show_url`` prints the URL alone on a line (stdout) for the user to open.

    The callback server is listening before the URL is shown, so a fast browser cannot beat it.
    """
    pending: PendingLogin = await auth.start_login(opts, ctx)
    if isinstance(pending, RedirectLogin):
        async with CallbackServer(pending, ctx) as server:
            _present(pending, opts, ctx, show_url, open_browser)
            return await server.result()
    if isinstance(pending, DeviceLogin):
        _present(pending, opts, ctx, show_url, open_browser)
        try:
            return await asyncio.wait_for(pending.poll(ctx), pending.remaining())
        except TimeoutError:
            raise LoginError("timed out waiting for the device to be approved; run the login again") from None
    raise LoginError(f"{type(pending).__name__} is neither a redirect nor a device login")


def _present(
    pending: PendingLogin,
    opts: LoginOptions,
    ctx: LoginContext,
    show_url: Callable[[str], None],
    open_browser: Callable[[str], bool],
) -> None:
    if isinstance(pending, DeviceLogin) and pending.user_code:
        ctx.notify(f"Approve this device in your browser; the code is {pending.user_code}")
    if opts.no_browser:
        ctx.notify("Open this URL in a browser to log in:")
        show_url(pending.url)
        if isinstance(pending, RedirectLogin):
            port = pending.callback_port
            ctx.notify(
                f"On a remote machine, forward the callback port first: ssh -L {port}:127.0.0.1:{port} <user>@<host>"
            )
        return
    if not open_browser(pending.url):
        ctx.notify("Could not open a browser; open this URL yourself:")
        show_url(pending.url)
    else:
        ctx.notify("Opened the login page in your browser; waiting for you to finish there.")


def save_results(auth_dir: Path, results: list[LoginResult]) -> list[Path]:
    """Write each credential atomically (mode 0600) under its reference file name."""
    for r in results:
        if not r.filename or Path(r.filename).name != r.filename or r.filename.startswith("."):
            raise LoginError(f"refusing to save a credential under the unsafe file name {r.filename!r}")
    return [save_credential_file(auth_dir, r.credential, r.filename) for r in results]
