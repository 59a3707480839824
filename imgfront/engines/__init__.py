"""Engine adapters, and how the local engine is found or started."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from imgfront.engines.base import ImageBuilder
from imgfront.engines.connections import Connection, local_candidates
from imgfront.engines.docker import DockerBuilder
from imgfront.engines.podman import PodmanBuilder
from imgfront.engines.service import PrivateService
from imgfront.engines.tunnel import CONNECT_TIMEOUT, SshTunnel
from imgfront.errors import EngineError

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

ENGINES: dict[str, type[ImageBuilder]] = {"podman": PodmanBuilder, "docker": DockerBuilder}


def _on_this_host(conn: Connection) -> bool:
    return conn.uri.startswith(("unix://", "http+unix://")) and not conn.is_machine


def _socket_missing(conn: Connection) -> bool:
    if not conn.uri.startswith("unix://"):
        return False
    try:
        return not Path(conn.uri.removeprefix("unix://")).exists()
    except OSError:  # a socket we may not even look at is as good as missing
        return True


def connect(conn: Connection, stack: contextlib.ExitStack, timeout: float = CONNECT_TIMEOUT) -> ImageBuilder:
    """A builder for a podman service or (`docker+` URIs) a Docker engine; over ssh through a tunnel of
    imgfront's own. Everything it opens closes with the stack."""
    if conn.uri.startswith("docker+"):
        docker = DockerBuilder(
            conn, local=conn.uri.startswith("docker+unix://"), automatic_args=AUTOMATIC_ARGS, timeout=timeout
        )
        stack.callback(docker.close)
        return docker
    local = _on_this_host(conn)
    if conn.uri.startswith(("ssh://", "http+ssh://")):
        tunnel = SshTunnel(conn.name, conn.uri, conn.identity, timeout)
        stack.callback(tunnel.close)
        conn = Connection(conn.name, tunnel.open(), source=conn.source)
    builder = PodmanBuilder(conn, local=local, automatic_args=AUTOMATIC_ARGS)
    stack.callback(builder.close)
    return builder


@contextlib.contextmanager
def open_local(env: Mapping[str, str] = os.environ) -> Iterator[PodmanBuilder]:
    """The local podman: CONTAINER_HOST, the default sockets, the default connection, else a private service."""
    for conn in local_candidates(env):
        if _socket_missing(conn) and conn.source != "CONTAINER_HOST":
            continue
        with contextlib.ExitStack() as stack:
            try:
                builder = connect(conn, stack)
                assert isinstance(builder, PodmanBuilder)
            except EngineError as e:
                if conn.source == "CONTAINER_HOST":
                    hint = "unset CONTAINER_HOST to let imgfront start its own service"
                    raise EngineError(e.message, hint=e.hint or hint) from e
                continue
            yield builder
            return
    service = PrivateService()
    try:
        uri = service.start()
        builder = PodmanBuilder(
            Connection("local", uri, source="private service"),
            local=True,
            automatic_args=AUTOMATIC_ARGS,
            service=service,
        )
        try:
            yield builder
        finally:
            builder.close()
    finally:
        service.stop()


DOCKER_SOCKET = "unix:///var/run/docker.sock"


@contextlib.contextmanager
def open_local_docker(env: Mapping[str, str] = os.environ) -> Iterator[DockerBuilder]:
    """The local Docker engine (`--engine docker`): DOCKER_HOST, else Docker's default socket."""
    uri = env.get("DOCKER_HOST") or DOCKER_SOCKET
    conn = Connection("local", uri if uri.startswith("docker+") else f"docker+{uri}", source="DOCKER_HOST")
    builder = DockerBuilder(conn, local=uri.startswith("unix://"), automatic_args=AUTOMATIC_ARGS, env=env)
    try:
        yield builder
    finally:
        builder.close()


def open_engine(engine: str, env: Mapping[str, str] = os.environ) -> contextlib.AbstractContextManager[ImageBuilder]:
    """The local node for `--engine`: podman (the default) or Docker."""
    if engine == "docker":
        return open_local_docker(env)
    return open_local(env)
