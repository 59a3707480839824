"""What a failed, interrupted or killed build keeps, and what it leaves alone, on a real podman store.

Each check is what a user would check: the previous list still runs on every platform, another build on the same
store still succeeds, and nothing of the run is left in the temporary directory, the process table or the store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE, imgfront_cmd, start_two_platform_build

pytestmark = pytest.mark.slow

BOTH = "linux/amd64,linux/arm64"
# Each platform's input is a file of its own, so one platform's can change while the other's stays cached.
PER_PLATFORM = BUSYBOX_CONTAINERFILE + 'COPY input-${TARGETARCH} /input\nRUN sh /input\nCMD ["cat", "/marker"]\n'


MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def runs(node, tag: str, platform: str) -> str:
    """/marker, as `podman run --platform P TAG` reads it, on that platform's own instance (checked by uname)."""
    out = node.podman("run", "--rm", "--platform", platform, tag, "sh", "-c", "uname -m; cat /marker").stdout.split()
    assert out[0] == MACHINES[platform], f"{tag} ran as {out[0]} for {platform}"
    return " ".join(out[1:])


def inputs(amd64: str, arm64: str) -> dict[str, str]:
    return {"input-amd64": amd64, "input-arm64": arm64}


def test_failed_platform_keeps_every_instance_of_the_previous_list_runnable(
    podman_node, make_context, run_imgfront, emulation_ready
):
    tag = "localhost/kept-instances:1"
    good = make_context(PER_PLATFORM, inputs("echo one > /marker", "echo one > /marker"))
    assert run_imgfront(["build", "--platform", BOTH, "-t", tag, good], podman_node.env).returncode == 0
    assert runs(podman_node, tag, "linux/amd64") == "one"

    # Only arm64's input changes, and fails; amd64 comes whole from the cache: the old list's own instance.
    bad = make_context(PER_PLATFORM, inputs("echo one > /marker", "sleep 2; exit 3"))
    result = run_imgfront(["build", "--platform", BOTH, "-t", tag, "--progress", "plain", bad], podman_node.env)
    assert result.returncode == 1, result.stderr
    assert "build failed for linux/arm64" in result.stderr
    assert runs(podman_node, tag, "linux/amd64") == "one"
    assert runs(podman_node, tag, "linux/arm64") == "one"


def test_failed_build_keeps_the_base_image_a_stage_only_names(podman_node, make_context, run_imgfront, emulation_ready):
    base = "localhost/kept-base:1"
    made = make_context(BUSYBOX_CONTAINERFILE + 'RUN echo base > /marker\nCMD ["cat", "/marker"]\n')
    assert run_imgfront(["build", "--platform", BOTH, "-t", base, made], podman_node.env).returncode == 0
    # amd64's final stage is the base alone; arm64's fails.
    containerfile = (
        f"ARG TARGETARCH\nFROM {base} AS stage-amd64\nFROM {base} AS stage-arm64\nRUN sleep 2; exit 3\n"
        "FROM stage-${TARGETARCH}\n"
    )
    result = run_imgfront(
        ["build", "--platform", BOTH, "-t", "localhost/on-base:1", make_context(containerfile)], podman_node.env
    )
    assert result.returncode == 1, result.stderr
    assert runs(podman_node, base, "linux/amd64") == "base"
    assert runs(podman_node, base, "linux/arm64") == "base"


def test_another_build_on_the_same_store_survives_a_failing_ones_cleanup(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    """A fails after 6 s; B (imgfront) and C (plain podman build) start after it and outlive its cleanup."""
    failing = make_context(BUSYBOX_CONTAINERFILE + "RUN sleep 6; exit 3\n")
    slow = make_context(BUSYBOX_CONTAINERFILE + 'RUN sleep 15 && echo b > /marker\nCMD ["cat", "/marker"]\n')
    plain = make_context(BUSYBOX_CONTAINERFILE + "RUN sleep 12 && echo c > /marker\n")
    a = subprocess.Popen(
        imgfront_cmd("build", "--platform", BOTH, "-t", "localhost/shared-a:1", failing),
        env=podman_node.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    b = subprocess.Popen(
        imgfront_cmd("build", "--platform", BOTH, "-t", "localhost/shared-b:1", slow),
        env=podman_node.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    c = subprocess.Popen(
        [*podman_node.cli, "build", "--platform", "linux/amd64", "-t", "localhost/shared-c:1", plain],
        env=podman_node.cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, a_err = a.communicate(timeout=300)
    _, b_err = b.communicate(timeout=300)
    _, c_err = c.communicate(timeout=300)
    assert a.returncode == 1, a_err
    assert b.returncode == 0, b_err
    assert c.returncode == 0, c_err
    assert runs(podman_node, "localhost/shared-b:1", "linux/arm64") == "b"
    assert runs(podman_node, "localhost/shared-b:1", "linux/amd64") == "b"
    assert runs(podman_node, "localhost/shared-c:1", "linux/amd64") == "c"


def test_unwritable_metadata_file_fails_before_any_build_and_moves_nothing(
    podman_node, make_context, run_imgfront, tmp_path
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    ctx = make_context(BUSYBOX_CONTAINERFILE + "RUN echo x > /x\n")
    result = run_imgfront(
        ["build", "-t", "localhost/meta-first:1", "--metadata-file", blocker / "meta.json", ctx], podman_node.env
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("imgfront: --metadata-file")
    assert "STEP" not in result.stderr
    assert podman_node.podman("manifest", "exists", "localhost/meta-first:1", check=False).returncode == 1


def test_failed_push_keeps_the_previous_list_and_names_the_new_one(
    podman_node, readonly_registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    tag = f"{readonly_registry.url}/ro/kept:1"
    authfile = readonly_registry.write_auth_file(tmp_path / "auth.json")
    first = make_context(PER_PLATFORM, inputs("echo one > /marker", "echo one > /marker"))
    assert run_imgfront(["build", "--platform", BOTH, "-t", tag, first], podman_node.env).returncode == 0
    second = make_context(PER_PLATFORM, inputs("echo two > /marker", "echo two > /marker"))
    result = run_imgfront(
        ["build", "--platform", BOTH, "-t", tag, "--push", "--tls-verify=false", "--authfile", authfile, second],
        podman_node.env,
    )
    assert result.returncode == 1, result.stderr
    assert runs(podman_node, tag, "linux/amd64") == "one"
    assert runs(podman_node, tag, "linux/arm64") == "one"
    kept = [line for line in result.stderr.splitlines() if "the new list is kept as" in line]
    assert kept, result.stderr
    new = kept[0].split("kept as ")[1].split(";")[0]
    assert runs(podman_node, new, "linux/arm64") == "two"
    podman_node.podman("manifest", "rm", new)


# --- signals ---------------------------------------------------------------------------------------------


def _start_slow_build(env: dict[str, str], ctx: Path, tag: str) -> tuple[subprocess.Popen[str], list[str]]:
    return start_two_platform_build(env, ctx, tag, "RUN sleep 8")


@pytest.fixture
def short_tmp():
    """A TMPDIR short enough for the unix sockets imgfront makes in it (108 bytes at most)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="nl-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _run_folders(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("imgfront-run-*"))


def _working_containers(node) -> str:
    return str(node.podman("ps", "--all", "--external", "--quiet").stdout.strip())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_on_a_shared_service_cancels_exits_as_shells_do_and_leaves_the_list(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path, signum, code
):
    """Through CONTAINER_HOST, as a CI runner's cancel would: imgfront cannot stop the service's running steps,
    so podman ends the cancelled build when they end; imgfront removes no container, and says so."""
    tag = "localhost/signalled:1"
    prefix = BUSYBOX_CONTAINERFILE + "RUN echo cached > /marker\n"
    assert run_imgfront(["build", "--platform", BOTH, "-t", tag, make_context(prefix)], podman_node.env).returncode == 0
    before = podman_node.podman("manifest", "inspect", tag).stdout
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**podman_node.env, "TMPDIR": os.fspath(tmp)}
    proc, seen = _start_slow_build(env, make_context(prefix + "RUN sleep 8\n"), tag)
    assert _run_folders(tmp)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, "".join(seen) + err
    assert "interrupted" in err and "Traceback" not in err
    assert _run_folders(tmp) == []
    assert podman_node.podman("manifest", "inspect", tag).stdout == before
    assert runs(podman_node, tag, "linux/arm64") == "cached"
    # The service ends the cancelled build after its running step; then nothing of it is left on the store.
    deadline = time.monotonic() + 60
    while _working_containers(podman_node) and time.monotonic() < deadline:
        time.sleep(1)
    assert _working_containers(podman_node) == ""


def _services_of(run_folder_parent: Path) -> list[int]:
    """PIDs of `podman system service` processes serving a socket under the given temporary directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"system\0service" in cmdline and os.fsencode(run_folder_parent) in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_on_the_private_service_stops_every_step_and_leaves_nothing(
    host_node, make_context, emulation_ready, short_tmp, signum, code
):
    """imgfront's own service (the host's podman): its steps are killed, so the store is clean at once."""
    tmp = short_tmp
    env = {k: v for k, v in host_node.env.items() if k != "CONTAINER_HOST"}
    env["TMPDIR"] = os.fspath(tmp)
    proc, seen = _start_slow_build(env, make_context(BUSYBOX_CONTAINERFILE + "RUN sleep 8\n"), "localhost/priv:1")
    services = _services_of(tmp)
    assert services, "".join(seen)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, "".join(seen) + err
    assert "what they made was removed" in err, err
    assert all(not Path(f"/proc/{pid}").exists() for pid in services)
    assert _run_folders(tmp) == []
    assert _working_containers(host_node) == ""


def test_after_sigkill_the_next_run_clears_what_the_killed_one_left(
    host_node, make_context, run_imgfront, emulation_ready, short_tmp
):
    tmp = short_tmp
    env = {k: v for k, v in host_node.env.items() if k != "CONTAINER_HOST"}
    env["TMPDIR"] = os.fspath(tmp)
    proc, seen = _start_slow_build(env, make_context(BUSYBOX_CONTAINERFILE + "RUN sleep 8\n"), "localhost/kill:1")
    services = _services_of(tmp)
    assert services, "".join(seen)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert all(Path(f"/proc/{pid}").exists() for pid in services)  # what SIGKILL leaves: the service goes on
    left = _run_folders(tmp)
    assert left

    again = run_imgfront(["build", make_context(BUSYBOX_CONTAINERFILE)], env)
    assert again.returncode == 0, again.stderr
    assert all(not Path(f"/proc/{pid}").exists() for pid in services)
    assert not set(left) & set(_run_folders(tmp))
    assert _run_folders(tmp) == []
    assert _working_containers(host_node) == ""
    ids = json.loads(host_node.podman("ps", "--all", "--external", "--format", "json").stdout or "[]")
    assert ids == []
