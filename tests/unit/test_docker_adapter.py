"""The Docker adapter's checks of the server, and how it reads the legacy builder's stream.

No Docker older than 20.10 can run here, so `MockOldDocker` stands in for one: a unix-socket HTTP server
that answers /_ping, /version and /info as a given engine would, and nothing else. It also plays a podman
service's Docker-compatible API and a current Docker, for the checks that need no real engine.
"""

from __future__ import annotations

import io
import json
import socketserver
import tarfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder

from imgfront.engines import connected
from imgfront.engines.base import ListInstance
from imgfront.engines.docker import DockerBuilder, DockerLog, bare_id, new_enough
from imgfront.engines.docker_scratch import (
    CONTAINERFILE,
    base_name,
    empty_image,
    read_containerfile,
    rewrite,
    with_containerfile,
)
from imgfront.engines.registry import ENGINE_KINDS, kind_for, kind_named
from imgfront.errors import EngineError
from imgfront.nodes.connections import Connection
from imgfront.platforms import Platform
from imgfront.run.context import pack

DOCKER_19 = {"Version": "19.03.15", "ApiVersion": "1.40", "Components": [{"Name": "Engine", "Version": "19.03.15"}]}
DOCKER_20 = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "Components": [{"Name": "Engine"}]}
PODMAN = {"Version": "4.3.1", "ApiVersion": "1.41", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
ARM_INFO = {
    "Architecture": "aarch64",
    "OSType": "linux",
    "Driver": "overlay2",
    "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
}


def _handler(version: dict[str, Any], info: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path.endswith("/_ping"):
                self._answer(b"OK", "text/plain")
            elif path.endswith("/version"):
                self._answer(json.dumps(version).encode(), "application/json")
            elif path.endswith("/info"):
                self._answer(json.dumps(info).encode(), "application/json")
            else:
                self.send_error(404)

        def _answer(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Api-Version", str(version["ApiVersion"]))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

        def address_string(self) -> str:
            return "unix"

    return Handler


class MockOldDocker(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


Serve = Callable[..., str]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start a mock engine answering `version` (and `info`); returns its unix:// URI."""
    servers: list[MockOldDocker] = []

    def start(version: dict[str, Any], info: dict[str, Any] | None = None) -> str:
        sock = tmp_path / f"engine{len(servers)}.sock"
        server = MockOldDocker(str(sock), _handler(version, info or {}))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"unix://{sock}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_docker_older_than_20_10_is_refused_clearly(serve: Serve) -> None:
    with pytest.raises(EngineError) as info:
        connected(Connection("old", "docker+" + serve(DOCKER_19))).__enter__()
    assert "Docker 19.03.15 (API 1.40)" in info.value.message
    assert "too old; imgfront needs Docker 20.10 or newer" in info.value.message


def test_a_podman_service_is_told_apart_from_docker(serve: Serve) -> None:
    with pytest.raises(EngineError) as info:
        connected(Connection("pod", "docker+" + serve(PODMAN))).__enter__()
    assert "is a podman service, not a Docker engine" in info.value.message
    assert info.value.hint is not None and "without the docker+ prefix" in info.value.hint


def test_nothing_listening_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        connected(Connection("gone", f"docker+unix://{tmp_path}/none.sock")).__enter__()
    assert "no Docker engine answers" in info.value.message


def test_an_address_docker_cannot_be_reached_at_is_an_engine_error() -> None:
    with pytest.raises(EngineError) as info:
        connected(Connection("odd", "docker+http://example.invalid")).__enter__()
    assert "unknown scheme 'docker+http'" in info.value.message


def test_remote_engine_reports_its_platform_and_no_emulation_it_cannot_know(serve: Serve) -> None:
    with connected(Connection("arm", "docker+" + serve(DOCKER_20, ARM_INFO)), local=False) as node:
        info = node.info()
    assert info.driver == "docker" and info.server_version == "20.10.24+dfsg1" and info.api_version == "1.41"
    assert info.native == (Platform.parse("linux/arm64"),)
    assert info.emulated == ()  # the farm probes a remote node for these
    assert info.rootless and info.storage_driver == "overlay2"


def test_docker_holds_no_manifest_lists(serve: Serve) -> None:
    with connected(Connection("d", "docker+" + serve(DOCKER_20, ARM_INFO)), local=False) as node:
        assert node.inspect_list("localhost/web:1") is None
        with pytest.raises(EngineError) as info:
            node.commit_list(["localhost/web:1"], [ListInstance("0" * 64, Platform.parse("linux/arm64"))])
    assert "cannot hold a manifest list" in info.value.message
    assert info.value.hint is not None and "podman" in info.value.hint


def test_docker_is_a_registered_engine() -> None:
    assert kind_named("docker").load() is DockerBuilder
    assert kind_for("docker+ssh://me@builder") is kind_named("docker")
    assert DockerBuilder.driver == "docker"
    assert all(kind.load().driver == kind.name for kind in ENGINE_KINDS)


@pytest.mark.parametrize(
    ("version", "api", "expected"),
    [
        ("20.10.24+dfsg1", "1.41", True),
        ("28.2.2", "1.50", True),
        ("19.03.15", "1.40", False),
        ("1.13.1", "1.26", False),
        ("master-dockerproject-2024-01-01", "1.45", True),
        ("dev", "1.40", False),
    ],
)
def test_new_enough(version: str, api: str, expected: bool) -> None:
    assert new_enough(version, api) is expected


def test_ids_are_bare_hex_as_in_podman_reports() -> None:
    assert bare_id("sha256:" + "ab" * 32) == "ab" * 32
    assert bare_id("ab" * 32) == "ab" * 32


def test_build_log_reads_steps_split_across_pieces_and_drops_its_own_noise() -> None:
    events = Recorder()
    log = DockerLog(events, frozenset({"TARGETOS", "BUILDARCH"}))
    for piece in (
        "Step 1/3 : FROM scratch",
        "\n",
        " ---> \nStep 2/3 : RUN echo hi\n",
        " ---> [Warning] The requested image's platform (linux/arm64) does not match the detected host platform "
        "(linux/amd64) and no specific platform was requested\n",
        " ---> Running in 0123456789ab\n",
        "hi\n[Warning] One or more build-args [BUILDARCH TARGETOS] were not consumed\n",
        "[Warning] One or more build-args [MINE] were not consumed\n",
        "Successfully built 0123456789ab",
    ):
        log.feed(piece)
    log.flush()
    assert events.steps == [(1, 3, "FROM scratch"), (2, 3, "RUN echo hi")]
    assert events.lines == [
        "Step 1/3 : FROM scratch",
        " ---> ",
        "Step 2/3 : RUN echo hi",
        " ---> Running in 0123456789ab",
        "hi",
        "[Warning] One or more build-args [MINE] were not consumed",
        "Successfully built 0123456789ab",
    ]
    assert log.containers == {"0123456789ab"}
    assert list(log.tail) == events.lines


# --- FROM scratch stages on an empty base of the platform ----------------------------------------

ARM64 = Platform.parse("linux/arm64")
BASE = base_name(ARM64)


@pytest.mark.parametrize(
    ("containerfile", "expected"),
    [
        (
            "FROM scratch\nARG TARGETARCH\nCOPY app-${TARGETARCH} /app\n",
            f"FROM {BASE}\nARG TARGETARCH\nCOPY app-${{TARGETARCH}} /app\n",
        ),
        ("from Scratch as final\nENV A=1\nCOPY a /a\n", f"FROM {BASE} as final\nENV A=1\nCOPY a /a\n"),
        (
            "FROM busybox AS build\nRUN true\nFROM scratch AS out\n# a comment\nLABEL x=y\nCOPY --from=build /a /a\n",
            f"FROM busybox AS build\nRUN true\nFROM {BASE} AS out\n# a comment\nLABEL x=y\nCOPY --from=build /a /a\n",
        ),
        # A continued FROM keeps the lines after it where they were, so Docker's line numbers still hold.
        ("FROM \\\n scratch\r\nWORKDIR /w\r\n", f"FROM {BASE}\r\n\r\nWORKDIR /w\r\n"),
        ("# escape=`\nFROM scratch\nARG A\nCOPY a `\n  /a\n", f"# escape=`\nFROM {BASE}\nARG A\nCOPY a `\n  /a\n"),
    ],
)
def test_scratch_stages_opening_with_metadata_are_built_on_the_empty_base(containerfile: str, expected: str) -> None:
    changed = rewrite(containerfile, BASE, {})
    assert changed is not None and changed.containerfile == expected


@pytest.mark.parametrize(
    "containerfile",
    [
        "FROM scratch\nCOPY a /a\nARG TARGETARCH\n",  # COPY gives the stage its platform
        "FROM scratch\nADD a /a\n",
        "FROM busybox\nARG A\n",
        "FROM --platform=linux/amd64 scratch\nARG A\nCOPY a /a\n",  # the stage names its platform
        "ARG BASE=scratch\nFROM ${BASE}\nARG A\n",  # scratch through an ARG: not seen before the build
        "FROM scratch\nFROM scratch\n",
        "# escape=`\nFROM scratch\nCOPY a `\n  /a\n",  # the escape directive, then a COPY first
    ],
)
def test_other_stages_are_sent_as_written(containerfile: str) -> None:
    assert rewrite(containerfile, BASE, {}) is None


def test_the_rewrite_names_the_other_bases_with_global_args_filled_in() -> None:
    changed = rewrite(
        "ARG GO=1.22\nARG REG\nFROM $REG/golang:${GO} AS build\nFROM build AS again\nFROM scratch\nARG A\n"
        "COPY --from=again /a /a\nFROM ${UNKNOWN}/x\n",
        BASE,
        {"REG": "registry.example:5000"},
    )
    assert changed is not None and changed.lines == (5,)
    assert changed.bases == ("registry.example:5000/golang:1.22", "${UNKNOWN}/x")


def test_the_empty_base_is_a_zero_layer_docker_archive_of_the_platform() -> None:
    with tarfile.open(fileobj=io.BytesIO(empty_image(Platform.parse("linux/arm/v7")))) as archive:
        (manifest,) = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(archive.extractfile(manifest["Config"]))  # type: ignore[arg-type]
    assert manifest["RepoTags"] == ["localhost/imgfront-scratch:linux_arm_v7"] and manifest["Layers"] == []
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")
    assert config["rootfs"] == {"type": "layers", "diff_ids": []} and config["history"] == []
    assert "variant" not in json.load(io.BytesIO(_config_of(empty_image(ARM64))))  # as Docker writes arm64


def _config_of(archive_bytes: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
        (manifest,) = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        return archive.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]


def test_the_added_containerfile_follows_the_packed_context_in_one_tar(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\nARG A\nCOPY a /a\n")
    (context / "a").write_bytes(b"x" * 1000)
    (context / CONTAINERFILE).write_text("the user's own file of that name\n")
    packed = pack(context, context / "Containerfile", tmp_path)
    name, end, tail = with_containerfile(packed.tar, "FROM elsewhere\n")
    sent = packed.tar.read_bytes()[:end] + tail
    with tarfile.open(fileobj=io.BytesIO(sent)) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]
    assert name != CONTAINERFILE and files[name] == b"FROM elsewhere\n"
    assert files[CONTAINERFILE] == b"the user's own file of that name\n" and files["a"] == b"x" * 1000
    assert read_containerfile(packed.tar, packed.containerfile) == "FROM scratch\nARG A\nCOPY a /a\n"
