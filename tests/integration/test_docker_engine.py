"""The Docker adapter against a real dockerd (tests/conftest.py's `dockerd`), and the registry fixture.

Docker cannot pull here, so images are built FROM scratch with make_context's busybox binaries. Docker
20.10's legacy builder gives a metadata step (ARG, ENV...) that opens a FROM scratch stage the host's
platform; imgfront builds such stages on an empty base of the platform, which the SCRATCH_FIRST tests check.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from conftest import DOCKER_BUSYBOX_CONTAINERFILE, Recorder
from integration.services.dockerd import run_in_docker

from imgfront.emulation.probe import probe_node
from imgfront.emulation.qemu import emulated_platforms
from imgfront.engines import connect, connected
from imgfront.engines.base import BuildReport, BuildRequest, Cancellation
from imgfront.engines.docker import CLASH_HINT, DockerBuilder
from imgfront.errors import EngineError, PlatformBuildError
from imgfront.nodes.connections import Connection
from imgfront.platforms import Platform, host_platform
from imgfront.run.build import automatic_args
from imgfront.run.context import find_containerfile, pack
from imgfront.run.lists import LocalListBuilder
from imgfront.run.scheduler import verify

pytestmark = pytest.mark.slow

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")

BASE = DOCKER_BUSYBOX_CONTAINERFILE


@pytest.fixture
def docker_node(dockerd) -> Iterator[DockerBuilder]:
    with connected(Connection("docker", f"docker+{dockerd.url}")) as b:
        yield b


def request_for(context: Path, tmp_path: Path, platform: Platform, **options: object) -> BuildRequest:
    workdir = tmp_path / f"packed-{platform.slug}-{time.monotonic_ns()}"
    workdir.mkdir()
    packed = pack(context, find_containerfile(context, None), workdir)
    args = automatic_args(platform, host_platform())
    return BuildRequest(context=packed, platform=platform, build_args=args, **options)


def files_in(chunks: Iterator[bytes], *names: str) -> dict[str, str]:
    """Files from the layers of a docker-archive stream, by path in the image (the last layer wins)."""
    found: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=archive.extractfile(layer)) as inner:
                for member in inner.getmembers():
                    if member.name in names and member.isfile():
                        found[member.name] = inner.extractfile(member).read().decode().strip()
    return found


def containers(dockerd) -> list[dict[str, object]]:
    client = dockerd.client()
    try:
        return list(client.containers(all=True))
    finally:
        client.close()


def processes_with(token: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if token in text:
            found.append(f"{cmdline.parent.name}: {text}")
    return found


# --- the fixtures --------------------------------------------------------------------------------


def test_dockerd_fixture_is_a_private_docker_20_10(dockerd, docker_node: DockerBuilder, emulation_ready) -> None:
    status, _, body = dockerd.get("/version")
    assert status == 200
    assert json.loads(body)["Version"].startswith("20.10")
    assert dockerd.socket.exists() and dockerd.data_root.is_dir()
    info = docker_node.info()
    assert info.driver == "docker"
    assert info.native == (host_platform(),)
    assert ARM64 in info.emulated and ARM64 in emulated_platforms()
    assert info.storage_driver  # overlay2 here, picked by dockerd itself


def test_registry_fixture_asks_for_credentials(registry) -> None:
    assert registry.get("/v2/", auth=False)[0] == 401
    assert registry.get("/v2/")[0] == 200
    assert registry.url.startswith("127.0.0.1:")


# --- building ------------------------------------------------------------------------------------


def test_two_platforms_build_apart_with_their_target_args(
    docker_node: DockerBuilder, dockerd, make_context, emulation_ready, tmp_path: Path
) -> None:
    context = make_context(
        BASE + "ARG TARGETARCH\nARG TARGETPLATFORM\n"
        'RUN echo "$TARGETARCH $TARGETPLATFORM" > /a && uname -m > /u\nLABEL org.example.built=yes\n'
    )
    requests = {p: request_for(context, tmp_path, p, labels={"org.example.kind": "test"}) for p in (AMD64, ARM64)}
    recorders = {p: Recorder() for p in requests}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {p: pool.submit(docker_node.build, r, recorders[p], Cancellation()) for p, r in requests.items()}
        reports = {p: f.result() for p, f in futures.items()}

    assert reports[AMD64].image_id != reports[ARM64].image_id
    for platform, report in reports.items():
        assert len(report.image_id) == 64 and not report.image_id.startswith("sha256:")
        assert report.platform == platform and report.node == "docker"
        verify(docker_node, report)  # the scheduler's check: the image is for the platform asked for
        image = docker_node.inspect_image(report.image_id)
        assert image is not None
        assert (image.os, image.architecture) == ("linux", platform.arch.value)
        assert image.labels["org.example.kind"] == "test"
        assert any(step[2].startswith("RUN echo") for step in recorders[platform].steps)
        files = files_in(docker_node.export_image(report.image_id), "a", "u")
        assert files == {"a": f"{platform.arch.value} {platform}", "u": platform.arch.to_uname()}
    # Docker keeps one platform per tag, so neither result carries one.
    client = dockerd.client()
    try:
        for report in reports.values():
            assert client.inspect_image(report.image_id)["RepoTags"] == []
    finally:
        client.close()


def test_mixed_farm_brings_docker_results_home_into_a_podman_list(
    docker_node: DockerBuilder, podman_node, make_context, emulation_ready, tmp_path: Path
) -> None:
    context = make_context(BASE + "ARG TARGETARCH\nRUN echo mixed-$TARGETARCH > /m\n")
    reports = [docker_node.build(request_for(context, tmp_path, p), Recorder(), Cancellation()) for p in (AMD64, ARM64)]
    with connected(Connection("local", podman_node.url), local=True) as podman:
        lists = LocalListBuilder(podman, {"docker": docker_node, "local": podman}, note=lambda _: None)
        home = [lists.bring_home(r) for r in reports]
        for report in home:
            image = podman.inspect_image(report.image_id)  # the same id: Docker's id is its config's digest
            assert image is not None and image.architecture == report.platform.arch.value
        made = lists.publish(lists.stage(home), ["localhost/docker-mixed:1"])
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/docker-mixed:1").stdout)
    assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
    assert made.instances == tuple(m["digest"] for m in listed["manifests"])
    ran = podman_node.podman("run", "--rm", "--platform", "linux/arm64", "localhost/docker-mixed:1", "cat", "/m")
    assert ran.stdout.strip() == "mixed-arm64"


def test_docker_cache_taken_for_another_platform_is_built_again(
    docker_node: DockerBuilder, make_context, emulation_ready, tmp_path: Path
) -> None:
    # The legacy builder's cache ignores platforms: this amd64 result is what it offers for arm64 too.
    context = make_context("FROM scratch\nCOPY same.txt /same.txt\n", {"same.txt": f"{time.time_ns()}\n"})
    first = docker_node.build(request_for(context, tmp_path, AMD64), Recorder(), Cancellation())
    events = Recorder()
    second = docker_node.build(request_for(context, tmp_path, ARM64), events, Cancellation())
    assert second.image_id != first.image_id
    verify(docker_node, first)
    verify(docker_node, second)
    assert any("building again without it" in line for line in events.lines)


# The Go-binary Containerfile and its variants: each FROM scratch stage opens with a metadata step.
SCRATCH_FIRST = {
    "arg": "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n",
    "env": "FROM scratch\nENV PATH=/bin\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n",
    "label": "FROM scratch\nLABEL org.example.kind=go\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n",
    "multi-stage": "FROM scratch AS bins\nCOPY busybox-amd64 busybox-arm64 /\n"
    "FROM scratch\nARG TARGETARCH\nCOPY --from=bins /busybox-${TARGETARCH} /bin/busybox\n",
    "named": "FROM scratch AS app\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n"
    'FROM app AS final\nCMD ["/bin/busybox", "echo", "ran"]\n',
}


def layer_file(chunks: Iterator[bytes], name: str) -> bytes:
    """One file's bytes from the layers of a docker-archive stream (the last layer holding it wins)."""
    found = b""
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=archive.extractfile(layer)) as inner:
                for member in inner.getmembers():
                    if member.name == name and member.isfile():
                        found = inner.extractfile(member).read()
    return found


@pytest.mark.parametrize("variant", sorted(SCRATCH_FIRST))
def test_scratch_stage_opening_with_metadata_builds_for_both_platforms(
    variant: str, docker_node: DockerBuilder, dockerd, make_context, busybox_bins: Path, emulation_ready, tmp_path: Path
) -> None:
    context = make_context(SCRATCH_FIRST[variant])
    for platform in (AMD64, ARM64):
        events = Recorder()
        report = docker_node.build(request_for(context, tmp_path, platform, no_cache=True), events, Cancellation())
        image = docker_node.inspect_image(report.image_id)
        assert image is not None and (image.os, image.architecture, image.variant) == (
            "linux",
            platform.arch.value,
            None,
        )
        binary = layer_file(docker_node.export_image(report.image_id), "bin/busybox")
        assert binary == (busybox_bins / f"busybox-{platform.arch.value}").read_bytes()
        on_empty_base = any("builds FROM localhost/imgfront-scratch:linux_arm64" in line for line in events.lines)
        assert on_empty_base is (platform == ARM64)  # the host's own platform is built as written
        if variant == "label":
            assert image.labels == {"org.example.kind": "go"}
        if platform == AMD64:  # this host's own: it runs
            assert run_in_docker(dockerd, report.image_id, ["/bin/busybox", "echo", "ran"]) == "ran"


def test_scratch_stage_on_the_empty_base_has_the_layers_and_config_of_a_scratch_build(
    docker_node: DockerBuilder, dockerd, make_context, emulation_ready, tmp_path: Path
) -> None:
    # To /app: a parent folder COPY made would carry the time of the build, so the layers could not be equal.
    rewritten = make_context("FROM scratch\nENV A=1\nCOPY busybox-arm64 /app\n")
    as_scratch = make_context("FROM scratch\nCOPY busybox-arm64 /app\nENV A=1\n")  # needs no base
    built = [
        docker_node.build(request_for(c, tmp_path, ARM64, no_cache=True), Recorder(), Cancellation())
        for c in (rewritten, as_scratch)
    ]
    client = dockerd.client()
    try:
        ours, docker_own = (client.inspect_image(b.image_id) for b in built)
        history = [client.history(b.image_id) for b in built]
    finally:
        client.close()
    assert ours["RootFS"] == docker_own["RootFS"]  # the same one layer
    for key in ("Os", "Architecture", "Variant"):
        assert ours.get(key) == docker_own.get(key)
    assert {**ours["Config"], "Image": ""} == {**docker_own["Config"], "Image": ""}
    assert ours["Config"]["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"]
    steps = [sorted(str(h["CreatedBy"]) for h in image_history) for image_history in history]
    assert steps[0] == steps[1] and len(steps[0]) == 2  # ENV and COPY: the empty base brings no step of its own


def test_scratch_stage_opening_with_metadata_builds_with_pull_always(
    docker_node: DockerBuilder, make_context, emulation_ready, tmp_path: Path
) -> None:
    # Docker would pull every FROM, imgfront's empty base too; imgfront pulls the others itself (none here).
    context = make_context(SCRATCH_FIRST["named"])
    report = docker_node.build(request_for(context, tmp_path, ARM64, pull="always"), Recorder(), Cancellation())
    verify(docker_node, report)


def test_scratch_stage_named_through_an_arg_still_fails_with_a_hint(
    docker_node: DockerBuilder, make_context, emulation_ready, tmp_path: Path
) -> None:
    context = make_context("ARG BASE=scratch\nFROM ${BASE}\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n")
    with pytest.raises(PlatformBuildError) as failed:
        docker_node.build(request_for(context, tmp_path, ARM64, no_cache=True), Recorder(), Cancellation())
    assert "does not match the specified platform" in failed.value.message
    assert failed.value.hint == CLASH_HINT


def test_failed_step_gives_platform_build_error_with_the_log_tail(
    docker_node: DockerBuilder, dockerd, make_context, emulation_ready, tmp_path: Path
) -> None:
    before = {c["Id"] for c in containers(dockerd)}
    context = make_context(BASE + "RUN echo about-to-fail && exit 3\n")
    with pytest.raises(PlatformBuildError) as failed:
        docker_node.build(request_for(context, tmp_path, ARM64), Recorder(), Cancellation())
    assert failed.value.message.startswith("linux/arm64@docker: ")
    assert "returned a non-zero code: 3" in failed.value.message
    assert "about-to-fail" in failed.value.log_tail
    assert {c["Id"] for c in containers(dockerd)} == before  # forcerm: the failed step's container is gone


@pytest.fixture(params=["unix", "ssh", "tcp+tls"])
def any_docker_node(
    request: pytest.FixtureRequest, dockerd, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DockerBuilder]:
    """The engine over its socket, over ssh through imgfront's tunnel, or over TCP with TLS as the CLI sets it."""
    if request.param == "unix":
        yield request.getfixturevalue("docker_node")
        return
    if request.param == "ssh":
        sshd = request.getfixturevalue("sshd")
        monkeypatch.setenv("IMGFRONT_SSH_CONFIG", str(sshd.ssh_config))
        connection = Connection("docker", f"docker+{sshd.uri(dockerd.socket)}", identity=str(sshd.identity))
        env = None
    else:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # which must not replace the engine's CA
        connection, env = Connection("docker", f"docker+{dockerd.tls_url}"), dockerd.tls_env
    with contextlib.ExitStack() as stack:
        node = connect(connection, stack, env=env)
        assert isinstance(node, DockerBuilder) and node.server_version.startswith("20.10")
        yield node


def test_cancel_stops_the_step_and_leaves_no_container_of_its_own(
    any_docker_node: DockerBuilder, dockerd, make_context, emulation_ready, tmp_path: Path
) -> None:
    docker_node = any_docker_node
    kept = make_context(BASE)
    user_image = docker_node.build(request_for(kept, tmp_path, AMD64), Recorder(), Cancellation()).image_id
    client = dockerd.client()
    try:
        user_before = client.create_container(user_image, command=["true"], name=f"user-before-{time.time_ns()}")
        context = make_context(BASE + "RUN sleep 3617\n")
        events, cancel = Recorder(), Cancellation()
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["report"] = docker_node.build(request_for(context, tmp_path, ARM64), events, cancel)
            except PlatformBuildError as e:
                outcome["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while not (processes_with("sleep 3617") and any("Running in" in line for line in events.lines[-3:])):
            assert time.monotonic() < deadline, events.lines
            time.sleep(0.1)
        user_during = client.create_container(user_image, command=["true"], name=f"user-during-{time.time_ns()}")
        cancelled_at = time.monotonic()
        cancel.cancel()
        thread.join(30)
        assert not thread.is_alive()
        assert time.monotonic() - cancelled_at < 10
        error = outcome["error"]
        assert isinstance(error, PlatformBuildError) and error.message == "linux/arm64@docker: cancelled"

        docker_node.clean_cancelled()
        left = {str(c["Id"]) for c in client.containers(all=True)}
        assert left == {user_before["Id"], user_during["Id"]}  # the users' containers, and nothing of the build's
        assert processes_with("sleep 3617") == []
        for container in (user_before, user_during):
            client.remove_container(container["Id"])
    finally:
        client.close()


def test_tcp_without_the_client_certificate_is_refused(dockerd) -> None:
    with pytest.raises(EngineError) as refused:
        connected(Connection("tls", f"docker+{dockerd.tls_url}"), env={"DOCKER_TLS_VERIFY": ""}).__enter__()
    assert refused.value.message.startswith(f"tls: no Docker engine answers at {dockerd.tls_url}")


def test_probe_finds_docker_nodes_platforms(
    dockerd, emulation_ready, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    unregistered = next(
        p
        for p in map(Platform.parse, ("linux/s390x", "linux/ppc64le", "linux/riscv64"))
        if p not in emulated_platforms()
    )
    with connected(Connection("remote-docker", f"docker+{dockerd.url}"), local=False) as node:  # info cannot say
        assert node.info().emulated == ()
        assert probe_node(node, [AMD64, ARM64, unregistered], "docker-node") == {AMD64, ARM64}


def test_removing_a_result_by_id_leaves_an_image_docker_holds_under_a_name(
    docker_node: DockerBuilder, dockerd, make_context, emulation_ready, tmp_path: Path
) -> None:
    request = request_for(make_context(BASE + f"RUN echo {time.time_ns()} > /unique\n"), tmp_path, AMD64)
    report: BuildReport = docker_node.build(request, Recorder(), Cancellation())
    client = dockerd.client()
    try:
        client.tag(report.image_id, "users/own", "1")
        docker_node.remove_image(report.image_id, force=True)
        assert docker_node.inspect_image("users/own:1") is not None
        client.remove_image("users/own:1")
    finally:
        client.close()
    docker_node.remove_image(report.image_id, force=True)
    assert docker_node.inspect_image(report.image_id) is None


def test_import_gives_back_the_image_id_from_docker_and_from_podman(
    docker_node: DockerBuilder, podman_node, make_context, emulation_ready, tmp_path: Path
) -> None:
    context = make_context(BASE + "ARG TARGETARCH\nRUN echo round-$TARGETARCH > /r\n")
    report = docker_node.build(request_for(context, tmp_path, ARM64), Recorder(), Cancellation())
    archive = b"".join(docker_node.export_image(report.image_id))
    docker_node.remove_image(report.image_id, force=True)
    assert docker_node.inspect_image(report.image_id) is None
    assert docker_node.import_image(iter([archive])) == report.image_id
    verify(docker_node, report)

    podman_context = make_context("FROM scratch\nCOPY busybox-arm64 /bin/busybox\n")
    built = podman_node.podman("build", "-q", "--platform", "linux/arm64", podman_context)
    podman_id = built.stdout.strip().splitlines()[-1]
    with connected(Connection("local", podman_node.url), local=True) as podman:
        loaded = docker_node.import_image(podman.export_image(podman_id))
    image = docker_node.inspect_image(loaded)
    assert loaded == podman_id.removeprefix("sha256:")
    assert image is not None and image.architecture == "arm64"
    docker_node.remove_image(loaded, force=True)


def test_removing_a_result_other_images_are_built_on_leaves_it_to_them(
    docker_node: DockerBuilder, make_context, emulation_ready, tmp_path: Path
) -> None:
    step = BASE + f"RUN echo {time.time_ns()} > /unique\n"
    longer = docker_node.build(
        request_for(make_context(step + "RUN echo more > /more\n"), tmp_path, AMD64), Recorder(), Cancellation()
    )
    shorter = docker_node.build(request_for(make_context(step), tmp_path, AMD64), Recorder(), Cancellation())
    image = docker_node.inspect_image(longer.image_id)
    docker_node.remove_image(shorter.image_id, force=True)  # a step of `longer`, from the cache
    assert docker_node.inspect_image(shorter.image_id) is not None
    docker_node.remove_image(longer.image_id, force=True)
    assert image is not None and docker_node.inspect_image(longer.image_id) is None
    assert docker_node.inspect_image(shorter.image_id) is None  # Docker removed it with its child


# --- the same through the command line ------------------------------------------------------------


def test_go_binary_containerfile_builds_on_a_docker_node_into_a_podman_list(
    podman_node, dockerd, make_context, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    context = make_context(SCRATCH_FIRST["named"])
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--no-local",
            "--node",
            f"docker+{dockerd.url}",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "localhost/go-scratch:1",
            "--metadata-file",
            meta,
            context,
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert {b["node"] for b in json.loads(meta.read_text())["imgfront.builds"]} == {str(dockerd.socket)}
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/go-scratch:1").stdout)
    assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):  # arm64 through qemu
        ran = podman_node.podman(
            "run", "--rm", "--platform", platform, "localhost/go-scratch:1", "/bin/busybox", "uname", "-m"
        )
        assert ran.stdout.strip() == machine


def test_go_binary_containerfile_builds_with_docker_as_the_local_engine(
    dockerd, make_context, busybox_bins: Path, run_imgfront, emulation_ready, tmp_path: Path
) -> None:
    layout, meta = tmp_path / "layout", tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--engine",
            "docker",
            "--platform",
            "linux/amd64,linux/arm64",
            "--metadata-file",
            meta,
            "--output",
            f"type=oci-layout,dest={layout}",
            make_context(SCRATCH_FIRST["arg"]),
        ],
        {**dockerd.env, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    found = oci_layout_images(layout)
    assert sorted(found) == ["amd64", "arm64"]
    for arch, (config, files) in found.items():
        assert (config["os"], config["architecture"]) == ("linux", arch)
        assert files["bin/busybox"] == (busybox_bins / f"busybox-{arch}").read_bytes()
    amd64 = next(b for b in json.loads(meta.read_text())["imgfront.builds"] if b["platform"] == "linux/amd64")
    assert run_in_docker(dockerd, amd64["image_id"], ["/bin/busybox", "echo", "ran"]) == "ran"


def oci_layout_images(layout: Path) -> dict[str, tuple[dict[str, object], dict[str, bytes]]]:
    """Each platform's image in an OCI layout, by architecture: its config, and the files of its layers."""

    def blob(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    found: dict[str, tuple[dict[str, object], dict[str, bytes]]] = {}
    pending = list(json.loads((layout / "index.json").read_text())["manifests"])
    while pending:
        descriptor = pending.pop()
        document = json.loads(blob(descriptor["digest"]))
        if "manifests" in document:
            pending.extend(document["manifests"])
            continue
        config = json.loads(blob(document["config"]["digest"]))
        files: dict[str, bytes] = {}
        for layer in document["layers"]:
            with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"])), mode="r:*") as inner:
                for member in inner.getmembers():
                    if member.isfile():
                        files[member.name] = inner.extractfile(member).read()
        found[str(config["architecture"])] = (config, files)
    return found


def test_silent_build_past_the_idle_timeout_loses_its_docker_node(
    podman_node, dockerd, make_context, run_imgfront
) -> None:
    """--idle-timeout reaches Docker nodes as it reaches podman's (test_farm's twin of this test)."""
    result = run_imgfront(
        [
            "build",
            "--no-local",
            "--platform",
            str(host_platform()),
            "--node",
            f"docker+{dockerd.url}?name=d",
            "--idle-timeout",
            "2",
            "-t",
            "localhost/idle-docker:1",
            make_context(BASE + "RUN sleep 15\n"),
        ],
        podman_node.env,
    )
    assert result.returncode == 1
    assert "no word from the build for 2 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_connect_timeout_reaches_a_docker_node_given_on_the_command_line(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    """--connect-timeout 1 against a socket that accepts and never answers: the node is left out, named."""
    import socket

    silent = socket.socket(socket.AF_UNIX)
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen(4)  # the kernel accepts; nobody ever reads or answers
    try:
        result = run_imgfront(
            [
                "build",
                "--no-local",
                "--node",
                f"docker+unix://{tmp_path / 'silent.sock'}?name=mute",
                "--node",
                f"unix://{tmp_path / 'silent.sock'}?name=mute-podman",
                "--connect-timeout",
                "1",
                "-t",
                "localhost/mute:1",
                make_context(BASE),
            ],
            podman_node.env,
        )
    finally:
        silent.close()
    assert result.returncode == 1
    assert "node mute is left out: mute: no Docker engine answers" in result.stderr
    assert "node mute-podman is left out: mute-podman: no podman service answers" in result.stderr
    assert result.stderr.count("did not answer within 1 s") == 2
    assert "Traceback" not in result.stderr
