"""`imgfront diff` on real builds: two local lists, a list with itself, an OCI layout and a registry."""

from __future__ import annotations

import re

import pytest
from conftest import BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

TWO = "linux/amd64,linux/arm64"
# A value that changes on every build, so that the same context built twice differs in one file.
CONTAINERFILE = BUSYBOX_CONTAINERFILE + "RUN cat /proc/sys/kernel/random/uuid > /stamp\n"
STAMP = re.compile(r"^linux/(amd64|arm64): layer \d of \d differs: /stamp: ")


def stamp_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if STAMP.match(line)]


def test_two_builds_of_one_context_differ_in_the_file_that_changed(
    podman_node, podman_kind, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    ctx = make_context(CONTAINERFILE)
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    pushed, layout, other = f"{registry.url}/diff/app:{podman_kind}", tmp_path / "layout", "localhost/diff-b:1"
    first = run_imgfront(
        [
            "build",
            "--platform",
            TWO,
            "--no-cache",
            "-t",
            pushed,
            "--push",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "--output",
            "type=image",
            "--output",
            f"type=oci-layout,dest={layout}",
            ctx,
        ],
        podman_node.env,
    )
    assert first.returncode == 0, first.stderr
    second = run_imgfront(["build", "--platform", TWO, "--no-cache", "-t", other, ctx], podman_node.env)
    assert second.returncode == 0, second.stderr

    # Two local lists: the platforms, the layer and the file are named.
    local = run_imgfront(["diff", pushed, other], podman_node.env)
    assert local.returncode == 1, local.stdout + local.stderr
    assert local.stdout.splitlines()[0].endswith("differ: linux/amd64, linux/arm64"), local.stdout
    lines = stamp_lines(local.stdout)
    assert {line.split(":")[0] for line in lines} == {"linux/amd64", "linux/arm64"}, local.stdout
    assert all(" of 3 differs: /stamp: " in line and "content sha256:" in line for line in lines), local.stdout

    # A list with itself, by both spellings of local storage.
    same = run_imgfront(["diff", other, f"containers-storage:{other}"], podman_node.env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "are identical" in same.stdout

    # The OCI layout the first build wrote, against the second build's list.
    from_layout = run_imgfront(["diff", f"oci:{layout}", other, "--json"], podman_node.env)
    assert from_layout.returncode == 1, from_layout.stdout + from_layout.stderr
    assert '"path": "/stamp"' in from_layout.stdout
    assert run_imgfront(["diff", f"oci:{layout}", f"oci-layout:{layout}"], podman_node.env).returncode == 0

    # The registry's copy of the first build, with the auth file's credentials, against the second.
    remote = run_imgfront(
        ["diff", f"docker://{pushed}", other, "--tls-verify=false", "--authfile", authfile], podman_node.env
    )
    assert remote.returncode == 1, remote.stdout + remote.stderr
    assert {line.split(":")[0] for line in stamp_lines(remote.stdout)} == {"linux/amd64", "linux/arm64"}, remote.stdout
    assert registry.password not in remote.stdout + remote.stderr
    # The pushed copy against the local list it came from: the same images, named by the manifests storage keeps.
    home = run_imgfront(
        ["diff", f"docker://{pushed}", pushed, "--tls-verify=false", "--authfile", authfile], podman_node.env
    )
    assert home.returncode == 1, home.stdout + home.stderr
    platform_lines = [line for line in home.stdout.splitlines()[1:] if line.startswith("linux/")]
    assert len(platform_lines) == 2, home.stdout
    assert all("(the same image sha256:" in line for line in platform_lines), home.stdout
    missing = run_imgfront(
        ["diff", f"docker://{registry.url}/diff/none:1", other, "--tls-verify=false", "--authfile", authfile],
        podman_node.env,
    )
    assert missing.returncode == 2
    assert len([line for line in missing.stderr.splitlines() if line.startswith("imgfront:")]) == 1
    assert "Traceback" not in missing.stderr
