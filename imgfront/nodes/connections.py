"""Where podman services are: CONTAINER_HOST, the default sockets, and podman's system connections.

podman's files are read as strictly as podman reads them: a containers.conf that is not TOML, or a
podman-connections.json that is not JSON or holds a value of the wrong type, is refused with one line naming the
file and the value, as podman refuses it. Edits of podman-connections.json take podman 5's lock (`edit_connections`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgfront.errors import UsageError
from imgfront.util.files import config_home
from imgfront.util.jsonfile import JSONFileError, read_json_object, schema_problem, write_json

_TEXT = {"type": ["string", "null"]}
_NAMES = {"type": ["array", "null"], "items": {"type": "string"}}
# The parts of podman's files imgfront reads, with the types podman's own decoder demands (null is Go's zero value).
CONNECTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "Connection": {
            "type": ["object", "null"],
            "properties": {
                "Default": _TEXT,
                "Connections": {
                    "type": ["object", "null"],
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"URI": _TEXT, "Identity": _TEXT, "IsMachine": {"type": ["boolean", "null"]}},
                    },
                },
            },
        },
        "Farm": {
            "type": ["object", "null"],
            "properties": {"Default": _TEXT, "List": {"type": ["object", "null"], "additionalProperties": _NAMES}},
        },
    },
}
CONTAINERS_CONF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "engine": {
            "type": "object",
            "properties": {
                "active_service": {"type": "string"},
                "service_destinations": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "uri": {"type": "string"},
                            "identity": {"type": "string"},
                            "is_machine": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "farms": {
            "type": "object",
            "properties": {
                "default": {"type": "string"},
                "list": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
        },
    },
}


@dataclass(frozen=True)
class Connection:
    """A podman service address, as podman stores it for `podman system connection`."""

    name: str
    uri: str
    identity: str | None = None
    is_machine: bool = False
    source: str = ""


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


def check_document(document: Any, schema: Mapping[str, Any], path: Path) -> None:
    """Refuse a file whose values have the wrong types, naming the file and the value's place in it."""
    problem = schema_problem(document, schema)
    if problem is not None:
        raise UsageError(f"{path}: {problem}", hint="correct or remove it")


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None


def _has_described_values(document: Mapping[str, Any]) -> bool:
    """Whether a containers.conf holds a value CONTAINERS_CONF_SCHEMA describes; one with none fits it as it is.

    Most files hold none (runtimes, storage, ulimits), and a build then does not load jsonschema (50 ms).
    """
    engine = document.get("engine", {})
    described = {"active_service", "service_destinations"}
    return "farms" in document or not isinstance(engine, Mapping) or bool(described & engine.keys())


def read_containers_conf(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """containers.conf and its drop-ins merged; a file that is not TOML is refused, as podman refuses it."""
    merged: dict[str, Any] = {}
    for path in containers_conf_files(env):
        try:
            document = tomllib.loads(_read_text(path))
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"{path} is not valid TOML: {e}", hint="podman refuses this file too") from None
        if _has_described_values(document):
            check_document(document, CONTAINERS_CONF_SCHEMA, path)
        _merge(merged, document)
    return merged


def connections_json_path(env: Mapping[str, str] = os.environ) -> Path:
    """podman-connections.json: PODMAN_CONNECTIONS_CONF when set (podman 5), else beside the user's containers.conf."""
    if env.get("PODMAN_CONNECTIONS_CONF"):
        return Path(env["PODMAN_CONNECTIONS_CONF"])
    return config_home(env) / "containers" / "podman-connections.json"


def read_json(path: Path, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON object file ({} when there is none), refused unless it is JSON that fits the schema."""
    try:
        return read_json_object(path, schema)
    except JSONFileError as e:
        raise UsageError(e.message, hint=e.hint) from None


def read_connections(path: Path) -> dict[str, Any]:
    """podman-connections.json, refused when podman would refuse it."""
    return read_json(path, CONNECTIONS_SCHEMA)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """PATH.lock held as containers/storage's lockfile holds it: an fcntl write lock on the whole file.

    podman 5 takes exactly this lock on podman-connections.json.lock while it edits the file, so neither side
    loses the other's edit. (flock(2) locks, which most Python lock libraries take, do not exclude fcntl ones.)
    """
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def edit_json(path: Path, schema: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Read, change and write a JSON file under its lock; nothing is written when the change raises."""
    with file_lock(path):
        data = read_json(path, schema)
        yield data
        write_json(path, data)


def edit_connections(env: Mapping[str, str] = os.environ) -> contextlib.AbstractContextManager[dict[str, Any]]:
    """podman-connections.json to change in place, under podman's lock."""
    return edit_json(connections_json_path(env), CONNECTIONS_SCHEMA)


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
    data = read_connections(path).get("Connection") or {}
    for name, conn in (data.get("Connections") or {}).items():
        found[name] = Connection(
            name, conn.get("URI") or "", conn.get("Identity") or None, bool(conn.get("IsMachine")), str(path)
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
