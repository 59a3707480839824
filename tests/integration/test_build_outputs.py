"""`imgfront build --output type=...` against real podman and Docker engines, read back with skopeo, podman, docker."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from conftest import DOCKER_BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

# Docker 20.10's legacy builder needs each FROM scratch stage to begin with COPY (docs/docker.md).
BASE = DOCKER_BUSYBOX_CONTAINERFILE


def skopeo_raw(ref: str) -> dict[str, object]:
    run = subprocess.run(["skopeo", "inspect", "--raw", ref], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    data: dict[str, object] = json.loads(run.stdout)
    return data


def platforms_of(index: dict[str, object]) -> list[str]:
    manifests = index["manifests"]
    assert isinstance(manifests, list)
    return sorted("/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"]))) for m in manifests)


def pulled_and_run(node, tmp_path: Path, platform: str, source: str) -> str:
    """Pull `source` for `platform` into a store of its own, as a user on another machine would, and run it.

    Not into the node's store: that holds the built image already, and podman 5 refuses an image whose id it has
    with other layer ids ("already exists, but uses a different top layer").
    """
    folder = Path(tempfile.mkdtemp(prefix="pull-", dir="/tmp"))  # podman wants a runroot under 50 characters
    store = ["--root", f"{folder}/root", "--runroot", f"{folder}/run"]
    try:
        pulled = node.podman(*store, "pull", "-q", "--platform", platform, source).stdout.split()[-1]
        return str(node.podman(*store, "run", "--rm", pulled).stdout.strip())
    finally:
        node.podman(*store, "system", "reset", "--force", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_platform_build_into_an_oci_layout_that_skopeo_reads_and_podman_pulls(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    ctx = make_context(BASE + 'RUN uname -m > /built-on\nCMD ["cat", "/built-on"]\n')
    layout, meta = tmp_path / "layout", tmp_path / "meta.json"
    args = ["build", "--platform", "linux/amd64,linux/arm64", "--output", f"type=oci-layout,dest={layout}"]
    result = run_imgfront([*args, "--metadata-file", meta, "--progress", "plain", ctx], podman_node.env)
    assert result.returncode == 0, result.stderr

    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = skopeo_raw(f"oci:{layout}")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert platforms_of(index) == ["linux/amd64", "linux/arm64"]
    assert pulled_and_run(podman_node, tmp_path, "linux/arm64", f"oci:{layout}") == "aarch64"

    data = json.loads(meta.read_text())
    assert data["imgfront.outputs"] == [{"type": "oci-layout", "dest": str(layout)}]
    assert "containerimage.digest" not in data  # no list was made, and two platforms have no one digest
    assert sorted(b["platform"] for b in data["imgfront.builds"]) == ["linux/amd64", "linux/arm64"]


def test_each_output_type_reads_back_and_rootfs_honours_whiteouts(
    podman_node, dockerd, make_context, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    ctx = make_context(
        BASE
        + "RUN echo gone > /gone && mkdir -p /d/sub && echo old > /d/sub/old\n"
        + "RUN rm /gone && rm -rf /d && mkdir /d && echo new > /d/new\n"
    )
    archive, docker_archive, rootfs = tmp_path / "img.oci.tar", tmp_path / "img.docker.tar", tmp_path / "rootfs"
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "localhost/outs:1",
            "--output",
            "type=image",
            "--output",
            f"type=oci-archive,dest={archive}",
            "-o",
            f"type=docker-archive,dest={docker_archive}",
            "-o",
            f"type=rootfs,dest={rootfs}",
            "--metadata-file",
            meta,
            ctx,
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr

    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/outs:1").stdout)
    assert len(listed["manifests"]) == 2
    assert platforms_of(skopeo_raw(f"oci-archive:{archive}")) == ["linux/amd64", "linux/arm64"]

    client = dockerd.client()
    try:
        messages = list(client.load_image(docker_archive.read_bytes()))
        assert not [m for m in messages if m.get("error")], messages
        for platform, arch in (("linux_amd64", "amd64"), ("linux_arm64", "arm64")):
            assert client.inspect_image(f"localhost/outs:1-{platform}")["Architecture"] == arch
    finally:
        client.close()
    podman_node.podman("load", "-i", docker_archive)
    arch = podman_node.podman("image", "inspect", "--format", "{{.Architecture}}", "localhost/outs:1-linux_arm64")
    assert arch.stdout.strip() == "arm64"

    assert sorted(p.name for p in rootfs.iterdir()) == ["linux_amd64", "linux_arm64"]
    for folder in rootfs.iterdir():
        assert (folder / "bin" / "busybox").is_file()
        assert (folder / "bin" / "ls").is_symlink()
        assert not (folder / "gone").exists()
        assert sorted(p.name for p in (folder / "d").iterdir()) == ["new"]
        assert not any(p.name.startswith(".wh.") for p in folder.rglob("*"))

    outputs = json.loads(meta.read_text())["imgfront.outputs"]
    assert [o["type"] for o in outputs] == ["image", "oci-archive", "docker-archive", "rootfs"]
    assert outputs[0]["dest"] is None


def test_podman_and_docker_nodes_write_one_oci_layout(
    podman_node, dockerd, make_context, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    ctx = make_context(BASE + 'ARG TARGETARCH\nRUN echo "$TARGETARCH" > /arch\nCMD ["cat", "/arch"]\n')
    layout, meta = tmp_path / "mixed", tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--node",
            f"docker+{dockerd.url}",
            "--output",
            f"type=oci-layout,dest={layout}",
            "--metadata-file",
            meta,
            ctx,
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    nodes = {b["platform"]: b["node"] for b in json.loads(meta.read_text())["imgfront.builds"]}
    assert nodes["linux/amd64"] != nodes["linux/arm64"]  # one platform on each engine

    assert platforms_of(skopeo_raw(f"oci:{layout}")) == ["linux/amd64", "linux/arm64"]
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        assert pulled_and_run(podman_node, tmp_path, platform, f"oci:{layout}") == arch


def test_failed_build_leaves_the_previous_layout_as_it_was(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    layout = tmp_path / "kept"
    good = make_context(BASE + "RUN echo one > /version\n")
    args = ["build", "--platform", "linux/amd64", "-o", f"type=oci-layout,dest={layout}"]
    assert run_imgfront([*args, good], podman_node.env).returncode == 0
    before = (layout / "index.json").read_bytes()

    bad = make_context(BASE + "RUN exit 3\n")
    result = run_imgfront([*args, bad], podman_node.env)
    assert result.returncode == 1
    assert (layout / "index.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left beside


def test_buildx_output_names_local_and_tar_and_load(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    """buildx's `type=local`, `type=tar` and `--load`: two platforms give a folder each, one platform the root."""
    ctx = make_context(BASE + "RUN uname -m > /built-on\n")
    local, tarball = tmp_path / "local", tmp_path / "fs.tar"
    result = run_imgfront(
        [
            *("build", "--platform", "linux/amd64,linux/arm64", "-t", "localhost/buildx-outs:1", "--load"),
            *("-o", f"type=local,dest={local}", "-o", f"type=tar,dest={tarball}", ctx),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert {p.name: (p / "built-on").read_text().strip() for p in local.iterdir()} == {
        "linux_amd64": "x86_64",
        "linux_arm64": "aarch64",
    }
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        built_on = archive.extractfile("linux_arm64/built-on")
        assert built_on is not None and built_on.read() == b"aarch64\n"
    assert {"linux_amd64/bin/busybox", "linux_arm64/bin/busybox"} <= names
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/buildx-outs:1").stdout)  # --load
    assert len(listed["manifests"]) == 2

    one, one_tar = tmp_path / "one", tmp_path / "one.tar"
    single = run_imgfront(
        ["build", "--platform", "linux/arm64", "-o", f"type=local,dest={one}", "-o", f"type=tar,dest={one_tar}", ctx],
        podman_node.env,
    )
    assert single.returncode == 0, single.stderr
    assert (one / "built-on").read_text() == "aarch64\n"
    assert (one / "bin" / "busybox").is_file()
    with tarfile.open(one_tar) as archive:
        assert "bin/busybox" in archive.getnames()
    again = run_imgfront(["build", "--platform", "linux/arm64", "-o", f"type=local,dest={one}", ctx], podman_node.env)
    assert again.returncode == 2
    assert again.stderr.splitlines()[0] == f"imgfront: --output type=local: {one} exists and is not empty"
    assert (one / "built-on").read_text() == "aarch64\n"
