"""Farm edits from several processes at once, under podman 5's lock, and bad files as one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lockwatch import held_like_podman, wait_for_waiters

REPO = Path(__file__).resolve().parents[2]


def imgfront(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "imgfront", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    conf = tmp_path / "containers.conf"
    conf.write_text("".join(f'[engine.service_destinations.n{i}]\nuri = "unix:///run/n{i}.sock"\n' for i in range(8)))
    return {
        "CONTAINERS_CONF": str(conf),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PODMAN_CONNECTIONS_CONF": str(tmp_path / "shared" / "connections.json"),
        "CONTAINER_HOST": "unix:///nonexistent/podman.sock",  # nothing here may need an engine
    }


def test_concurrent_farm_edits_wait_for_podmans_lock_and_lose_nothing(env: dict[str, str]) -> None:
    first = imgfront(["farm", "create", "base", "n0"], env)
    assert first.wait() == 0, first.communicate()
    path = Path(env["PODMAN_CONNECTIONS_CONF"])
    before = path.read_text()
    with held_like_podman(path) as lock:
        procs = [imgfront(["farm", "create", f"f{i}", f"n{i}"], env) for i in range(1, 6)]
        procs += [imgfront(["farm", "update", "base", "--add", f"n{i}"], env) for i in range(1, 6)]
        wait_for_waiters(lock, len(procs), procs)  # every edit is blocked on the lock, none has written
        assert path.read_text() == before
    # Released: all ten race for the lock at once.
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    stored = json.loads(path.read_text())["Farm"]
    assert sorted(stored["List"]) == ["base", *(f"f{i}" for i in range(1, 6))]
    assert sorted(stored["List"]["base"]) == [f"n{i}" for i in range(6)]
    assert stored["Default"] == "base"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", " is not JSON: Expecting value: line 1 column 1"),
        ("[]", ": the whole file: [] is not of type 'object'"),
        ('{"Connection": {"Connections": {"n": {"URI": 42}}}}', ": .Connection.Connections.n.URI: 42 is not of type"),
    ],
)
def test_malformed_connections_file_is_one_line_and_exit_2(env: dict[str, str], content: str, message: str) -> None:
    path = Path(env["PODMAN_CONNECTIONS_CONF"])
    path.parent.mkdir()
    path.write_text(content)
    proc = imgfront(["farm", "list"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith(f"imgfront: {path}{message}"), err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err  # the message, and a hint


def test_a_farm_given_as_a_string_is_refused_by_every_command(env: dict[str, str]) -> None:
    path = Path(env["PODMAN_CONNECTIONS_CONF"])
    path.parent.mkdir()
    content = '{"Farm": {"Default": "f", "List": {"f": "n1"}}}'
    path.write_text(content)
    message = f"imgfront: {path}: .Farm.List.f: 'n1' is not of type 'array'"
    for args in (["farm", "create", "g", "n1"], ["farm", "update", "f", "--add", "n2"], ["build", str(path.parent)]):
        proc = imgfront(args, env)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and err.startswith(message), err
        assert "Traceback" not in err
    assert path.read_text() == content  # a refused file is never rewritten


@pytest.mark.parametrize(
    ("content", "message"),
    [('[farms]\nlist = "x"\n', ": .farms.list: 'x' is not of type 'object'"), ("[engine\n", " is not valid TOML")],
)
def test_malformed_containers_conf_is_one_line_and_exit_2(env: dict[str, str], content: str, message: str) -> None:
    Path(env["CONTAINERS_CONF"]).write_text(content)
    proc = imgfront(["farm", "list"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith(f"imgfront: {env['CONTAINERS_CONF']}{message}"), err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err  # the message, and a hint


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node", "ssh://nohost"], "invalid node 'ssh://nohost': no socket path after the host"),
        (["--node", "tcp://127.0.0.1:65536"], "invalid node 'tcp://127.0.0.1:65536': Port out of range 0-65535"),
        (["--node", "tcp://[::1"], "invalid node 'tcp://[::1': Invalid IPv6 URL"),
        (["--no-local"], "--no-local leaves no node to build on"),
    ],
)
def test_bad_node_is_exit_2_before_any_engine_is_reached(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    Path(env["CONTAINERS_CONF"]).write_text("")  # no system connections: --no-local has no node
    proc = imgfront(["build", *args, str(tmp_path)], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.splitlines()[0] == f"imgfront: {message}"  # not the unreachable CONTAINER_HOST: nothing connected


def test_a_weight_for_a_connection_not_in_the_farm_changes_nothing(env: dict[str, str]) -> None:
    created = imgfront(["farm", "create", "f", "n1"], env)
    assert created.wait(timeout=60) == 0
    path = Path(env["PODMAN_CONNECTIONS_CONF"])
    before = path.read_text()
    proc = imgfront(["farm", "update", "f", "--add", "n2", "--weight", "n3=2"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith("imgfront: 'n3' is not in farm 'f'"), err
    assert path.read_text() == before  # n2 was not added either
