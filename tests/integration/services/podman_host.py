"""The host's podman (4.3.1 on Debian 12) as a private `podman system service` on storage of its own.

Its containers.conf and storage.conf are private (file locks under its own tmp_dir, its own network config), so
neither the host's images nor its lock table are touched; at the end it is stopped by its PID and reset.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from integration.services.common import stop, unmount_and_remove, wait_for_port, wait_for_service
from integration.services.podman_node import PodmanNode, run_podman

# crun fails on this kind of host (cgroups hybrid mode); runc needs ulimits within the host's.
PODMAN_ENGINE_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
events_logger = "file"
# File locks under tmp_dir: the default shm locks are shared with the host's podman.
lock_type = "file"
tmp_dir = "{tmp_dir}"

[network]
# Private, so `podman system reset` at teardown cannot remove the host's networks.
network_config_dir = "{network_dir}"
"""

PODMAN_STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""


@contextlib.contextmanager
def service_node(base: Path, tcp_port: int | None = None) -> Iterator[PodmanNode]:
    """A private `podman system service` on storage under base, stopped by its PID and removed at the end.

    It listens on a unix socket, or on tcp://127.0.0.1:tcp_port when a port is given (then `socket` is unused).
    """
    graphroot, runroot = base / "root", base / "runroot"
    engine_conf, storage_conf = base / "containers.conf", base / "storage.conf"
    engine_conf.write_text(PODMAN_ENGINE_CONF.format(tmp_dir=base / "tmp", network_dir=base / "networks"))
    storage_conf.write_text(PODMAN_STORAGE_CONF.format(graphroot=graphroot, runroot=runroot))
    sock = base / "podman.sock"
    url = f"tcp://127.0.0.1:{tcp_port}" if tcp_port else f"unix://{sock}"

    cli_env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}
    cli_env["CONTAINERS_CONF"] = os.fspath(engine_conf)
    cli_env["CONTAINERS_STORAGE_CONF"] = os.fspath(storage_conf)

    log = base / "service.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", url],
            env=cli_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    node = PodmanNode(
        socket=sock,
        url=url,
        env={**cli_env, "CONTAINER_HOST": url},
        graphroot=graphroot,
        runroot=runroot,
        pid=proc.pid,
        version=host_podman_version(),
    )
    try:
        if tcp_port:
            wait_for_port(proc, tcp_port, log)
        else:
            wait_for_service(proc, sock, log)
        yield node
    finally:
        stop(proc)
        try:
            reset = run_podman(["system", "reset", "--force"], cli_env, check=False, timeout=120)
            reset_error = reset.stderr if reset.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            reset_error = "timed out"
        unmount_and_remove(base)
        if reset_error:
            print(f"podman node teardown: podman system reset failed: {reset_error}", file=sys.stderr)


def host_podman_version() -> str:
    """The host's podman version (4.3.1 on Debian 12), or "" when podman is not installed."""
    global _HOST_PODMAN_VERSION
    if _HOST_PODMAN_VERSION is None:
        try:
            out = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False).stdout
        except OSError:
            out = ""
        _HOST_PODMAN_VERSION = out.split()[-1] if out.strip() else ""
    return _HOST_PODMAN_VERSION


_HOST_PODMAN_VERSION: str | None = None


def podman_ids() -> tuple[str, str]:
    """Test ids of the two podmans: the host's major version and the other one (4 with 5, 5 with 4)."""
    version = host_podman_version()
    major = int(version.split(".")[0]) if version else 4
    return f"podman{major}", f"podman{5 if major < 5 else 4}"
