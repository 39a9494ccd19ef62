"""The ``cliproxy`` command line: serve, plugins list, config check, login."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import msgspec

from . import __version__
from .config import ConfigError, Settings, inactive_settings

__all__ = ["main"]

DEFAULT_CONFIG = "config.yaml"


def _config_path(explicit: str | None) -> str | None:
    """``--config``, else ``./config.yaml`` when present, else the embedded default (``None``)."""
    if explicit:
        return explicit
    env = os.environ.get("CLIPROXY_CONFIG")
    if env:
        return env
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def _container(config: str | None, overrides: dict[str, Any] | None = None) -> Any:
    from .container import Container

    container = Container()
    container.config.from_dict({"config_path": _config_path(config), "cli_overrides": overrides or None})
    return container


def _load(container: Any) -> Settings:
    try:
        settings: Settings = container.settings()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    return settings


#: CLIProxyAPI's login flags, accepted on the bare command so existing scripts and habits keep working.
_LEGACY_LOGINS = {
    "login": "gemini",
    "codex_login": "codex",
    "claude_login": "claude",
    "qwen_login": "qwen",
    "iflow_login": "iflow",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, "--version", "-V", prog_name="cliproxy")
@click.option("--login", is_flag=True, hidden=True, help="Same as 'cliproxy login gemini'.")
@click.option("--codex-login", is_flag=True, hidden=True, help="Same as 'cliproxy login codex'.")
@click.option("--claude-login", is_flag=True, hidden=True, help="Same as 'cliproxy login claude'.")
@click.option("--qwen-login", is_flag=True, hidden=True, help="Same as 'cliproxy login qwen'.")
@click.option("--iflow-login", is_flag=True, hidden=True, help="Same as 'cliproxy login iflow'.")
@click.option("--project_id", "--project-id", "project_id", default=None, hidden=True)
@click.option("--no-browser", is_flag=True, hidden=True)
@click.option("--callback-port", "--oauth-callback-port", "callback_port", type=int, default=None, hidden=True)
@click.option("--alias", default=None, hidden=True)
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None, hidden=True)
@click.pass_context
def cli(
    ctx: click.Context,
    /,
    project_id: str | None,
    no_browser: bool,
    callback_port: int | None,
    alias: str | None,
    config: str | None,
    **flags: bool,
) -> None:
    """cliproxy: use your AI subscriptions and API keys through the OpenAI, Claude and Gemini APIs."""
    chosen = [name for flag, name in _LEGACY_LOGINS.items() if flags.get(flag)]
    if ctx.invoked_subcommand is not None:
        if chosen:
            raise click.UsageError("a login flag cannot be combined with a command")
        return
    if len(chosen) > 1:
        raise click.UsageError("give one login flag at a time")
    if chosen:
        ctx.invoke(
            login,
            provider=chosen[0],
            config=config,
            no_browser=no_browser,
            callback_port=callback_port,
            project_id=project_id,
            alias=alias,
        )
    elif config is not None:
        ctx.invoke(serve, config=config)  # the reference starts the server when no login flag is given
    else:
        click.echo(ctx.get_help())


@cli.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Path to config.yaml.")
@click.option("--host", default=None, help="Bind address (default: 127.0.0.1 without api-keys, else all).")
@click.option("--port", type=int, default=None, help="Port (default: config 'port', 8317).")
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None, help="Log line format.")
def serve(config: str | None, host: str | None, port: int | None, log_format: str | None) -> None:
    """Run the proxy server."""
    import uvicorn

    from .app import create_app
    from .logging import configure_logging, get_logger

    configure_logging(json=log_format == "json" if log_format else None)
    container = _container(config, {"host": host, "port": port})
    settings = _load(container)
    configure_logging(
        debug=settings.debug,
        json=(log_format or settings.log_format) == "json" if (log_format or settings.log_format) else None,
        to_file=settings.logging_to_file,
        log_dir=Path(settings.path).parent / "logs" if settings.path else "logs",
    )
    log = get_logger("cliproxy")
    for warning in settings.warnings:
        log.warning(warning)
    for notice in inactive_settings(settings):
        log.warning(notice)
    for info in container.host().infos.values():
        if info.error:
            log.error("plugin skipped", plugin=info.name, error=info.error)
    if settings.path is None:
        log.info(
            "no config.yaml found; running on the built-in defaults. Add API keys to a config.yaml "
            "(see README) and pass --config, or run 'cliproxy login <provider>' for a provider whose plugin "
            "offers a login"
        )
    bind = settings.bind_host
    # Bind before anything starts, so a taken port is one clear line and a non-zero exit.
    sock = _listen_socket(bind, settings.port)
    app = create_app(container)
    pool = container.pool()
    if not pool.credentials():
        log.warning(
            "no upstream credentials configured yet: model requests will answer 400 until API keys are added to "
            "config.yaml or 'cliproxy login <provider>' is run"
        )
    if not settings.api_keys and bind not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening beyond localhost without api-keys: anyone who can reach this port can use it", host=bind)
    port = sock.getsockname()[1]
    url = f"http://[{bind}]:{port}" if ":" in bind else f"http://{bind}:{port}"
    server_config = uvicorn.Config(
        app,
        host=bind,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        # Peers are judged by their TCP address (Code Assist is loopback-only); forwarded-for headers are
        # never trusted, and skipping that middleware saves work on every request.
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
    _run_server(
        server_config,
        sock,
        lambda: log.info("cliproxy listening", url=url, version=__version__, credentials=len(pool.credentials())),
    )


def _listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or exit 1 with one line saying what is wrong and what to change."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fix = "use --port or change 'port' in config.yaml"
        if exc.errno == errno.EADDRINUSE:
            problem = f"port {port} on {host} is already in use (another cliproxy?)"
        elif exc.errno == errno.EACCES:
            problem = f"no permission to listen on port {port} on {host} (ports below 1024 need privileges)"
        else:
            problem = f"cannot listen on {host} port {port}: {exc.strerror or exc}"
            fix = "use --host/--port or change 'host'/'port' in config.yaml"
        click.echo(f"error: {problem}; {fix}", err=True)
        sys.exit(1)
    return sock


def _run_server(server_config: Any, sock: socket.socket, on_started: Callable[[], None]) -> None:
    """Serve on ``sock``; ``on_started`` runs once connections are accepted (after the app's own startup)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and not self.should_exit:
                on_started()

    Server(server_config).run(sockets=[sock])


@cli.group()
def plugins() -> None:
    """Inspect installed provider plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Path to config.yaml.")
def plugins_list(as_json: bool, config: str | None) -> None:
    """List plugins, their distributions and what each contributes."""
    from .config import load_settings

    container = _container(config)
    host = container.host()
    try:
        settings = container.settings()
    except ConfigError:
        settings = load_settings(None, host.config_sections().items)
    rows = host.describe(settings)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(rows)).decode())
        return
    for row in rows:
        dist = f"{row['distribution']} {row['version']}" if row["distribution"] else "(not installed)"
        kind = " [builtin]" if row["builtin"] else ""
        click.echo(f"{row['name']}{kind}  {dist}")
        for label in ("formats", "executors", "providers", "authenticators", "config_keys"):
            if row[label]:
                click.echo(f"    {label.replace('_', ' ')}: {', '.join(row[label])}")
        if row["error"]:
            click.echo(f"    ERROR: {row['error']}")


@cli.group("config")
def config_group() -> None:
    """Validate configuration."""


@config_group.command("check")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Path to config.yaml.")
def config_check(config: str | None) -> None:
    """Validate config.yaml and report problems (exit 2 when invalid)."""
    container = _container(config)
    settings = _load(container)
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    for notice in inactive_settings(settings):
        click.echo(f"warning: {notice}", err=True)
    creds = container.host().credentials_from_config(settings)
    where = settings.path or "built-in defaults"
    click.echo(f"{where}: OK ({len(creds)} credential(s) from config, port {settings.port})")


@cli.command()
@click.argument("provider")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Path to config.yaml.")
@click.option("--no-browser", is_flag=True, help="Print the login URL instead of opening a browser.")
@click.option("--callback-port", "--port", "callback_port", type=int, default=None, help="Local OAuth callback port.")
@click.option("--project-id", "--project_id", "project_id", default=None, help="Google: Cloud project (or ALL).")
@click.option("--alias", default=None, help="Qwen: a name for the account (its tokens carry no identity).")
def login(
    provider: str,
    config: str | None,
    no_browser: bool,
    callback_port: int | None = None,
    project_id: str | None = None,
    alias: str | None = None,
) -> None:
    """Log in to PROVIDER (gemini, claude, codex, qwen, iflow ...) and save the credential into auth-dir."""
    from .http import HttpClients
    from .oauth import LoginContext, LoginError
    from .oauth.driver import run_login, save_results
    from .protocols import LoginOptions

    container = _container(config)
    settings = _load(container)
    auths = container.host().authenticators()
    auth = auths.get(provider)
    if auth is None:
        auth = next((a for a in auths.items.values() if provider in a.login_names), None)
    if auth is None:
        names = sorted({n for a in auths.items.values() for n in (a.login_names or (a.provider,))})
        hint = ", ".join(names) or "none installed; install a provider plugin such as cliproxy-claude"
        click.echo(f"error: no login flow for {provider!r} (available: {hint})", err=True)
        sys.exit(2)
    interactive = sys.stdin.isatty()

    async def prompt(question: str, choices: Sequence[str], default: str | None) -> str:
        def ask() -> str:
            kind = click.Choice(list(choices)) if choices else str
            return str(click.prompt(question, default=default, type=kind, err=True))

        return await asyncio.to_thread(ask)

    async def run() -> list[Path]:
        http = HttpClients(settings.proxy_url or None)
        try:
            opts = LoginOptions(
                no_browser=no_browser,
                callback_port=callback_port,
                proxy_url=settings.proxy_url or None,
                project_id=project_id,
                alias=alias,
            )
            ctx = LoginContext(
                http=http,
                settings=settings,
                prompt=prompt if interactive else None,
                notify=lambda msg: click.echo(msg, err=True),
            )
            results = await run_login(auth, opts, ctx, show_url=lambda url: click.echo(url))
        finally:
            await http.aclose()
        return await asyncio.to_thread(save_results, settings.auth_path, results)

    try:
        paths = asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("login cancelled", err=True)
        sys.exit(130)
    except LoginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: cannot save the credential: {exc.strerror or exc}", err=True)
        sys.exit(1)
    for path in paths:
        click.echo(f"saved {path}", err=True)


def main() -> None:
    from .logging import configure_logging

    configure_logging()
    # Plugins may add commands (register_commands); discovery happens once, here.
    try:
        from .plugins import PluginHost, make_plugin_manager

        PluginHost(make_plugin_manager()).commands(cli)
    except Exception as exc:  # a broken plugin must not break the CLI itself
        click.echo(f"warning: plugin commands unavailable: {exc}", err=True)
    cli()
