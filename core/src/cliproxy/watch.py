"""Hot reload: watch config.yaml and auth-dir and apply changes without a restart.

The *parent directory* of config.yaml is watched (not the file), so editors that save by writing a temp file
and renaming it over the original keep being noticed; events are filtered by name. auth-dir is watched
non-recursively for top-level ``*.json``. watchfiles debounces bursts (an editor's truncate + write, an atomic
replace's create + rename) into one batch, and the runtime skips files whose content hash did not change, so
our own writes (refreshed tokens) and no-op saves cost nothing. Each time a watch of auth-dir begins (at
startup, when the directory appears, after a restart), auth-dir is rescanned once, so files that arrived
while nothing watched are loaded, or reported when no plugin handles them, like any other change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from watchfiles import Change, awatch

from .logging import get_logger
from .runtime import Runtime, is_auth_file

__all__ = ["ReloadWatcher"]

log = get_logger("cliproxy.watch")


def _real(path: Path) -> str:
    return os.path.realpath(path)


class ReloadWatcher:
    """Background task applying config/auth-dir changes to a :class:`Runtime`."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        debounce_ms: int = 300,
        step_ms: int = 50,
        force_polling: bool | None = None,
        recheck_seconds: float = 2.0,
    ) -> None:
        self.runtime = runtime
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.force_polling = force_polling
        #: How often to look again for an auth-dir that did not exist yet.
        self.recheck_seconds = recheck_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Incremented after each processed batch (tests wait on it instead of sleeping).
        self.batches = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self.run(), name="cliproxy-reload-watcher")
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    # ------------------------------------------------------------------ loop

    def _targets(self) -> tuple[Path | None, Path]:
        return self.runtime.config_path, self.runtime.auth_dir

    async def run(self) -> None:
        while not self._stop.is_set():
            config, auth_dir = self._targets()
            dirs: list[Path] = []
            if config is not None and config.parent.is_dir():
                dirs.append(config.parent)
            auth_exists = auth_dir.is_dir()
            if auth_exists and not any(_real(d) == _real(auth_dir) for d in dirs):
                dirs.append(auth_dir)
            if not dirs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.recheck_seconds)
                continue
            log.info(
                "watching for changes",
                config=str(config) if config else None,
                auth_dir=str(auth_dir) if auth_exists else None,
            )
            try:
                await self._watch(dirs, config, auth_dir, auth_exists)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("file watcher failed; restarting it")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.recheck_seconds)

    async def _watch(self, dirs: list[Path], config: Path | None, auth_dir: Path, auth_exists: bool) -> None:
        watcher = awatch(
            *dirs,
            watch_filter=None,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=int(self.recheck_seconds * 1000),
            yield_on_timeout=True,
            recursive=False,
            force_polling=self.force_polling,
        )
        caught_up = not auth_exists
        async with contextlib.aclosing(watcher):
            async for changes in watcher:
                if not caught_up:
                    # The OS watch is in place now (first yield): whatever arrived in auth-dir before it, e.g.
                    # files copied in right after the directory was created, is picked up and reported here.
                    caught_up = True
                    self._catch_up()
                if changes:
                    self.handle(changes, config, auth_dir)
                if self._targets() != (config, auth_dir) or self._auth_dir_exists(auth_dir) != auth_exists:
                    return  # auth-dir or config moved (or auth-dir appeared): watch the new places

    def _catch_up(self) -> None:
        try:
            self.runtime.rescan_auth_dir()
        except Exception:
            log.exception("rescanning auth-dir failed; the running state is kept")

    @staticmethod
    def _auth_dir_exists(auth_dir: Path) -> bool:
        """One stat call between batches; not worth a thread hop."""
        return auth_dir.is_dir()

    # ------------------------------------------------------------------ one batch

    def handle(self, changes: set[tuple[Change, str]], config: Path | None, auth_dir: Path) -> None:
        """Split a batch into config and auth-file changes; config goes first (it may move auth-dir)."""
        config_real = _real(config) if config is not None else None
        auth_real = _real(auth_dir)
        config_changed = False
        auth_paths: set[Path] = set()
        for _, raw in changes:
            path = Path(raw)
            real_parent = _real(path.parent)
            if config_real is not None and _real(path.parent / path.name) == config_real:
                config_changed = True
            elif real_parent == auth_real and is_auth_file(path.name):
                auth_paths.add(auth_dir / path.name)
        try:
            if config_changed:
                self.runtime.reload_config()
            if auth_paths and self.runtime.auth_dir == auth_dir:
                self.runtime.reload_auth_files(sorted(auth_paths))
        except Exception:
            log.exception("applying file changes failed; the running state is kept")
        self.batches += 1
