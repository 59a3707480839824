"""Farms in the file PODMAN_CONNECTIONS_CONF names, shared with podman 5, edited at once by both sides.

podman 4.3 knows neither the variable nor the file, so the test that has podman edit the file runs podman 5's own
CLI: a node's, when the other release is 5.x (a Debian 12 host), else the host's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE
from lockwatch import held_like_podman, wait_for_waiters

pytestmark = pytest.mark.slow


def plan_of(output: str) -> dict[str, str]:
    line = next(ln for ln in output.splitlines() if ln.startswith("plan: "))
    return {p.split(" -> ")[0]: p.split(" -> ")[1].split(" (")[0] for p in line[len("plan: ") :].split("; ")}


def isolated_env(node, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The node's env with a config home of its own and PODMAN_CONNECTIONS_CONF naming a file under tmp_path."""
    conns = tmp_path / "shared" / "podman-connections.json"
    conf = tmp_path / "containers.conf"
    conf.write_text(Path(node.env["CONTAINERS_CONF"]).read_text() if "CONTAINERS_CONF" in node.env else "")
    env = {
        **node.env,
        "CONTAINERS_CONF": str(conf),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PODMAN_CONNECTIONS_CONF": str(conns),
    }
    return env, conns


def test_farm_in_the_file_podman_connections_conf_names_builds(
    podman_node, extra_nodes, make_context, run_imgfront, emulation_ready, tmp_path
):
    a = extra_nodes()
    env, conns = isolated_env(podman_node, tmp_path)
    conns.parent.mkdir()
    # podman 5's format, as `podman system connection add na URL` writes it.
    conns.write_text(json.dumps({"Connection": {"Default": "", "Connections": {"na": {"URI": a.url}}}}))
    created = run_imgfront(["farm", "create", "f", "na"], env)
    assert created.returncode == 0, created.stderr
    listed = run_imgfront(["farm", "list"], env)
    assert listed.returncode == 0 and "na" in listed.stdout and str(conns) in listed.stdout, listed.stdout
    assert not (tmp_path / "config" / "containers" / "podman-connections.json").exists()
    ctx = make_context(BUSYBOX_CONTAINERFILE)
    platforms = ["--platform", "linux/amd64,linux/arm64"]
    result = run_imgfront(
        ["build", "--farm", "f", "--no-local", *platforms, "-t", "connsconf:1", "--progress", "plain", str(ctx)], env
    )
    assert result.returncode == 0, result.stderr
    assert set(plan_of(result.stderr).values()) == {"na"}
    arm = podman_node.podman("run", "--rm", "--platform", "linux/arm64", "localhost/connsconf:1", "uname", "-m")
    assert arm.stdout.strip() == "aarch64"


def podman5(nodes) -> tuple[list[str], dict[str, str]]:
    """podman 5's CLI and the env to run it with: the node's own when it is 5.x, else the host's."""
    if nodes.major >= 5:
        return list(nodes.cli), dict(nodes.cli_env)
    host = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
    assert int(host.split(".")[0]) >= 5, f"neither the host's podman {host} nor the node's {nodes.version} is 5.x"
    return ["podman"], dict(nodes.cli_env)


def with_conf(cli: list[str], conns: Path) -> list[str]:
    """The CLI run through env(1), so the variable reaches podman inside a node's container too."""
    return [*cli[:-1], "env", f"PODMAN_CONNECTIONS_CONF={conns}", "PODMAN_IGNORE_CGROUPSV1_WARNING=1", cli[-1]]


def test_podman5_and_imgfront_edit_the_named_file_at_once_and_lose_nothing(
    other_nodes, make_context, run_imgfront, tmp_path
):
    local, b = other_nodes(), other_nodes()
    cli, cli_env = podman5(local)
    env, conns = isolated_env(local, tmp_path)  # under the session's tmp: the node's container sees the same path
    podman = with_conf(cli, conns)
    subprocess.run([*podman, "system", "connection", "add", "nb", b.url], env=cli_env, check=True)
    first = run_imgfront(["farm", "create", "base", "nb"], env)
    assert first.returncode == 0, first.stderr

    count = 4
    before = conns.read_text()
    with held_like_podman(conns) as lock:  # both podman 5 and imgfront must wait for it: one lock, not two
        procs = [
            subprocess.Popen(
                [*podman, "system", "connection", "add", f"c{i}", f"unix:///run/c{i}.sock"],
                env=cli_env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(count)
        ]
        imgfront = [sys.executable, "-m", "imgfront"]
        procs += [
            subprocess.Popen([*imgfront, "farm", "create", f"f{i}", "nb"], env=env, stderr=subprocess.PIPE, text=True)
            for i in range(count)
        ]
        wait_for_waiters(lock, len(procs), procs)
        assert conns.read_text() == before
    for proc in procs:  # released: podman's and imgfront's edits race for the lock at once
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    # imgfront reads every connection podman added while it was writing farms, and podman reads every farm.
    stored = json.loads(conns.read_text())
    assert sorted(stored["Connection"]["Connections"]) == sorted(["nb", *(f"c{i}" for i in range(count))])
    assert sorted(stored["Farm"]["List"]) == sorted(["base", *(f"f{i}" for i in range(count))])
    farms = subprocess.run(
        [*podman, "farm", "list", "--format", "{{.Name}}"], env=cli_env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(farms) == sorted(["base", *(f"f{i}" for i in range(count))])
    updated = run_imgfront(["farm", "update", "base", "--add", "c0"], env)
    assert updated.returncode == 0, updated.stderr
    shown = subprocess.run(
        [*podman, "farm", "list", "--format", "{{.Name}} {{.Connections}}"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "base [nb c0]" in shown, shown

    ctx = make_context(BUSYBOX_CONTAINERFILE)
    result = run_imgfront(
        ["build", "--farm", "f0", "--no-local", "-t", "shared:1", "--progress", "plain", str(ctx)], env
    )
    assert result.returncode == 0, result.stderr
    assert set(plan_of(result.stderr).values()) == {"nb"}
