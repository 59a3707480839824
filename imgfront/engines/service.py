"""A private `podman system service` on a temporary socket, for when no podman service answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from imgfront.errors import EngineError
from imgfront.util import rundir

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SERVICE_PREFIX = "svc-"
PID_FILE = "service.pid"
SETTLE = 1.5  # seconds for podman to remove a build's working containers once its steps are killed


class PrivateService:
    """Runs `podman system service --time=0` for the duration of one command, then stops it by its PID."""

    def __init__(self, podman: str = "podman") -> None:
        self.podman = podman
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        assert self.dir is not None
        return self.dir / "podman.sock"

    @property
    def uri(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        binary = shutil.which(self.podman)
        if binary is None:
            raise EngineError(
                "podman is not installed and no podman service answers",
                hint="install podman (apt-get install podman), or set CONTAINER_HOST",
            )
        self.dir = rundir.current().subdir(SERVICE_PREFIX)
        log = (self.dir / "service.log").open("wb")
        # A session of its own keeps Ctrl-C away from the service: imgfront still needs it to clean up.
        self.process = subprocess.Popen(
            [binary, "system", "service", "--time=0", self.uri],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        (self.dir / PID_FILE).write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.dir / "service.log").read_text(errors="replace").strip().splitlines()
                self.stop()
                detail = output[-1] if output else "no output"
                raise EngineError(
                    f"could not start a private podman service: {detail}",
                    hint="run 'imgfront doctor' to see what is wrong",
                )
            time.sleep(0.05)
        return self.uri

    def kill_descendants(self) -> int:
        """Kill what the service runs for builds (buildah's RUN steps), which podman 4.3 lets run on after a cancel.

        Returns how many processes were still there to kill.
        """
        if self.process is None:
            return 0
        found = _descendants(self.process.pid)
        for pid in reversed(found):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return len(found)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _descendants(root: int) -> list[int]:
    """Every live process below `root` (zombies left out), parents before children, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError, IndexError):
            continue
        if state != "Z" and ppid.isdigit():
            children.setdefault(int(ppid), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


@rundir.on_stale
def stop_stale_service(run: Path) -> None:
    """A killed run's private service: end its builds' steps, let podman remove their containers, then stop it.

    The PID counts only while its command line still names the service's own socket, so a PID reused by
    another process is never signalled.
    """
    for folder in run.glob(SERVICE_PREFIX + "*"):
        try:
            pid = int((folder / PID_FILE).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"unix://{folder / 'podman.sock'}".encode() not in cmdline:
            continue
        deadline = time.monotonic() + STOP_TIMEOUT
        while _descendants(pid) and time.monotonic() < deadline:
            for child in reversed(_descendants(pid)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.2)
        time.sleep(SETTLE)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline + STOP_TIMEOUT:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
