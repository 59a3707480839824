"""The other podman: the other Debian release's podman as a real `podman system service`, in a container.

On a Debian 12 host (podman 4.3) that is Debian 13's podman 5.x; on a Debian 13 host, Debian 12's podman 4.3.
Its packages never touch the host: `scripts/podman-node-rootfs.sh` makes and caches a root file system, which
the host's podman imports into a private store (its own containers.conf and storage.conf, so neither the host's
images nor its lock table are touched) and runs as a privileged container per node:

- `--network host`, so the inner podman reaches registries on the host's 127.0.0.1 and makes no bridge;
- the node's folder bind-mounted at the same path inside, so its socket, its storage and the test's build
  contexts have one path on both sides (the inner storage lives there too);
- a containers.conf of its own: runc, cgroupfs, file events, host netns, the host's ulimits.

Each container is stopped and removed by its id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration.services.common import (
    SETUP_HINT,
    ForeignProcess,
    unmount_and_remove,
    wait_for_port,
    wait_for_service,
)
from integration.services.podman_host import PODMAN_ENGINE_CONF, PODMAN_STORAGE_CONF
from integration.services.podman_node import PodmanNode

REPO = Path(__file__).resolve().parents[3]
ROOTFS_SCRIPT = REPO / "scripts" / "podman-node-rootfs.sh"
IMAGE = "localhost/imgfront-test/podman-other:latest"

# The host's podman that runs the nodes keeps a private store, as the host's own test nodes do.
OUTER_ENGINE_CONF = PODMAN_ENGINE_CONF
OUTER_STORAGE_CONF = PODMAN_STORAGE_CONF

# The node's own podman: no systemd in the container, so cgroupfs; no bridge, so the host's network.
INNER_ENGINE_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

INNER_STORAGE_CONF = OUTER_STORAGE_CONF


class ServiceError(RuntimeError):
    """The other podman could not be prepared or started; the message carries what it printed."""


def _run(cmd: Sequence[str], env: dict[str, str], timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise ServiceError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


@dataclass(frozen=True)
class NodeContainer:
    """One running node: its container, the host PID of its service, and how to run its own podman CLI."""

    container: str
    pid: int
    cli: tuple[str, ...]  # the node's podman CLI, run on the host with outer_env
    outer_env: dict[str, str]
    version: str


class OtherPodman:
    """The host's podman on a private store holding the other release's root file system as an image."""

    def __init__(self, base: Path, mounts: Sequence[Path]) -> None:
        self.base = base
        self.mounts = tuple(mounts)  # host folders each node sees at the same path (the test session's tmp)
        graphroot, runroot = base / "root", base / "runroot"
        (base / "containers.conf").write_text(
            OUTER_ENGINE_CONF.format(tmp_dir=base / "tmp", network_dir=base / "networks")
        )
        (base / "storage.conf").write_text(OUTER_STORAGE_CONF.format(graphroot=graphroot, runroot=runroot))
        env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}
        env["CONTAINERS_CONF"] = os.fspath(base / "containers.conf")
        env["CONTAINERS_STORAGE_CONF"] = os.fspath(base / "storage.conf")
        self.env = env
        self.version = ""

    def prepare(self) -> None:
        """Make (or find cached) the root file system and import it; about 7 s."""
        made = subprocess.run(
            [os.fspath(ROOTFS_SCRIPT)], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            raise ServiceError(f"{ROOTFS_SCRIPT.name} failed:\n{made.stderr}")
        rootfs = made.stdout.strip().splitlines()[-1]
        _run(["podman", "import", "--quiet", rootfs, IMAGE], self.env)
        self.version = _run(
            ["podman", "run", "--rm", "--network", "host", IMAGE, "podman", "--version"], self.env
        ).stdout.split()[-1]

    @contextlib.contextmanager
    def node(self, base: Path, url: str) -> Iterator[NodeContainer]:
        """A node serving `url` (unix:// under base, or tcp://127.0.0.1:PORT) with its storage under base."""
        (base / "containers.conf").write_text(INNER_ENGINE_CONF)
        (base / "storage.conf").write_text(INNER_STORAGE_CONF.format(graphroot=base / "root", runroot=base / "runroot"))
        name = f"imgfront-test-node-{uuid.uuid4().hex[:12]}"
        volumes = [f"--volume={p}:{p}" for p in dict.fromkeys([*self.mounts, base])]
        cache = Path("/var/cache/imgfront")
        if cache.is_dir():
            volumes.append(f"--volume={cache}:{cache}:ro")  # the Debian base's cached tars
        container = _run(
            [
                "podman",
                "run",
                "--detach",
                "--privileged",
                "--network=host",
                f"--name={name}",
                "--env=PODMAN_IGNORE_CGROUPSV1_WARNING=1",
                f"--env=CONTAINERS_CONF={base / 'containers.conf'}",
                f"--env=CONTAINERS_STORAGE_CONF={base / 'storage.conf'}",
                *volumes,
                IMAGE,
                "podman",
                "system",
                "service",
                "--time=0",
                url,
            ],
            self.env,
        ).stdout.strip()
        try:
            pid = int(_run(["podman", "inspect", "--format", "{{.State.Pid}}", container], self.env).stdout)
            yield NodeContainer(
                container=container,
                pid=pid,
                cli=("podman", "exec", "--interactive", container, "podman"),
                outer_env=self.env,
                version=self.version,
            )
        finally:
            subprocess.run(
                ["podman", "rm", "--force", "--time=5", container],
                env=self.env,
                capture_output=True,
                check=False,
                timeout=60,
            )

    def logs(self, container: str) -> str:
        proc = subprocess.run(
            ["podman", "logs", container], env=self.env, capture_output=True, text=True, check=False, timeout=30
        )
        return proc.stdout + proc.stderr

    def close(self) -> None:
        subprocess.run(
            ["podman", "system", "reset", "--force"], env=self.env, capture_output=True, check=False, timeout=120
        )
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def other_node(other: OtherPodman, base: Path, tcp_port: int | None = None) -> Iterator[PodmanNode]:
    """The other release's podman serving on a unix socket under base, or on tcp://127.0.0.1:tcp_port."""
    sock = base / "podman.sock"
    url = f"tcp://127.0.0.1:{tcp_port}" if tcp_port else f"unix://{sock}"
    env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}
    try:
        with other.node(base, url) as container:
            node = PodmanNode(
                socket=sock,
                url=url,
                env={**env, "CONTAINER_HOST": url},
                graphroot=base / "root",
                runroot=base / "runroot",
                pid=container.pid,
                cli=container.cli,
                outer_env=container.outer_env,
                version=container.version,
                container=container.container,
            )
            log = base / "service.log"
            proc = ForeignProcess(container.pid)
            try:
                if tcp_port:
                    wait_for_port(proc, tcp_port, log)
                else:
                    wait_for_service(proc, sock, log)
            except pytest.fail.Exception:
                log.write_text(other.logs(container.container))
                raise
            yield node
    except ServiceError as e:
        pytest.fail(f"the other podman node did not start: {e}\n{SETUP_HINT}", pytrace=False)
    finally:
        unmount_and_remove(base)
