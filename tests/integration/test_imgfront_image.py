"""The imgfront image (containerfiles/imgfront.Containerfile), built by imgfront for two platforms, then used.

The image is built from the repository root, as docs/container-image.md tells users to, on the Debian list
that scripts/debian-base.sh makes in the node's storage (no registry is reachable here). Then every platform
runs, and imgfront inside the amd64 container builds with rootless podman on a storage volume, with no
flags on the outer `podman run` beyond the volume and the context.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from imgfront import __version__

if TYPE_CHECKING:
    from conftest import MakeContext, PodmanNode, RegistryServer, RunImgfront

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the first test also waits for the cold build

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "containerfiles" / "imgfront.Containerfile"
IMAGE = "localhost/imgfront-test:1"
PLATFORMS = ("linux/amd64", "linux/arm64")
UNAME = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
STORAGE = "/home/imgfront/.local/share/containers"  # the image's VOLUME
# CAs this host trusts beyond Debian's own, e.g. a proxy that re-signs PyPI's TLS; the image's pip needs them.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
ROOTLESS_USER = "imgfront-rootless"  # as tests/integration/test_rootless.py makes it
BUILD_TIMEOUT = 840.0

# What imgfront builds inside the container: busybox, so that no registry is needed there either.
INNER = """\
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN uname -m > /built-on
CMD ["cat", "/built-on"]
"""


@dataclass(frozen=True)
class Built:
    seconds: float
    metadata: dict[str, Any]
    log: str  # imgfront's stderr, with --progress plain

    @property
    def image_ids(self) -> dict[str, str]:
        return {b["platform"]: b["image_id"] for b in self.metadata["imgfront.builds"]}


def build_image(run_imgfront: RunImgfront, podman_node: PodmanNode, base: str, meta: Path) -> Built:
    """`imgfront build` of the image from the repository root for both platforms, as the docs say."""
    args = ["build", "--platform", ",".join(PLATFORMS), "-f", os.fspath(CONTAINERFILE)]
    args += ["--build-arg", f"BASE={base}", "-t", IMAGE, "--progress", "plain", "--metadata-file", os.fspath(meta)]
    local_cas = sorted(LOCAL_CA_DIR.rglob("*.crt")) if LOCAL_CA_DIR.is_dir() else []
    if local_cas:
        args += ["--build-arg", "EXTRA_CA_CERTS=" + "".join(ca.read_text() for ca in local_cas)]
    # No new .pyc under imgfront/ while the tests run: the context would change, and the layer cache miss.
    env = {**podman_node.env, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    result = run_imgfront([*args, os.fspath(REPO)], env, timeout=BUILD_TIMEOUT)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-6000:]
    print(f"imgfront build of {IMAGE} for {', '.join(PLATFORMS)}: {seconds:.1f} s")
    return Built(seconds, json.loads(meta.read_text()), result.stderr)


def uncached_runs(log: str) -> list[str]:
    """The RUN steps of a plain-progress log that ran, rather than came from the layer cache."""
    ran = []
    for platform in PLATFORMS:
        own = [line for line in log.splitlines() if line.startswith(f"[{platform}@")]
        ran += [step for step, after in itertools.pairwise(own) if ": RUN " in step and "Using cache" not in after]
    return ran


@pytest.fixture(scope="module")
def built(
    podman_node: PodmanNode, debian_base: str, run_imgfront: RunImgfront, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    return build_image(run_imgfront, podman_node, debian_base, tmp_path_factory.mktemp("image") / "meta.json")


@pytest.fixture
def volume(podman_node: PodmanNode) -> Iterator[str]:
    """A named volume for the storage of podman inside the container, removed after the test."""
    name = f"imgfront-storage-{uuid.uuid4().hex[:12]}"
    podman_node.podman("volume", "create", name)
    yield name
    podman_node.podman("volume", "rm", "--force", name, check=False)


def run_in_image(
    node: PodmanNode, *args: str, options: tuple[str, ...] = (), check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`podman run --rm OPTIONS IMAGE ARGS` on the node's storage, with the image's own user and entrypoint."""
    result: subprocess.CompletedProcess[str] = node.podman("run", "--rm", *options, IMAGE, *args, check=check)
    return result


def storage(volume: str) -> tuple[str, ...]:
    return ("-v", f"{volume}:{STORAGE}")


def test_image_is_one_list_for_amd64_and_arm64_with_a_rootless_user_and_a_storage_volume(
    podman_node: PodmanNode, built: Built
) -> None:
    listed = json.loads(podman_node.podman("manifest", "inspect", IMAGE).stdout)
    platforms = sorted((m["platform"]["architecture"], m["platform"].get("variant", "")) for m in listed["manifests"])
    assert platforms == [("amd64", ""), ("arm64", "v8")]
    assert {m["digest"] for m in listed["manifests"]} == {b["digest"] for b in built.metadata["imgfront.builds"]}
    for build in built.metadata["imgfront.builds"]:
        config = json.loads(podman_node.podman("image", "inspect", build["image_id"]).stdout)[0]["Config"]
        assert config["User"] == "imgfront"
        assert config["Entrypoint"] == ["imgfront"]
        assert list(config["Volumes"]) == [STORAGE]
        assert "BUILDAH_ISOLATION=chroot" in config["Env"]
        assert not any(e.startswith("EXTRA_CA_CERTS") for e in config["Env"])  # a build argument only


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_platform_runs_imgfront_and_podman_on_its_own_architecture(
    podman_node: PodmanNode, built: Built, platform: str
) -> None:
    on = ("--platform", platform)
    assert run_in_image(podman_node, "--version", options=on).stdout == f"imgfront {__version__}\n"
    assert run_in_image(podman_node, "-m", options=(*on, "--entrypoint", "uname")).stdout == f"{UNAME[platform]}\n"
    probe = "id -un; getcap /usr/bin/newuidmap; podman --version; python3 -c 'import os; print(os.uname().machine)'"
    out = run_in_image(podman_node, "-c", probe, options=(*on, "--entrypoint", "/bin/sh")).stdout.splitlines()
    assert out == ["imgfront", "/usr/bin/newuidmap cap_setuid=ep", "podman version 4.3.1", UNAME[platform]]


def test_podman_in_the_emulated_arm64_container_cannot_make_its_user_namespace(
    podman_node: PodmanNode, built: Built
) -> None:
    """qemu-user (7.2 here) refuses clone() with namespace flags: nested rootless podman needs an arm64 host."""
    options = ("--platform", "linux/arm64", "--entrypoint", "/bin/sh")
    result = run_in_image(podman_node, "-c", "podman unshare id -u", options=options, check=False)
    assert result.returncode != 0
    assert "cannot clone: Invalid argument" in result.stderr, result.stderr


def test_rebuild_with_unchanged_sources_comes_from_the_layer_cache(
    podman_node: PodmanNode, built: Built, debian_base: str, run_imgfront: RunImgfront, tmp_path: Path
) -> None:
    again = build_image(run_imgfront, podman_node, debian_base, tmp_path / "meta.json")
    assert uncached_runs(again.log) == []
    # The image ids are not compared: the two platforms' builds run the first stage at the same moment and
    # podman 4.3 stores it twice, and the last stage's COPY of it then misses the cache for one platform once.
    print(f"first build {built.seconds:.1f} s, cached rebuild {again.seconds:.1f} s")


def test_rootless_podman_inside_builds_and_keeps_its_images_on_the_volume(
    podman_node: PodmanNode, built: Built, make_context: MakeContext, volume: str
) -> None:
    doctor = run_in_image(podman_node, "doctor", options=storage(volume)).stdout
    for line in (
        "[ok  ] engine: private service: unix://",
        "[ok  ] server: podman 4.3.1",
        "[ok  ] storage: driver overlay",
        "[ok  ] mode: rootless",
        "[ok  ] runtime: OCI runtime runc",
    ):
        assert line in doctor, doctor

    context = make_context(INNER)
    work = ("-v", f"{context}:/work:ro")
    build = run_in_image(
        podman_node, "build", "--progress", "plain", "-t", "localhost/inner:1", ".", options=(*storage(volume), *work)
    )
    assert "[linux/amd64@local] STEP 4/6: RUN" in build.stderr, build.stderr
    # A later container on the same volume finds the image, and podman runs it there too.
    ran = run_in_image(
        podman_node, "run", "--rm", "localhost/inner:1", options=(*storage(volume), "--entrypoint", "podman")
    )
    assert ran.stdout == "x86_64\n"

    mountpoint = Path(podman_node.podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
    images = mountpoint / "storage" / "overlay-images" / "images.json"
    assert images.stat().st_uid == 1000  # the user imgfront's, not root's
    assert any("localhost/inner:1" in image.get("names", []) for image in json.loads(images.read_text()))


def test_inside_the_container_emulated_platforms_need_a_probed_node(
    podman_node: PodmanNode, built: Built, make_context: MakeContext, volume: str, emulation_ready: Path, tmp_path: Path
) -> None:
    context = make_context(INNER)
    work = (*storage(volume), "-v", f"{context}:/work:ro")
    # binfmt_misc is not mounted in a container, so imgfront there takes its local podman to be amd64 only...
    refused = run_in_image(podman_node, "build", "--platform", "linux/arm64", ".", options=work, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "no node can build linux/arm64: it is neither native nor emulated" in refused.stderr

    # ...while the host's qemu handler works there: a podman service on TCP is a node imgfront probes.
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the user imgfront writes the archive
    script = """\
set -e
podman system service --time=0 tcp://127.0.0.1:8888 & service=$!
trap 'kill $service' EXIT
i=0; until podman --url tcp://127.0.0.1:8888 version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ]; sleep 0.1; done
imgfront build --node tcp://127.0.0.1:8888 --no-local --platform linux/amd64,linux/arm64 --progress plain \
    -t localhost/inner:both -o type=image -o type=oci-archive,dest=/out/inner.tar .
for p in linux/amd64 linux/arm64; do podman run --rm --platform $p localhost/inner:both; done
"""
    both = run_in_image(
        podman_node, "-c", script, options=(*work, "-v", f"{out}:/out", "--entrypoint", "/bin/sh"), check=False
    )
    assert both.returncode == 0, both.stdout + both.stderr
    assert both.stdout.splitlines()[-2:] == ["x86_64", "aarch64"]
    assert "[linux/arm64@127.0.0.1:8888] STEP 4/6: RUN" in both.stderr
    # The archive left the container: its index names the list, and the list both platforms.
    with tarfile.open(out / "inner.tar") as archive:

        def blob(name: str) -> Any:
            member = archive.extractfile(name)
            assert member is not None, name
            return json.load(member)

        (listed,) = blob("index.json")["manifests"]
        instances = blob("blobs/sha256/" + listed["digest"].removeprefix("sha256:"))["manifests"]
    assert sorted(m["platform"]["architecture"] for m in instances) == ["amd64", "arm64"]


@dataclass(frozen=True)
class RootlessPodman:
    """podman as an unprivileged user, on storage of its own under `base`."""

    base: Path
    env: dict[str, str]

    def __call__(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        podman = ["podman", *(os.fspath(a) for a in args)]
        assignments = [f"{k}={v}" for k, v in self.env.items()]
        command = ["runuser", "-u", ROOTLESS_USER, "--", "env", "-i", *assignments, *podman]
        result = subprocess.run(command, cwd=self.base, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0 or not check, f"{shlex.join(podman)}: {result.stderr}"
        return result


@pytest.fixture
def rootless_podman() -> Iterator[RootlessPodman]:
    assert os.geteuid() == 0, "the test runs podman as a user it makes: run the suite as root (make test)"
    try:
        entry = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", ROOTLESS_USER], check=True)
        entry = pwd.getpwnam(ROOTLESS_USER)
    # Not under pytest's tmp dirs: those are root's alone.
    base = Path(tempfile.mkdtemp(prefix="imgfront-image-rootless-"))
    os.chown(base, entry.pw_uid, entry.pw_gid)
    (base / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n'
    )
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/run/storage"\n'
    )
    (base / "run").mkdir(mode=0o700)
    os.chown(base / "run", entry.pw_uid, entry.pw_gid)
    env = {
        "HOME": entry.pw_dir,
        "USER": ROOTLESS_USER,
        "PATH": "/usr/bin:/bin",
        "XDG_RUNTIME_DIR": os.fspath(base / "run"),
        "CONTAINERS_CONF": os.fspath(base / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": os.fspath(base / "storage.conf"),
    }
    podman = RootlessPodman(base, env)
    try:
        yield podman
    finally:
        # The keeper of the user namespace, which rootless podman leaves running, unless the reset stops it.
        pause = base / "run" / "libpod" / "tmp" / "pause.pid"
        pause_pid = int(pause.read_text()) if pause.exists() else None
        podman("system", "reset", "--force", check=False)
        if pause_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pause_pid, signal.SIGKILL)
        for point in reversed(sorted(m for m in mounts() if m.is_relative_to(base))):
            subprocess.run(["umount", "--lazy", os.fspath(point)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def mounts() -> list[Path]:
    return [Path(line.split()[4]) for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def test_rootless_outer_podman_runs_the_image_and_the_nested_build(
    podman_node: PodmanNode, built: Built, busybox_bins: Path, rootless_podman: RootlessPodman
) -> None:
    """The image under a user's own podman: ids nest (65535 of the user's 65536), and so does the build."""
    archive = rootless_podman.base / "image.tar"
    podman_node.podman("save", "--format", "docker-archive", "-o", archive, built.image_ids["linux/amd64"])
    archive.chmod(0o644)
    rootless_podman("load", "--quiet", "--input", archive)
    # Root's files, which the user's container sees as nobody's (65534): that id must exist in the nested one too.
    context = rootless_podman.base / "context"
    context.mkdir(mode=0o755)
    (context / "Containerfile").write_text(INNER)
    shutil.copy2(busybox_bins / "busybox-amd64", context / "busybox-amd64")
    # This host gives the user no /dev/net/tun, so no network for the outer container.
    options = ["--rm", "--network", "none", "-v", f"imgfront-storage:{STORAGE}"]
    image = built.image_ids["linux/amd64"]
    build = rootless_podman(
        "run", *options, "-v", f"{context}:/work:ro", image, "build", "-t", "localhost/inner:1", "."
    )
    assert "linux/amd64  local" in build.stdout, build.stderr
    ran = rootless_podman("run", *options, "--entrypoint", "podman", image, "run", "--rm", "localhost/inner:1")
    assert ran.stdout == "x86_64\n"


def test_push_from_inside_takes_credentials_from_a_secret(
    podman_node: PodmanNode,
    built: Built,
    make_context: MakeContext,
    volume: str,
    registry: RegistryServer,
    tmp_path: Path,
) -> None:
    """The auth file is the user's own (0600): a podman secret hands it to the container's user."""
    auth = registry.write_auth_file(tmp_path / "auth.json")
    auth.chmod(0o600)
    secret = f"imgfront-auth-{uuid.uuid4().hex[:12]}"
    podman_node.podman("secret", "create", secret, auth)
    context = make_context(INNER)
    options = (
        *storage(volume),
        "-v",
        f"{context}:/work:ro",
        "--secret",
        f"{secret},uid=1000,mode=0400",
        "-e",
        f"REGISTRY_AUTH_FILE=/run/secrets/{secret}",
        "--network",
        "host",  # the registry listens on the host's loopback
        "--entrypoint",
        "/bin/sh",
    )
    push = f"imgfront build --progress quiet -t {registry.url}/inner:1 --push --tls-verify=false ."
    script = f"""\
set -e
if env -u REGISTRY_AUTH_FILE {push} 2>&1; then
    echo pushed without credentials; exit 1
fi
{push}
"""
    try:
        pushed = run_in_image(podman_node, "-c", script, options=options, check=False)
    finally:
        podman_node.podman("secret", "rm", secret, check=False)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "unauthorized" in pushed.stdout.lower()  # the first push, without the file
    status, _, body = registry.get("/v2/inner/manifests/1")
    assert status == 200, body
    assert [m["platform"]["architecture"] for m in json.loads(body)["manifests"]] == ["amd64"]
