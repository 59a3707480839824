"""imgfront as a rootless user: the private service runs rootless podman on the user's own storage."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

USER = "imgfront-rootless"
REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")  # the venv's interpreter lives under /root, which others cannot read


def _as_user(
    command: list[str], home: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *command],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def rootless(busybox_bins: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    assert os.geteuid() == 0, "the rootless test creates its user: run the suite as root (make test)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
    home = Path(pwd.getpwnam(USER).pw_dir)
    entry = pwd.getpwnam(USER)
    # pytest's own tmp dirs are root's alone; the user needs a runtime dir it can reach.
    runtime = Path(tempfile.mkdtemp(prefix="imgfront-rootless-run-"))
    os.chown(runtime, entry.pw_uid, entry.pw_gid)
    runtime.chmod(0o700)
    conf = runtime / "containers.conf"
    conf.write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n'
    )
    conf.chmod(0o644)
    ctx = home / "ctx"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir()
    for arch in ("amd64", "arm64"):
        shutil.copy(busybox_bins / f"busybox-{arch}", ctx / f"busybox-{arch}")
    (ctx / "Containerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["uname", "-m"]\n'
    )
    subprocess.run(["chown", "-R", f"{USER}:", str(ctx)], check=True)
    site = REPO / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env = {
        "HOME": str(home),
        "USER": USER,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "XDG_RUNTIME_DIR": str(runtime),
        "CONTAINERS_CONF": str(conf),
        "PYTHONPATH": f"{REPO}:{site}",
    }
    yield ctx, env
    _as_user(["podman", "system", "reset", "--force"], home, env)
    shutil.rmtree(runtime, ignore_errors=True)


def test_rootless_user_builds_two_platforms_through_a_private_service(rootless) -> None:
    ctx, env = rootless
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == str(sys.version_info[:2]), "the system python must match the venv's to share its packages"
    home = ctx.parent
    result = _as_user(
        [
            str(SYSTEM_PYTHON),
            "-m",
            "imgfront",
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "rootless:1",
            "--progress",
            "plain",
            str(ctx),
        ],
        home,
        env,
    )
    assert result.returncode == 0, result.stderr
    # The user has no /dev/net/tun here, so the container runs without a network.
    run = _as_user(
        ["podman", "run", "--rm", "--network", "none", "--platform", "linux/arm64", "localhost/rootless:1"], home, env
    )
    assert run.stdout.strip() == "aarch64", run.stderr
    doctor = _as_user([str(SYSTEM_PYTHON), "-m", "imgfront", "doctor"], home, env)
    assert "mode: rootless" in doctor.stdout
    assert "engine: private service" in doctor.stdout
