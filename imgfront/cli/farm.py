"""`imgfront farm ...`: named farms of podman nodes, kept in podman's own files."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from imgfront.errors import ImgfrontError, UsageError
from imgfront.model import Preference

farm_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Named farms of podman nodes, shared with podman farm."
)


def _pairs(items: list[str] | None, what: str) -> dict[str, int]:
    result = {}
    for item in items or []:
        conn, sep, value = item.rpartition("=")
        if not sep or not conn or not value.isdigit():
            raise UsageError(f"invalid {what} {item!r}", hint="write it as CONNECTION=N, e.g. pi=2")
        result[conn] = int(value)
    return result


@farm_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The farm's name.")],
    connections: Annotated[list[str], typer.Argument(help="System connections to put in it.")],
) -> None:
    """Create a farm of system connections; the first farm becomes the default."""
    from imgfront.nodes.farms import create_farm

    farm = create_farm(name, connections)
    print(f"farm {farm.name} created with {', '.join(farm.connections)}{' (default)' if farm.default else ''}")


@farm_app.command("list")
def list_() -> None:
    """List farms, where each is stored, and which is the default."""
    from rich.console import Console  # only the listing commands draw tables: start-up does without rich
    from rich.table import Table

    from imgfront.nodes.farms import list_farms, preferences

    table = Table(box=None, header_style="bold")
    for column in ("name", "connections", "default", "stored in"):
        table.add_column(column)
    for farm in list_farms():
        prefs = preferences(farm.name)
        members = [
            c + ("" if c not in prefs else f" (weight {prefs[c].weight}, priority {prefs[c].priority})")
            for c in farm.connections
        ]
        table.add_row(farm.name, ", ".join(members), "yes" if farm.default else "", farm.source)
    Console(width=200).print(table)


@farm_app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The farm's name.")],
    add: Annotated[list[str] | None, typer.Option("--add", help="A connection to add; repeatable.")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="A connection to remove; repeatable.")] = None,
    default: Annotated[bool | None, typer.Option("--default/--no-default", help="Make it the default farm.")] = None,
    weight: Annotated[list[str] | None, typer.Option("--weight", help="CONNECTION=N: its share of platforms.")] = None,
    priority: Annotated[list[str] | None, typer.Option("--priority", help="CONNECTION=N: lower is used first.")] = None,
) -> None:
    """Add or remove connections, make the farm the default, or set a connection's weight and priority."""
    from imgfront.nodes.farms import get_farm, preferences, set_preference, update_farm

    weights, priorities = _pairs(weight, "weight"), _pairs(priority, "priority")
    before_update = get_farm(name)
    assert before_update is not None
    after = [c for c in before_update.connections if c not in (remove or [])] + list(add or [])
    for conn in sorted(set(weights) | set(priorities)):
        if conn not in after:  # refused before anything is written
            raise UsageError(f"{conn!r} is not in farm {name!r}", hint=f"its connections: {', '.join(after)}")
    farm = update_farm(name, add or [], remove or [], default)
    current = preferences(name)
    for conn in sorted(set(weights) | set(priorities)):
        before = current.get(conn, Preference())
        set_preference(name, conn, Preference(weights.get(conn, before.weight), priorities.get(conn, before.priority)))
    print(f"farm {farm.name}: {', '.join(farm.connections) or 'no connections'}{' (default)' if farm.default else ''}")


@farm_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The farm's name.")]) -> None:
    """Remove a farm (its connections stay)."""
    from imgfront.nodes.farms import remove_farm

    remove_farm(name)
    print(f"farm {name} removed")


@farm_app.command("status")
def status(name: Annotated[str | None, typer.Argument(help="The farm; default: the default farm.")] = None) -> None:
    """Each node's reachability, server version, and native and emulated platforms."""
    from imgfront.nodes.farms import get_farm
    from imgfront.nodes.specs import open_node, parse_node, with_emulation
    from imgfront.platforms import Arch, Platform

    farm = get_farm(name)
    if farm is None:
        raise UsageError("there is no default farm", hint="name one, or make one with imgfront farm create")
    candidates = [Platform.make("linux", a.value) for a in Arch]
    from rich.console import Console  # only the listing commands draw tables: start-up does without rich
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("node", "reachable", "server", "native", "emulated"):
        table.add_column(column)
    for conn in farm.connections:
        with contextlib.ExitStack() as stack:
            try:
                builder = open_node(parse_node(conn), stack)
                info = with_emulation(builder, candidates)
            except ImgfrontError as e:
                table.add_row(conn, f"no: {e.message}", "", "", "")
                continue
            table.add_row(
                conn,
                "yes",
                f"podman {info.server_version}",
                ", ".join(map(str, info.native)),
                ", ".join(map(str, info.emulated)) or "-",
            )
    Console(width=200).print(table)
