"""Values that cross layers: what a node is, what a build made, a list, credentials, a node's place in a farm.

They sit below everything that passes them around (engines, plan, progress, metadata, push), and import nothing
of imgfront's but platforms, so that no module needs a higher one for a type.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field

from imgfront.platforms import Platform


@dataclass(frozen=True)
class NodeInfo:
    """What a node is and what it can build."""

    name: str
    driver: str
    server_version: str
    api_version: str
    native: tuple[Platform, ...]
    emulated: tuple[Platform, ...]
    rootless: bool = False
    storage_driver: str = ""
    address: str = ""
    # Settings (options.py's dests) this node's engine kind takes but this node cannot, each with why: a Docker
    # daemon without experimental features cannot --squash.
    lacks: tuple[tuple[str, str], ...] = ()

    def can_build(self, platform: Platform) -> bool:
        return platform in self.native or platform in self.emulated


@dataclass(frozen=True)
class BuildReport:
    """The result of one platform's build on one node.

    `created` says whether this build made the image. A build whose steps all come from the cache reports an
    image that existed before it (the previous list's instance, or a base image): that one is never removed.
    """

    image_id: str
    digest: str
    platform: Platform
    node: str
    seconds: float
    created: bool = False


@dataclass(frozen=True)
class ImageInfo:
    id: str
    digest: str
    os: str
    architecture: str
    variant: str | None
    labels: Mapping[str, str]
    created: datetime.datetime | None = None  # when the engine made it (UTC)
    names: tuple[str, ...] = ()  # the tags it has


@dataclass(frozen=True)
class ListInfo:
    name: str
    id: str
    digest: str
    media_type: str
    size: int
    instances: tuple[str, ...]  # instance manifest digests
    platforms: tuple[str, ...] = ()  # each instance's os/arch[/variant] as the list says it, when known


@dataclass(frozen=True)
class Preference:
    """A node's place in the farm, as an SRV record's (RFC 2782): lower priority is tried first, and among
    equal priorities each node's share of platforms follows its weight (0: only when no other can)."""

    weight: int = 1
    priority: int = 0


@dataclass(frozen=True)
class Credentials:
    """What a registry is told; the secrets never show in a repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.identity_token) if s)

    def registry_auth(self, server: str) -> dict[str, str]:
        """The auth config engines take (podman's X-Registry-Auth, Docker's auth_config)."""
        auth = {"username": self.username, "password": self.password, "serveraddress": server}
        if self.identity_token:
            auth["identitytoken"] = self.identity_token
        return auth

    def header(self, server: str) -> str:
        """The X-Registry-Auth header value: the auth config as base64url JSON."""
        import docker.auth  # here, so that a module using the value types does not load the Docker SDK

        return str(docker.auth.encode_header(self.registry_auth(server)).decode())


@dataclass(frozen=True)
class Secret:
    """A build secret (--secret): what a `RUN --mount=type=secret,id=ID` step reads; its bytes never show in a repr.

    The value is read once on this host, from a file or an environment variable, before any build; `source`
    says which, for messages (never the value itself).
    """

    id: str
    value: bytes = field(repr=False)
    source: str = ""
