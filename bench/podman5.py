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

if TYPE_CHECKING:
    from integration.services.podman_node import PodmanNode


def aarch64_handler() -> Path | None:
    """The binfmt_misc entry of an enabled qemu-aarch64 handler with flag F, which containers (the node) need."""
    from imgfront.emulation.binfmt import working_handler
    from imgfront.platforms import Platform

    return working_handler(Platform.parse("linux/arm64"))


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
