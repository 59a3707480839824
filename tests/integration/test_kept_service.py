"""imgfront's private podman service, kept after a run that ended well, found by the next run with the same settings.

The private service is the host's `podman system service`, whatever podman_node is: these tests use host_node.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """XDG_RUNTIME_DIR for the test's runs (short, for unix sockets); every service kept in it is stopped by PID."""
    folder = Path(tempfile.mkdtemp(prefix="kept-", dir="/tmp"))
    yield folder
    for pid_file in folder.glob("imgfront/svc-*/service.pid"):
        pid = int(pid_file.read_text())
        if _serves(pid, pid_file.parent):
            os.kill(pid, signal.SIGTERM)
            _gone(pid)
    shutil.rmtree(folder, ignore_errors=True)


def _serves(pid: int, folder: Path) -> bool:
    try:
        return os.fsencode(folder / "podman.sock") in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not Path(f"/proc/{pid}").exists()


def _kept(runtime: Path) -> dict[str, int]:
    """Each kept service folder and its live service's PID."""
    found = {}
    for pid_file in runtime.glob("imgfront/svc-*/service.pid"):
        pid = int(pid_file.read_text())
        if _serves(pid, pid_file.parent):
            found[pid_file.parent.name] = pid
    return found


def test_the_next_run_finds_the_kept_service_and_other_settings_get_their_own(
    host_node, make_context, run_imgfront, runtime_dir, tmp_path
) -> None:
    env = {k: v for k, v in host_node.env.items() if k != "CONTAINER_HOST"}
    env.update(XDG_RUNTIME_DIR=str(runtime_dir), IMGFRONT_SERVICE_LINGER="120", TMPDIR=str(runtime_dir))
    ctx = make_context(BUSYBOX_CONTAINERFILE)
    first = run_imgfront(["build", "-t", "localhost/kept:1", ctx], env)
    assert first.returncode == 0, first.stderr
    [(folder, pid)] = _kept(runtime_dir).items()
    assert (runtime_dir / "imgfront").stat().st_mode & 0o777 == 0o700

    doctor = run_imgfront(["doctor"], env)
    assert (
        f"engine: private service (kept from an earlier run): unix://{runtime_dir}/imgfront/{folder}/" in doctor.stdout
    )
    again = run_imgfront(["build", "-t", "localhost/kept:2", ctx], env)
    assert again.returncode == 0, again.stderr
    assert _kept(runtime_dir) == {folder: pid}  # the same service, the same store: the image is there
    host_node.podman("image", "exists", "localhost/kept:2")

    storage = Path(env["CONTAINERS_STORAGE_CONF"])
    other_conf = tmp_path / "storage.conf"
    other_conf.write_text(storage.read_text())
    other = run_imgfront(["doctor"], {**env, "CONTAINERS_STORAGE_CONF": str(other_conf)})
    assert f"imgfront/{folder}/" not in other.stdout  # other settings, another service
    assert len(_kept(runtime_dir)) == 2

    # While a run holds it, a second run at once gets a service of its own, for that run only.
    lock = os.open(runtime_dir / "imgfront" / folder / "lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = run_imgfront(["doctor"], env)
        assert "engine: private service: unix://" in busy.stdout
        assert f"imgfront/{folder}/" not in busy.stdout
    finally:
        os.close(lock)
    assert _kept(runtime_dir)[folder] == pid

    failed = run_imgfront(["build", make_context(BUSYBOX_CONTAINERFILE + "RUN exit 3\n")], env)
    assert failed.returncode == 1
    assert _gone(pid)  # a run that failed keeps nothing
    assert folder not in _kept(runtime_dir)


def test_a_kept_service_stops_by_itself_when_idle(host_node, make_context, run_imgfront, runtime_dir) -> None:
    env = {k: v for k, v in host_node.env.items() if k != "CONTAINER_HOST"}
    env.update(XDG_RUNTIME_DIR=str(runtime_dir), IMGFRONT_SERVICE_LINGER="2", TMPDIR=str(runtime_dir))
    result = run_imgfront(["doctor"], env)
    assert "engine: private service: unix://" in result.stdout
    [pid] = _kept(runtime_dir).values()
    assert _gone(pid, within=60.0)  # podman's own idle timeout (--time=2), well within a minute
