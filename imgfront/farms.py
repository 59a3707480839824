"""Named farms, stored where podman keeps them so that `podman farm` and imgfront share them.

podman 4.9+ keeps farms in podman-connections.json under "Farm" (`{"Default": NAME, "List": {NAME: [CONN,
...]}}`); podman 4.8 read them from containers.conf's `[farms]` table, which imgfront reads but never writes.
Per-node weights and priorities have no place in podman's format, so imgfront keeps them beside it, in
imgfront/farms.json under the same config directory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgfront.engines.connections import config_home, connections_json_path, read_containers_conf, system_connections
from imgfront.errors import UsageError
from imgfront.plan import Preference


@dataclass(frozen=True)
class Farm:
    name: str
    connections: tuple[str, ...]
    source: str
    default: bool = False


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace the file whole, keeping everything imgfront did not change (podman's connections, above all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def preferences_path(env: Mapping[str, str] = os.environ) -> Path:
    return config_home(env) / "imgfront" / "farms.json"


def list_farms(env: Mapping[str, str] = os.environ) -> list[Farm]:
    """Every farm: podman-connections.json's, then containers.conf's that the JSON does not redefine."""
    data = _read_json(connections_json_path(env)).get("Farm") or {}
    default = data.get("Default") or None
    farms = {
        name: Farm(name, tuple(conns or ()), "podman-connections.json")
        for name, conns in (data.get("List") or {}).items()
    }
    conf = read_containers_conf(env).get("farms") or {}
    for name, conns in (conf.get("list") or {}).items():
        farms.setdefault(name, Farm(name, tuple(conns or ()), "containers.conf"))
    default = default or conf.get("default") or None
    return [Farm(f.name, f.connections, f.source, f.name == default) for f in farms.values()]


def get_farm(name: str | None, env: Mapping[str, str] = os.environ) -> Farm | None:
    """The farm of that name, or the default farm when name is None (None if there is none)."""
    farms = list_farms(env)
    if name is None:
        return next((f for f in farms if f.default), None)
    for farm in farms:
        if farm.name == name:
            return farm
    known = ", ".join(f.name for f in farms) or "none"
    raise UsageError(f"no farm named {name!r}", hint=f"known farms: {known}; create one with imgfront farm create")


def _check_connections(names: Sequence[str], env: Mapping[str, str]) -> None:
    known = {c.name for c in system_connections(env)[0]}
    missing = [n for n in names if n not in known]
    if missing:
        raise UsageError(
            f"no system connection named {missing[0]!r}",
            hint="add it with podman system connection add, then try again",
        )


def _edit(env: Mapping[str, str]) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    path = connections_json_path(env)
    data = _read_json(path)
    farm = data.setdefault("Farm", {})
    farm.setdefault("List", {})
    return path, data, farm


def create_farm(name: str, connections: Sequence[str], env: Mapping[str, str] = os.environ) -> Farm:
    if any(f.name == name for f in list_farms(env)):
        raise UsageError(f"farm {name!r} already exists", hint="change it with imgfront farm update")
    _check_connections(connections, env)
    path, data, farm = _edit(env)
    farm["List"][name] = list(dict.fromkeys(connections))
    if not farm.get("Default"):
        farm["Default"] = name  # as podman farm create: the first farm becomes the default
    _write_json(path, data)
    return next(f for f in list_farms(env) if f.name == name)


def update_farm(
    name: str,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    default: bool | None = None,
    env: Mapping[str, str] = os.environ,
) -> Farm:
    current = get_farm(name, env)
    assert current is not None
    if current.source != "podman-connections.json":
        raise UsageError(
            f"farm {name!r} is defined in containers.conf, which imgfront does not write",
            hint="edit containers.conf, or create the farm anew with imgfront farm create",
        )
    _check_connections(add, env)
    path, data, farm = _edit(env)
    members = [c for c in farm["List"].get(name, []) if c not in remove]
    members += [c for c in add if c not in members]
    farm["List"][name] = members
    if default is True:
        farm["Default"] = name
    elif default is False and farm.get("Default") == name:
        farm["Default"] = ""
    _write_json(path, data)
    return next(f for f in list_farms(env) if f.name == name)


def remove_farm(name: str, env: Mapping[str, str] = os.environ) -> None:
    current = get_farm(name, env)
    assert current is not None
    if current.source != "podman-connections.json":
        raise UsageError(f"farm {name!r} is defined in containers.conf, which imgfront does not write")
    path, data, farm = _edit(env)
    del farm["List"][name]
    if farm.get("Default") == name:
        farm["Default"] = ""
    _write_json(path, data)
    prefs_path = preferences_path(env)
    prefs = _read_json(prefs_path)
    if prefs.pop(name, None) is not None:
        _write_json(prefs_path, prefs)


def preferences(farm: str, env: Mapping[str, str] = os.environ) -> dict[str, Preference]:
    stored = _read_json(preferences_path(env)).get(farm) or {}
    return {conn: Preference(int(p.get("weight", 1)), int(p.get("priority", 0))) for conn, p in stored.items()}


def set_preference(farm: str, connection: str, preference: Preference, env: Mapping[str, str] = os.environ) -> None:
    path = preferences_path(env)
    data = _read_json(path)
    data.setdefault(farm, {})[connection] = {"weight": preference.weight, "priority": preference.priority}
    _write_json(path, data)
