"""Named farms, stored where podman keeps them so that `podman farm` and imgfront share them.

podman 4.9+ keeps farms in podman-connections.json under "Farm" (`{"Default": NAME, "List": {NAME: [CONN,
...]}}`), or in the file PODMAN_CONNECTIONS_CONF names, and podman 5 edits it under a lock that imgfront takes too.
podman 4.8 read them from containers.conf's `[farms]` table, which imgfront reads but never writes.
Per-node weights and priorities have no place in podman's format, so imgfront keeps them in imgfront/farms.json
under the user's config directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgfront.errors import UsageError
from imgfront.model import Preference
from imgfront.nodes.connections import (
    connections_json_path,
    edit_connections,
    edit_json,
    read_connections,
    read_containers_conf,
    read_json,
    system_connections,
)
from imgfront.util.files import config_home

_WHOLE = {"type": "integer", "minimum": 0}
# imgfront/farms.json: {FARM: {CONNECTION: {"weight": N, "priority": N}}}
PREFERENCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "additionalProperties": {"type": "object", "properties": {"weight": _WHOLE, "priority": _WHOLE}},
    },
}


@dataclass(frozen=True)
class Farm:
    name: str
    connections: tuple[str, ...]
    source: str
    default: bool = False


def preferences_path(env: Mapping[str, str] = os.environ) -> Path:
    return config_home(env) / "imgfront" / "farms.json"


def _conf_farms(env: Mapping[str, str]) -> tuple[dict[str, list[str]], str | None]:
    conf = read_containers_conf(env).get("farms") or {}
    return dict(conf.get("list") or {}), conf.get("default") or None


def list_farms(env: Mapping[str, str] = os.environ) -> list[Farm]:
    """Every farm: podman-connections.json's, then containers.conf's that the JSON does not redefine."""
    path = connections_json_path(env)
    data = read_connections(path).get("Farm") or {}
    default = data.get("Default") or None
    farms = {name: Farm(name, tuple(conns or ()), str(path)) for name, conns in (data.get("List") or {}).items()}
    conf, conf_default = _conf_farms(env)
    for name, conns in conf.items():
        farms.setdefault(name, Farm(name, tuple(conns), "containers.conf"))
    default = default or conf_default
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


def _farm_section(data: dict[str, Any]) -> dict[str, Any]:
    farm = data.get("Farm") or {}
    data["Farm"] = farm
    farm["List"] = farm.get("List") or {}
    return farm


def _writable(name: str, farm: dict[str, Any], env: Mapping[str, str]) -> None:
    if name in farm["List"]:
        return
    if name in _conf_farms(env)[0]:
        raise UsageError(
            f"farm {name!r} is defined in containers.conf, which imgfront does not write",
            hint="edit containers.conf, or create the farm anew with imgfront farm create",
        )
    get_farm(name, env)  # raises: no farm of that name
    raise UsageError(f"farm {name!r} was removed while it was being changed")


def _get(name: str, env: Mapping[str, str]) -> Farm:
    return next(f for f in list_farms(env) if f.name == name)


def create_farm(name: str, connections: Sequence[str], env: Mapping[str, str] = os.environ) -> Farm:
    _check_connections(connections, env)
    with edit_connections(env) as data:  # the check and the write under one lock: two creates cannot both win
        farm = _farm_section(data)
        if name in farm["List"] or name in _conf_farms(env)[0]:
            raise UsageError(f"farm {name!r} already exists", hint="change it with imgfront farm update")
        farm["List"][name] = list(dict.fromkeys(connections))
        if not farm.get("Default"):
            farm["Default"] = name  # as podman farm create: the first farm becomes the default
    return _get(name, env)


def update_farm(
    name: str,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    default: bool | None = None,
    env: Mapping[str, str] = os.environ,
) -> Farm:
    _check_connections(add, env)
    with edit_connections(env) as data:
        farm = _farm_section(data)
        _writable(name, farm, env)
        members = [c for c in farm["List"][name] or [] if c not in remove]
        members += [c for c in dict.fromkeys(add) if c not in members]
        farm["List"][name] = members
        if default is True:
            farm["Default"] = name
        elif default is False and farm.get("Default") == name:
            farm["Default"] = ""
    return _get(name, env)


def remove_farm(name: str, env: Mapping[str, str] = os.environ) -> None:
    with edit_connections(env) as data:
        farm = _farm_section(data)
        _writable(name, farm, env)
        del farm["List"][name]
        if farm.get("Default") == name:
            farm["Default"] = ""
    if preferences_path(env).exists():
        with edit_json(preferences_path(env), PREFERENCES_SCHEMA) as prefs:
            prefs.pop(name, None)


def preferences(farm: str, env: Mapping[str, str] = os.environ) -> dict[str, Preference]:
    stored = read_json(preferences_path(env), PREFERENCES_SCHEMA).get(farm) or {}
    return {conn: Preference(int(p.get("weight", 1)), int(p.get("priority", 0))) for conn, p in stored.items()}


def set_preference(farm: str, connection: str, preference: Preference, env: Mapping[str, str] = os.environ) -> None:
    with edit_json(preferences_path(env), PREFERENCES_SCHEMA) as data:
        data.setdefault(farm, {})[connection] = {"weight": preference.weight, "priority": preference.priority}
