"""One ``test_hook_<name>`` per hookspec: an ad-hoc plugin uses the hook, the effect is observed end to end.

Plugins are registered with ``make_plugin_manager(entry_points=False, extra=[...])`` and the effect is checked
through ``PluginHost``, the container, the Litestar app or the CLI, never by calling the hook directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import click
import msgspec
import pytest
from click.testing import CliRunner
from dependency_injector import providers
from litestar import get
from litestar.testing import AsyncTestClient

from cliproxy import hookimpl
from cliproxy.app import create_app
from cliproxy.cli import cli
from cliproxy.config import ConfigError, Settings, load_settings
from cliproxy.container import Container
from cliproxy.credentials import Credential
from cliproxy.errors import UpstreamError
from cliproxy.formats.base import Codec
from cliproxy.http import HttpClients
from cliproxy.ir import ReasoningConfig
from cliproxy.oauth import DeviceLogin, LoginContext, LoginResult, PendingLogin
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import (
    Executor,
    ExecutorServices,
    LoginOptions,
    UpstreamCall,
    UpstreamResponse,
)
from cliproxy.registries import (
    AuthenticatorRegistrar,
    ConfigRegistrar,
    ExecutorRegistrar,
    FormatRegistrar,
    ModelInfo,
    ModelRegistrar,
    ModelRuleRegistrar,
    QuotaFallbackRegistrar,
    RouteRegistrar,
)
from cliproxy.sse import SSEEvent

MakeContainer = Callable[..., Container]
_encode = msgspec.json.encode


# ------------------------------------------------------------------------------------------------ helpers


class LocalExecutor:
    """Answers OpenAI chat JSON locally: ``<model>:<last user text>``; records every call."""

    wire_format = "openai"

    def __init__(self, name: str = "local", fail: dict[str, int] | None = None) -> None:
        self.name = name
        self.fail = fail or {}
        self.calls: list[UpstreamCall] = []

    async def execute(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse:
        self.calls.append(call)
        if call.model in self.fail:
            raise UpstreamError(self.fail[call.model], f"{call.model} failed")
        body = msgspec.json.decode(call.body)
        text = body["messages"][-1]["content"]
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"{call.model}:{text}"},
                    "finish_reason": "stop",
                }
            ],
        }
        return UpstreamResponse(200, _encode(answer))

    async def stream(self, call: UpstreamCall, cred: Credential) -> AsyncIterator[SSEEvent]:
        raise UpstreamError(400, "not streaming")
        yield SSEEvent(b"")  # pragma: no cover - makes this an async generator


class LocalProvider:
    """Provider ``local``: one credential from config, a catalog, and ``LocalExecutor``."""

    def __init__(self, models: tuple[str, ...] = ("local-1",), executor: LocalExecutor | None = None) -> None:
        self.models = models
        self.executor = executor or LocalExecutor()

    @hookimpl
    def register_models(self, register: ModelRegistrar, settings: Settings) -> None:
        for m in self.models:
            register("local", ModelInfo(id=m, owned_by="local-org"))

    @hookimpl
    def register_executors(self, register: ExecutorRegistrar, settings: Settings) -> None:
        register(self.executor.name, lambda services: self.executor)

    @hookimpl
    def credentials_from_config(self, settings: Settings) -> list[Credential]:
        return [Credential(id="local:1", provider="local", executor=self.executor.name)]


def chat(model: str, text: str = "hi") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


# ------------------------------------------------------------------------------------------------ hooks


class Limits(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    max_items: int = 1
    names: list[str] = []


def test_hook_register_config(tmp_path: Path, make_container: MakeContainer) -> None:
    class Plugin:
        @hookimpl
        def register_config(self, register: ConfigRegistrar) -> None:
            register("my-limits", Limits, default=Limits())

    host = PluginHost(make_plugin_manager(entry_points=False, extra=[Plugin()]))
    sections = host.config_sections()
    assert sections.by_owner("Plugin-0") == ["my-limits"]

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("port: 8000\nmy-limits:\n  max-items: many\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, sections.items)
    assert str(err.value) == 'bad.yaml:3: my-limits.max-items: expected an integer, got "many"'

    cfg.write_text("my-limits:\n  max-items: 7\n  names: [a]\nnobody-claims-this: 1\n")
    settings = load_settings(cfg, sections.items)
    assert settings.section("my-limits") == Limits(max_items=7, names=["a"])
    assert settings.warnings == ["bad.yaml:4: unknown key 'nobody-claims-this' ignored"]

    # Absent section: the registered default; and the container uses the same sections.
    container = make_container(Plugin())
    assert container.settings().section("my-limits") == Limits()
    # Without the plugin the key is only a warning.
    assert "unknown key 'my-limits'" in " ".join(load_settings(cfg).warnings)


class ShoutCodec:
    """Dialect ``shout``: OpenAI JSON on the wire, but assistant text is upper-cased when decoded.

    Everything except ``decode_response`` is delegated, so the test follows the codec protocol as it evolves.
    """

    name = "shout"

    def __init__(self, openai: Codec) -> None:
        self.openai = openai

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.openai, attr)

    def decode_response(self, body: bytes, *args: Any, **kwargs: Any) -> Any:
        resp = self.openai.decode_response(body, *args, **kwargs)
        for part in resp.parts:
            if hasattr(part, "text"):
                part.text = part.text.upper()
        return resp


async def test_hook_register_formats(make_container: MakeContainer) -> None:
    from cliproxy.formats.openai_chat import CODEC as OPENAI

    executor = LocalExecutor("shouty")
    executor.wire_format = "shout"

    class Plugin:
        @hookimpl
        def register_formats(self, register: FormatRegistrar) -> None:
            register(cast(Codec, ShoutCodec(OPENAI)))

    container = make_container(Plugin(), LocalProvider(executor=executor))
    formats = container.formats()
    assert formats["shout"].name == "shout"
    assert "openai" in formats  # built-ins come through the same hook
    assert container.host().formats().owners["shout"] == "Plugin-0"

    async with AsyncTestClient(create_app(container)) as client:
        resp = await client.post("/v1/chat/completions", json=chat("local-1", "quiet words"))
    assert resp.status_code == 200, resp.text
    # Client and upstream dialects differ, so the body went openai -> IR -> shout and back.
    assert resp.json()["choices"][0]["message"]["content"] == "LOCAL-1:QUIET WORDS"
    assert msgspec.json.decode(executor.calls[0].body)["model"] == "local-1"


async def test_hook_register_models(make_container: MakeContainer) -> None:
    provider = LocalProvider(models=("local-small", "local-large"))
    container = make_container(provider)
    catalog, owners = container.host().model_catalog(container.settings())
    assert [m.id for m in catalog["local"]] == ["local-small", "local-large"]
    assert owners == {"local": "LocalProvider-0"}

    async with AsyncTestClient(create_app(container)) as client:
        listed = (await client.get("/v1/models")).json()
        assert [(m["id"], m["owned_by"]) for m in listed["data"]] == [
            ("local-large", "local-org"),
            ("local-small", "local-org"),
        ]
        ok = await client.post("/v1/chat/completions", json=chat("LOCAL-SMALL"))
        missing = await client.post("/v1/chat/completions", json=chat("local-medium"))
    assert ok.status_code == 200
    assert missing.status_code in (400, 404)  # no credential serves it, so it is not routable
    assert "local-medium" in missing.json()["error"]["message"]


async def test_hook_register_executors(make_container: MakeContainer) -> None:
    seen: list[ExecutorServices] = []
    executor = LocalExecutor("custom")

    class Plugin:
        @hookimpl
        def register_executors(self, register: ExecutorRegistrar, settings: Settings) -> None:
            def factory(services: ExecutorServices) -> Executor:
                seen.append(services)
                return executor

            register("custom", factory)

    class Creds:
        @hookimpl
        def register_models(self, register: ModelRegistrar, settings: Settings) -> None:
            register("p", ModelInfo(id="m-1"))

        @hookimpl
        def credentials_from_config(self, settings: Settings) -> list[Credential]:
            return [Credential(id="p:1", provider="p", executor="custom")]

    container = make_container(Plugin(), Creds())
    assert container.host().executors(container.settings()).by_owner("Plugin-0") == ["custom"]
    async with AsyncTestClient(create_app(container)) as client:
        for _ in range(2):
            resp = await client.post("/v1/chat/completions", json=chat("m-1", "ping"))
            assert resp.json()["choices"][0]["message"]["content"] == "m-1:ping"
    assert len(seen) == 1  # the factory runs once at startup, not per request
    assert seen[0].settings is container.settings()
    assert isinstance(seen[0].http, HttpClients)
    assert len(executor.calls) == 2


class _InstantDevice(DeviceLogin):
    """A device login the "user" has already approved: the first poll succeeds."""

    def __init__(self, opts: LoginOptions) -> None:
        super().__init__(provider="fakeauth", state="s", url="http://127.0.0.1:9/device", user_code="AB-CD")
        self.opts = opts

    async def poll(self, ctx: LoginContext) -> list[LoginResult]:
        cred = Credential(
            id="fakeauth:alice",
            provider="fakeauth",
            executor="local",
            label="alice",
            metadata={"email": "alice@example.com", "access_token": "tok-1", "no_browser": self.opts.no_browser},
        )
        return [LoginResult(cred, "fakeauth-alice@example.com.json")]


class FakeLogin:
    """An OAuth-style authenticator that "logs in" without a browser and refreshes by bumping a counter."""

    provider = "fakeauth"
    login_names = ("fakeauth",)
    refresh_lead: timedelta | None = timedelta(minutes=5)

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        return _InstantDevice(opts)

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        n = int(cred.metadata["access_token"].rsplit("-", 1)[1]) + 1
        return msgspec.structs.replace(cred, metadata={**cred.metadata, "access_token": f"tok-{n}"})


class FakeAuthPlugin:
    @hookimpl
    def register_authenticators(self, register: AuthenticatorRegistrar) -> None:
        register(FakeLogin())

    @hookimpl
    def credential_from_file(self, path: Path, data: dict[str, Any]) -> Credential | None:
        if data.get("type") != "fakeauth":
            return None
        return Credential(
            id=f"fakeauth:{path.stem}", provider="fakeauth", executor="local", source=str(path), metadata=data
        )


def test_hook_register_authenticators(tmp_path: Path) -> None:
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[FakeAuthPlugin()]))
    auths = host.authenticators()
    assert list(auths) == ["fakeauth"]
    assert auths.by_owner("FakeAuthPlugin-0") == ["fakeauth"]

    async def login_and_refresh() -> Credential:
        http = HttpClients()
        try:
            ctx = LoginContext(http=http, settings=load_settings(None))
            pending = await auths["fakeauth"].start_login(LoginOptions(), ctx)
            assert isinstance(pending, DeviceLogin)
            [result] = await pending.poll(ctx)
            return await auths["fakeauth"].refresh(result.credential, http)
        finally:
            await http.aclose()

    assert asyncio.run(login_and_refresh()).metadata["access_token"] == "tok-2"

    # `cliproxy login <provider>` finds the authenticator and saves what the plugin parses back.
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\n")
    pm = make_plugin_manager(entry_points=False, extra=[FakeAuthPlugin()])
    runner = CliRunner()
    with Container.plugin_manager.override(providers.Object(pm)):
        ok = runner.invoke(cli, ["login", "fakeauth", "--config", str(cfg), "--no-browser"])
        unknown = runner.invoke(cli, ["login", "nope", "--config", str(cfg)])
        container = Container()
        container.config.from_dict({"config_path": str(cfg), "hot_reload": False})
        loaded = container.runtime().file_credentials
    assert ok.exit_code == 0, ok.output
    saved = tmp_path / "auth" / "fakeauth-alice@example.com.json"
    assert f"saved {saved}" in ok.output
    assert json.loads(saved.read_text())["no_browser"] is True
    assert unknown.exit_code == 2
    assert "available: fakeauth" in unknown.output
    assert [c.metadata["access_token"] for c in loaded.values()] == ["tok-1"]


def test_hook_credentials_from_config(tmp_path: Path, make_container: MakeContainer) -> None:
    class Keys(msgspec.Struct):
        key: str

    calls: list[Settings] = []

    class Plugin:
        @hookimpl
        def register_config(self, register: ConfigRegistrar) -> None:
            register("my-keys", list[Keys], default=[])

        @hookimpl
        def credentials_from_config(self, settings: Settings) -> list[Credential] | None:
            calls.append(settings)
            return [
                Credential(id=f"my:{k.key}", provider="mine", executor="local", api_key=k.key)
                for k in settings.section("my-keys")
            ] or None

    class Other:
        @hookimpl
        def credentials_from_config(self, settings: Settings) -> list[Credential]:
            return [Credential(id="other:1", provider="other", executor="local")]

    container = make_container(Plugin(), Other(), config="my-keys:\n  - key: k1\n  - key: k2\n")
    container.runtime()
    assert sorted(c.id for c in container.pool().credentials()) == ["my:k1", "my:k2", "other:1"]
    assert calls[-1] is container.settings()

    # `cliproxy config check` counts them, through the same hook.
    pm = make_plugin_manager(entry_points=False, extra=[Plugin(), Other()])
    with Container.plugin_manager.override(providers.Object(pm)):
        result = CliRunner().invoke(cli, ["config", "check", "--config", str(tmp_path / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert "OK (3 credential(s) from config" in result.output

    # A plugin returning None contributes nothing.
    assert make_container(Plugin()).host().credentials_from_config(load_settings(None, {})) == []


async def test_credential_dynamic_prefix_routes_any_model(make_container: MakeContainer) -> None:
    """A credential that declares ``dynamic_prefix`` takes ``<prefix>://<model>`` for models nobody lists."""
    executor = LocalExecutor()

    class Router(LocalProvider):
        @hookimpl
        def credentials_from_config(self, settings: Settings) -> list[Credential]:
            return [Credential(id="local:1", provider="local", executor="local", dynamic_prefix="hub")]

    container = make_container(Router(executor=executor))
    async with AsyncTestClient(create_app(container)) as client:
        resp = await client.post("/v1/chat/completions", json=chat("hub://vendor/any-model:free", "x"))
        assert resp.status_code == 200, resp.text
        assert resp.json()["choices"][0]["message"]["content"] == "vendor/any-model:free:x"
        resp = await client.post("/v1/chat/completions", json=chat("elsewhere://vendor/any-model", "x"))
        assert resp.status_code == 400 and "unknown provider" in resp.text
    assert [c.model for c in executor.calls] == ["vendor/any-model:free"]


def test_hook_credential_from_file(tmp_path: Path, make_container: MakeContainer) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "a.json").write_text(json.dumps({"type": "fakeauth", "access_token": "secret-a"}))
    (auth / "b.json").write_text(json.dumps({"type": "someone-else", "access_token": "x"}))
    (auth / "c.json").write_text("not json")
    (auth / "notes.txt").write_text(json.dumps({"type": "fakeauth"}))

    class Declines:
        @hookimpl
        def credential_from_file(self, path: Path, data: dict[str, Any]) -> Credential | None:
            return None

    container = make_container(FakeAuthPlugin(), Declines())
    runtime = container.runtime()
    creds = container.pool().credentials()
    assert [(c.id, c.source) for c in creds] == [("fakeauth:a", str(auth / "a.json"))]
    assert creds[0].metadata["access_token"] == "secret-a"
    assert "invalid JSON" in runtime.file_errors[str(auth / "c.json")]
    host = container.host()
    assert host.credential_from_file(auth / "b.json", {"type": "someone-else"}) is None


async def test_hook_register_quota_fallbacks(make_container: MakeContainer) -> None:
    executor = LocalExecutor(fail={"local-pro": 429, "local-pro-preview": 429})
    attempts: list[tuple[str, str, int]] = []

    def fallback(cred: Credential, model: str, attempt: int) -> str | None:
        attempts.append((cred.id, model, attempt))
        return {"local-pro": "local-pro-preview", "local-pro-preview": "local-flash"}.get(model)

    class Plugin:
        @hookimpl
        def register_quota_fallbacks(self, register: QuotaFallbackRegistrar, settings: Settings) -> None:
            register("local", fallback)

    container = make_container(Plugin(), LocalProvider(models=("local-pro",), executor=executor))
    fallbacks = container.host().quota_fallbacks(container.settings())
    assert fallbacks["local"] is fallback
    assert fallbacks.by_owner("Plugin-0") == ["local"]

    async with AsyncTestClient(create_app(container)) as client:
        resp = await client.post("/v1/chat/completions", json=chat("local-pro", "x"))
    assert resp.status_code == 200, resp.text
    assert [c.model for c in executor.calls] == ["local-pro", "local-pro-preview", "local-flash"]
    assert attempts == [("local:1", "local-pro", 0), ("local:1", "local-pro-preview", 1)]
    assert resp.json()["choices"][0]["message"]["content"] == "local-flash:x"


def fast_rule(model: str) -> tuple[str, ReasoningConfig] | None:
    """``<model>-fast``: the model with a low reasoning effort."""
    return (model.removesuffix("-fast"), ReasoningConfig(effort="low")) if model.endswith("-fast") else None


class OtherProvider:
    """Provider ``other`` serving ``local-pro`` too, through its own executor."""

    def __init__(self) -> None:
        self.executor = LocalExecutor("other")

    @hookimpl
    def register_models(self, register: ModelRegistrar, settings: Settings) -> None:
        register("other", ModelInfo(id="local-pro"))

    @hookimpl
    def register_executors(self, register: ExecutorRegistrar, settings: Settings) -> None:
        register("other", lambda services: self.executor)

    @hookimpl
    def credentials_from_config(self, settings: Settings) -> list[Credential]:
        return [Credential(id="other:1", provider="other", executor="other")]


async def test_hook_register_model_rules(make_container: MakeContainer) -> None:
    class Plugin:
        def __init__(self, *providers: str) -> None:
            self.providers = providers

        @hookimpl
        def register_model_rules(self, register: ModelRuleRegistrar, settings: Settings) -> None:
            for provider in self.providers:
                register(provider, fast_rule)

    local, other = LocalProvider(models=("local-pro",)), OtherProvider()
    container = make_container(Plugin("local"), local, other)
    rules = container.host().model_rules(container.settings())
    assert rules["local"] is fast_rule and rules.by_owner("Plugin-0") == ["local"]
    async with AsyncTestClient(create_app(container)) as client:
        for _ in range(2):  # both providers serve local-pro, but only ``local`` reads ``-fast`` names
            resp = await client.post("/v1/chat/completions", json=chat("local-pro-fast", "x"))
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"] == "local-pro:x"
        assert [c.model for c in local.executor.calls] == ["local-pro", "local-pro"]
        assert msgspec.json.decode(local.executor.calls[0].body)["reasoning_effort"] == "low"
        assert other.executor.calls == []
        resp = await client.post("/v1/chat/completions", json=chat("local-pro-slow", "x"))
        assert resp.status_code == 400 and "unknown provider for model local-pro-slow" in resp.text

    # Providers that read the name the same way share the request (round-robin over them).
    local, other = LocalProvider(models=("local-pro",)), OtherProvider()
    container = make_container(Plugin("local", "other"), local, other)
    async with AsyncTestClient(create_app(container)) as client:
        for _ in range(2):
            resp = await client.post("/v1/chat/completions", json=chat("local-pro-fast", "x"))
            assert resp.status_code == 200, resp.text
    assert len(local.executor.calls) == len(other.executor.calls) == 1


async def test_hook_register_routes(make_container: MakeContainer) -> None:
    seen: list[Container] = []

    class Plugin:
        @hookimpl
        def register_routes(self, register: RouteRegistrar, container: Container) -> None:
            seen.append(container)

            @get("/plugin/credentials", sync_to_thread=False)
            def credentials() -> dict[str, Any]:
                return {"ids": [c.id for c in container.pool().credentials()]}

            register(credentials)

    container = make_container(Plugin(), LocalProvider())
    async with AsyncTestClient(create_app(container)) as client:
        resp = await client.get("/plugin/credentials")
    assert resp.status_code == 200
    assert resp.json() == {"ids": ["local:1"]}
    assert seen == [container]
    _, owners = container.host().routes(container)
    assert owners == ["Plugin-0"]


def test_hook_register_commands() -> None:
    class Plugin:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command("hello")
            @click.argument("name")
            def hello(name: str) -> None:
                """Say hello."""
                click.echo(f"hello {name}")

    group = click.Group("cliproxy")
    PluginHost(make_plugin_manager(entry_points=False, extra=[Plugin()])).commands(group)
    result = CliRunner().invoke(group, ["hello", "world"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello world\n"
    assert "Say hello." in CliRunner().invoke(group, ["--help"]).output


async def test_hook_lifespan(make_container: MakeContainer) -> None:
    events: list[str] = []

    class Background:
        @hookimpl
        def lifespan(self, container: Container) -> AbstractAsyncContextManager[None]:
            @asynccontextmanager
            async def run() -> AsyncIterator[None]:
                events.append(f"start:{len(container.pool().credentials())}")
                try:
                    yield
                finally:
                    events.append("stop")

            return run()

    class Nothing:
        @hookimpl
        def lifespan(self, container: Container) -> None:
            events.append("asked")

    container = make_container(Background(), Nothing(), LocalProvider())
    app = create_app(container)
    assert events == []  # nothing runs before the server starts
    async with AsyncTestClient(app) as client:
        assert events == ["asked", "start:1"]
        assert (await client.get("/healthz")).status_code == 200
    assert events == ["asked", "start:1", "stop"]
