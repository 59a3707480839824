"""Finding the local engine: CONTAINER_HOST, default sockets, podman's system connections."""

import json
from pathlib import Path

from imgfront.engines.connections import default_connection, local_candidates, system_connections


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
