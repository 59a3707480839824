"""--node specs and farms stored in podman's own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgfront.errors import UsageError
from imgfront.model import Preference
from imgfront.nodes.farms import (
    create_farm,
    get_farm,
    list_farms,
    preferences,
    remove_farm,
    set_preference,
    update_farm,
)
from imgfront.nodes.specs import parse_node, select_nodes, unique_names


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    conf = tmp_path / "containers.conf"
    conf.write_text(
        '[engine]\nactive_service = "n1"\n'
        '[engine.service_destinations.n1]\nuri = "unix:///run/n1.sock"\n'
        '[engine.service_destinations.n2]\nuri = "ssh://root@10.0.0.2:22/run/podman/podman.sock"\nidentity = "/k"\n'
        '[farms]\ndefault = "legacy"\n[farms.list]\nlegacy = ["n1"]\n'
    )
    return {"CONTAINERS_CONF": str(conf), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_node_uri_with_weight_priority_and_name(env: dict[str, str]) -> None:
    spec = parse_node("ssh://root@127.0.0.1:2222/tmp/x/node.sock?weight=3&priority=1", env)
    assert spec.name == "root@127.0.0.1:2222"
    assert spec.connection.uri == "ssh://root@127.0.0.1:2222/tmp/x/node.sock"
    assert spec.preference == Preference(weight=3, priority=1)
    assert parse_node("unix:///tmp/a.sock?name=a", env).name == "a"
    assert parse_node("tcp://127.0.0.1:8080", env).name == "127.0.0.1:8080"


def test_node_by_connection_name_takes_its_uri_and_identity(env: dict[str, str]) -> None:
    spec = parse_node("n2", env)
    assert spec.connection.uri.startswith("ssh://root@10.0.0.2") and spec.connection.identity == "/k"
    assert parse_node("n2", env, identity="/other").connection.identity == "/other"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "no system connection named 'nope'"),
        ("http://x:1", "unknown scheme 'http'"),
        ("ssh:///sock", "no host"),
        ("unix:///a.sock?weight=x", "weight must be a whole number"),
        ("unix:///a.sock?colour=red", "unknown setting 'colour'"),
        ("ssh://nohost", "no socket path after the host"),
        ("ssh://root@host:2222", "no socket path after the host"),
        ("ssh://root@host:70000/run/podman.sock", "Port out of range"),
        ("tcp://127.0.0.1:0", "port 0 is out of range"),
        ("tcp://host:http", "Port could not be cast"),
        ("tcp://[::1", "Invalid IPv6 URL"),
        ("tcp://[::1]", "no port"),
        ("tcp://ho st:1", "no host"),
        ("unix://relative/a.sock", "no absolute socket path"),
        ("unix://", "no absolute socket path"),
        ("/run/podman.sock", "no system connection named '/run/podman.sock'"),
        ("unix:///a.sock?name=", "name is empty"),
    ],
)
def test_bad_node_is_a_usage_error(env: dict[str, str], text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_node(text, env)


def test_same_names_are_made_unique(env: dict[str, str]) -> None:
    specs = unique_names([parse_node("unix:///a.sock?name=x", env), parse_node("unix:///b.sock?name=x", env)])
    assert [s.name for s in specs] == ["x", "x#2"]


def test_farms_round_trip_through_podman_connections_json(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "config" / "containers" / "podman-connections.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"Connection": {"Default": "", "Connections": {}}, "Unknown": 1}))
    create_farm("f", ["n1", "n2"], env)
    assert get_farm("f", env).connections == ("n1", "n2")  # type: ignore[union-attr]
    stored = json.loads(path.read_text())
    assert stored["Farm"] == {"Default": "f", "List": {"f": ["n1", "n2"]}}
    assert stored["Unknown"] == 1 and "Connection" in stored  # what imgfront does not own stays
    update_farm("f", remove=["n1"], env=env)
    update_farm("f", add=["n1"], default=False, env=env)
    assert get_farm("f", env).connections == ("n2", "n1")  # type: ignore[union-attr]
    assert get_farm(None, env).name == "legacy"  # type: ignore[union-attr]  # containers.conf's default is next
    set_preference("f", "n2", Preference(weight=2), env)
    assert preferences("f", env) == {"n2": Preference(weight=2)}
    remove_farm("f", env)
    assert [f.name for f in list_farms(env)] == ["legacy"]
    assert preferences("f", env) == {}


def test_containers_conf_farms_are_read_only(env: dict[str, str]) -> None:
    legacy = get_farm("legacy", env)
    assert legacy is not None and legacy.source == "containers.conf" and legacy.default
    with pytest.raises(UsageError, match=r"containers\.conf"):
        update_farm("legacy", add=["n2"], env=env)


def test_farm_of_unknown_connection_or_duplicate_name_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="no system connection named 'ghost'"):
        create_farm("g", ["ghost"], env)
    with pytest.raises(UsageError, match="already exists"):
        create_farm("legacy", ["n1"], env)
    with pytest.raises(UsageError, match="no farm named 'x'"):
        get_farm("x", env)


def test_docker_node_specs_are_recognised(env: dict[str, str]) -> None:
    spec = parse_node("docker+unix:///var/run/docker.sock?name=d", env)
    assert (spec.name, spec.connection.uri) == ("d", "docker+unix:///var/run/docker.sock")
    assert parse_node("docker+ssh://me@builder", env).name == "me@builder"
    with pytest.raises(UsageError, match="no host"):
        parse_node("docker+tcp://", env)


def test_ipv6_and_docker_defaults_are_accepted(env: dict[str, str]) -> None:
    assert parse_node("tcp://[::1]:8080", env).name == "[::1]:8080"
    assert parse_node("docker+tcp://builder", env).connection.uri == "docker+tcp://builder"


def test_a_system_connection_with_a_bad_uri_is_named_with_its_file(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "config" / "containers" / "podman-connections.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"Connection": {"Connections": {"bad": {"URI": "ssh://nohost"}}}}))
    with pytest.raises(UsageError, match=rf"invalid node 'bad' \('ssh://nohost' in {path}\): no socket path"):
        parse_node("bad", env)


def test_no_local_with_no_node_at_all_is_a_usage_error(tmp_path: Path) -> None:
    empty = {"CONTAINERS_CONF": str(tmp_path / "none.conf"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert select_nodes([], None, env=empty) == []  # the local engine builds alone
    with pytest.raises(UsageError, match="--no-local leaves no node to build on"):
        select_nodes([], None, env=empty, local=False)


def test_a_farm_given_as_a_string_is_refused_not_split_into_letters(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "config" / "containers" / "podman-connections.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"Farm": {"Default": "f", "List": {"f": "n1"}}}))
    with pytest.raises(UsageError, match=r"\.Farm\.List\.f: 'n1' is not of type 'array'"):
        list_farms(env)
    with pytest.raises(UsageError, match=r"\.Farm\.List\.f: 'n1' is not"):
        select_nodes([], None, env=env)


def test_podman_connections_conf_holds_the_farms(env: dict[str, str], tmp_path: Path) -> None:
    named = tmp_path / "named.json"
    env = {**env, "PODMAN_CONNECTIONS_CONF": str(named)}
    create_farm("f", ["n1"], env)
    assert json.loads(named.read_text())["Farm"] == {"Default": "f", "List": {"f": ["n1"]}}
    assert not (tmp_path / "config" / "containers" / "podman-connections.json").exists()
    assert [s.connection.uri for s in select_nodes([], "f", env=env)] == ["unix:///run/n1.sock"]
