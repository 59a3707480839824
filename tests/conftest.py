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

The podman node is shared by the whole session, so give images names unique to the test.
A missing prerequisite fails with a hint (``make setup``, as root) instead of skipping, so a run
on an unprepared host cannot pass by testing nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import shlex
import shutil
import signal
import socket as socketlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import pytest
from integration.services.podman_other import OtherPodman, ServiceError

BUSYBOX_DIR_DEFAULT = Path("/var/cache/imgfront/busybox")
BUSYBOX_ARCHES = ("amd64", "arm64")
SETUP_HINT = "run `make setup` as root (scripts/setup-host.sh prepares the host)"

# crun fails on this kind of host (cgroups hybrid mode); runc needs ulimits within the host's.
PODMAN_ENGINE_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
events_logger = "file"
# File locks under tmp_dir: the default shm locks are shared with the host's podman.
lock_type = "file"
tmp_dir = "{tmp_dir}"

[network]
# Private, so `podman system reset` at teardown cannot remove the host's networks.
network_config_dir = "{network_dir}"
"""

PODMAN_STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""

SERVICE_START_TIMEOUT = 30.0
SERVICE_STOP_TIMEOUT = 15.0
PODMAN_CLI_TIMEOUT = 600.0
IMGFRONT_TIMEOUT = 540.0  # below pytest-timeout's 600 s, so the subprocess's own timeout reports first

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
QEMU_AARCH64_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
# ELF64, little endian, e_machine 183 (EM_AARCH64): the magic every qemu-aarch64 registration uses.
AARCH64_ELF_MAGIC = "7f454c460201010000000000000000000200b700"


class PodmanCommandError(subprocess.CalledProcessError):
    """A failed podman CLI call whose message carries the command and its output."""

    def __str__(self) -> str:
        return (
            f"{shlex.join(map(str, self.cmd))} exited {self.returncode}\n"
            f"--- stdout:\n{self.stdout}--- stderr:\n{self.stderr}"
        )


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, for talking to the podman service without extra libraries."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fspath(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def unix_http_get(path: Path, url_path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """GET url_path from the HTTP server on unix socket path: (status, headers, body)."""
    conn = _UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", url_path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@dataclass(frozen=True)
class PodmanNode:
    """A private podman API service and the storage it shares with the local CLI."""

    socket: Path
    url: str
    # os.environ plus CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINER_HOST=url.
    env: dict[str, str] = field(hash=False)
    graphroot: Path
    runroot: Path
    pid: int = 0  # the service's, to stop or kill it by
    # The node's own podman CLI on its storage: the host's podman, or `podman exec CONTAINER podman` for
    # the other release's podman in a container (run with outer_env, the container's private store).
    cli: tuple[str, ...] = ("podman",)
    outer_env: dict[str, str] | None = field(default=None, hash=False)
    version: str = ""  # the service's podman version, e.g. 4.3.1
    container: str = ""  # the container the service runs in, for the other podman

    @property
    def cli_env(self) -> dict[str, str]:
        """env without CONTAINER_HOST: with it, the podman CLI would turn into a remote client."""
        if self.outer_env is not None:
            return self.outer_env
        return {k: v for k, v in self.env.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def podman(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        input: str | None = None,
        timeout: float = PODMAN_CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run the podman CLI locally on this node's storage (not through the service)."""
        return _run_podman(
            [os.fspath(a) for a in args], self.cli_env, check=check, input=input, timeout=timeout, cli=self.cli
        )

    def run(self, *cmd: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run another tool (skopeo, say) where the node's podman runs, on its storage: here, or in its container."""
        prefix = ("podman", "exec", "--interactive", self.container) if self.container else ()
        return _run_podman([os.fspath(c) for c in cmd], self.cli_env, check=check, cli=prefix)

    def get(self, url_path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """A raw GET against the service, e.g. get("/v4.0.0/libpod/info")."""
        return unix_http_get(self.socket, url_path, timeout)


def _run_podman(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = PODMAN_CLI_TIMEOUT,
    cli: Sequence[str] = ("podman",),
) -> subprocess.CompletedProcess[str]:
    cmd = [*cli, *args]
    proc = subprocess.run(
        cmd,
        env=dict(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise PodmanCommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} needs root (rootless podman is not set up on these hosts); run the tests as root")


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


def _mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below directory, deepest first (mountinfo field 5 is the mount point)."""
    prefix = os.fspath(directory)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(SERVICE_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_service(
    proc: subprocess.Popen[bytes],
    sock: Path,
    log: Path,
    what: str = "podman system service",
    timeout: float = SERVICE_START_TIMEOUT,
) -> None:
    """Wait until a service answers /_ping on its unix socket; fail with its log if it exits or never does."""
    deadline = time.monotonic() + timeout
    last_error = "socket not created"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode} while starting:\n{log.read_text()[-4000:]}", pytrace=False)
        try:
            status, _, body = unix_http_get(sock, "/_ping", timeout=2.0)
            if status == 200:
                return
            last_error = f"/_ping answered {status}: {body[:200]!r}"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.1)
    pytest.fail(
        f"{what} did not answer /_ping within {timeout:.0f} s ({last_error}):\n{log.read_text()[-4000:]}",
        pytrace=False,
    )


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"podman system service exited {proc.returncode}:\n{log.read_text()}", pytrace=False)
        with socketlib.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"podman system service did not listen on 127.0.0.1:{port}:\n{log.read_text()}", pytrace=False)


@contextlib.contextmanager
def _service_node(base: Path, tcp_port: int | None = None) -> Iterator[PodmanNode]:
    """A private `podman system service` on storage under base, stopped by its PID and removed at the end.

    It listens on a unix socket, or on tcp://127.0.0.1:tcp_port when a port is given (then `socket` is unused).
    """
    graphroot, runroot = base / "root", base / "runroot"
    engine_conf, storage_conf = base / "containers.conf", base / "storage.conf"
    engine_conf.write_text(PODMAN_ENGINE_CONF.format(tmp_dir=base / "tmp", network_dir=base / "networks"))
    storage_conf.write_text(PODMAN_STORAGE_CONF.format(graphroot=graphroot, runroot=runroot))
    sock = base / "podman.sock"
    url = f"tcp://127.0.0.1:{tcp_port}" if tcp_port else f"unix://{sock}"

    cli_env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}
    cli_env["CONTAINERS_CONF"] = os.fspath(engine_conf)
    cli_env["CONTAINERS_STORAGE_CONF"] = os.fspath(storage_conf)

    log = base / "service.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", url],
            env=cli_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    node = PodmanNode(
        socket=sock,
        url=url,
        env={**cli_env, "CONTAINER_HOST": url},
        graphroot=graphroot,
        runroot=runroot,
        pid=proc.pid,
        version=host_podman_version(),
    )
    try:
        if tcp_port:
            _wait_for_port(proc, tcp_port, log)
        else:
            _wait_for_service(proc, sock, log)
        yield node
    finally:
        _stop(proc)
        try:
            reset = _run_podman(["system", "reset", "--force"], cli_env, check=False, timeout=120)
            reset_error = reset.stderr if reset.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            reset_error = "timed out"
        for point in _mounts_under(base):
            subprocess.run(["umount", "--lazy", os.fspath(point)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        if reset_error:
            print(f"podman node teardown: podman system reset failed: {reset_error}", file=sys.stderr)


class _ForeignProcess:
    """A process that is not our child (a container's service), watched by its PID for the wait helpers."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self.returncode = -1
        return self.returncode


@contextlib.contextmanager
def _other_node(other: OtherPodman, base: Path, tcp_port: int | None = None) -> Iterator[PodmanNode]:
    """The other release's podman serving on a unix socket under base, or on tcp://127.0.0.1:tcp_port."""
    sock = base / "podman.sock"
    url = f"tcp://127.0.0.1:{tcp_port}" if tcp_port else f"unix://{sock}"
    env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}
    try:
        with other.node(base, url) as container:
            node = PodmanNode(
                socket=sock,
                url=url,
                env={**env, "CONTAINER_HOST": url},
                graphroot=base / "root",
                runroot=base / "runroot",
                pid=container.pid,
                cli=container.cli,
                outer_env=container.outer_env,
                version=container.version,
                container=container.container,
            )
            log = base / "service.log"
            proc = _ForeignProcess(container.pid)
            try:
                if tcp_port:
                    _wait_for_port(proc, tcp_port, log)  # type: ignore[arg-type]
                else:
                    _wait_for_service(proc, sock, log)  # type: ignore[arg-type]
            except pytest.fail.Exception:
                log.write_text(other.logs(container.container))
                raise
            yield node
    except ServiceError as e:
        pytest.fail(f"the other podman node did not start: {e}\n{SETUP_HINT}", pytrace=False)
    finally:
        for point in _mounts_under(base):
            subprocess.run(["umount", "--lazy", os.fspath(point)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def host_podman_version() -> str:
    """The host's podman version (4.3.1 on Debian 12), or "" when podman is not installed."""
    global _HOST_PODMAN_VERSION
    if _HOST_PODMAN_VERSION is None:
        try:
            out = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False).stdout
        except OSError:
            out = ""
        _HOST_PODMAN_VERSION = out.split()[-1] if out.strip() else ""
    return _HOST_PODMAN_VERSION


_HOST_PODMAN_VERSION: str | None = None


def _podman_ids() -> tuple[str, str]:
    """Test ids of the two podmans: the host's major version and the other one (4 with 5, 5 with 4)."""
    version = host_podman_version()
    major = int(version.split(".")[0]) if version else 4
    return f"podman{major}", f"podman{5 if major < 5 else 4}"


PODMAN_KINDS = ("host", "other")


def _require_podman(what: str) -> None:
    _require_root(what)
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
    with _service_node(tmp_path_factory.mktemp("podman-host-only")) as node:
        yield node


@pytest.fixture(scope="session", params=PODMAN_KINDS, ids=_podman_ids())
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
        with _service_node(base) as node:
            yield node
    else:
        with _other_node(request.getfixturevalue("other_podman"), base) as node:
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
                _service_node(tmp_path_factory.mktemp("node"), _free_port() if tcp else None)
            )
        else:
            other = request.getfixturevalue("other_podman")
            yield lambda tcp=False: stack.enter_context(
                _other_node(other, tmp_path_factory.mktemp("node"), _free_port() if tcp else None)
            )


@pytest.fixture
def other_nodes(other_podman: OtherPodman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartNode]:
    """Nodes of the other release's podman whatever podman_node is: for mixed farms (4.3 local, 5.x node)."""
    with contextlib.ExitStack() as stack:
        yield lambda tcp=False: stack.enter_context(
            _other_node(other_podman, tmp_path_factory.mktemp("other-node"), _free_port() if tcp else None)
        )


# --- ssh -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sshd:
    """A real sshd on loopback that lets root in with a test key; ssh_config trusts its host key."""

    port: int
    identity: Path
    ssh_config: Path
    pid: int

    def uri(self, socket: Path) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{socket}"


def _free_port() -> int:
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    _require_root("sshd")
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        pytest.fail(f"sshd is not installed: {SETUP_HINT}", pytrace=False)
    base = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "id_test"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.fspath(base / name)], check=True)
    (base / "authorized_keys").write_text((base / "id_test.pub").read_text())
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "AllowStreamLocalForwarding yes\n"
    )
    host_key = (base / "host_key.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    ssh_config = base / "ssh_config"
    ssh_config.write_text(
        f"Host *\n  UserKnownHostsFile {base / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        f"  GlobalKnownHostsFile /dev/null\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = base / "sshd.log"
    proc = subprocess.Popen(
        [binary, "-D", "-f", os.fspath(config), "-E", os.fspath(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socketlib.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {log.read_text() if log.exists() else ''}", pytrace=False)
            time.sleep(0.05)
        yield Sshd(port=port, identity=base / "id_test", ssh_config=ssh_config, pid=proc.pid)
    finally:
        _stop(proc)


# --- emulation -----------------------------------------------------------------------------------


def _binfmt_mounted() -> bool:
    return any(line.split()[1] == os.fspath(BINFMT_MISC) for line in Path("/proc/mounts").read_text().splitlines())


def _aarch64_handler() -> Path | None:
    """The binfmt_misc entry of an enabled aarch64 handler with flag F (fix binary), if one is registered."""
    if (BINFMT_MISC / "status").read_text().strip() != "enabled":
        return None
    for entry in sorted(BINFMT_MISC.iterdir()):
        if entry.name in ("register", "status"):
            continue
        try:
            lines = entry.read_text().splitlines()
        except OSError:
            continue
        # Lines read "interpreter /path", "flags: OCF", "magic 7f45...".
        fields = {key.rstrip(":"): value for key, _, value in (line.partition(" ") for line in lines[1:])}
        if (
            lines[:1] == ["enabled"]
            and fields.get("magic", "").startswith(AARCH64_ELF_MAGIC)
            and "F" in fields.get("flags", "")
        ):
            return entry
    return None


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
            [sys.executable, "-m", "imgfront", *(os.fspath(arg) for arg in args)],
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
# - ``registry`` (session) -> Registry: Debian's ``docker-registry`` on 127.0.0.1 with filesystem storage
#   in tmp and htpasswd auth, with ``.url`` (``127.0.0.1:PORT``), ``.user``, ``.password``, ``.pid`` and
#   ``.get(path, auth=True)``.

DOCKERD_START_TIMEOUT = 60.0
DOCKERD_STOP_TIMEOUT = 40.0  # dockerd gives running containers 15 s before it kills them


@dataclass(frozen=True)
class Dockerd:
    """A private Docker engine; it starts a containerd of its own, whose state lives under exec_root."""

    socket: Path
    url: str
    pid: int
    data_root: Path
    exec_root: Path
    env: dict[str, str] = field(hash=False)  # os.environ without DOCKER_* settings, plus DOCKER_HOST=url
    tls_url: str = ""  # tcp://127.0.0.1:PORT, TLS with client certificates
    tls_env: dict[str, str] = field(default_factory=dict, hash=False)  # DOCKER_TLS_VERIFY, DOCKER_CERT_PATH

    def get(self, url_path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """A raw GET against the engine, e.g. get("/v1.41/info")."""
        return unix_http_get(self.socket, url_path, timeout)

    def client(self) -> object:
        """A docker.APIClient on this engine (typed loosely: the SDK has no types); close it when done."""
        import docker

        return docker.APIClient(base_url=self.url, version="1.41", timeout=120)


def _make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, named as DOCKER_CERT_PATH wants them."""
    directory.mkdir()

    def openssl(*args: str) -> None:
        run = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            pytest.fail(f"openssl {' '.join(args)} failed: {run.stderr}", pytrace=False)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    for name, usage, subject in (("server", "serverAuth", "127.0.0.1"), ("client", "clientAuth", "client")):
        (directory / f"{name}.ext").write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl("req", *curve, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={subject}")
        sign = ["-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-out", f"{name}-cert.pem", *sign)
    (directory / "client-key.pem").rename(directory / "key.pem")
    (directory / "client-cert.pem").rename(directory / "cert.pem")


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """A real dockerd on a private socket and data root under the session's tmp dir, removed at the end.

    overlay2 works on this kind of host without --storage-driver; dockerd 20.10 starts its own containerd
    when none is named, keeping that containerd's state under the exec root. An empty --config-file keeps
    the host's /etc/docker/daemon.json out.
    """
    _require_root("dockerd")
    binary = shutil.which("dockerd")
    if binary is None:
        pytest.fail(f"dockerd is not installed (package docker.io): {SETUP_HINT}", pytrace=False)
    base = tmp_path_factory.mktemp("dockerd")
    sock, pidfile, config, log = base / "docker.sock", base / "docker.pid", base / "daemon.json", base / "dockerd.log"
    data_root, exec_root, certs = base / "data", base / "exec", base / "certs"
    config.write_text("{}\n")
    if shutil.which("openssl") is None:
        pytest.fail(f"openssl is not installed: {SETUP_HINT}", pytrace=False)
    _make_certificates(certs)
    tls_port = _free_port()
    command = [
        binary,
        "--config-file",
        os.fspath(config),
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--host",
        f"unix://{sock}",
        "--data-root",
        os.fspath(data_root),
        "--exec-root",
        os.fspath(exec_root),
        "--pidfile",
        os.fspath(pidfile),
        "--default-ulimit",
        "nofile=1024:1024",
        # TLS applies to TCP listeners only; the unix socket stays as it is.
        "--host",
        f"tcp://127.0.0.1:{tls_port}",
        "--tlsverify",
        "--tlscacert",
        os.fspath(certs / "ca.pem"),
        "--tlscert",
        os.fspath(certs / "server-cert.pem"),
        "--tlskey",
        os.fspath(certs / "server-key.pem"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    with log.open("wb") as log_file:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_for_service(proc, sock, log, what="dockerd", timeout=DOCKERD_START_TIMEOUT)
        yield Dockerd(
            socket=sock,
            url=f"unix://{sock}",
            pid=proc.pid,
            data_root=data_root,
            exec_root=exec_root,
            env={**env, "DOCKER_HOST": f"unix://{sock}"},
            tls_url=f"tcp://127.0.0.1:{tls_port}",
            tls_env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": os.fspath(certs)},
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(DOCKERD_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for point in _mounts_under(base):
            subprocess.run(["umount", "--lazy", os.fspath(point)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


REGISTRY_START_TIMEOUT = 20.0

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
auth:
  htpasswd:
    realm: imgfront-test
    path: {htpasswd}
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
"""
# What a registry client accepts; without the list types, a registry answers with one platform's image.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# Appended to REGISTRY_CONFIG, whose last section is storage.
REGISTRY_READONLY = """\
  maintenance:
    readonly:
      enabled: true
"""


@dataclass(frozen=True)
class Registry:
    """A real registry on loopback, without TLS, that lets in one user."""

    url: str  # host:port, as image references name it
    user: str
    password: str
    pid: int
    root: Path  # its storage

    def _basic(self, password: str | None = None) -> str:
        import base64

        return base64.b64encode(f"{self.user}:{password or self.password}".encode()).decode()

    def write_auth_file(self, path: Path, password: str | None = None) -> Path:
        """An auth file as podman login writes it, for the user (with another password when given)."""
        path.write_text(json.dumps({"auths": {self.url: {"auth": self._basic(password)}}}))
        return path

    def manifest(self, repository: str, reference: str) -> tuple[int, str, dict[str, Any]]:
        """A manifest with every media type accepted: (status, Docker-Content-Digest, the JSON)."""
        status, headers, body = self.get(f"/v2/{repository}/manifests/{reference}")
        return status, headers.get("Docker-Content-Digest", ""), json.loads(body or b"{}")

    def get(self, url_path: str, auth: bool = True, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """GET url_path (e.g. "/v2/"), with the user's basic credentials unless auth is False."""
        host, _, port = self.url.rpartition(":")
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        if auth:
            headers["Authorization"] = f"Basic {self._basic()}"
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            conn.request("GET", url_path, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


@contextlib.contextmanager
def _run_registry(base: Path, readonly: bool = False) -> Iterator[Registry]:
    """Debian's docker-registry on 127.0.0.1 and a free port, htpasswd auth, storage under base; stopped by PID."""
    import secrets

    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        missing = "docker-registry (package docker-registry)" if binary is None else "htpasswd (package apache2-utils)"
        pytest.fail(f"{missing} is not installed: {SETUP_HINT}", pytrace=False)
    user, password = "imgfront", secrets.token_urlsafe(18)
    made = subprocess.run([htpasswd, "-Bbn", user, password], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"htpasswd failed: {made.stderr}", pytrace=False)
    (base / "htpasswd").write_text(made.stdout)
    port = _free_port()
    config = base / "config.yml"
    config.write_text(
        REGISTRY_CONFIG.format(
            root=base / "storage", port=port, secret=secrets.token_hex(16), htpasswd=base / "htpasswd"
        )
        + (REGISTRY_READONLY if readonly else "")
    )
    log = base / "registry.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [binary, "serve", os.fspath(config)], stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = Registry(url=f"127.0.0.1:{port}", user=user, password=password, pid=proc.pid, root=base / "storage")
    try:
        deadline = time.monotonic() + REGISTRY_START_TIMEOUT
        while True:
            try:
                if server.get("/v2/", auth=False, timeout=2.0)[0] == 401:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not start:\n{log.read_text()[-4000:]}", pytrace=False)
            time.sleep(0.05)
        yield server
    finally:
        _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd auth on loopback, for the whole session."""
    with _run_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def readonly_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry in read-only maintenance mode: it lets the user in and refuses every push."""
    with _run_registry(tmp_path_factory.mktemp("registry-ro"), readonly=True) as server:
        yield server
