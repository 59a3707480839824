"""A podman 5.x node for the benchmarks' `--engine podman5`, started the way the integration tests start one.

The node is tests/integration/services/podman_other.py's: the other Debian release's podman (5.4 on this
Debian 12 host) as `podman system service` in a privileged container of the host's podman, on a private
outer store. Its folder and the folders named in `mounts` have one path inside and out, so the node's own CLI
(`node.cli`, run with `node.cli_env`) sees a build context there. The container is stopped and removed by
its id when the block ends, and the outer store is reset and removed.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
AARCH64_ELF_MAGIC = "7f454c460201010000000000000000000200b700"

if TYPE_CHECKING:
    from integration.services.podman_node import PodmanNode


def aarch64_handler() -> Path | None:
    """The binfmt_misc entry of an enabled qemu-aarch64 handler with flag F, which containers (the node) need."""
    try:
        if (BINFMT_MISC / "status").read_text().strip() != "enabled":
            return None
        entries = sorted(BINFMT_MISC.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.name in ("register", "status"):
            continue
        try:
            lines = entry.read_text().splitlines()
        except OSError:
            continue
        fields = {key.rstrip(":"): value for key, _, value in (line.partition(" ") for line in lines[1:])}
        if (
            lines[:1] == ["enabled"]
            and fields.get("magic", "").startswith(AARCH64_ELF_MAGIC)
            and "F" in fields.get("flags", "")
        ):
            return entry
    return None


def host_podman_version() -> str:
    return subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def podman5_node(work: Path, mounts: Sequence[Path] = ()) -> Iterator[PodmanNode]:
    """One podman 5.x node with its folder under work; each of mounts is seen at the same path inside it."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import pytest  # the service helpers fail through pytest.fail; turned into an exit here
    from integration.services.podman_other import OtherPodman, ServiceError, other_node

    outer, base = work / "podman5-outer", work / "podman5-node"
    outer.mkdir()
    base.mkdir()
    other = OtherPodman(outer, mounts=list(mounts))
    try:
        try:
            other.prepare()
        except ServiceError as e:
            sys.exit(f"bench: the podman 5 node could not be prepared (run `make setup` as root):\n{e}")
        with other_node(other, base) as node:
            yield node
    except pytest.fail.Exception as e:
        sys.exit(f"bench: {e}")
    finally:
        other.close()
