"""Engine adapters, and how a node or the local engine is connected.

`connect` is the one way an adapter is made: it finds the engine kind in the registry, opens an ssh tunnel
when the address needs one, builds the adapter (whose constructor does no I/O) and probes the server. Nothing
here imports an adapter's SDK until a node of its kind is connected.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from imgfront.engines.registry import EngineSettings, kind_for, kind_named, scheme_of
from imgfront.errors import EngineError, UsageError

if TYPE_CHECKING:
    from imgfront.engines.base import ImageBuilder
    from imgfront.engines.podman import PodmanBuilder
    from imgfront.nodes.connections import Connection

# Build arguments imgfront sets on every build, as BuildKit does, so a Containerfile behaves alike everywhere.
AUTOMATIC_ARGS = frozenset(
    {
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
    }
)


def _socket_missing(conn: Connection) -> bool:
    if not conn.uri.startswith("unix://"):
        return False
    try:
        return not Path(conn.uri.removeprefix("unix://")).exists()
    except OSError:  # a socket we may not even look at is as good as missing
        return True


def connect(
    conn: Connection,
    stack: contextlib.ExitStack,
    settings: EngineSettings | None = None,
    *,
    local: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> ImageBuilder:
    """A probed adapter for the node `conn` names, over ssh through a tunnel of imgfront's own.

    `local` (by default: the address is a socket on this host) says this host's binfmt handlers apply to it.
    Everything it opens closes with the stack, also when the probe fails.
    """
    from imgfront.engines.tunnel import SshTunnel

    settings = settings or EngineSettings()
    try:
        kind = kind_for(conn.uri)
    except UsageError as e:  # an address nodes.check_uri has not seen: CONTAINER_HOST, say
        raise EngineError(f"{conn.name}: {e.message}", hint=e.hint) from None
    scheme = scheme_of(conn.uri)
    if local is None:
        local = scheme in kind.local_schemes and not conn.is_machine
    endpoint = kind.address(conn.uri)
    if scheme.endswith("ssh"):
        parts = urlsplit(endpoint)
        remote = f"ssh://{parts.netloc}{parts.path or kind.ssh_socket or ''}"
        tunnel = SshTunnel(conn.name, remote, conn.identity, settings.connect_timeout)
        stack.callback(tunnel.close)
        endpoint = tunnel.open()
    builder = kind.load()(conn, settings, endpoint=endpoint, local=local, automatic_args=AUTOMATIC_ARGS, env=env)
    stack.callback(builder.close)
    builder.probe()
    return builder


@contextlib.contextmanager
def connected(
    conn: Connection,
    settings: EngineSettings | None = None,
    *,
    local: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ImageBuilder]:
    """`connect`, as a context manager that closes what it opened."""
    with contextlib.ExitStack() as stack:
        yield connect(conn, stack, settings, local=local, env=env)


@contextlib.contextmanager
def open_local(env: Mapping[str, str] = os.environ, settings: EngineSettings | None = None) -> Iterator[PodmanBuilder]:
    """The local podman: CONTAINER_HOST, the default sockets, the default connection, else a private service."""
    from imgfront.engines.podman import PodmanBuilder
    from imgfront.engines.service import PrivateService
    from imgfront.nodes.connections import Connection, local_candidates

    for conn in local_candidates(env):
        if _socket_missing(conn) and conn.source != "CONTAINER_HOST":
            continue
        with contextlib.ExitStack() as stack:
            try:
                builder = connect(conn, stack, settings)
                if not isinstance(builder, PodmanBuilder):
                    raise EngineError(f"{conn.name}: {conn.uri} is no podman service")
            except EngineError as e:
                if conn.source == "CONTAINER_HOST":
                    hint = "unset CONTAINER_HOST to let imgfront start its own service"
                    raise EngineError(e.message, hint=e.hint or hint) from e
                continue
            yield builder
            return
    service = PrivateService(env=env)
    try:
        uri = service.start()
        with contextlib.ExitStack() as stack:
            source = "private service (kept from an earlier run)" if service.reused else "private service"
            try:
                private = connect(Connection("local", uri, source=source), stack, settings, local=True)
            except EngineError:
                if not service.reused:
                    raise
                uri = service.restart()  # it timed out as this run came: a new one
                private = connect(Connection("local", uri, source="private service"), stack, settings, local=True)
            assert isinstance(private, PodmanBuilder)
            private.service = service  # no other run uses it: its steps are imgfront's to stop
            yield private
    except BaseException:
        service.stop()  # after a failure or an interrupt, nothing of it is kept
        raise
    else:
        service.release()


DOCKER_SOCKET = "unix:///var/run/docker.sock"


@contextlib.contextmanager
def open_local_docker(
    env: Mapping[str, str] = os.environ, settings: EngineSettings | None = None
) -> Iterator[ImageBuilder]:
    """The local Docker engine (`--engine docker`): DOCKER_HOST, else Docker's default socket."""
    from imgfront.nodes.connections import Connection

    docker = kind_named("docker")
    uri = env.get("DOCKER_HOST") or DOCKER_SOCKET
    if scheme_of(uri) not in docker.schemes:
        uri = f"{docker.prefix}{uri}"
    conn = Connection("local", uri, source="DOCKER_HOST")
    with contextlib.ExitStack() as stack:
        yield connect(conn, stack, settings, env=env)


def open_engine(
    engine: str, env: Mapping[str, str] = os.environ, settings: EngineSettings | None = None
) -> contextlib.AbstractContextManager[ImageBuilder]:
    """The local node for `--engine`: podman (the default) or Docker."""
    opener: Callable[..., contextlib.AbstractContextManager[ImageBuilder]] = kind_named(engine).load_local()
    return opener(env, settings)
