"""Finding the local engine: CONTAINER_HOST, default sockets, podman's system connections."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imgfront.errors import UsageError
from imgfront.nodes.connections import (
    connections_json_path,
    default_connection,
    local_candidates,
    read_containers_conf,
    system_connections,
)


def test_container_host_is_the_only_candidate_when_set(tmp_path: Path) -> None:
    env = {"CONTAINER_HOST": "unix:///tmp/x.sock", "XDG_CONFIG_HOME": str(tmp_path)}
    assert [(c.uri, c.source) for c in local_candidates(env)] == [("unix:///tmp/x.sock", "CONTAINER_HOST")]


def test_connections_json_default_wins_over_containers_conf(tmp_path: Path) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text(
        '[engine]\nactive_service = "old"\n'
        '[engine.service_destinations.old]\nuri = "ssh://root@old:22/run/podman/podman.sock"\nidentity = "/k1"\n'
    )
    (tmp_path / "containers").mkdir()
    (tmp_path / "containers" / "podman-connections.json").write_text(
        json.dumps(
            {
                "Connection": {
                    "Default": "machine",
                    "Connections": {
                        "machine": {
                            "URI": "ssh://core@127.0.0.1:50000/run/user/501/podman/podman.sock",
                            "Identity": "/k2",
                            "IsMachine": True,
                        }
                    },
                }
            }
        )
    )
    env = {"CONTAINERS_CONF": str(conf), "XDG_CONFIG_HOME": str(tmp_path)}
    conns, _ = system_connections(env)
    assert sorted(c.name for c in conns) == ["machine", "old"]
    chosen = default_connection(env)
    assert chosen is not None and chosen.is_machine and chosen.identity == "/k2"


def test_podman_43_service_destinations_are_read(tmp_path: Path) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text('[engine]\nactive_service = "n1"\n[engine.service_destinations.n1]\nuri = "unix:///run/n1.sock"\n')
    env = {"CONTAINERS_CONF": str(conf), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    chosen = default_connection(env)
    assert chosen is not None and chosen.uri == "unix:///run/n1.sock"
    assert [c.source for c in local_candidates(env)][-1] == "system connection 'n1'"


def test_podman_connections_conf_names_the_file(tmp_path: Path) -> None:
    named = tmp_path / "elsewhere" / "conns.json"
    named.parent.mkdir()
    named.write_text(json.dumps({"Connection": {"Default": "n", "Connections": {"n": {"URI": "unix:///n.sock"}}}}))
    env = {"PODMAN_CONNECTIONS_CONF": str(named), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert connections_json_path(env) == named
    chosen = default_connection(env)
    assert chosen is not None and chosen.uri == "unix:///n.sock" and chosen.source == str(named)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON: "),
        ("", "is not JSON: "),
        ('["a"]', r": the whole file: \['a'\] is not of type 'object'"),
        ('{"Connection": {"Connections": {"n": {"URI": 42}}}}', r"\.Connections\.n\.URI: 42 is not of type"),
        ('{"Connection": {"Connections": {"n": "unix:///x"}}}', r"\.Connection\.Connections\.n: 'unix:///x' is not of"),
        ('{"Farm": {"List": {"f": "n1"}}}', r"\.Farm\.List\.f: 'n1' is not of type 'array', 'null'"),
        ('{"Farm": {"List": {"f": ["n1", 2]}}}', r"\.Farm\.List\.f\[1\]: 2 is not of type 'string'"),
    ],
)
def test_malformed_connections_json_is_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "containers" / "podman-connections.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(str(path)) + ".*" + message):
        system_connections({"XDG_CONFIG_HOME": str(tmp_path), "CONTAINERS_CONF": str(tmp_path / "none.conf")})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[engine\n", "is not valid TOML: "),
        ('[farms]\nlist = "x"\n', r": \.farms\.list: 'x' is not of type 'object'"),
        ('[farms.list]\nf = "n1"\n', r": \.farms\.list\.f: 'n1' is not of type 'array'"),
        ("[engine.service_destinations.n]\nuri = 42\n", r"\.engine\.service_destinations\.n\.uri: 42 is not of type"),
        ("[engine]\nactive_service = true\n", r"\.engine\.active_service: True is not of type 'string'"),
    ],
)
def test_malformed_containers_conf_is_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text(text)
    with pytest.raises(UsageError, match=re.escape(str(conf)) + ".*" + message):
        read_containers_conf({"CONTAINERS_CONF": str(conf)})


def test_a_broken_drop_in_is_named_not_its_base(tmp_path: Path) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text("[engine]\n")
    (tmp_path / "containers.conf.d").mkdir()
    (tmp_path / "containers.conf.d" / "10-bad.conf").write_text("= 1\n")
    with pytest.raises(UsageError, match=r"10-bad\.conf is not valid TOML"):
        read_containers_conf({"CONTAINERS_CONF": str(conf)})


def test_a_containers_conf_with_nothing_the_schema_describes_is_read_without_jsonschema(tmp_path: Path) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n[engine]\nruntime = "runc"\n')
    code = (
        "import sys\n"
        "from imgfront.nodes.connections import read_containers_conf\n"
        f"conf = read_containers_conf({{'CONTAINERS_CONF': {str(conf)!r}}})\n"
        "print(conf['engine']['runtime'], 'jsonschema' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["runc", "False"]
