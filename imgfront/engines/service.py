"""A private `podman system service`, for when no podman service answers.

Starting one costs about 0.2 s, so after a run that ended well the service is kept for a while
(`IMGFRONT_SERVICE_LINGER` seconds of idleness, default 60; 0 keeps none), as systemd's podman.socket would, at
a socket of the user's own (`$XDG_RUNTIME_DIR/imgfront`, else `/run/imgfront` for root or `/tmp/imgfront-UID`,
a folder of mode 0700 that must be the user's). The socket's name holds a hash of everything that decides what
storage the service would use (the containers config files named by the environment and their contents, the
podman binary, the user, HOME and the XDG folders), so a run with other storage settings never finds it. The run
that uses it holds its lock, so no two runs share one service: a second run at once gets a service of its own, for
that run only, as before. A run that failed or was interrupted stops the service it used.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from imgfront.errors import EngineError
from imgfront.util import rundir

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SERVICE_PREFIX = "svc-"
PID_FILE = "service.pid"
LOCK_FILE = "lock"
SETTLE = 1.5  # seconds for podman to remove a build's working containers once its steps are killed
LINGER = 60  # seconds a kept service waits, idle, for the next run
# What decides the storage and registries a podman service uses, besides the files' contents.
_ENV_KEYS = (
    "CONTAINERS_CONF",
    "CONTAINERS_CONF_OVERRIDE",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF",
    "REGISTRIES_CONFIG_PATH",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "HOME",
    "TMPDIR",
)
_DEFAULT_FILES = (
    "/etc/containers/containers.conf",
    "/etc/containers/storage.conf",
    "/etc/containers/registries.conf",
    "/usr/share/containers/containers.conf",
    "/usr/share/containers/storage.conf",
)


def linger_seconds(env: Mapping[str, str] = os.environ) -> int:
    text = env.get("IMGFRONT_SERVICE_LINGER", "")
    try:
        return max(0, int(text)) if text else LINGER
    except ValueError:
        return LINGER


def settings_key(binary: str, env: Mapping[str, str] = os.environ) -> str:
    """A hash of what decides the service's storage: equal keys, interchangeable services."""
    home = Path(env.get("HOME", "~")).expanduser()
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers"
    files = [env[k] for k in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF") if k in env]
    files += [*_DEFAULT_FILES, *(str(config / name) for name in ("containers.conf", "storage.conf", "registries.conf"))]
    contents = {}
    for name in files:
        with contextlib.suppress(OSError):
            contents[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
    info = os.stat(binary)
    document = {
        "uid": os.getuid(),
        "env": {k: env.get(k) for k in _ENV_KEYS},
        "files": contents,
        "podman": [binary, info.st_size, info.st_mtime_ns],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def kept_folder(env: Mapping[str, str] = os.environ) -> Path | None:
    """The user's own folder for kept services, made if missing; None when it is not safely the user's."""
    uid = os.getuid()
    runtime = env.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "imgfront" if runtime else Path("/run/imgfront" if uid == 0 else f"/tmp/imgfront-{uid}")
    try:
        base.mkdir(mode=0o700, parents=bool(runtime) or uid == 0, exist_ok=True)
        info = base.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        return None
    return base


def _pid_serving(pid: int, uri: str) -> bool:
    try:
        return uri.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


class PrivateService:
    """A `podman system service` that only this run uses: kept from an earlier run, or started now.

    Without a usable kept folder (or with a linger of 0) it is the run's own, in the run folder, and stopped
    when the run ends, as before.
    """

    def __init__(self, podman: str = "podman", env: Mapping[str, str] = os.environ) -> None:
        self.podman = podman
        self.env = env
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.kept = False  # lives on after the run, in the user's kept folder
        self.reused = False  # was there before this run
        self._lock: int | None = None

    @property
    def socket(self) -> Path:
        assert self.dir is not None
        return self.dir / "podman.sock"

    @property
    def uri(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        binary = shutil.which(self.podman)
        if binary is None:
            raise EngineError(
                "podman is not installed and no podman service answers",
                hint="install podman (apt-get install podman), or set CONTAINER_HOST",
            )
        linger = linger_seconds(self.env)
        if linger and self._take_kept(binary):
            assert self.dir is not None
            pid = _read_pid(self.dir)
            if pid is not None and _pid_serving(pid, self.uri) and self.socket.exists():
                self.pid, self.reused = pid, True
                return self.uri
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
            return self._launch(binary, linger)
        self.dir = rundir.current().subdir(SERVICE_PREFIX)
        return self._launch(binary, 0)

    def _take_kept(self, binary: str) -> bool:
        """Lock the kept service's folder for this run; False when there is none or another run holds it."""
        base = kept_folder(self.env)
        if base is None:
            return False
        folder = base / f"svc-{settings_key(binary, self.env)}"
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(folder / LOCK_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.dir, self._lock, self.kept = folder, fd, True
        return True

    def _launch(self, binary: str, linger: int) -> str:
        assert self.dir is not None
        log = (self.dir / "service.log").open("wb")
        # A session of its own keeps Ctrl-C away from the service: imgfront still needs it to clean up.
        self.process = subprocess.Popen(
            [binary, "system", "service", f"--time={linger}", self.uri],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid, self.reused = self.process.pid, False
        (self.dir / PID_FILE).write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.dir / "service.log").read_text(errors="replace").strip().splitlines()
                self.stop()
                detail = output[-1] if output else "no output"
                raise EngineError(
                    f"could not start a private podman service: {detail}",
                    hint="run 'imgfront doctor' to see what is wrong",
                )
            time.sleep(0.05)
        return self.uri

    def restart(self) -> str:
        """A kept service that would not answer (it may have just timed out): stop it and start a new one."""
        self.stop()
        return self.start()

    def kill_descendants(self) -> int:
        """Kill what the service runs for builds (buildah's RUN steps), which podman 4.3 lets run on after a cancel.

        Returns how many processes were still there to kill.
        """
        if self.pid is None:
            return 0
        found = _descendants(self.pid)
        for pid in reversed(found):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return len(found)

    def release(self) -> None:
        """The run ended well: a kept service stays for the next run, unlocked; a run's own one stops."""
        if not self.kept:
            self.stop()
            return
        self.process = None  # it lives on in its own session, and exits after its idle time
        self._unlock()

    def stop(self) -> None:
        """Stop the service by its PID (only while its command line still names its socket), and unlock."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.pid is not None and self.dir is not None and _pid_serving(self.pid, self.uri):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _pid_serving(self.pid, self.uri) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.process, self.pid = None, None
        if self.dir is not None:
            if self.kept:
                for name in ("podman.sock", PID_FILE):
                    with contextlib.suppress(FileNotFoundError):
                        (self.dir / name).unlink()
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _read_pid(folder: Path) -> int | None:
    try:
        return int((folder / PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    """Every live process below `root` (zombies left out), parents before children, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError, IndexError):
            continue
        if state != "Z" and ppid.isdigit():
            children.setdefault(int(ppid), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


@rundir.on_stale
def stop_stale_service(run: Path) -> None:
    """A killed run's private service: end its builds' steps, let podman remove their containers, then stop it.

    The PID counts only while its command line still names the service's own socket, so a PID reused by
    another process is never signalled.
    """
    for folder in run.glob(SERVICE_PREFIX + "*"):
        try:
            pid = int((folder / PID_FILE).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"unix://{folder / 'podman.sock'}".encode() not in cmdline:
            continue
        deadline = time.monotonic() + STOP_TIMEOUT
        while _descendants(pid) and time.monotonic() < deadline:
            for child in reversed(_descendants(pid)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.2)
        time.sleep(SETTLE)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline + STOP_TIMEOUT:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
