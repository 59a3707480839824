"""Build nodes: named on the command line (a system connection or a URI, with weight and priority), and connected."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from imgfront.emulation.probe import probe_node
from imgfront.engines import connect
from imgfront.engines.base import ImageBuilder, NodeInfo
from imgfront.engines.registry import EngineSettings, example, kind_for, scheme_of
from imgfront.errors import ImgfrontError, UsageError
from imgfront.model import Preference
from imgfront.nodes.connections import Connection, system_connections
from imgfront.platforms import Platform

_PARAMS = ("name", "weight", "priority", "identity")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    connection: Connection
    preference: Preference = field(default_factory=Preference)


def _short_name(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme.endswith("unix"):
        return parts.path
    return parts.netloc


def _int(params: Mapping[str, list[str]], key: str, default: int, text: str) -> int:
    if key not in params:
        return default
    try:
        value = int(params[key][-1])
    except ValueError:
        raise UsageError(f"invalid node {text!r}: {key} must be a whole number") from None
    if value < 0:
        raise UsageError(f"invalid node {text!r}: {key} must not be negative")
    return value


def check_uri(uri: str, what: str) -> None:
    """Refuse a node address that cannot be connected to, before anything connects: `what` names it for the user."""
    kind = kind_for(uri, what)
    scheme = scheme_of(uri)
    hint = example(scheme)
    try:
        parts = urlsplit(uri)
        port = parts.port  # urllib checks the range only when asked
    except ValueError as e:
        raise UsageError(f"invalid node {what}: {e}", hint=hint) from None
    if scheme.endswith("unix"):
        if parts.netloc or not parts.path.startswith("/"):
            raise UsageError(f"invalid node {what}: no absolute socket path", hint=hint)
        return
    if not parts.hostname or any(c.isspace() for c in parts.netloc):
        raise UsageError(f"invalid node {what}: no host", hint=hint)
    if port == 0:
        raise UsageError(f"invalid node {what}: port 0 is out of range 1-65535", hint=hint)
    if scheme.endswith("ssh") and kind.ssh_socket is None and parts.path in ("", "/"):
        # podman's service socket has no default path on the remote host that holds for every user
        raise UsageError(f"invalid node {what}: no socket path after the host", hint=hint)
    if scheme.endswith("tcp") and kind.tcp_needs_port and port is None:
        raise UsageError(f"invalid node {what}: no port", hint=hint)


def parse_node(text: str, env: Mapping[str, str] = os.environ, identity: str | None = None) -> NodeSpec:
    """`NAME` of a system connection, or `unix:///path`, `ssh://user@host[:port]/socket`, `tcp://host:port`,
    each optionally followed by `?weight=N&priority=N&name=NAME&identity=KEYFILE`; checked before any connecting."""
    spec, _, query = text.strip().partition("?")
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise UsageError(f"invalid node {text!r}: unknown setting {unknown[0]!r}", hint=f"known: {', '.join(_PARAMS)}")
    for setting in ("name", "identity"):
        if setting in params and not params[setting][-1]:
            raise UsageError(f"invalid node {text!r}: {setting} is empty")
    preference = Preference(weight=_int(params, "weight", 1, text), priority=_int(params, "priority", 0, text))
    key = identity or (params["identity"][-1] if "identity" in params else None)
    if "://" in spec:
        check_uri(spec, repr(text))
        name = params["name"][-1] if "name" in params else _short_name(spec)
        return NodeSpec(name, Connection(name, spec, key, source="--node"), preference)
    connections = {c.name: c for c in system_connections(env)[0]}
    if spec not in connections:
        known = ", ".join(sorted(connections)) or "none"
        raise UsageError(f"no system connection named {spec!r}", hint=f"known connections: {known}")
    conn = connections[spec]
    check_uri(conn.uri, f"{spec!r} ({conn.uri!r} in {conn.source})")
    name = params["name"][-1] if "name" in params else conn.name
    return NodeSpec(name, Connection(name, conn.uri, key or conn.identity, conn.is_machine, conn.source), preference)


def unique_names(specs: Sequence[NodeSpec], taken: Iterable[str] = ()) -> list[NodeSpec]:
    """Node names label progress and plans; two nodes with one name get #2, #3."""
    seen: dict[str, int] = dict.fromkeys(taken, 1)
    result = []
    for spec in specs:
        count = seen.get(spec.name, 0) + 1
        seen[spec.name] = count
        if count > 1:
            name = f"{spec.name}#{count}"
            spec = NodeSpec(
                name,
                Connection(
                    name,
                    spec.connection.uri,
                    spec.connection.identity,
                    spec.connection.is_machine,
                    spec.connection.source,
                ),
                spec.preference,
            )
        result.append(spec)
    return result


def open_node(spec: NodeSpec, stack: contextlib.ExitStack, settings: EngineSettings | None = None) -> ImageBuilder:
    """Connect to a node; it is closed with the stack."""
    return connect(spec.connection, stack, settings or EngineSettings())


def open_nodes(
    specs: Sequence[NodeSpec],
    stack: contextlib.ExitStack,
    warn: Callable[[str], None],
    settings: EngineSettings | None = None,
) -> list[ImageBuilder]:
    """Connect to every node at once; one that cannot be reached is left out with a warning naming it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        futures = [(spec, pool.submit(open_node, spec, stack, settings)) for spec in specs]
    builders = []
    for spec, future in futures:
        error = future.exception()
        if isinstance(error, ImgfrontError):
            warn(f"warning: node {spec.name} is left out: {error.message}")
        elif error is not None:
            raise error
        else:
            builders.append(future.result())
    return builders


def with_emulation(builder: ImageBuilder, candidates: Iterable[Platform]) -> NodeInfo:
    """A node's info, with the emulated platforms a remote node has found by probing (its info cannot say)."""
    info = builder.info()
    if info.emulated or getattr(builder, "local", False):
        return info
    wanted = [p for p in candidates if p not in info.native]
    key = f"{builder.driver}-{info.address or builder.name}"
    emulated = probe_node(builder, wanted, key) - set(info.native)
    return dataclasses.replace(info, emulated=tuple(sorted(emulated)))


def select_nodes(
    nodes: Sequence[str],
    farm: str | None,
    identity: str | None = None,
    env: Mapping[str, str] = os.environ,
    local: bool = True,
) -> list[NodeSpec]:
    """The remote nodes of a build: --node, else --farm, else the default farm, else every system connection.

    Every address is checked here, before anything connects; with local=False (--no-local) there must be one."""
    from imgfront.nodes.farms import get_farm, preferences

    if nodes:
        specs = [parse_node(n, env, identity) for n in nodes]
    elif (chosen := get_farm(farm, env)) is not None:
        prefs = preferences(chosen.name, env)
        specs = [
            dataclasses.replace(spec, preference=prefs.get(spec.name, spec.preference))
            for spec in (parse_node(name, env, identity) for name in chosen.connections)
        ]
        if not specs and not local:
            raise UsageError(f"farm {chosen.name!r} has no connections and --no-local leaves out the local engine")
    else:
        specs = [parse_node(c.name, env, identity) for c in system_connections(env)[0]]
    if not specs and not local:
        raise UsageError(
            "--no-local leaves no node to build on",
            hint="name nodes with --node or --farm, add a system connection, or drop --no-local",
        )
    return specs


def node_infos(builders: Sequence[ImageBuilder], platforms: Sequence[Platform]) -> dict[str, NodeInfo]:
    """Every node's info with its emulated platforms, probed on all nodes at once."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(builders))) as pool:
        futures = {b.name: pool.submit(with_emulation, b, platforms) for b in builders}
    return {name: future.result() for name, future in futures.items()}
