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
from imgfront.engines.connections import Connection, system_connections
from imgfront.engines.tunnel import CONNECT_TIMEOUT
from imgfront.errors import ImgfrontError, UsageError
from imgfront.plan import Preference
from imgfront.platforms import Platform

SCHEMES = ("unix", "ssh", "tcp", "docker+unix", "docker+ssh", "docker+tcp")
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


def parse_node(text: str, env: Mapping[str, str] = os.environ, identity: str | None = None) -> NodeSpec:
    """`NAME` of a system connection, or `unix:///path`, `ssh://user@host[:port]/socket`, `tcp://host:port`,
    each optionally followed by `?weight=N&priority=N&name=NAME&identity=KEYFILE`."""
    spec, _, query = text.strip().partition("?")
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise UsageError(f"invalid node {text!r}: unknown setting {unknown[0]!r}", hint=f"known: {', '.join(_PARAMS)}")
    preference = Preference(weight=_int(params, "weight", 1, text), priority=_int(params, "priority", 0, text))
    key = identity or (params["identity"][-1] if "identity" in params else None)
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        if scheme not in SCHEMES:
            raise UsageError(
                f"invalid node {text!r}: unknown scheme {scheme!r}",
                hint="podman: unix://, ssh://, tcp://; Docker: docker+unix://, docker+ssh://, docker+tcp://",
            )
        parts = urlsplit(spec)
        on_socket = scheme.endswith("unix")
        if (on_socket and not parts.path) or (not on_socket and not parts.hostname):
            raise UsageError(f"invalid node {text!r}: no {'path' if on_socket else 'host'}")
        name = params["name"][-1] if "name" in params else _short_name(spec)
        return NodeSpec(name, Connection(name, spec, key, source="--node"), preference)
    connections = {c.name: c for c in system_connections(env)[0]}
    if spec not in connections:
        known = ", ".join(sorted(connections)) or "none"
        raise UsageError(f"no system connection named {spec!r}", hint=f"known connections: {known}")
    conn = connections[spec]
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


def open_node(spec: NodeSpec, stack: contextlib.ExitStack, timeout: float = CONNECT_TIMEOUT) -> ImageBuilder:
    """Connect to a node; it is closed with the stack."""
    return connect(spec.connection, stack, timeout)


def open_nodes(
    specs: Sequence[NodeSpec],
    stack: contextlib.ExitStack,
    warn: Callable[[str], None],
    timeout: float = CONNECT_TIMEOUT,
) -> list[ImageBuilder]:
    """Connect to every node at once; one that cannot be reached is left out with a warning naming it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        futures = [(spec, pool.submit(open_node, spec, stack, timeout)) for spec in specs]
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
    nodes: Sequence[str], farm: str | None, identity: str | None = None, env: Mapping[str, str] = os.environ
) -> list[NodeSpec]:
    """The remote nodes of a build: --node, else --farm, else the default farm, else every system connection."""
    from imgfront.farms import get_farm, preferences

    if nodes:
        return [parse_node(n, env, identity) for n in nodes]
    chosen = get_farm(farm, env)
    if chosen is not None:
        prefs = preferences(chosen.name, env)
        return [
            dataclasses.replace(spec, preference=prefs.get(spec.name, spec.preference))
            for spec in (parse_node(name, env, identity) for name in chosen.connections)
        ]
    return [parse_node(c.name, env, identity) for c in system_connections(env)[0]]


def node_infos(builders: Sequence[ImageBuilder], platforms: Sequence[Platform]) -> dict[str, NodeInfo]:
    """Every node's info with its emulated platforms, probed on all nodes at once."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(builders))) as pool:
        futures = {b.name: pool.submit(with_emulation, b, platforms) for b in builders}
    return {name: future.result() for name, future in futures.items()}
