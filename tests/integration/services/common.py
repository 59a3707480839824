"""What the test services share: HTTP over a unix socket, free ports, waiting for a service, stopping it by PID.

A service that cannot start fails the test with its log and a hint (never a skip), so that a run on an
unprepared host cannot pass by testing nothing.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket as socketlib
import subprocess
import time
from pathlib import Path
from typing import Protocol

import pytest

SETUP_HINT = "run `make setup` as root (scripts/setup-host.sh prepares the host)"
SERVICE_START_TIMEOUT = 30.0
SERVICE_STOP_TIMEOUT = 15.0


class Process(Protocol):
    """What the wait helpers watch: a child Popen, or ForeignProcess for one that is not ours."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, for talking to the podman service without extra libraries."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fspath(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def unix_http_get(path: Path, url_path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """GET url_path from the HTTP server on unix socket path: (status, headers, body)."""
    conn = _UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", url_path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} needs root (rootless podman is not set up on these hosts); run the tests as root")


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below directory, deepest first (mountinfo field 5 is the mount point)."""
    prefix = os.fspath(directory)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(SERVICE_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_service(
    proc: Process,
    sock: Path,
    log: Path,
    what: str = "podman system service",
    timeout: float = SERVICE_START_TIMEOUT,
) -> None:
    """Wait until a service answers /_ping on its unix socket; fail with its log if it exits or never does."""
    deadline = time.monotonic() + timeout
    last_error = "socket not created"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode} while starting:\n{log.read_text()[-4000:]}", pytrace=False)
        try:
            status, _, body = unix_http_get(sock, "/_ping", timeout=2.0)
            if status == 200:
                return
            last_error = f"/_ping answered {status}: {body[:200]!r}"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.1)
    pytest.fail(
        f"{what} did not answer /_ping within {timeout:.0f} s ({last_error}):\n{log.read_text()[-4000:]}",
        pytrace=False,
    )


def wait_for_port(proc: Process, port: int, log: Path, what: str = "podman system service") -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode}:\n{log.read_text()}", pytrace=False)
        with socketlib.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port}:\n{log.read_text()}", pytrace=False)


class ForeignProcess:
    """A process that is not our child (a container's service), watched by its PID for the wait helpers."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self.returncode = -1
        return self.returncode


def free_port() -> int:
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unmount_and_remove(base: Path) -> None:
    """Lazily unmount whatever is mounted under base (overlay layers, the container's bind mounts), then remove it."""
    for point in mounts_under(base):
        subprocess.run(["umount", "--lazy", os.fspath(point)], check=False, capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
