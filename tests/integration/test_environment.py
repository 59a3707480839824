"""The shared fixtures themselves, against real podman: when these fail, read nothing else first."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from imgfront.engines.streams import parse_version

if TYPE_CHECKING:
    from conftest import MakeContext, PodmanNode, RunImgfront

pytestmark = pytest.mark.slow

BUSYBOX_CONTAINERFILE = """\
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
RUN uname -m > /built-on
"""


def test_private_service_answers_with_libpod_api_4_3_or_newer(podman_node: PodmanNode) -> None:
    status, headers, body = podman_node.get("/_ping")
    assert (status, body) == (200, b"OK")
    assert parse_version(headers["Libpod-Api-Version"]) >= (4, 3)

    status, _, body = podman_node.get("/v4.0.0/libpod/version")
    assert status == 200
    assert parse_version(json.loads(body)["Version"]) >= (4, 3)


def test_the_two_podmans_are_the_two_releases(podman_node: PodmanNode, podman_kind: str) -> None:
    status, _, body = podman_node.get("/v4.0.0/libpod/version")
    assert status == 200
    served = json.loads(body)["Version"]
    assert served == podman_node.version
    host_major = int(subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()[-1][0])
    if podman_kind == "host":
        assert podman_node.major == host_major
    else:
        assert podman_node.major == (5 if host_major == 4 else 4), served
        assert podman_node.container  # it runs in a container of its own


def test_storage_is_isolated_from_the_host_store(podman_node: PodmanNode) -> None:
    # The service, the local CLI and a remote client (as imgfront connects) all see the tmp store.
    status, _, body = podman_node.get("/v4.0.0/libpod/info")
    assert status == 200
    service_info = json.loads(body)
    cli_info = json.loads(podman_node.podman("info", "--format", "json").stdout)
    remote = podman_node.podman("--remote", "--url", podman_node.url, "info", "--format", "{{.Store.GraphRoot}}")

    assert Path(service_info["store"]["graphRoot"]) == podman_node.graphroot
    assert Path(cli_info["store"]["graphRoot"]) == podman_node.graphroot
    assert Path(cli_info["store"]["runRoot"]) == podman_node.runroot
    assert Path(remote.stdout.strip()) == podman_node.graphroot
    assert cli_info["host"]["ociRuntime"]["name"] == "runc"
    assert podman_node.env["CONTAINER_HOST"] == podman_node.url
    assert "CONTAINER_HOST" not in podman_node.cli_env
    assert not os.fspath(podman_node.graphroot).startswith("/var/lib/containers")


@pytest.mark.parametrize(("platform", "machine"), [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")])
def test_busybox_scratch_image_builds_and_runs_for_platform(
    podman_node: PodmanNode,
    make_context: MakeContext,
    emulation_ready: Path,
    platform: str,
    machine: str,
) -> None:
    arch = platform.split("/")[1]
    tag = f"localhost/imgfront-test/env-busybox:{arch}"
    context = make_context(BUSYBOX_CONTAINERFILE)

    podman_node.podman("build", "--platform", platform, "-t", tag, context)
    image_arch = podman_node.podman("image", "inspect", "--format", "{{.Architecture}}", tag).stdout.strip()
    # The RUN step's output proves emulation at build time; `uname -m` proves it at run time (runc).
    ran = podman_node.podman("run", "--rm", "--platform", platform, tag, "sh", "-c", "cat /built-on; uname -m")

    assert image_arch == arch
    assert ran.stdout.split() == [machine, machine]


def test_make_context_writes_containerfile_busybox_and_files(make_context: MakeContext) -> None:
    context = make_context("FROM scratch\n", {"sub/dir/a.txt": "text", "b.bin": b"\x00\x01"})

    assert (context / "Containerfile").read_text() == "FROM scratch\n"
    assert os.access(context / "busybox-amd64", os.X_OK)
    assert os.access(context / "busybox-arm64", os.X_OK)
    assert (context / "sub" / "dir" / "a.txt").read_text() == "text"
    assert (context / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError):
        make_context("FROM scratch\n", {"../escape": "x"})


def test_run_imgfront_runs_the_cli_with_the_given_env(podman_node: PodmanNode, run_imgfront: RunImgfront) -> None:
    result = run_imgfront(["--help"], podman_node.env)

    assert result.returncode == 0, result.stderr
    assert "build" in result.stdout
