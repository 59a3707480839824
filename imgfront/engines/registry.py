"""The engine kinds imgfront can build on: which URI schemes name each, and its adapter, imported on demand.

This table is the only place that knows a scheme. `imgfront --help` imports neither podman-py nor the Docker
SDK, because a row names its adapter as a `"module:Class"` string that is imported when a node of that kind
is connected. Adding an engine kind is one adapter module plus one row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imgfront.errors import UsageError

if TYPE_CHECKING:
    from imgfront.engines.base import ImageBuilder

CONNECT_TIMEOUT = 15.0


@dataclass(frozen=True)
class EngineSettings:
    """How long imgfront waits on a node: to connect (and for every short request), and for a silent build."""

    connect_timeout: float = CONNECT_TIMEOUT
    idle_timeout: float | None = None  # None: a build may stay silent for as long as it likes


@dataclass(frozen=True)
class EngineKind:
    """One row: a name (as `--engine` spells it), its URI schemes with an example of each, and its adapter.

    A scheme with a `prefix` (`docker+`) is the adapter's own scheme with that prefix; the adapter is given
    the address without it. `ssh_socket` is the engine's socket on an ssh host when the URI names none.
    """

    name: str
    title: str  # as the user reads it: "Docker"
    adapter: str  # "module:Class", imported on first use
    local: str  # "module:function": `--engine NAME`'s local engine, a context manager of (env, settings)
    examples: dict[str, str]  # scheme -> how to write an address of it
    prefix: str = ""
    ssh_socket: str | None = None
    tcp_needs_port: bool = False  # whether a tcp address must name its port
    local_schemes: tuple[str, ...] = field(default=())  # schemes whose engine runs on this host

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(self.examples)

    def load(self) -> type[ImageBuilder]:
        cls: type[ImageBuilder] = _load(self.adapter)
        return cls

    def load_local(self) -> Any:
        return _load(self.local)

    def address(self, uri: str) -> str:
        """The URI as the adapter dials it: without this kind's prefix."""
        return uri.removeprefix(self.prefix)


ENGINE_KINDS: tuple[EngineKind, ...] = (
    EngineKind(
        "podman",
        "podman",
        "imgfront.engines.podman:PodmanBuilder",
        "imgfront.engines:open_local",
        {
            "unix": "write it as unix:///run/podman/podman.sock",
            "ssh": "write it as ssh://user@host[:port]/run/podman/podman.sock",
            "tcp": "write it as tcp://host:port",
            "http+unix": "write it as http+unix:///run/podman/podman.sock",
            "http+ssh": "write it as http+ssh://user@host[:port]/run/podman/podman.sock",
        },
        local_schemes=("unix", "http+unix"),
        tcp_needs_port=True,
    ),
    EngineKind(
        "docker",
        "Docker",
        "imgfront.engines.docker:DockerBuilder",
        "imgfront.engines:open_local_docker",
        {
            "docker+unix": "write it as docker+unix:///var/run/docker.sock",
            "docker+ssh": "write it as docker+ssh://user@host[:port]",
            "docker+tcp": "write it as docker+tcp://host[:port]",
        },
        prefix="docker+",
        ssh_socket="/var/run/docker.sock",
        local_schemes=("docker+unix",),
    ),
)
ENGINE_NAMES = tuple(kind.name for kind in ENGINE_KINDS)


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def scheme_of(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


def kind_named(name: str) -> EngineKind:
    for kind in ENGINE_KINDS:
        if kind.name == name:
            return kind
    raise UsageError(f"unknown engine {name!r}", hint=f"use {' or '.join(ENGINE_NAMES)}")


def kind_for(uri: str, what: str | None = None) -> EngineKind:
    """The kind whose schemes include the URI's; `what` names the address for the user when there is none."""
    scheme = scheme_of(uri)
    for kind in ENGINE_KINDS:
        if scheme in kind.examples:
            return kind
    what = what or repr(uri)
    raise UsageError(
        f"invalid node {what}: unknown scheme {scheme!r}" if scheme else f"invalid node {what}: no scheme",
        hint="; ".join(f"{k.title}: {', '.join(s + '://' for s in _shown(k))}" for k in ENGINE_KINDS),
    )


def example(scheme: str) -> str:
    """How to write an address with this scheme."""
    for kind in ENGINE_KINDS:
        if scheme in kind.examples:
            return kind.examples[scheme]
    return ""


def _shown(kind: EngineKind) -> tuple[str, ...]:
    """The schemes the hint names: podman-py's http+ spellings are accepted, not advertised."""
    return tuple(s for s in kind.schemes if not s.startswith("http+"))
