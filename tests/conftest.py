"""Shared fixtures for imgfront's tests.

Unit tests (tests/unit) need none of these and run in seconds. Integration tests (tests/integration)
drive a real podman, so each such module marks itself slow at the top, which lets `make test-fast`
(`pytest -m 'not slow'`) leave them out while CI (`make test`) runs everything:

    pytestmark = pytest.mark.slow

The fixtures:

- ``busybox_bins`` (session) -> Path: a directory holding static ``busybox-amd64`` and
  ``busybox-arm64`` (``$IMGFRONT_BUSYBOX_DIR``, default ``/var/cache/imgfront/busybox``).
- ``podman_node`` (session) -> PodmanNode: a private ``podman system service`` on its own storage
  under the session's tmp dir, with ``.socket``, ``.url``, ``.env`` (for imgfront: CONTAINER_HOST
  points at the service), ``.podman(*args)`` (the local CLI on the same storage, for inspecting
  results) and ``.get(path)`` (a raw API request).
- ``make_context`` (function) -> ``make_context(containerfile, files=None) -> Path``: a build context
  with the Containerfile, both busybox binaries and any extra files.
- ``emulation_ready`` (session) -> Path: the binfmt_misc entry of an enabled qemu-aarch64 handler
  with flag F, registered on the spot if root can.
- ``run_imgfront`` (session) -> ``run_imgfront(args, env, input=None, timeout=..., cwd=None)``:
  ``python -m imgfront ARGS`` with output captured as text; never checks the exit code.

The services themselves (podman nodes, dockerd, a registry, sshd) live in tests/integration/services/, one module
each; the fixtures here start and stop them.

The podman node is shared by the whole session, so give images names unique to the test.
A missing prerequisite fails with a hint (``make setup``, as root) instead of skipping, so a run
on an unprepared host cannot pass by testing nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol

import pytest
from integration.services.common import SETUP_HINT, free_port, require_root
from integration.services.dockerd import Dockerd, run_dockerd
from integration.services.podman_host import podman_ids, service_node
from integration.services.podman_node import PodmanNode
from integration.services.podman_other import OtherPodman, ServiceError, other_node
from integration.services.registry import RegistryServer, run_registry
from integration.services.sshd import Sshd, run_sshd

from imgfront.emulation.binfmt import working_handler
from imgfront.platforms import Platform

# imgfront keeps its private podman service for a while after a run (engines/service.py). Every service a test
# starts is stopped by its PID, so none is kept here unless a test asks for it and stops it itself.
os.environ.setdefault("IMGFRONT_SERVICE_LINGER", "0")

BUSYBOX_DIR_DEFAULT = Path("/var/cache/imgfront/busybox")
BUSYBOX_ARCHES = ("amd64", "arm64")
IMGFRONT_TIMEOUT = 540.0  # below pytest-timeout's 600 s, so the subprocess's own timeout reports first

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
QEMU_AARCH64_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")


# --- busybox -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def busybox_bins() -> Path:
    """The directory with static busybox-amd64 and busybox-arm64, from `make setup`'s cache."""
    directory = Path(os.environ.get("IMGFRONT_BUSYBOX_DIR") or BUSYBOX_DIR_DEFAULT)
    missing = [
        name for name in (f"busybox-{arch}" for arch in BUSYBOX_ARCHES) if not os.access(directory / name, os.X_OK)
    ]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing from {directory}: {SETUP_HINT}", pytrace=False)
    return directory


class MakeContext(Protocol):
    def __call__(self, containerfile: str, files: Mapping[str, str | bytes] | None = None) -> Path: ...


@pytest.fixture
def make_context(tmp_path: Path, busybox_bins: Path) -> MakeContext:
    """A factory for build contexts: a Containerfile, busybox-amd64/-arm64, plus files by relative path."""
    counter = itertools.count()

    def make(containerfile: str, files: Mapping[str, str | bytes] | None = None) -> Path:
        context = tmp_path / f"context{next(counter)}"
        context.mkdir()
        (context / "Containerfile").write_text(containerfile)
        for arch in BUSYBOX_ARCHES:
            shutil.copy2(busybox_bins / f"busybox-{arch}", context / f"busybox-{arch}")
        for name, content in (files or {}).items():
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"context file {name!r} must be a relative path inside the context")
            target = context.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        return context

    return make


class Recorder:
    """BuildEvents that keep what they are told (appends only, so safe to read from another thread)."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, str]] = []
        self.lines: list[str] = []

    def step(self, number: int, total: int, text: str) -> None:
        self.steps.append((number, total, text))

    def log(self, line: str) -> None:
        self.lines.append(line)


# Tiny two-platform bases from make_context's busybox binaries, for the integration tests.
BUSYBOX_CONTAINERFILE = """\
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""
# Docker 20.10's legacy builder needs a FROM scratch stage for another platform to begin with COPY.
DOCKER_BUSYBOX_CONTAINERFILE = """\
ARG TARGETARCH
FROM scratch AS base-amd64
COPY busybox-amd64 /bin/busybox
FROM scratch AS base-arm64
COPY busybox-arm64 /bin/busybox
FROM base-${TARGETARCH}
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


# --- podman --------------------------------------------------------------------------------------


PODMAN_KINDS = ("host", "other")


def _require_podman(what: str) -> None:
    require_root(what)
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed: {SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def other_podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtherPodman]:
    """The other release's podman, imported into a private store of the host's podman (about 7 s)."""
    _require_podman("other_podman")
    # /tmp whole: the tests' folders (pytest's and tempfile's) have one path on both sides.
    other = OtherPodman(tmp_path_factory.mktemp("podman-other-store"), mounts=[Path(tempfile.gettempdir())])
    try:
        other.prepare()
    except ServiceError as e:
        other.close()
        pytest.fail(f"the other podman could not be prepared: {e}\n{SETUP_HINT}", pytrace=False)
    try:
        yield other
    finally:
        other.close()


@pytest.fixture(scope="session")
def host_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanNode]:
    """The host's podman on a private store, whatever podman_node is: for what only the host's podman does.

    imgfront's private service is the host's `podman system service`, started when no service answers; a test
    of it removes CONTAINER_HOST from this node's env, and the private store stays in CONTAINERS_*_CONF.
    """
    _require_podman("host_node")
    with service_node(tmp_path_factory.mktemp("podman-host-only")) as node:
        yield node


@pytest.fixture(scope="session", params=PODMAN_KINDS, ids=podman_ids())
def podman_kind(request: pytest.FixtureRequest) -> str:
    """Which podman the integration tests run on: the host's, then the other release's (in a container)."""
    return str(request.param)


@pytest.fixture(scope="session")
def podman_node(
    podman_kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[PodmanNode]:
    """A private `podman system service` on storage under the session's tmp dir, removed at the end.

    Every test that uses it runs twice: on the host's podman, and on the other release's podman (podman 5.x
    on a Debian 12 host), each as the local engine through CONTAINER_HOST.
    """
    _require_podman("podman_node")
    base = tmp_path_factory.mktemp(f"podman-{podman_kind}")
    if podman_kind == "host":
        with service_node(base) as node:
            yield node
    else:
        with other_node(request.getfixturevalue("other_podman"), base) as node:
            yield node


class StartNode(Protocol):
    def __call__(self, tcp: bool = False) -> PodmanNode: ...


@pytest.fixture
def extra_nodes(
    podman_kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[StartNode]:
    """Start more podman services for a farm, each on storage of its own, all stopped when the test ends.

    They are of the same podman as podman_node: the host's, or the other release's.

    `extra_nodes(tcp=True)` listens on a free port of 127.0.0.1 instead of a unix socket.
    """
    _require_podman("extra_nodes")
    with contextlib.ExitStack() as stack:
        if podman_kind == "host":
            yield lambda tcp=False: stack.enter_context(
                service_node(tmp_path_factory.mktemp("node"), free_port() if tcp else None)
            )
        else:
            other = request.getfixturevalue("other_podman")
            yield lambda tcp=False: stack.enter_context(
                other_node(other, tmp_path_factory.mktemp("node"), free_port() if tcp else None)
            )


@pytest.fixture
def other_nodes(other_podman: OtherPodman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartNode]:
    """Nodes of the other release's podman whatever podman_node is: for mixed farms (4.3 local, 5.x node)."""
    with contextlib.ExitStack() as stack:
        yield lambda tcp=False: stack.enter_context(
            other_node(other_podman, tmp_path_factory.mktemp("other-node"), free_port() if tcp else None)
        )


# --- ssh -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on 127.0.0.1 that lets root in with a test key (``.identity``); ``.ssh_config`` trusts its host key."""
    require_root("sshd")
    with run_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


# --- emulation -----------------------------------------------------------------------------------


def _binfmt_mounted() -> bool:
    return any(line.split()[1] == os.fspath(BINFMT_MISC) for line in Path("/proc/mounts").read_text().splitlines())


def _aarch64_handler() -> Path | None:
    """The binfmt_misc entry of an enabled aarch64 handler with flag F (fix binary), if one is registered."""
    return working_handler(Platform.parse("linux/arm64"), BINFMT_MISC)


def _register_aarch64() -> str | None:
    """Register qemu-aarch64 from its binfmt.d line (root only); an error message, or None on success."""
    if os.geteuid() != 0:
        return "not root"
    if not _binfmt_mounted():
        mount = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", os.fspath(BINFMT_MISC)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mount.returncode != 0:
            return f"cannot mount binfmt_misc: {mount.stderr.strip()}"
    if _aarch64_handler() is not None:
        return None
    if not QEMU_AARCH64_CONF.is_file():
        return f"{QEMU_AARCH64_CONF} is missing (package qemu-user-static)"
    line = next(
        (ln for ln in QEMU_AARCH64_CONF.read_bytes().splitlines() if ln.strip() and not ln.startswith(b"#")),
        None,
    )
    if line is None:
        return f"no handler line in {QEMU_AARCH64_CONF}"
    if (BINFMT_MISC / line.split(b":")[1].decode()).exists():
        return "a handler named qemu-aarch64 exists but is disabled or lacks flag F; remove it first"
    try:
        (BINFMT_MISC / "register").write_bytes(line)
    except OSError as exc:
        return f"writing {BINFMT_MISC / 'register'} failed: {exc}"
    return None


@pytest.fixture(scope="session")
def emulation_ready() -> Path:
    """binfmt_misc is mounted and qemu-aarch64 is registered with flag F, so containers can run arm64."""
    handler = _aarch64_handler() if _binfmt_mounted() else None
    if handler is None:
        error = _register_aarch64()
        handler = _aarch64_handler() if _binfmt_mounted() else None
        if handler is None:
            pytest.fail(
                f"no qemu-aarch64 binfmt_misc handler with flag F ({error or 'registration had no effect'}): "
                f"{SETUP_HINT}",
                pytrace=False,
            )
    return handler


# --- imgfront ------------------------------------------------------------------------------------


class RunImgfront(Protocol):
    def __call__(
        self,
        args: Sequence[str | os.PathLike[str]],
        env: Mapping[str, str],
        input: str | None = None,
        timeout: float = IMGFRONT_TIMEOUT,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


def start_two_platform_build(
    env: Mapping[str, str], ctx: Path, tag: str, step: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `imgfront build` for amd64 and arm64 and return once both platforms are in `step` (a slow RUN)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgfront",
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            tag,
            "--progress",
            "plain",
            os.fspath(ctx),
        ],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if sum(step in s for s in seen) == 2:
            break
    time.sleep(1)  # let both steps really start
    return proc, seen


def imgfront_cmd(*args: str | os.PathLike[str]) -> list[str]:
    """The command line that runs this checkout's imgfront with ARGS, for a test that starts it itself."""
    return [sys.executable, "-m", "imgfront", *(os.fspath(a) for a in args)]


@pytest.fixture(scope="session")
def run_imgfront() -> RunImgfront:
    """Runs `python -m imgfront ARGS` with env; output captured as text, exit code left to the test."""

    def run(
        args: Sequence[str | os.PathLike[str]],
        env: Mapping[str, str],
        input: str | None = None,
        timeout: float = IMGFRONT_TIMEOUT,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            imgfront_cmd(*args),
            env=dict(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )

    return run


# --- base images in the podman_node's storage -------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
BUSYBOX_BASE = "localhost/imgfront/busybox:latest"
DEBIAN_BASE = "localhost/imgfront/debian:bookworm"


@pytest.fixture(scope="session")
def busybox_base(
    podman_node: PodmanNode,
    busybox_bins: Path,
    run_imgfront: RunImgfront,
    emulation_ready: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The busybox base list for amd64 and arm64 (examples/web builds on it), made as `make base-image` does."""
    if podman_node.podman("manifest", "exists", BUSYBOX_BASE, check=False).returncode != 0:
        context = tmp_path_factory.mktemp("busybox-base")
        shutil.copy2(REPO / "containerfiles" / "busybox" / "Containerfile", context / "Containerfile")
        for arch in BUSYBOX_ARCHES:
            shutil.copy2(busybox_bins / f"busybox-{arch}", context / f"busybox-{arch}")
        made = run_imgfront(
            ["build", "--platform", "linux/amd64,linux/arm64", "-t", BUSYBOX_BASE, context], podman_node.env
        )
        assert made.returncode == 0, made.stderr
    return BUSYBOX_BASE


@pytest.fixture(scope="session")
def debian_base(podman_node: PodmanNode, emulation_ready: Path) -> str:
    """The Debian list for amd64 and arm64 from `scripts/debian-base.sh` (minutes once, then seconds)."""
    subprocess.run(
        [REPO / "scripts" / "debian-base.sh"],
        env={**podman_node.cli_env, "IMGFRONT_PODMAN": shlex.join(podman_node.cli)},
        capture_output=True,
        text=True,
        timeout=540,
        check=True,
    )
    return DEBIAN_BASE


# --- docker and a registry -----------------------------------------------------------------------
#
# - ``dockerd`` (session) -> Dockerd: a real ``dockerd`` on a private unix socket, its data root, exec
#   root and its own containerd's state under the session's tmp dir, with ``.url`` (``unix://...``),
#   ``.socket``, ``.pid``, ``.data_root``, ``.env`` (DOCKER_HOST=url), ``.get(path)`` (a raw API request)
#   and ``.client()`` (a ``docker.APIClient`` on it, to inspect results). It also listens with TLS on
#   ``.tls_url`` (``tcp://127.0.0.1:PORT``, client certificates required); ``.tls_env`` holds
#   DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) for it. It cannot pull; build test
#   images FROM scratch (``make_context``'s busybox binaries), beginning each scratch stage with COPY.
# - ``registry`` (session) -> RegistryServer: Debian's ``docker-registry`` on 127.0.0.1 with filesystem storage
#   in tmp and htpasswd auth, with ``.url`` (``127.0.0.1:PORT``), ``.user``, ``.password``, ``.pid`` and
#   ``.get(path, auth=True)``.


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """A real dockerd on a private socket and data root under the session's tmp dir, removed at the end.

    overlay2 works on this kind of host without --storage-driver; dockerd 20.10 starts its own containerd
    when none is named, keeping that containerd's state under the exec root. An empty --config-file keeps
    the host's /etc/docker/daemon.json out.
    """
    require_root("dockerd")
    with run_dockerd(tmp_path_factory.mktemp("dockerd")) as engine:
        yield engine


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with htpasswd auth on loopback, for the whole session."""
    with run_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def readonly_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry in read-only maintenance mode: it lets the user in and refuses every push."""
    with run_registry(tmp_path_factory.mktemp("registry-ro"), readonly=True) as server:
        yield server
