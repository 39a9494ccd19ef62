"""Hot reload of config.yaml and auth-dir: what is rebuilt, what is rejected, and the live server following it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest
from structlog.testing import capture_logs

from cliproxy import hookimpl
from cliproxy.container import Container
from cliproxy.credentials import Credential, ModelAlias
from cliproxy.testing import FakeOpenAIChat, Reply, serve_on_loopback
from cliproxy.testing.proxy import build_container, run_proxy
from cliproxy.watch import ReloadWatcher

CLIENT_KEY = "sk-client-reload-123456"


def compat(keys: list[str], *, base: str = "http://127.0.0.1:9/v1", alias: str = "m", extra: str = "") -> str:
    entries = "".join(f"      - api-key: {k}\n" for k in keys)
    return (
        f"api-keys: [{CLIENT_KEY}]\n{extra}"
        "openai-compatibility:\n"
        "  - name: reload\n"
        f"    base-url: {base}\n"
        "    api-key-entries:\n"
        f"{entries}"
        "    models:\n"
        "      - name: up-model\n"
        f"        alias: {alias}\n"
    )


class FileKeys:
    """Auth files of ``type: filekey`` become credentials (what a provider plugin does for OAuth files)."""

    __name__ = "test-filekeys-plugin"

    @hookimpl
    def credential_from_file(self, path: Path, data: dict[str, Any]) -> Credential | None:
        if data.get("type") != "filekey":
            return None
        return Credential(
            id=f"filekey:{path.name}",
            provider="filekey",
            executor="openai-compat",
            label=path.stem,
            api_key=str(data["key"]),
            base_url="http://127.0.0.1:9/v1",
            models=(ModelAlias("file-model"),),
            metadata=dict(data),
            source=str(path),
        )


def make(tmp_path: Path, text: str) -> tuple[Container, Path]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auths'}\n{text}")
    (tmp_path / "auths").mkdir(exist_ok=True)
    return build_container(cfg, plugins=[FileKeys()]), cfg


def rewrite(cfg: Path, text: str) -> None:
    """Save the way editors do: write a temp file, then rename it over the original."""
    tmp = cfg.with_name(".config.yaml.swp")
    tmp.write_text(f"auth-dir: {cfg.parent / 'auths'}\n{text}")
    os.replace(tmp, cfg)


def keys(container: Container) -> set[str | None]:
    return {c.api_key for c in container.pool().credentials()}


async def wait_for(cond: Callable[[], bool], within: float = 8.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------------- runtime


def test_config_reload_rebuilds_everything_that_depends_on_settings(tmp_path: Path) -> None:
    container, cfg = make(tmp_path, compat(["key-a", "key-b"]))
    runtime, execution, pool = container.runtime(), container.execution(), container.pool()
    a_id = next(c.id for c in pool.credentials() if c.api_key == "key-a")
    pool.mark_failure(a_id, "m", 429, retry_after=60)
    assert execution.retry.request_retry == 0
    extra = "request-retry: 2\nmax-retry-interval: 7\nproxy-url: http://127.0.0.1:3128\ndisable-cooling: true\n"
    rewrite(cfg, compat(["key-a", "key-c"], extra=extra).replace(CLIENT_KEY, "sk-new-client-key-99"))
    assert runtime.reload_config() is True
    assert keys(container) == {"key-a", "key-c"}
    st = pool.get(a_id)
    assert st is not None and st.blocked("m", pool.clock()) is not None  # state of unchanged ids survives
    assert (execution.retry.request_retry, execution.retry.max_retry_interval) == (2, 7.0)
    assert runtime.settings.api_keys == ["sk-new-client-key-99"]
    assert container.http().default_proxy == "http://127.0.0.1:3128"
    assert container.services().settings is runtime.settings
    assert pool.policy.disable_cooling is True
    # Compat models come from config: renaming the alias re-registers them.
    rewrite(cfg, compat(["key-a", "key-c"], alias="m2", extra=extra))
    assert runtime.reload_config() is True
    models = container.models()
    assert models.providers_for("m2") == ["reload"] and models.providers_for("m") == []


def test_invalid_config_is_rejected_and_the_running_one_kept(tmp_path: Path) -> None:
    container, cfg = make(tmp_path, compat(["key-a"]))
    runtime = container.runtime()
    before = runtime.settings
    with capture_logs() as logs:
        rewrite(cfg, compat(["key-b"]) + "port: not-a-number\n")
        assert runtime.reload_config() is False
        assert runtime.reload_config() is False  # same broken content: not reported twice
    assert runtime.settings is before
    assert keys(container) == {"key-a"}
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1 and "port" in errors[0]["error"]
    rewrite(cfg, compat(["key-b"]))
    assert runtime.reload_config() is True
    assert keys(container) == {"key-b"}
    # Saving identical content (or touching the file) is a no-op.
    rewrite(cfg, compat(["key-b"]))
    assert runtime.reload_config() is False


def test_reload_names_keys_without_effect_once_when_they_become_set(tmp_path: Path) -> None:
    container, cfg = make(tmp_path, compat(["key-a"]))
    runtime = container.runtime()

    def notices(text: str) -> list[str]:
        rewrite(cfg, text)
        with capture_logs() as logs:
            assert runtime.reload_config() is True
        return [str(e["event"]) for e in logs if "has no effect" in str(e["event"])]

    assert notices(compat(["key-a"], extra="request-log: true\n")) == [
        "'request-log' is set but has no effect: cliproxy does not implement request logging yet"
    ]
    # Still set after another change: said already.
    assert notices(compat(["key-b"], extra="request-log: true\n")) == []
    assert notices(compat(["key-b"], extra="request-log: true\nws-auth: true\n")) == [
        "'ws-auth' is set but has no effect: cliproxy does not implement websocket authentication yet"
    ]


def test_auth_files_add_change_remove_and_skip_garbage(tmp_path: Path) -> None:
    container, _ = make(tmp_path, "")
    runtime = container.runtime()
    auths = tmp_path / "auths"
    f = auths / "filekey-one.json"
    f.write_bytes(msgspec.json.encode({"type": "filekey", "key": "file-key-1"}))
    diff = runtime.reload_auth_files([f])
    assert diff is not None and diff.added == ["filekey:filekey-one.json"]
    assert runtime.reload_auth_files([f]) is None  # same content
    f.write_bytes(msgspec.json.encode({"type": "filekey", "key": "file-key-2"}))
    diff = runtime.reload_auth_files([f])
    assert diff is not None and diff.changed == ["filekey:filekey-one.json"]
    bad = auths / "broken.json"
    bad.write_text("{not json")
    assert runtime.reload_auth_files([bad]) is None
    assert "invalid JSON" in runtime.file_errors[str(bad)]
    f.unlink()
    diff = runtime.reload_auth_files([f])
    assert diff is not None and diff.removed == ["filekey:filekey-one.json"]
    assert container.models().providers_for("file-model") == []


async def test_watcher_follows_config_and_auth_dir(tmp_path: Path) -> None:
    container, cfg = make(tmp_path, compat(["key-a"]))
    runtime = container.runtime()
    watcher = ReloadWatcher(runtime, debounce_ms=50, step_ms=20)
    watcher.start()
    try:
        await asyncio.sleep(0.3)  # let the OS watch be set up
        rewrite(cfg, compat(["key-a", "key-b"]))
        await wait_for(lambda: keys(container) == {"key-a", "key-b"})
        auth = tmp_path / "auths" / "filekey-x.json"
        tmp = auth.with_name(".filekey-x.json.tmp")
        tmp.write_bytes(msgspec.json.encode({"type": "filekey", "key": "file-key-x"}))
        os.replace(tmp, auth)  # atomic replace, as our own writer does
        await wait_for(lambda: "file-key-x" in keys(container))
        (tmp_path / "auths" / "notes.txt").write_text("ignored")
        auth.unlink()
        await wait_for(lambda: "file-key-x" not in keys(container))
        with capture_logs() as logs:
            rewrite(cfg, "port: [1, 2]\n")
            await wait_for(lambda: any(e["event"].startswith("config reload rejected") for e in logs))
        assert keys(container) == {"key-a", "key-b"}
    finally:
        await watcher.stop()


async def test_auth_dir_that_appears_later_is_loaded_and_unknown_files_reported_once(tmp_path: Path) -> None:
    auths = tmp_path / "later"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {auths}\n{compat(['key-a'])}")
    container = build_container(cfg, plugins=[FileKeys()])
    runtime = container.runtime()
    watcher = ReloadWatcher(runtime, debounce_ms=50, step_ms=20, recheck_seconds=0.2)

    def unhandled(logs: list[dict[str, Any]]) -> list[Any]:
        return [e.get("file") for e in logs if e["event"] == "no installed plugin handles this auth file"]

    with capture_logs() as logs:
        watcher.start()
        try:
            await asyncio.sleep(0.3)
            # Created with its files at once (cp -r of an old auth-dir): nothing watched it yet. ``acme-nobody`` is a
            # type no installed plugin handles.
            auths.mkdir()
            (auths / "acme-me.json").write_text('{"type": "acme-nobody", "access_token": "t"}')
            (auths / "notype.json").write_text('{"access_token": "t"}')
            (auths / "filekey-a.json").write_bytes(msgspec.json.encode({"type": "filekey", "key": "file-key-a"}))
            await wait_for(lambda: "file-key-a" in keys(container))
            await wait_for(lambda: len(unhandled(logs)) == 2)
            assert sorted(unhandled(logs)) == ["acme-me.json", "notype.json"]
            # Later scans (a restarted watch) do not repeat it; a new content is reported again, once.
            assert runtime.rescan_auth_dir() is None
            (auths / "acme-me.json").write_text('{"type": "acme-nobody", "access_token": "t2"}')
            await wait_for(lambda: len(unhandled(logs)) == 3)
            await asyncio.sleep(0.5)
            assert runtime.rescan_auth_dir() is None
        finally:
            await watcher.stop()
    reported = unhandled(logs)
    assert sorted(reported[:2]) == ["acme-me.json", "notype.json"] and reported[2:] == ["acme-me.json"]


# ---------------------------------------------------------------------------------------------------- live server


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAIChat, str]]:
    app = FakeOpenAIChat(validate=False)
    app.key_behaviour["slow-key"] = Reply(text="slow answer", delay=1.0)
    async with serve_on_loopback(app) as url:
        yield app, url + "/v1"


async def test_live_server_uses_added_keys_and_drops_removed_ones(
    tmp_path: Path, upstream: tuple[FakeOpenAIChat, str]
) -> None:
    app, base = upstream
    async with run_proxy(compat(["slow-key"], base=base), directory=tmp_path) as proxy:
        c = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        first = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "1"}])
        in_flight = asyncio.create_task(first)
        await wait_for(lambda: len(app.requests) == 1)
        # Replace the key and rename the model while the request is still running.
        rewrite(proxy.config_path, compat(["new-key-1", "new-key-2"], base=base, alias="m-renamed"))
        await wait_for(lambda: keys(proxy.container) == {"new-key-1", "new-key-2"})
        done = await in_flight
        assert done.choices[0].message.content == "slow answer"  # finished on the key it started with
        app.reset()
        for i in range(6):
            await c.chat.completions.create(model="m-renamed", messages=[{"role": "user", "content": str(i)}])
        assert {r.key for r in app.requests} == {"new-key-1", "new-key-2"}
        assert "slow-key" not in {r.key for r in app.requests}
        with pytest.raises(openai.APIStatusError) as gone:
            await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert gone.value.status_code in (400, 404)  # the old alias is unknown now
        async with httpx.AsyncClient(base_url=proxy.url) as h:
            listed = (await h.get("/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})).json()
        assert [m["id"] for m in listed["data"]] == ["m-renamed"]
        # Client api-keys follow the config too.
        rewrite(proxy.config_path, compat(["new-key-1"], base=base).replace(CLIENT_KEY, "sk-rotated-client-77"))
        await wait_for(lambda: proxy.container.runtime().settings.api_keys == ["sk-rotated-client-77"])
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
