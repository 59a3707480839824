"""The one interface every engine adapter implements; the plan, the scheduler and list builders know only this."""

from __future__ import annotations

import abc
import contextlib
import datetime
import email.utils
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from imgfront.errors import EngineError

# The interface's value types live in model (below the plan and progress, which use them); importable from here too.
from imgfront.model import BuildReport as BuildReport
from imgfront.model import ImageInfo as ImageInfo
from imgfront.model import ListInfo as ListInfo
from imgfront.model import NodeInfo as NodeInfo
from imgfront.model import Secret
from imgfront.modes import PullPolicy
from imgfront.platforms import Platform

if TYPE_CHECKING:
    from imgfront.engines.registry import EngineSettings
    from imgfront.model import Credentials
    from imgfront.nodes.connections import Connection


@dataclass(frozen=True)
class PackedContext:
    """A build context packed once into a tar file, sent unchanged to every node."""

    tar: Path
    containerfile: str  # its path inside the tar
    size: int


@dataclass(frozen=True)
class NamedContext:
    """`--build-context NAME=...`: a folder packed once and sent to each node, an image, or a URL the node fetches.

    `COPY --from=NAME`, `RUN --mount=from=NAME` and `FROM NAME` see it, as with podman's own.
    """

    name: str
    folder: PackedContext | None = None  # its files at the tar's `context/`, beside a Containerfile copying them
    token: str = ""  # this run's own, in the label of the image a node makes of the folder
    image: str | None = None  # docker-image://REF
    url: str | None = None  # http(s)://... of a tar archive or a git repository


@dataclass(frozen=True)
class BuildRequest:
    """Everything one platform's build needs; the same for every engine."""

    context: PackedContext
    platform: Platform
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: PullPolicy = PullPolicy.MISSING  # as podman's --pull
    named_contexts: tuple[NamedContext, ...] = ()
    secrets: tuple[Secret, ...] = ()  # sent with the context at send time, never written to disk
    # The registry build cache: repositories (registry/path), podman's TTL, and how to reach their registries.
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    cache_ttl: str | None = None
    cache_tls_verify: bool | None = None
    cache_credentials: Mapping[str, Credentials] = field(default_factory=dict)  # by registry
    # options.py's settings rows given, by dest (network, ulimit, squash...), each adapter encoding them by its table
    settings: Mapping[str, object] = field(default_factory=dict)


def made_since(image: ImageInfo | None, start: datetime.datetime | None) -> bool:
    """Whether an image is new since `start` (the node's own clock) and has no name: one a build made itself.

    Untrusted either way round: no start time or no creation time means "not ours", so it is kept.
    """
    if image is None or start is None or image.created is None or image.names:
        return False
    return image.created >= start


def parse_time(text: str | None) -> datetime.datetime | None:
    """An engine's RFC 3339 time (nanoseconds allowed), or an HTTP date, as an aware UTC datetime."""
    if not text:
        return None
    match = _RFC3339.match(text.strip())
    try:
        if match is None:
            return email.utils.parsedate_to_datetime(text).astimezone(datetime.UTC)
        seconds, fraction, zone = match.groups()
        value = datetime.datetime.fromisoformat(seconds + (fraction or "")[:7] + _zone(zone))
    except (ValueError, TypeError):
        return None
    return value.astimezone(datetime.UTC)


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _zone(zone: str | None) -> str:
    return "+00:00" if zone in (None, "Z") else zone


@dataclass(frozen=True)
class ListInstance:
    """One entry of a manifest list: an image in the node's storage and the platform it is for."""

    image_id: str
    platform: Platform


class BuildEvents(Protocol):
    """Where an adapter reports a build's progress, in the engine's own words."""

    def step(self, number: int, total: int, text: str) -> None: ...

    def log(self, line: str) -> None: ...


class SilentEvents:
    """Build events that go nowhere: for builds whose log nobody reads (probes, checkpoint replays)."""

    def step(self, number: int, total: int, text: str) -> None:
        pass

    def log(self, line: str) -> None:
        pass


class Cancellation:
    """A cancel signal that also closes whatever a blocked build is reading from."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def on_cancel(self, closer: Callable[[], None]) -> Callable[[], None]:
        """Run `closer` when cancelled (at once if already); return a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._closers.append(closer)
                return lambda: self._forget(closer)
        closer()
        return lambda: None

    def _forget(self, closer: Callable[[], None]) -> None:
        with self._lock:
            if closer in self._closers:
                self._closers.remove(closer)

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            closers, self._closers = self._closers, []
        for closer in closers:
            with contextlib.suppress(Exception):
                closer()


class ImageBuilder(abc.ABC):
    """An engine that builds images: a podman service or a Docker engine, local or remote."""

    name: str
    driver: str
    connection: Connection
    loads_oci = False  # whether import_image takes an oci-archive as well as a docker-archive
    can_hold_lists = True  # whether commit_list can keep a manifest list in the engine's storage
    local: bool  # the engine runs on this host, so this host's binfmt handlers are its emulation

    @abc.abstractmethod
    def __init__(
        self,
        connection: Connection,
        settings: EngineSettings | None = None,
        *,
        endpoint: str | None = None,
        local: bool = False,
        automatic_args: frozenset[str] = frozenset(),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """No I/O here: imgfront.engines.connect makes adapters, opens any tunnel (`endpoint` is then its local
        socket) and calls probe(). `env` is where an engine's client settings (Docker's TLS) are read."""

    def probe(self) -> None:  # noqa: B027  # not abstract: a fake has no server to ask
        """Ask the server its version, refuse one imgfront cannot use (EngineError), and get ready for requests.

        `connect` calls it once, before any other method; an engine with nothing to ask (a fake) keeps this."""

    @abc.abstractmethod
    def status(self) -> None:
        """Raise EngineError when the node cannot be used."""

    @abc.abstractmethod
    def info(self) -> NodeInfo: ...

    @abc.abstractmethod
    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        """Build one platform; raise PlatformBuildError (log_tail: the log's last lines) when the build fails, Cancelled
        when it is cancelled, NodeLost when the node stops answering."""

    @abc.abstractmethod
    def clean_cancelled(self) -> tuple[str, ...]:
        """Stop what cancelled builds still run on the node, and clean up only what they can be shown to have made.

        Returns a line for each thing left behind that imgfront could not attribute, for the user to read.
        """

    @abc.abstractmethod
    def inspect_image(self, ref: str) -> ImageInfo | None: ...

    @abc.abstractmethod
    def export_image(self, image_id: str, oci: bool = False) -> Iterator[bytes]:
        """Stream the image out as a docker-archive, or an oci-archive (which keeps annotations) when asked and able.

        Docker can load only docker-archive, so whoever receives the stream chooses.
        """

    @abc.abstractmethod
    def import_image(self, chunks: Iterator[bytes]) -> str:
        """Load an archive streamed from another node; return the image id."""

    @abc.abstractmethod
    def remove_image(self, ref: str, force: bool = False) -> None:
        """Remove an image; an image that is already gone is not an error."""

    @abc.abstractmethod
    def prune(self) -> None: ...

    @abc.abstractmethod
    def inspect_list(self, name: str) -> ListInfo | None: ...

    @abc.abstractmethod
    def create_list(self, instances: Sequence[ListInstance]) -> ListInfo:
        """Create a manifest list of `instances` under a temporary name of imgfront's own (ListInfo.name)."""

    @abc.abstractmethod
    def name_list(self, made: ListInfo, names: Sequence[str]) -> ListInfo:
        """Give a list create_list made the `names`, replacing what had them; the temporary name goes."""

    @abc.abstractmethod
    def drop_list(self, made: ListInfo) -> None:
        """Remove a list create_list made, by its temporary name (its images stay)."""

    def commit_list(self, names: Sequence[str], instances: Sequence[ListInstance]) -> ListInfo:
        """Create a manifest list of `instances` and give it `names` at once, replacing what had them."""
        return self.name_list(self.create_list(instances), names)

    @abc.abstractmethod
    def close(self) -> None: ...

    # Pipelines use these; an engine without them cannot build pipelines, but still builds Containerfiles.

    def resolve_base(self, ref: str, platform: Platform, pull: str = "missing") -> str:
        """The digest of the image `ref` names for `platform`, pulled first when `pull` says so.

        A local manifest list gives its instance for the platform; a local image counts only when it is
        for that platform; otherwise the image is pulled for the platform (not with pull "never").
        """
        raise EngineError(f"{self.name}: the {self.driver} engine cannot resolve base images for pipelines")

    def tag_image(self, image_id: str, name: str) -> None:
        """Give an image one more name."""
        raise EngineError(f"{self.name}: the {self.driver} engine cannot tag images")

    def list_images(self, name: str) -> tuple[ImageInfo, ...] | None:
        """The images of the manifest list `name` in local storage (digests as the list names them).

        None when local storage holds no list by that name; a registry is never asked. Instances the list
        names but local storage lacks are left out.
        """
        raise EngineError(f"{self.name}: the {self.driver} engine cannot inspect manifest lists")

    # Pushing: the credentials travel with the request; tls_verify None leaves it to the engine's config.

    def push_list(self, name: str, destination: str, credentials: Credentials | None, tls_verify: bool | None) -> str:
        """Push the list `name` and every image in it to `destination`; return the pushed list's digest."""
        raise EngineError(f"{self.name}: the {self.driver} engine cannot push manifest lists")

    def push_image(
        self,
        image_id: str,
        platform: Platform,
        destination: str,
        credentials: Credentials | None,
        tls_verify: bool | None,
    ) -> str:
        """Push one image into the repository of `destination` without moving its tag; return its digest there.

        What names the image there is the engine's choice: podman pushes by digest alone; Docker can push
        only a tag, `<tag>-<os>_<arch>`.
        """
        raise EngineError(f"{self.name}: the {self.driver} engine cannot push images")

    def __enter__(self) -> ImageBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
