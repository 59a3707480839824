"""Builds on a farm: several real podman services, one of them over a real sshd on loopback.

The local engine (which holds the list) is the session's `podman_node`; the farm's nodes are extra services,
each on storage of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

BASE = BUSYBOX_CONTAINERFILE


def plan_of(output: str) -> dict[str, str]:
    """platform -> node, from the printed plan line."""
    line = next(ln for ln in output.splitlines() if ln.startswith("plan: "))
    return {p.split(" -> ")[0]: p.split(" -> ")[1].split(" (")[0] for p in line[len("plan: ") :].split("; ")}


def runs(node, image: str, platform: str) -> str:
    return node.podman("run", "--rm", "--platform", platform, image, "uname", "-m").stdout.strip()


def test_two_nodes_with_two_platforms_use_both_and_bring_a_list_home(
    podman_node, extra_nodes, make_context, run_imgfront, emulation_ready, tmp_path
):
    a, b = extra_nodes(), extra_nodes()
    ctx = make_context(BASE + "RUN uname -m > /built-on\n")
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--no-local",
            "--node",
            f"{a.url}?name=a",
            "--node",
            f"{b.url}?name=b",
            "-t",
            "farm2:1",
            "--progress",
            "plain",
            "--metadata-file",
            str(meta),
            "--cleanup",
            str(ctx),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(plan_of(result.stderr).values()) == ["a", "b"]
    assert runs(podman_node, "localhost/farm2:1", "linux/arm64") == "aarch64"
    assert runs(podman_node, "localhost/farm2:1", "linux/amd64") == "x86_64"
    builds = json.loads(meta.read_text())["imgfront.builds"]
    assert sorted(b_["node"] for b_ in builds) == ["a", "b"]
    # --cleanup: the nodes no longer hold what they built.
    for build in builds:
        node = a if build["node"] == "a" else b
        assert node.podman("image", "exists", build["image_id"], check=False).returncode == 1


def test_weight_zero_node_is_left_idle(podman_node, extra_nodes, make_context, run_imgfront, emulation_ready):
    a, b = extra_nodes(), extra_nodes()
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--no-local",
            "--node",
            f"{a.url}?name=a&weight=0",
            "--node",
            f"{b.url}?name=b&weight=1",
            "-t",
            "weights:1",
            "--progress",
            "plain",
            str(make_context(BASE)),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert set(plan_of(result.stderr).values()) == {"b"}


def test_node_down_at_the_start_is_left_out_with_a_warning(
    podman_node, extra_nodes, make_context, run_imgfront, emulation_ready
):
    a = extra_nodes()
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--no-local",
            "--node",
            "unix:///nonexistent/x.sock?name=gone",
            "--node",
            f"{a.url}?name=a",
            "-t",
            "down:1",
            "--progress",
            "plain",
            str(make_context(BASE)),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: node gone is left out" in result.stderr
    assert set(plan_of(result.stderr).values()) == {"a"}


def build_and_kill(env: dict[str, str], args: list[str], victim, when: str) -> tuple[int, str]:
    """Run imgfront build, SIGKILL the victim node's service once a stderr line contains `when`, and wait."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgfront", "build", "--progress", "plain", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if when in line:
            break
    os.kill(victim.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(seen) + err


def test_node_killed_mid_build_hands_its_platform_to_another(
    podman_node, extra_nodes, make_context, run_imgfront, emulation_ready
):
    a, b = extra_nodes(), extra_nodes()
    ctx = make_context(BASE + "RUN sleep 8\n")
    code, output = build_and_kill(
        podman_node.env,
        [
            "--platform",
            "linux/amd64,linux/arm64",
            "--no-local",
            "--node",
            f"{a.url}?name=a",
            "--node",
            f"{b.url}?name=b",
            "-t",
            "killed:1",
            str(ctx),
        ],
        victim=a,
        when="@a] STEP 5/5: RUN sleep 8",
    )
    assert code == 0, output
    assert "node lost, building on b" in output
    assert runs(podman_node, "localhost/killed:1", "linux/arm64") == "aarch64"


def test_lost_node_with_no_other_able_node_changes_no_list(
    podman_node, extra_nodes, make_context, run_imgfront, emulation_ready
):
    a = extra_nodes()
    assert run_imgfront(["build", "-t", "nolist:1", str(make_context(BASE))], podman_node.env).returncode == 0
    before = podman_node.podman("manifest", "inspect", "localhost/nolist:1").stdout
    code, output = build_and_kill(
        podman_node.env,
        [
            "--platform",
            "linux/amd64",
            "--no-local",
            "--node",
            f"{a.url}?name=a",
            "-t",
            "nolist:1",
            str(make_context(BASE + "RUN sleep 8\n")),
        ],
        victim=a,
        when="RUN sleep 8",
    )
    assert code == 1
    assert "no other node can build linux/amd64" in output and "Traceback" not in output
    assert podman_node.podman("manifest", "inspect", "localhost/nolist:1").stdout == before


def test_ssh_node_builds_through_a_real_sshd(
    podman_node, extra_nodes, sshd, make_context, run_imgfront, emulation_ready
):
    a = extra_nodes()
    env = {**podman_node.env, "IMGFRONT_SSH_CONFIG": str(sshd.ssh_config)}
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--node",
            f"{sshd.uri(a.socket)}?name=remote",
            "--identity",
            str(sshd.identity),
            "-t",
            "viassh:1",
            "--progress",
            "plain",
            str(make_context(BASE)),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(plan_of(result.stderr).values()) == ["local", "remote"]
    assert podman_node.podman("manifest", "inspect", "localhost/viassh:1").returncode == 0


def test_ssh_node_with_a_bad_key_is_one_line_naming_it(
    podman_node, extra_nodes, sshd, make_context, run_imgfront, tmp_path
):
    a = extra_nodes()
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    env = {**podman_node.env, "IMGFRONT_SSH_CONFIG": str(sshd.ssh_config)}
    result = run_imgfront(
        [
            "build",
            "--no-local",
            "--node",
            f"{sshd.uri(a.socket)}?name=remote",
            "--identity",
            str(stranger),
            str(make_context(BASE)),
        ],
        env,
    )
    assert result.returncode == 1
    assert "warning: node remote is left out: remote: ssh to root@127.0.0.1 failed: " in result.stderr
    assert "Permission denied" in result.stderr and "Traceback" not in result.stderr


def test_image_already_home_is_not_transferred(podman_node, extra_nodes, make_context, run_imgfront):
    a = extra_nodes()
    ctx = make_context(BASE + "RUN echo same > /same\n")
    args = ["build", "--no-local", "--node", f"{a.url}?name=a", "--progress", "plain", str(ctx)]
    first = run_imgfront([*args, "-t", "home1:1"], podman_node.env)
    assert first.returncode == 0, first.stderr
    assert "brought home" in first.stderr
    # An unchanged rebuild on the node is all cache: the same image, which is home already.
    second = run_imgfront([*args, "-t", "home2:1"], podman_node.env)
    assert second.returncode == 0, second.stderr
    assert "already in local storage, not transferred" in second.stderr


def podman_cli_for_connections(node, tmp_path: Path) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The node's own podman CLI set to keep connections where imgfront looks (tmp_path/config), with imgfront's env.

    podman 4.3 keeps them in containers.conf (CONTAINERS_CONF); podman 5 in podman-connections.json, which
    PODMAN_CONNECTIONS_CONF names for its CLI inside the node's container (tmp_path has one path on both sides).
    """
    conf = tmp_path / "containers.conf"
    conf.write_text(Path(node.env["CONTAINERS_CONF"]).read_text() if "CONTAINERS_CONF" in node.env else "")
    env = {**node.env, "CONTAINERS_CONF": str(conf), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if node.major >= 5:
        conns = tmp_path / "config" / "containers" / "podman-connections.json"
        cli = [*node.cli[:-1], "env", f"PODMAN_CONNECTIONS_CONF={conns}", "PODMAN_IGNORE_CGROUPSV1_WARNING=1"]
        return [*cli, node.cli[-1]], node.cli_env, env
    return list(node.cli), {k: v for k, v in env.items() if k != "CONTAINER_HOST"}, env


def test_farm_round_trip_through_podmans_own_files(
    podman_node, extra_nodes, make_context, run_imgfront, emulation_ready, tmp_path
):
    a, b = extra_nodes(), extra_nodes()
    podman, cli_env, env = podman_cli_for_connections(podman_node, tmp_path)
    for name, node in (("na", a), ("nb", b)):
        subprocess.run([*podman, "system", "connection", "add", name, node.url], env=cli_env, check=True)

    assert run_imgfront(["farm", "create", "f", "na", "nb"], env).returncode == 0
    listed = run_imgfront(["farm", "list"], env).stdout
    assert "f" in listed and "na, nb" in listed and "yes" in listed
    stored = json.loads((tmp_path / "config" / "containers" / "podman-connections.json").read_text())
    assert stored["Farm"] == {"Default": "f", "List": {"f": ["na", "nb"]}}
    assert run_imgfront(["farm", "update", "f", "--weight", "na=0"], env).returncode == 0
    status = run_imgfront(["farm", "status", "f"], env)
    assert status.returncode == 0 and f"podman {a.version}" in status.stdout, status.stdout

    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--no-local",
            "-t",
            "farmed:1",
            "--progress",
            "plain",
            str(make_context(BASE)),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert set(plan_of(result.stderr).values()) == {"nb"}  # the default farm, with na's weight 0

    # podman still reads its connections from the file imgfront shares with it.
    connections = subprocess.run(
        [*podman, "system", "connection", "list"], env=cli_env, capture_output=True, text=True, check=True
    ).stdout
    assert "na" in connections and "nb" in connections
    assert run_imgfront(["farm", "update", "f", "--remove", "na"], env).returncode == 0
    assert run_imgfront(["farm", "remove", "f"], env).returncode == 0
    assert "f " not in run_imgfront(["farm", "list"], env).stdout
    bad = run_imgfront(["farm", "create", "g", "ghost"], env)
    assert bad.returncode == 2 and "no system connection named 'ghost'" in bad.stderr


def test_tcp_node_on_loopback_builds(podman_node, extra_nodes, make_context, run_imgfront, emulation_ready):
    a = extra_nodes(tcp=True)
    assert a.url.startswith("tcp://127.0.0.1:")
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64",
            "--no-local",
            "--node",
            f"{a.url}?name=t",
            "-t",
            "viatcp:1",
            "--progress",
            "plain",
            str(make_context(BASE)),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert plan_of(result.stderr) == {"linux/amd64": "t"}


def test_silent_build_past_the_idle_timeout_loses_its_node(podman_node, extra_nodes, make_context, run_imgfront):
    a = extra_nodes()
    result = run_imgfront(
        [
            "build",
            "--no-local",
            "--node",
            f"{a.url}?name=a",
            "--idle-timeout",
            "2",
            "-t",
            "idle:1",
            str(make_context(BASE + "RUN sleep 15\n")),
        ],
        podman_node.env,
    )
    assert result.returncode == 1
    assert "no word from the build for 2 s" in result.stderr
    assert "Traceback" not in result.stderr
