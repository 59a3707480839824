"""The Docker adapter: a Docker engine (20.10 or newer) reached with the Docker SDK's low-level client.

Docker differs from podman in three ways that show here. Its image store keeps one platform per tag, so
per-platform results stay untagged and are told apart by id. The SDK's builder is the legacy one, which
neither sets TARGETARCH and friends (imgfront passes them as build arguments) nor looks at the platform
when it takes a step from its cache, and gives a scratch stage's opening ARG/ENV/LABEL the host's platform
(imgfront builds such stages on an empty base of the platform: docker_scratch.py). And the store cannot hold
manifest lists.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import docker
import docker.constants
import docker.errors
import docker.utils
import requests
import urllib3.exceptions

from imgfront.emulation.qemu import emulated_besides
from imgfront.engines.base import (
    BuildEvents,
    BuildReport,
    BuildRequest,
    Cancellation,
    ImageBuilder,
    ImageInfo,
    ListInfo,
    ListInstance,
    NodeInfo,
    made_since,
    parse_time,
)
from imgfront.engines.buildlog import BuildLog
from imgfront.engines.docker_scratch import base_name, empty_image, read_containerfile, rewrite, with_containerfile
from imgfront.engines.registry import EngineSettings
from imgfront.engines.streams import parse_version, shut_down, stream_broken, timed_out
from imgfront.errors import Cancelled, EngineError, NodeLost, PlatformBuildError, UsageError
from imgfront.modes import PullPolicy
from imgfront.nodes.connections import Connection
from imgfront.oci.client import push_failure
from imgfront.platforms import Platform

if TYPE_CHECKING:
    from imgfront.model import Credentials

MIN_SERVER = (20, 10)
MIN_API = (1, 41)  # Docker 20.10's
CLEANUP_PASSES = 5
UPLOAD_CHUNK = 1 << 20
PREFIX = "docker+"
# What the Docker SDK, requests and the socket below them raise when a request cannot be made or read.
TRANSPORT_ERRORS = (
    docker.errors.DockerException,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,
)

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_RUNNING_IN = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
_UNCONSUMED = re.compile(r"One or more build-args \[(.*)\] were not consumed")
_IMAGE_ID = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
# Said for every step of a build for another platform, although the platform was asked for.
_HOST_PLATFORM_WARNING = "no specific platform was requested"
_PLATFORM_CLASH = "does not match the specified platform"

CLASH_HINT = (
    "Docker 20.10's legacy builder stamps a FROM scratch stage's opening metadata step (ARG, ENV, LABEL, "
    "WORKDIR...) with the host's platform; imgfront gives such stages an empty base of the platform, but only "
    "where the Containerfile says FROM scratch itself, not through an ARG or with --platform (see "
    "docs/docker.md): write FROM scratch there, or build this platform on a podman node"
)
WRONG_PLATFORM_HINT = (
    "Docker keeps one platform per tag and builds on a base it holds for another platform as it is: give that "
    "node the base for this platform, or build the platform on a podman node (see docs/docker.md)"
)


NO_EXPERIMENTAL = "its daemon runs without experimental features (dockerd --experimental)"
_NETWORK_MODE = {"none": "none", "host": "host", "private": "default"}  # default: a network namespace of its own


def _limit(name: str) -> Callable[[Any], dict[str, Any]]:
    return lambda value: {"container_limits": {name: value}}


# Each settings row (options.py's SETTING rows) Docker's legacy builder takes, as the SDK's `api.build` keyword; a
# row without an entry has docker=None in the table, so options.py refuses it before any build.
SETTING_KEYWORDS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "network": lambda v: {"network_mode": _NETWORK_MODE[v]},
    "add_host": lambda v: {"extra_hosts": list(v)},
    "shm_size": lambda v: {"shmsize": v},
    "memory": _limit("memory"),
    "memory_swap": _limit("memswap"),
    "cpu_shares": _limit("cpushares"),
    "cpuset_cpus": _limit("cpusetcpus"),
    "squash": lambda v: {"squash": True},
}


def setting_keywords(settings: Mapping[str, object]) -> dict[str, Any]:
    """The `api.build` keywords for the settings, container_limits merged into one dict."""
    unknown = set(settings) - set(SETTING_KEYWORDS)
    if unknown:  # options.py refuses these before any build; never drop one here
        raise UsageError(f"the Docker adapter cannot send {', '.join(sorted(unknown))}")
    keywords: dict[str, Any] = {}
    for dest, value in settings.items():
        for key, item in SETTING_KEYWORDS[dest](value).items():
            keywords[key] = {**keywords.get(key, {}), **item} if key == "container_limits" else item
    return keywords


def new_enough(version: str, api_version: str) -> bool:
    """Docker 20.10 or newer; by its API version (1.41) when the version is no Docker release number."""
    if re.match(r"^\d+\.\d+", version) and parse_version(version)[0] >= 17:  # Docker's YY.MM releases
        return parse_version(version)[:2] >= MIN_SERVER
    return parse_version(api_version)[:2] >= MIN_API


def bare_id(image_id: str) -> str:
    """Docker's `sha256:<hex>` as podman's bare hex, the form imgfront's reports carry."""
    return image_id.removeprefix("sha256:")


class _Cancelled(Exception):
    """Raised inside the upload to abort the request when the build is cancelled."""


class DockerLog(BuildLog):
    """The legacy builder's log: `Step 1/3 : FROM x` (its newline sent as a piece of its own), and the containers
    it ran; the warning about the host's platform, which every emulated step repeats, is left out."""

    step = _STEP
    unconsumed = _UNCONSUMED

    def __init__(self, events: BuildEvents, automatic_args: frozenset[str] = frozenset()) -> None:
        super().__init__(events, automatic_args)
        self.containers: set[str] = set()

    def take(self, line: str) -> bool:
        if _HOST_PLATFORM_WARNING in line:
            return False
        running = _RUNNING_IN.match(line)
        if running:
            self.containers.add(running[1])
        return True


@dataclass(frozen=True)
class _Upload:
    """What a build sends: the packed context, up to `end` with `tail` after it when a Containerfile is added."""

    containerfile: str
    end: int | None = None
    tail: bytes = b""
    pull: bool = True  # False when imgfront pulled the bases itself


class _PlatformClash(PlatformBuildError):
    """Docker took an image of another platform, from its platform-blind cache or a scratch stage's first step."""


class DockerBuilder(ImageBuilder):
    """One Docker engine at `unix:///path`, `ssh://[user@]host[:port][/socket]` or `tcp://host:port`.

    A `docker+` prefix on the URI is allowed. TCP uses TLS as the Docker CLI does, from DOCKER_TLS_VERIFY and
    DOCKER_CERT_PATH; ssh goes through imgfront's own tunnel (opened by `connect`, which gives its socket as
    `endpoint`), so only sshd is needed on the host. `local` says the engine runs on this host, so this host's
    binfmt handlers give its emulated platforms.
    """

    driver = "docker"
    can_hold_lists = False

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
        """No I/O: `connect` calls probe()."""
        self.name = connection.name
        self.connection = connection
        self.settings = settings or EngineSettings()
        self.uri = connection.uri.removeprefix(PREFIX)
        self.endpoint = (endpoint or connection.uri).removeprefix(PREFIX)
        self._env = env
        self.local = local
        self._automatic_args = automatic_args
        self._info: NodeInfo | None = None
        self._lock = threading.Lock()
        self._thread = threading.local()
        self._containers_before: set[str] | None = None
        self._leftovers: set[str] = set()
        self._bases_lock = threading.Lock()
        self._bases: set[Platform] = set()
        self.server_version = self.api_version = ""
        self._clients: tuple[Any, Any] | None = None

    # -- connecting -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """For builds, pushes and transfers: no timeout but the build's idle timeout."""
        return self._connected()[0]

    @property
    def _quick(self) -> Any:
        """For short requests: the connect timeout."""
        return self._connected()[1]

    def _connected(self) -> tuple[Any, Any]:
        if self._clients is None:
            raise EngineError(f"{self.name}: not connected (imgfront.engines.connect probes a node first)")
        return self._clients

    def probe(self) -> None:
        timeout = self.settings.connect_timeout
        base_url, tls = self._endpoint()
        self.server_version, self.api_version = self._probe(base_url, tls, timeout)
        version = min(self.api_version, docker.constants.DEFAULT_DOCKER_API_VERSION, key=parse_version)
        client = self._client(base_url, tls, version, None)
        client.hooks["response"].append(self._capture)
        self._clients = (client, self._client(base_url, tls, version, timeout))

    def _endpoint(self) -> tuple[str, Any]:
        parts = urlsplit(self.endpoint)
        if parts.scheme == "unix":
            return self.endpoint, False
        if parts.scheme == "tcp":
            if not parts.hostname:
                raise EngineError(f"{self.name}: {self.uri} names no host")
            # As the SDK and the CLI do: TLS when DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set.
            return self.endpoint, docker.utils.kwargs_from_env(environment=self._env).get("tls", False)
        raise EngineError(
            f"{self.name}: {self.uri} is no Docker engine address",
            hint="use docker+unix:///path/docker.sock, docker+ssh://[user@]host or docker+tcp://host:2376",
        )

    def _client(self, base_url: str, tls: Any, version: str, timeout: float | None) -> Any:
        try:
            client = docker.APIClient(base_url=base_url, version=version, timeout=timeout, tls=tls)
        except (docker.errors.DockerException, ValueError) as e:
            raise EngineError(f"{self.name}: cannot use {self.uri}: {e}") from e
        if isinstance(client.verify, str):
            client.merge_environment_settings = _keeping_verify(client.merge_environment_settings, client.verify)
        return client

    def _probe(self, base_url: str, tls: Any, timeout: float) -> tuple[str, str]:
        """Ask the server (not the SDK) its version, and refuse what is not Docker 20.10 or newer."""
        probe = self._client(base_url, tls, ".".join(map(str, MIN_API)), timeout)
        try:
            data = probe.version(api_version=False)
        except TRANSPORT_ERRORS as e:
            raise EngineError(
                f"{self.name}: no Docker engine answers at {self.uri} ({timed_out(e, timeout) or e})"
            ) from e
        finally:
            probe.close()
        components = {str(c.get("Name")) for c in data.get("Components") or []}
        if "Podman Engine" in components:
            raise EngineError(
                f"{self.name}: {self.uri} is a podman service, not a Docker engine",
                hint="name it without the docker+ prefix, so that imgfront uses its podman adapter",
            )
        version, api = str(data.get("Version", "")), str(data.get("ApiVersion", ""))
        if not new_enough(version, api):
            raise EngineError(
                f"{self.name}: Docker {version} (API {api}) at {self.uri} is too old; "
                "imgfront needs Docker 20.10 or newer",
                hint="upgrade Docker on that host",
            )
        return version, api

    def status(self) -> None:
        try:
            self._quick.ping()
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: Docker engine at {self.uri} does not answer: {e}") from e

    def info(self) -> NodeInfo:
        if self._info is None:
            data = self._call(self._quick.info, "info")
            os_name, arch = str(data.get("OSType") or "linux"), str(data.get("Architecture") or "")
            try:
                native = Platform.make(os_name, arch)
            except UsageError as e:
                raise EngineError(f"{self.name}: the engine runs {os_name}/{arch}, which imgfront cannot build") from e
            emulated = emulated_besides(native) if self.local else ()
            self._info = NodeInfo(
                name=self.name,
                driver=self.driver,
                server_version=self.server_version,
                api_version=self.api_version,
                native=(native,),
                emulated=emulated,
                rootless=any("rootless" in str(o) for o in data.get("SecurityOptions") or []),
                storage_driver=str(data.get("Driver", "")),
                address=self.uri,
                lacks=() if data.get("ExperimentalBuild") else (("squash", NO_EXPERIMENTAL),),
            )
        return self._info

    # -- building ---------------------------------------------------------------------------------

    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        """Build one platform, untagged; a step Docker took from its cache for another platform means a rebuild.

        The legacy builder's cache ignores platforms: a FROM scratch stage built for amd64 is taken for
        arm64 as it is. A build that meets such an image, or ends with one, is built again without the cache.
        """
        where = f"{request.platform}@{self.name}"
        start = time.monotonic()
        self._remember_containers()
        started = self._server_time()
        upload = self._upload_for(request, events, where)
        no_cache = request.no_cache
        while True:
            try:
                image_id = self._build_once(request, upload, events, cancel, no_cache, where)
            except _PlatformClash as clash:
                if no_cache:
                    raise PlatformBuildError(clash.message, clash.log_tail, hint=CLASH_HINT) from None
                events.log("imgfront: Docker's cache holds another platform's steps; building again without it")
                no_cache = True
                continue
            image = self.inspect_image(image_id)
            if image is None:
                raise PlatformBuildError(f"{where}: built image {image_id[:12]} is missing")
            if cancel.cancelled:
                if made_since(image, started):
                    self.remove_image(image_id)
                raise Cancelled(f"{where}: cancelled")
            if request.platform.matches_image(image.os, image.architecture, image.variant):
                break
            got = "/".join(p for p in (image.os, image.architecture, image.variant) if p)
            if not no_cache:
                events.log(f"imgfront: Docker's cache gave an image for {got}; building again without it")
                no_cache = True
                continue
            if made_since(image, started):
                self.remove_image(image_id)
            raise PlatformBuildError(
                f"{where}: Docker built an image for {got}, not {request.platform}", hint=WRONG_PLATFORM_HINT
            )
        return BuildReport(
            image_id=image_id,
            digest=image.digest,
            platform=request.platform,
            node=self.name,
            seconds=time.monotonic() - start,
            created=made_since(image, started),
        )

    def _server_time(self) -> datetime.datetime | None:
        """The engine's own clock (its /info SystemTime), to tell images this build made from cached ones."""
        try:
            return parse_time(str(self._call(self._quick.info, "info").get("SystemTime", "")))
        except EngineError:
            return None

    def _upload_for(self, request: BuildRequest, events: BuildEvents, where: str) -> _Upload:
        """The context as sent: with FROM scratch stages that open with a metadata step built on an empty base.

        Only for a platform other than the engine's own, where the legacy builder would fail; the packed
        context stays as it is, and the rewritten Containerfile is added to the upload under a name of its own.
        """
        context = request.context
        as_packed = _Upload(context.containerfile, pull=request.pull in (PullPolicy.ALWAYS, PullPolicy.NEWER))
        if request.platform in self.info().native:
            return as_packed
        text = read_containerfile(context.tar, context.containerfile)
        base = base_name(request.platform)
        changed = rewrite(text, base, request.build_args) if text is not None else None
        if changed is None:
            return as_packed
        self._load_empty_base(request.platform, where)
        lines = ", ".join(map(str, changed.lines))
        events.log(
            f"imgfront: FROM scratch at line {lines} builds FROM {base}, an empty {request.platform} image, "
            "as Docker's legacy builder would give its first step the host's platform"
        )
        if as_packed.pull:  # Docker would try to pull imgfront's empty base too
            self._pull(changed.bases, request.platform, events, where)
        name, end, tail = with_containerfile(context.tar, changed.containerfile)
        return _Upload(name, end, tail, pull=False)

    def _load_empty_base(self, platform: Platform, where: str) -> None:
        """Load the platform's empty image under imgfront's name, once per builder (again, in case it went)."""
        with self._bases_lock:
            if platform in self._bases:
                return
            try:
                self.import_image(iter([empty_image(platform)]))
            except EngineError as e:
                raise PlatformBuildError(f"{where}: loading the empty base {base_name(platform)}: {e}") from e
            self._bases.add(platform)

    def _pull(self, bases: Sequence[str], platform: Platform, events: BuildEvents, where: str) -> None:
        """Pull the other stages' bases for --pull always/newer, so that the build itself needs to pull none."""
        for ref in dict.fromkeys(bases):
            if "$" in ref:
                events.log(f"imgfront: cannot name the base {ref} before the build; Docker uses the copy it has")
                continue
            events.log(f"imgfront: pulling {ref} for {platform}")
            try:
                for message in self.client.pull(ref, platform=str(platform), stream=True, decode=True):
                    if isinstance(message, dict) and message.get("error"):
                        raise PlatformBuildError(f"{where}: pulling {ref}: {str(message['error']).strip()}")
            except TRANSPORT_ERRORS as e:
                raise PlatformBuildError(f"{where}: pulling {ref}: {getattr(e, 'explanation', '') or e}") from e

    def _build_once(
        self,
        request: BuildRequest,
        upload: _Upload,
        events: BuildEvents,
        cancel: Cancellation,
        no_cache: bool,
        where: str,
    ) -> str:
        log = DockerLog(events, self._automatic_args)
        image_id: str | None = None
        succeeded = False
        self._thread.capture, self._thread.response = True, None
        try:
            stream = self.client.build(
                fileobj=_upload(request.context.tar, cancel, upload.end, upload.tail),
                custom_context=True,
                dockerfile=upload.containerfile,
                platform=str(request.platform),
                buildargs=dict(request.build_args),
                labels=dict(request.labels) or None,
                target=request.target or None,
                nocache=no_cache,
                pull=upload.pull,  # the legacy builder pulls a missing base anyway
                rm=True,
                forcerm=True,  # a failed step's container goes too
                decode=True,
                timeout=(self.settings.connect_timeout, self.settings.idle_timeout),
                **setting_keywords(request.settings),
            )
        except (_Cancelled, *TRANSPORT_ERRORS) as e:
            if cancel.cancelled:
                raise Cancelled(f"{where}: cancelled") from e
            if isinstance(e, requests.ConnectionError):
                raise NodeLost(f"{where}: could not start the build: {e}") from e
            raise PlatformBuildError(f"{where}: could not start the build: {e}") from e
        finally:
            self._thread.capture = False
            response: requests.Response | None = self._thread.response
            self._thread.response = None
        forget = cancel.on_cancel(lambda: shut_down(response)) if response is not None else _nothing
        try:
            for message in stream:
                if not isinstance(message, dict):
                    continue
                if message.get("error"):
                    log.flush()
                    text = f"{where}: {str(message['error']).strip()}"
                    raise (_PlatformClash if _PLATFORM_CLASH in text else PlatformBuildError)(text, tuple(log.tail))
                aux = message.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = bare_id(str(aux["ID"]))  # every stage reports one; the last is the image
                if "stream" in message:
                    log.feed(str(message["stream"]))
                elif message.get("status") and not message.get("progressDetail"):
                    log.feed(" ".join(str(message[k]) for k in ("id", "status") if message.get(k)) + "\n")
            log.flush()
            succeeded = image_id is not None and not cancel.cancelled
        except docker.errors.APIError as e:
            if cancel.cancelled:
                raise Cancelled(f"{where}: cancelled", tuple(log.tail)) from e
            raise PlatformBuildError(f"{where}: the engine refused the build: {e.explanation or e}") from e
        except TRANSPORT_ERRORS as e:
            raise stream_broken(e, cancel, where, log.tail, self.settings.idle_timeout) from e
        finally:
            forget()
            if response is not None:
                response.close()
            if not succeeded:
                with self._lock:
                    self._leftovers |= log.containers
        if cancel.cancelled:
            raise Cancelled(f"{where}: cancelled", tuple(log.tail))
        if image_id is None:
            raise PlatformBuildError(f"{where}: the build ended without an image", tuple(log.tail))
        return image_id

    def _capture(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        """A requests hook: keep the build's response, on the thread that asked, so a cancel can shut it down."""
        if getattr(self._thread, "capture", False):
            self._thread.response = response

    # -- what cancelled builds leave behind -------------------------------------------------------

    def _container_ids(self) -> set[str]:
        return {str(c["Id"]) for c in self._call(lambda: self._quick.containers(all=True, quiet=True), "containers")}

    def _remember_containers(self) -> None:
        with self._lock:
            if self._containers_before is None:
                self._containers_before = self._container_ids()

    def clean_cancelled(self) -> tuple[str, ...]:
        """Remove the containers of this builder's failed or cancelled builds that are still there.

        When a build's client goes away, Docker kills its running step and removes the step's containers
        itself, a moment later; what it leaves are the untagged images of the steps done, which stay as
        cache. Only containers this builder's builds reported (` ---> Running in ID`) are touched, never
        one that existed before its first build.
        """
        with self._lock:
            candidates, self._leftovers = self._leftovers, set()
            before = self._containers_before or set()
        for attempt in range(CLEANUP_PASSES):
            left = [c for c in (self._full_container_id(short) for short in candidates) if c and c not in before]
            if not left:
                return ()
            if attempt > 0:  # the first pass gives Docker's own removal its moment
                for container in left:
                    try:
                        self.client.remove_container(container, force=True)
                    except docker.errors.NotFound:
                        pass
                    except docker.errors.APIError as e:
                        if e.status_code != 409:  # 409: Docker is removing it already
                            raise EngineError(f"{self.name}: removing build container {container[:12]}: {e}") from e
                    except TRANSPORT_ERRORS as e:
                        raise EngineError(f"{self.name}: removing build container {container[:12]}: {e}") from e
            time.sleep(0.5 * (attempt + 1))
        return (f"{self.name}: build container(s) {', '.join(c[:12] for c in left)} could not be removed",)

    def _full_container_id(self, short: str) -> str | None:
        try:
            return str(self._quick.inspect_container(short)["Id"])
        except docker.errors.NotFound:
            return None
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: inspecting build container {short}: {e}") from e

    # -- images -----------------------------------------------------------------------------------

    def inspect_image(self, ref: str) -> ImageInfo | None:
        try:
            data = self._quick.inspect_image(ref)
        except docker.errors.NotFound:
            return None
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: inspecting {ref}: {e}") from e
        digests = data.get("RepoDigests") or []
        return ImageInfo(
            id=bare_id(str(data.get("Id", ""))),
            digest=str(digests[0]).partition("@")[2] if digests else "",  # none until the image is pushed
            os=str(data.get("Os", "")),
            architecture=str(data.get("Architecture", "")),
            variant=data.get("Variant") or None,
            labels=dict((data.get("Config") or {}).get("Labels") or {}),
            created=parse_time(data.get("Created")),
            names=tuple(str(t) for t in data.get("RepoTags") or ()),
        )

    def export_image(self, image_id: str, oci: bool = False) -> Iterator[bytes]:
        """`GET /images/{id}/get`: a docker-archive, streamed (Docker 20.10 writes no other format)."""
        try:
            yield from self.client.get_image(image_id, chunk_size=UPLOAD_CHUNK)
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: export of {image_id[:12]} failed: {e}") from e

    def import_image(self, chunks: Iterator[bytes]) -> str:
        """`POST /images/load`, streamed; the id of the (first) image loaded, as bare hex."""
        try:
            messages = [m for m in self.client.load_image(chunks, quiet=True) if isinstance(m, dict)]
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: import failed: {e}") from e
        for message in messages:
            if message.get("error"):
                raise EngineError(f"{self.name}: import failed: {str(message['error']).strip()}")
        for message in messages:
            text = str(message.get("stream", "")).strip()
            if text.startswith("Loaded image ID:"):
                return bare_id(text.partition(":")[2].strip())
            if text.startswith("Loaded image:"):
                image = self.inspect_image(text.partition(":")[2].strip())
                if image is not None:
                    return image.id
        raise EngineError(f"{self.name}: import loaded no image")

    def remove_image(self, ref: str, force: bool = False) -> None:
        """Remove an image; one that is gone already is no error.

        Asked for by id, an image is left when Docker holds it under a name (imgfront never names its
        per-platform images, so a cache hit gave a user's), or when other images are built on it (a cache hit
        gave a step of another build; it goes with them).
        """
        if _IMAGE_ID.match(ref):
            tags = self._tags(ref)
            if tags is None or tags:
                return
        try:
            self.client.remove_image(ref, force=force)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if not (e.status_code == 409 and "dependent child images" in str(e.explanation)):
                raise EngineError(f"{self.name}: removing {ref[:19]} failed: {e.explanation or e}") from e
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: removing {ref[:19]} failed: {e}") from e

    def _tags(self, image_id: str) -> list[str] | None:
        try:
            return list(self._quick.inspect_image(image_id).get("RepoTags") or [])
        except docker.errors.NotFound:
            return None
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: inspecting {image_id[:19]}: {e}") from e

    def prune(self) -> None:
        self._call(self.client.prune_images, "prune")

    # -- manifest lists ---------------------------------------------------------------------------

    def inspect_list(self, name: str) -> ListInfo | None:
        return None  # Docker's store holds no manifest lists

    def create_list(self, instances: Sequence[ListInstance]) -> ListInfo:
        raise EngineError(
            f"{self.name}: Docker's image store cannot hold a manifest list",
            hint="make podman the local engine (Docker nodes' images are brought home into its list), "
            "or write the platforms to a file output",
        )

    def name_list(self, made: ListInfo, names: Sequence[str]) -> ListInfo:
        return self.create_list(())

    def drop_list(self, made: ListInfo) -> None:
        pass  # it can never have made one

    # -- pushing ----------------------------------------------------------------------------------

    def push_image(
        self,
        image_id: str,
        platform: Platform,
        destination: str,
        credentials: Credentials | None,
        tls_verify: bool | None,
    ) -> str:
        """Docker pushes tags only: the image goes to `<tag>-<os>_<arch>`, which stays on the node as well.

        Whether a registry needs TLS is the daemon's setting (`insecure-registries`), not the request's.
        """
        repository, _, tag = destination.rpartition(":")
        own_tag = f"{tag}-{platform.slug}"
        target = f"{repository}:{own_tag}"
        self._call(lambda: self.client.tag(image_id, repository, own_tag, force=True), f"tagging {target}")
        auth = credentials.registry_auth(repository.split("/", 1)[0]) if credentials else None
        secrets = credentials.secrets if credentials else ()
        digest = ""
        try:
            for message in self.client.push(repository, own_tag, stream=True, decode=True, auth_config=auth):
                if not isinstance(message, dict):
                    continue
                if message.get("error") or message.get("errorDetail"):
                    cause = message.get("error") or message["errorDetail"].get("message", "")
                    raise push_failure(target, self.name, str(cause), secrets)
                digest = str((message.get("aux") or {}).get("Digest") or digest)
        except TRANSPORT_ERRORS as e:
            raise push_failure(target, self.name, str(getattr(e, "explanation", "") or e), secrets) from None
        if not digest.startswith("sha256:"):
            raise EngineError(f"{platform}@{self.name}: Docker pushed {target} but named no digest")
        return digest

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """A request through the SDK: what the SDK or the transport raises becomes an EngineError naming `what`."""
        try:
            return fn()
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: {what}: {e}") from e

    def close(self) -> None:
        clients, self._clients = self._clients, None
        for client in clients or ():
            with contextlib.suppress(*TRANSPORT_ERRORS):
                client.close()


def _keeping_verify(merge: Callable[..., dict[str, Any]], ca_cert: str) -> Callable[..., dict[str, Any]]:
    """requests lets REQUESTS_CA_BUNDLE replace a session's CA; the engine's, from DOCKER_CERT_PATH, must stay."""

    def merged(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**merge(*args, **kwargs), "verify": ca_cert}

    return merged


def _upload(tar: Path, cancel: Cancellation, end: int | None = None, tail: bytes = b"") -> Iterator[bytes]:
    """The context, read as it is sent (its first `end` bytes, then `tail`); a cancel aborts the request, so
    Docker never builds half a context."""
    left = end
    with tar.open("rb") as f:
        while chunk := f.read(UPLOAD_CHUNK if left is None else min(UPLOAD_CHUNK, left)):
            if cancel.cancelled:
                raise _Cancelled
            if left is not None:
                left -= len(chunk)
            yield chunk
    if tail:
        if cancel.cancelled:
            raise _Cancelled
        yield tail


def _nothing() -> None:
    pass


__all__ = ["CLASH_HINT", "WRONG_PLATFORM_HINT", "DockerBuilder", "DockerLog", "bare_id", "new_enough"]
