"""Hook implementations of the echo plugin (the entry point ``echo = "cliproxy_echo.plugin"``).

Only ``@hookimpl`` functions live here; they run at startup, on reload or per CLI command, never per request.
"""

from __future__ import annotations

import importlib.metadata

import click

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, stable_id
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import ConfigRegistrar, ExecutorRegistrar, ModelInfo, ModelRegistrar

from .config import CONFIG_KEY, DEFAULT_MODELS, EchoConfig
from .executor import EchoExecutor

PROVIDER = "echo"
EXECUTOR = "echo"


def _section(settings: Settings) -> EchoConfig | None:
    section = settings.section(CONFIG_KEY)
    return section if isinstance(section, EchoConfig) else None


@hookimpl
def register_config(register: ConfigRegistrar) -> None:
    # Absent section -> None: the provider is installed but serves nothing until configured.
    register(CONFIG_KEY, EchoConfig | None, default=None)


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    section = _section(settings)
    for model in section.models if section else DEFAULT_MODELS:
        register(PROVIDER, ModelInfo(id=model, owned_by="echo", type="echo", display_name=f"Echo ({model})"))


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return EchoExecutor()

    register(EXECUTOR, factory)


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential] | None:
    section = _section(settings)
    if section is None:
        return None
    # The id depends only on the config values, so cooldown state survives a reload of an unchanged entry.
    cid = stable_id(CONFIG_KEY, section.prefix, ",".join(section.models))
    return [
        Credential(id=cid, provider=PROVIDER, executor=EXECUTOR, label="echo", attributes={"prefix": section.prefix})
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("echo-info")
    def echo_info() -> None:
        """Show what the echo example plugin provides."""
        version = importlib.metadata.version("cliproxy-echo")
        click.echo(f"cliproxy-echo {version}: provider {PROVIDER!r}, config key {CONFIG_KEY!r}")
        click.echo(f"default models: {', '.join(DEFAULT_MODELS)}")
