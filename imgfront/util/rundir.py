"""One temporary folder per imgfront process, locked while it lives, so the next run can clear a killed one's.

Everything a run keeps in the temporary directory (packed contexts, its private podman service's socket and
log, compiled pipelines) lives under `imgfront-run-*`. The process holds an exclusive flock on its `lock` file
until it exits; the kernel drops it even after SIGKILL. A later run that can take the lock of another folder
knows its owner is gone and calls the reapers registered here (a private service left running, say) before it
removes the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

PREFIX = "imgfront-run-"
LOCK = "lock"
UNLOCKED_GRACE = 60.0  # seconds a folder may be without its lock file before it counts as a dead run's

Reaper = Callable[[Path], None]
_reapers: list[Reaper] = []
_current: RunDir | None = None
_guard = threading.Lock()


def on_stale(reaper: Reaper) -> Reaper:
    """Register what to do with a dead run's folder before it is removed (e.g. stop its service)."""
    _reapers.append(reaper)
    return reaper


class RunDir:
    """This process's temporary folder and the lock that says it is alive."""

    def __init__(self, base: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        self._fd = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def subdir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._fd)


def current() -> RunDir:
    """This process's run folder, made (after clearing dead runs' folders) on first use."""
    global _current
    with _guard:
        if _current is None:
            reap_stale()
            _current = RunDir()
        return _current


def close_current() -> None:
    global _current
    with _guard:
        if _current is not None:
            _current.close()
            _current = None


def reap_stale(base: Path | None = None) -> list[Path]:
    """Remove the folders of runs that are gone, after their reapers; returns what was removed."""
    root = Path(base or tempfile.gettempdir())
    removed = []
    for folder in sorted(root.glob(PREFIX + "*")):
        with contextlib.suppress(OSError):
            if folder.stat().st_uid != os.geteuid() or not folder.is_dir() or folder.is_symlink():
                continue
            if _owner_alive(folder):
                continue
            for reaper in _reapers:
                with contextlib.suppress(Exception):
                    reaper(folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_alive(folder: Path) -> bool:
    """Whether another process holds the folder's lock; a folder without one is being made right now."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # Between mkdtemp and the lock's creation for a moment; for longer, its owner died right there.
        return time.time() - folder.stat().st_mtime < UNLOCKED_GRACE
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
