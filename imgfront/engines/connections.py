"""Where podman services are: CONTAINER_HOST, the default sockets, and podman's system connections."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Connection:
    """A podman service address, as podman stores it for `podman system connection`."""

    name: str
    uri: str
    identity: str | None = None
    is_machine: bool = False
    source: str = ""


def config_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def runtime_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")


def default_sockets(env: Mapping[str, str] = os.environ) -> list[Connection]:
    """The sockets a podman.socket unit listens on: rootful for root, the user's for others."""
    if os.getuid() == 0:
        return [Connection("rootful", "unix:///run/podman/podman.sock", source="rootful default socket")]
    path = runtime_dir(env) / "podman" / "podman.sock"
    return [Connection("rootless", f"unix://{path}", source="rootless default socket")]


def containers_conf_files(env: Mapping[str, str] = os.environ) -> list[Path]:
    """containers.conf files in podman's order of precedence, lowest first, with their drop-ins."""
    if env.get("CONTAINERS_CONF"):
        bases = [Path(env["CONTAINERS_CONF"])]
    else:
        user = config_home(env) / "containers" / "containers.conf"
        bases = [Path("/usr/share/containers/containers.conf"), Path("/etc/containers/containers.conf")]
        bases.append(user)
    files: list[Path] = []
    for base in bases:
        files.append(base)
        dropins = base.with_name(base.name + ".d")
        if dropins.is_dir():
            files.extend(sorted(dropins.glob("*.conf")))
    return [f for f in files if f.is_file()]


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def read_containers_conf(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in containers_conf_files(env):
        try:
            _merge(merged, tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError):
            continue  # podman itself reports a broken file; a connection search must not die on it
    return merged


def connections_json_path(env: Mapping[str, str] = os.environ) -> Path:
    return config_home(env) / "containers" / "podman-connections.json"


def system_connections(env: Mapping[str, str] = os.environ) -> tuple[list[Connection], str | None]:
    """All system connections and the default one's name, from podman-connections.json and containers.conf."""
    found: dict[str, Connection] = {}
    default: str | None = None
    engine = read_containers_conf(env).get("engine", {})
    for name, dest in (engine.get("service_destinations") or {}).items():
        found[name] = Connection(
            name,
            dest.get("uri", ""),
            dest.get("identity") or None,
            bool(dest.get("is_machine")),
            "containers.conf",
        )
    default = engine.get("active_service") or None
    path = connections_json_path(env)
    if path.is_file():
        try:
            data = json.loads(path.read_text()).get("Connection", {})
        except (OSError, ValueError):
            data = {}
        for name, conn in (data.get("Connections") or {}).items():
            found[name] = Connection(
                name,
                conn.get("URI", ""),
                conn.get("Identity") or None,
                bool(conn.get("IsMachine")),
                str(path),
            )
        default = data.get("Default") or default
    return list(found.values()), default


def default_connection(env: Mapping[str, str] = os.environ) -> Connection | None:
    conns, default = system_connections(env)
    by_name = {c.name: c for c in conns}
    if default and default in by_name:
        return by_name[default]
    return None


def local_candidates(env: Mapping[str, str] = os.environ) -> Iterator[Connection]:
    """Where to look for the local engine, in order; CONTAINER_HOST, when set, is the only candidate."""
    if env.get("CONTAINER_HOST"):
        yield Connection("local", env["CONTAINER_HOST"], env.get("CONTAINER_SSHKEY") or None, source="CONTAINER_HOST")
        return
    for conn in default_sockets(env):
        yield Connection("local", conn.uri, source=conn.source)
    default = default_connection(env)
    if default:
        yield Connection(
            "local",
            default.uri,
            default.identity,
            default.is_machine,
            source=f"system connection {default.name!r}",
        )
