"""A private `podman system service` on a temporary socket, for when no podman service answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from imgfront.errors import EngineError

START_TIMEOUT = 20.0


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
        self.dir = Path(tempfile.mkdtemp(prefix="imgfront-service-"))
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

    def kill_descendants(self) -> None:
        """Kill what the service runs for builds (buildah's RUN steps), which podman 4.3 lets run on after a cancel."""
        if self.process is None:
            return
        for pid in reversed(_descendants(self.process.pid)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _descendants(root: int) -> list[int]:
    """Every process below `root`, parents before children, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found
