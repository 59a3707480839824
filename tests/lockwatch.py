"""podman 5's lock on podman-connections.json, held by a test, and the processes waiting for it.

containers/storage's lockfile (which podman 5 takes on PATH.lock while it edits PATH) is an fcntl write lock on the
whole lock file; /proc/locks lists every process blocked on one, podman's inside a node's container included.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def waiting_on(lock: Path) -> int:
    """How many processes wait for an fcntl lock on this file (/proc/locks: blocked requests, by device and inode)."""
    st = lock.stat()
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if " -> " in line and where in line.split())


@contextlib.contextmanager
def held_like_podman(path: Path) -> Iterator[Path]:
    """path.lock held as containers/storage's lockfile holds it (podman 5): fcntl F_WRLCK on the whole file."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield lock
    finally:
        os.close(fd)


def wait_for_waiters(lock: Path, count: int, procs: Sequence[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120  # a bound on a loaded machine, not a figure under test
    while waiting_on(lock) < count:
        finished = [p for p in procs if p.poll() is not None]
        assert not finished, f"an edit did not wait for the lock: {finished[0].communicate()}"
        assert time.monotonic() < deadline, f"only {waiting_on(lock)} of {count} edits wait for {lock}"
        time.sleep(0.1)
