"""A mixed farm, as users have them: the host's podman 4.3 holds the list, a podman 5.x node builds beside it.

Whatever podman_node is, `host_node` is the host's podman and `other_nodes` starts the other release's, so this
always mixes the two (4.3 local and 5.x node on Debian 12; the other way round on Debian 13).
"""

from __future__ import annotations

import json

import pytest
from conftest import BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow


def plan_of(output: str) -> dict[str, str]:
    line = next(ln for ln in output.splitlines() if ln.startswith("plan: "))
    return {p.split(" -> ")[0]: p.split(" -> ")[1].split(" (")[0] for p in line[len("plan: ") :].split("; ")}


def test_host_podman_and_the_other_release_as_a_node_make_one_list(
    host_node, other_nodes, make_context, run_imgfront, emulation_ready, tmp_path
):
    other = other_nodes()
    assert other.major != host_node.major
    ctx = make_context(BUSYBOX_CONTAINERFILE + 'RUN uname -m > /built-on\nCMD ["cat", "/built-on"]\n')
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--node",
            f"{other.url}?name=other",
            "-t",
            "localhost/mixed:1",
            "--progress",
            "plain",
            "--metadata-file",
            meta,
            ctx,
        ],
        host_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(plan_of(result.stderr).values()) == ["local", "other"]
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        ran = host_node.podman("run", "--rm", "--platform", platform, "localhost/mixed:1", "uname", "-m")
        assert ran.stdout.strip() == machine
        built_on = host_node.podman("run", "--rm", "--platform", platform, "localhost/mixed:1").stdout.strip()
        assert built_on == machine
    data = json.loads(meta.read_text())
    assert sorted(b["node"] for b in data["imgfront.builds"]) == ["local", "other"]
    raw = host_node.run("skopeo", "inspect", "--raw", "containers-storage:localhost/mixed:1").stdout
    import hashlib

    assert data["containerimage.digest"] == "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
