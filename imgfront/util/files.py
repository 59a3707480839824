"""Files written whole or not at all, and where a user's configuration, cache and data live (XDG base directories)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path


def config_home(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CONFIG_HOME, else ~/.config: where podman's and imgfront's user files live."""
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def cache_home(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CACHE_HOME when it is an absolute path (the XDG spec ignores a relative one), else ~/.cache."""
    base = env.get("XDG_CACHE_HOME", "")
    return Path(base) if os.path.isabs(base) else Path.home() / ".cache"


def data_home(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_DATA_HOME when it is an absolute path, else ~/.local/share: where imgfront keeps what it must not lose."""
    base = env.get("XDG_DATA_HOME", "")
    return Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"


def write_atomically(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Write beside the target, flush it to disk and rename, so a reader sees the old file or the new one whole.

    The new file gets `mode` when given, else the mode of the file it replaces, else 0600 (mkstemp's).
    On any error, the temporary file is removed and the target is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is None and path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
