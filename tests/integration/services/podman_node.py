"""A podman node as the tests see it: its service's address, its own CLI on its storage, and a raw API GET.

Both podmans give one: the host's (podman_host.py) and the other release's in a container (podman_other.py).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from integration.services.common import unix_http_get

PODMAN_CLI_TIMEOUT = 600.0


class PodmanCommandError(subprocess.CalledProcessError):
    """A failed podman CLI call whose message carries the command and its output."""

    def __str__(self) -> str:
        return (
            f"{shlex.join(map(str, self.cmd))} exited {self.returncode}\n"
            f"--- stdout:\n{self.stdout}--- stderr:\n{self.stderr}"
        )


@dataclass(frozen=True)
class PodmanNode:
    """A private podman API service and the storage it shares with the local CLI."""

    socket: Path
    url: str
    # os.environ plus CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINER_HOST=url.
    env: dict[str, str] = field(hash=False)
    graphroot: Path
    runroot: Path
    pid: int = 0  # the service's, to stop or kill it by
    # The node's own podman CLI on its storage: the host's podman, or `podman exec CONTAINER podman` for
    # the other release's podman in a container (run with outer_env, the container's private store).
    cli: tuple[str, ...] = ("podman",)
    outer_env: dict[str, str] | None = field(default=None, hash=False)
    version: str = ""  # the service's podman version, e.g. 4.3.1
    container: str = ""  # the container the service runs in, for the other podman

    @property
    def cli_env(self) -> dict[str, str]:
        """env without CONTAINER_HOST: with it, the podman CLI would turn into a remote client."""
        if self.outer_env is not None:
            return self.outer_env
        return {k: v for k, v in self.env.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def podman(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        input: str | None = None,
        timeout: float = PODMAN_CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run the podman CLI locally on this node's storage (not through the service)."""
        return run_podman(
            [os.fspath(a) for a in args], self.cli_env, check=check, input=input, timeout=timeout, cli=self.cli
        )

    def run(self, *cmd: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run another tool (skopeo, say) where the node's podman runs, on its storage: here, or in its container."""
        prefix = ("podman", "exec", "--interactive", self.container) if self.container else ()
        return run_podman([os.fspath(c) for c in cmd], self.cli_env, check=check, cli=prefix)

    def get(self, url_path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """A raw GET against the service, e.g. get("/v4.0.0/libpod/info")."""
        return unix_http_get(self.socket, url_path, timeout)


def run_podman(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = PODMAN_CLI_TIMEOUT,
    cli: Sequence[str] = ("podman",),
) -> subprocess.CompletedProcess[str]:
    cmd = [*cli, *args]
    proc = subprocess.run(
        cmd,
        env=dict(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise PodmanCommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc
