"""Writing auth files safely: temp file + fsync + rename, mode 0600, so a crash never leaves a broken file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from .credentials import Credential

__all__ = ["atomic_write", "credential_filename", "save_credential_file"]


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically; readers see the old or the new file, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some filesystems cannot fsync a directory; the rename itself is already atomic
        pass


def credential_filename(cred: Credential) -> str:
    base = cred.metadata.get("email") or cred.label or cred.id
    safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", str(base)).strip("_") or "credential"
    return f"{cred.provider}-{safe}.json"


def save_credential_file(directory: Path, cred: Credential, filename: str | None = None) -> Path:
    """Persist an OAuth credential as the JSON the provider plugin parses back (``metadata`` + ``type``)."""
    data: dict[str, Any] = {"type": cred.provider, **cred.metadata}
    path = (
        Path(cred.source)
        if cred.source not in ("", "config") and filename is None
        else (directory / (filename or credential_filename(cred)))
    )
    atomic_write(path, msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")
    return path
