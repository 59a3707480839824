"""One ssh tunnel per remote node: `ssh -N -L local.sock:remote.sock`, with the user's ssh config and keys.

podman-py's own ssh transport turns host key checking off, starts an ssh process per pooled connection, and
waits five minutes for a socket when authentication has already failed. A tunnel of imgfront's own keeps
ssh's checks, fails at once with ssh's own words, and is shared by every request to the node.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from imgfront.errors import EngineError
from imgfront.util import rundir

CONNECT_TIMEOUT = 15.0


class SshTunnel:
    def __init__(self, name: str, uri: str, identity: str | None = None, timeout: float = CONNECT_TIMEOUT) -> None:
        parts = urlsplit(uri)
        if parts.scheme not in ("ssh", "http+ssh") or not parts.hostname or not parts.path:
            raise EngineError(f"{name}: {uri} is not ssh://[user@]host[:port]/path/to/podman.sock")
        self.name, self.uri, self.timeout = name, uri, timeout
        self.destination = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
        self.port, self.remote_socket = parts.port, parts.path
        self.identity = identity
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, local: Path) -> list[str]:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise EngineError(f"{self.name}: ssh is not installed", hint="apt-get install openssh-client")
        command = [
            ssh,
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            f"ConnectTimeout={int(self.timeout)}",
            "-o",
            "ServerAliveInterval=15",
            "-L",
            f"{local}:{self.remote_socket}",
        ]
        if os.environ.get("IMGFRONT_SSH_CONFIG"):
            command += ["-F", os.environ["IMGFRONT_SSH_CONFIG"]]
        if self.port:
            command += ["-p", str(self.port)]
        if self.identity:
            command += ["-i", os.path.expanduser(self.identity), "-o", "IdentitiesOnly=yes"]
        return [*command, self.destination]

    def open(self) -> str:
        """Start the tunnel and return the local socket's URI, or raise ssh's own error naming the node."""
        self.dir = rundir.current().subdir("ssh-")
        local = self.dir / "podman.sock"
        log = self.dir / "ssh.log"
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                self.command(local),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        (self.dir / "ssh.pid").write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + self.timeout + 5
        while not local.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
                self.close()
                raise EngineError(
                    f"{self.name}: ssh to {self.destination} failed: {lines[-1] if lines else 'timed out'}",
                    hint=_hint(lines),
                )
            time.sleep(0.05)
        return f"unix://{local}"

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.dir)
            self.dir = None


@rundir.on_stale
def stop_stale_tunnel(run: Path) -> None:
    """A killed run's ssh tunnel, stopped by its PID while its command line still names the tunnel's socket."""
    for folder in run.glob("ssh-*"):
        with contextlib.suppress(OSError, ValueError):
            pid = int((folder / "ssh.pid").read_text())
            if os.fsencode(folder / "podman.sock") in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)


def _hint(lines: list[str]) -> str | None:
    text = "\n".join(lines)
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return "the host key is unknown or changed: connect once with ssh to check and accept it"
    if "Permission denied" in text:
        return "authentication failed: give the key with --identity, or load it into ssh-agent"
    if "Connection refused" in text or "timed out" in text or "No route" in text:
        return "is sshd running on that host and port?"
    return None
