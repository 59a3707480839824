"""Probing a real podman node for the platforms it can run, which podman 4.3's info does not report."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgfront.emulation.probe import cached, probe_node
from imgfront.emulation.qemu import emulated_platforms
from imgfront.engines import connected
from imgfront.nodes.connections import Connection
from imgfront.platforms import Platform

pytestmark = pytest.mark.slow


def test_probe_finds_native_and_emulated_platforms_and_caches_them(
    podman_node, emulation_ready, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    amd64, arm64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
    unregistered = next(
        p
        for p in map(Platform.parse, ("linux/s390x", "linux/ppc64le", "linux/riscv64"))
        if p not in emulated_platforms()
    )
    with connected(Connection("probe-node", podman_node.url), local=False) as node:
        found = probe_node(node, [amd64, arm64, unregistered], "test-node")
    assert found == {amd64, arm64}
    assert cached("test-node") == {str(amd64): True, str(arm64): True, str(unregistered): False}
    # A second probe answers from the cache, without a node at all.
    assert probe_node(None, [arm64, unregistered], "test-node") == {arm64}  # type: ignore[arg-type]
