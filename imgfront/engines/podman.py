"""The podman adapter: a podman service reached over its REST API with podman-py."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import podman
import requests
import tenacity
import urllib3.exceptions
from podman.api.client import APIResponse
from podman.errors import APIError, DockerException, PodmanError

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
    SilentEvents,
    made_since,
    parse_time,
)
from imgfront.engines.build_params import CACHE_LISTS_SINCE, version_tuple
from imgfront.engines.buildlog import PodmanLog
from imgfront.engines.registry import EngineSettings
from imgfront.engines.service import PrivateService
from imgfront.engines.streams import parse_version, shut_down, stream_broken, timed_out
from imgfront.engines.upload import with_secrets
from imgfront.errors import Cancelled, EngineError, NodeLost, PlatformBuildError, UsageError
from imgfront.modes import PullPolicy
from imgfront.nodes.connections import Connection
from imgfront.oci.client import cause_hint, push_failure, redact
from imgfront.oci.index import assumed_list, stored_list
from imgfront.platforms import Platform, host_platform

if TYPE_CHECKING:
    from imgfront.model import Credentials

MIN_SERVER = (4, 3, 0)
DIGEST_FILTER_SINCE = (4, 6, 0)  # where repo@digest stopped finding a list's untagged instances
# Seconds to wait after a cancel for podman to end the cancelled builds: imgfront's private service, whose
# steps it kills, ends them in well under a second; a shared service finishes its running step first.
PRIVATE_CANCEL_WAIT = 10.0
SHARED_CANCEL_WAIT = 5.0
NAMED_CONTEXT_LABEL = "imgfront.named-context"  # on the image a node makes of a --build-context folder
SETTLE = 1.5  # seconds with no step running before the private service's builds count as ended
# What podman-py, requests and the socket below them raise when a request cannot be made or read.
TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    DockerException,
    OSError,
    ValueError,
)


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_NETWORK_POLICY = {"none": 1, "host": 2, "private": 2}  # buildah's NetworkDisabled, NetworkEnabled
_ISOLATION = {"oci": 1, "default": 1, "chroot": 2, "rootless": 3}  # buildah's Isolation numbers


def _json(value: object) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _network(mode: object) -> dict[str, object]:
    namespace = {"Name": "network", "Host": mode == "host", "Path": ""}
    return {"networkmode": _NETWORK_POLICY[str(mode)], "nsoptions": json.dumps([namespace])}


def _security(opts: Sequence[str]) -> dict[str, object]:
    """label=, seccomp= and apparmor= as podman's client splits them: labelopts, seccomp and apparmor."""
    pairs = [o.partition("=")[::2] for o in opts]
    params: dict[str, object] = {}
    labels = [value for name, value in pairs if name == "label"]
    if labels:
        params["labelopts"] = json.dumps(labels)
    params.update({name: value for name, value in pairs if name in ("seccomp", "apparmor")})
    return params


# Each settings row (options.py's SETTING rows) as the libpod build API's query parameters, encoded as podman's own
# remote client (pkg/bindings/images/build.go) encodes it; None means the parameter is not sent at all.
SETTING_PARAMS: dict[str, Callable[[Any], dict[str, object]]] = {
    "network": _network,
    "add_host": lambda v: {"extrahosts": _json(v)},
    "dns": lambda v: {"dnsservers": _json(v)},
    "dns_search": lambda v: {"dnssearch": _json(v)},
    "dns_option": lambda v: {"dnsoptions": _json(v)},
    "ulimit": lambda v: {"ulimits": _json(v)},
    "shm_size": lambda v: {"shmsize": v},
    "memory": lambda v: {"memory": v},
    "memory_swap": lambda v: {"memswap": v},
    "cpu_shares": lambda v: {"cpushares": v},
    "cpu_period": lambda v: {"cpuperiod": v},
    "cpu_quota": lambda v: {"cpuquota": v},
    "cpuset_cpus": lambda v: {"cpusetcpus": v},
    "cpuset_mems": lambda v: {"cpusetmems": v},
    "cgroup_parent": lambda v: {"cgroupparent": v},
    "cap_add": lambda v: {"addcaps": _json(v)},
    "cap_drop": lambda v: {"dropcaps": _json(v)},
    "security_opt": _security,
    "device": lambda v: {"devices": _json(v)},
    "volume": lambda v: {"volume": list(v)},  # a query parameter repeated, as podman-remote sends it
    "isolation": lambda v: {"isolation": _ISOLATION[v]},
    "env": lambda v: {"setenv": list(v)},  # a repeated parameter
    "unsetenv": lambda v: {"unsetenv": list(v)},
    # podman build --squash is buildah's --layers=false: the new layers become one, the base's stay
    "squash": lambda v: {"layers": None},
    "squash_all": lambda v: {"squash": 1, "layers": None},
    "layers": lambda v: {"layers": 1 if v else None},  # after the squash rows: an explicit --layers wins
    "format": lambda v: {"outputformat": DOCKER_MANIFEST if v == "docker" else OCI_MANIFEST},
    "timestamp": lambda v: {"timestamp": v},
    "omit_history": lambda v: {"omithistory": 1},
}


def setting_params(settings: Mapping[str, object]) -> dict[str, object]:
    """The query parameters the settings add to (or, as None, remove from) a build's, in the table's order."""
    unknown = set(settings) - set(SETTING_PARAMS)
    if unknown:  # options.py refuses these before any build; never drop one here
        raise UsageError(f"the podman adapter cannot send {', '.join(sorted(unknown))}")
    params: dict[str, object] = {}
    for dest, encode in SETTING_PARAMS.items():
        if dest in settings:
            params.update(encode(settings[dest]))
    return params


def _q(ref: str) -> str:
    return quote(ref, safe="")


class PodmanBuilder(ImageBuilder):
    """One podman service; `local` says whether it runs on this host, so this host's binfmt handlers apply."""

    driver = "podman"
    loads_oci = True

    def __init__(
        self,
        connection: Connection,
        settings: EngineSettings | None = None,
        *,
        endpoint: str | None = None,
        local: bool = False,
        automatic_args: frozenset[str] = frozenset(),
        env: Mapping[str, str] | None = None,  # Docker's TLS settings; podman reads none
    ):
        """No I/O: `connect` calls probe(). `endpoint` is what to dial (an ssh tunnel's socket), if not the URI."""
        self.name = connection.name
        self.connection = connection
        self.endpoint = endpoint or connection.uri
        self.settings = settings or EngineSettings()
        self.local = local
        self._automatic_args = automatic_args
        self._info: NodeInfo | None = None
        self.service: PrivateService | None = None  # imgfront's own service, whose steps it may stop
        self._lock = threading.Lock()
        self._named_holds: dict[str, int] = {}  # folder contexts' images: how many builds still use each
        self._containers_before: set[str] | None = None
        self.server_version = self.api_version = ""
        self._client_now: podman.PodmanClient | None = None

    # -- connecting -------------------------------------------------------------------------------

    def _client(self, version: str, timeout: float | None) -> podman.PodmanClient:
        kwargs: dict[str, Any] = {"base_url": self.endpoint, "version": version}
        if self.connection.identity:
            kwargs["identity"] = self.connection.identity
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            return podman.PodmanClient(**kwargs)
        except (ValueError, PodmanError) as e:
            raise EngineError(f"{self.name}: cannot use {self.connection.uri}: {e}") from e

    @property
    def client(self) -> podman.PodmanClient:
        if self._client_now is None:
            raise EngineError(f"{self.name}: not connected (imgfront.engines.connect probes a node first)")
        return self._client_now

    def probe(self) -> None:
        """Ask the server its version, then refuse a server older than the oldest supported.

        /_ping answers in a millisecond with the versions in its headers; /version takes half a second.
        """
        self.server_version, self.api_version = self._versions()
        self._client_now = self._client(self.api_version, timeout=None)

    def _versions(self) -> tuple[str, str]:
        timeout = self.settings.connect_timeout
        with self._client("4.0.0", timeout=timeout) as probe:
            try:
                headers = probe.api.get("/_ping").headers
            except TRANSPORT_ERRORS as e:
                raise EngineError(
                    f"{self.name}: no podman service answers at {self.connection.uri} ({timed_out(e, timeout) or e})"
                ) from e
        api = headers.get("Libpod-Api-Version")
        if not api:
            raise EngineError(
                f"{self.name}: {self.connection.uri} answers, but it is not podman",
                hint="imgfront's podman adapter needs a podman service (podman system service)",
            )
        server = re.search(r"Libpod/([\w.+-]+)", headers.get("Server", ""))
        version = server[1] if server else api
        if parse_version(version) < MIN_SERVER:
            raise EngineError(
                f"{self.name}: podman {version} at {self.connection.uri} is too old; "
                "imgfront needs podman 4.3 or newer",
                hint="upgrade podman on that host",
            )
        return version, api

    def status(self) -> None:
        response = self._call("get", "/_ping", "ping", timeout=self.settings.connect_timeout)
        if response.status_code >= 400:
            raise EngineError(
                f"{self.name}: podman service at {self.connection.uri} does not answer: {_error_text(response)}"
            )

    def host_details(self) -> dict[str, Any]:
        """The server's /info (slow: it measures storage), for doctor and for nodes on other hosts."""
        return dict(self._json("get", "/info"))

    def info(self) -> NodeInfo:
        if self._info is None:
            if self.local:
                # The service runs on this host, as this user: no need to ask its slow /info.
                native, rootless, driver = host_platform(), os.geteuid() != 0, ""
            else:
                data = self.host_details()
                host, store = data.get("host", {}), data.get("store", {})
                native = Platform.make(host.get("os", "linux"), host.get("arch", "amd64"), host.get("variant") or None)
                rootless = bool(host.get("security", {}).get("rootless"))
                driver = str(store.get("graphDriverName", ""))
            emulated = emulated_besides(native) if self.local else ()
            self._info = NodeInfo(
                name=self.name,
                driver=self.driver,
                server_version=self.server_version,
                api_version=self.api_version,
                native=(native,),
                emulated=emulated,
                rootless=rootless,
                storage_driver=driver,
                address=self.connection.uri,
            )
        return self._info

    # -- building ---------------------------------------------------------------------------------

    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        """Build one platform, untagged; an image of another platform from the cache means a rebuild without it.

        Podman 4.3's layer cache ignores the platform of a FROM scratch stage: after an arm64 build, the
        same COPY steps for amd64 come back as the arm64 image.
        """
        start = time.monotonic()
        helpers: list[str] = []
        try:
            named = self._named_contexts(request, cancel, helpers)
            image_id, info, made = self._build_once(request, events, cancel, request.no_cache, named)
            if info is not None and not request.no_cache and not _is_for(info, request.platform):
                events.log("imgfront: the layer cache gave an image of another platform; building again without it")
                image_id, info, made = self._build_once(request, events, cancel, True, named)
        finally:
            for helper in helpers:
                self._release_named(helper)
        return BuildReport(
            image_id=image_id,
            digest=info.digest if info else "",
            platform=request.platform,
            node=self.name,
            seconds=time.monotonic() - start,
            created=made,
        )

    def _named_contexts(
        self, request: BuildRequest, cancel: Cancellation, helpers: list[str]
    ) -> dict[str, dict[str, Any]]:
        """`additionalbuildcontexts`: images and URLs as they are; a folder first becomes an image on this node.

        Before 5.6 a server takes a folder as a path of its own file system, so imgfront sends the folder's
        files instead, copied into an empty image labelled with this run's token, which the build then sees as
        the context. That build skips the layer cache: with it, podman 4.3 leaves a labelled intermediate image
        behind the final one, and builds on another run's. Each platform holds the label from before its helper
        build, and the last to finish removes every image under it.
        """
        named: dict[str, dict[str, Any]] = {}
        for context in request.named_contexts:
            if context.folder is None:
                value = context.image or context.url or ""
                named[context.name] = {
                    "IsImage": context.image is not None,
                    "IsURL": context.url is not None,
                    "Value": value,
                }
                continue
            label = f"{context.name}-{context.token}"
            with self._lock:
                self._named_holds[label] = self._named_holds.get(label, 0) + 1
            helpers.append(label)
            helper = BuildRequest(
                context=context.folder,
                platform=request.platform,
                labels={NAMED_CONTEXT_LABEL: label},
                pull=PullPolicy.NEVER,
                settings={"layers": False},  # one image, no labelled intermediate, no other run's to build on
            )
            try:
                image_id, _, _ = self._build_once(helper, SilentEvents(), cancel, True, {})
            except PlatformBuildError as e:
                raise PlatformBuildError(f"--build-context {context.name}: {e.message}", e.log_tail) from None
            named[context.name] = {"IsImage": True, "Value": image_id}
        return named

    def _release_named(self, label: str) -> None:
        """One build is done with a folder context; the last one removes every image under its label."""
        with self._lock:
            left = self._named_holds.get(label, 1) - 1
            if left > 0:
                self._named_holds[label] = left
                return
            self._named_holds.pop(label, None)
        with contextlib.suppress(EngineError):
            for image_id in self._labelled(f"{NAMED_CONTEXT_LABEL}={label}"):
                with contextlib.suppress(EngineError):
                    self.remove_image(image_id)

    @tenacity.retry(
        retry=tenacity.retry_if_exception_type(EngineError),
        stop=tenacity.stop_after_attempt(5),
        wait=tenacity.wait_fixed(0.2),
        reraise=True,
    )
    def _labelled(self, label: str) -> list[str]:
        """The ids of the images with `label` (KEY=VALUE).

        Podman 4.3's listing fails while another client removes an image it is reading the parent of
        ("retrieving parent of image"), so a failed listing is tried again.
        """
        filters = json.dumps({"label": [label]})
        return [str(e["Id"]) for e in self._json_params("get", "/images/json", {"all": True, "filters": filters})]

    def _server_time(self) -> datetime.datetime | None:
        """The node's own clock, from an answer's Date header: whole seconds, so at most a second early.

        An image is only taken for this build's own when, besides being new since then, it has no name and its id
        is not a cache hit of this build's log; so the second cannot mistake another build's image for ours (a
        build that made the same id would have hit the cache), while a later start would miss a fast build's own.
        """
        try:
            response = self._call("get", "/_ping", "ping", timeout=self.settings.connect_timeout)
        except EngineError:
            return None
        now = parse_time(response.headers.get("Date"))
        return now

    def _build_once(
        self,
        request: BuildRequest,
        events: BuildEvents,
        cancel: Cancellation,
        no_cache: bool,
        named: dict[str, dict[str, Any]],
    ) -> tuple[str, ImageInfo | None, bool]:
        """One build request: the image id, its inspection, and whether this build made it (not the cache)."""
        params: dict[str, Any] = {
            "dockerfile": request.context.containerfile,
            "platform": str(request.platform),
            "buildargs": json.dumps(dict(request.build_args), sort_keys=True),
            "labels": json.dumps(dict(request.labels), sort_keys=True),
            "pullpolicy": request.pull,
            "nocache": no_cache,
            "layers": True,
            "rm": True,
            "forcerm": True,  # as the CLI: a failed step's containers go too
            # The API defaults to Docker v2s2, in which buildah 1.28 never finds cached layers; the CLI uses OCI.
            "outputformat": OCI_MANIFEST,
        }
        params.update(setting_params(request.settings))
        params = {k: v for k, v in params.items() if v is not None}
        if request.annotations:
            params["annotations"] = json.dumps([f"{k}={v}" for k, v in request.annotations.items()])
        if request.target:
            params["target"] = request.target
        if named:
            params["additionalbuildcontexts"] = json.dumps(named, sort_keys=True)
        # Each secret rides in the upload under a fresh random name; the server moves it out of the context.
        upload, secrets = with_secrets(request.context, request.secrets)
        if secrets:
            params["secrets"] = json.dumps(secrets)
        params.update(self._cache_params(request))
        headers = {"Content-Type": "application/x-tar", **_cache_auth_header(request)}
        hidden = tuple(s for c in request.cache_credentials.values() for s in c.secrets)  # kept out of errors
        where = f"{request.platform}@{self.name}"
        log = PodmanLog(events, self._automatic_args)
        with upload.open() as body:
            try:
                self._remember_containers()
                started = self._server_time()
                response = self._call(
                    "post",
                    "/build",
                    "build",
                    params=params,
                    data=body,
                    stream=True,
                    headers=headers,
                    timeout=(self.settings.connect_timeout, self.settings.idle_timeout),
                )
            except EngineError as e:
                if cancel.cancelled:
                    raise Cancelled(f"{where}: cancelled") from e
                raise NodeLost(f"{where}: could not start the build: {e}") from e
            forget = cancel.on_cancel(lambda: shut_down(response))
            try:
                if response.status_code >= 400:
                    refusal = redact(_error_text(response), hidden)
                    raise PlatformBuildError(f"{where}: the server refused the build: {refusal}")
                for message in _messages(response):
                    if "error" in message:
                        log.flush()
                        error = redact(str(message["error"]).strip(), hidden)
                        raise PlatformBuildError(f"{where}: {error}", tuple(log.tail), hint=_cache_hint(error, request))
                    log.feed(str(message.get("stream", "")))
                log.flush()
            except TRANSPORT_ERRORS as e:
                raise stream_broken(e, cancel, where, log.tail, self.settings.idle_timeout) from e
            finally:
                forget()
                response.close()
        image_id = log.image_id
        info = self.inspect_image(image_id) if image_id else None
        # made_since alone cannot tell: the node's clock is read to the second, and a base built the second
        # before counts as new (a failed run then removed a base list's instance a stage only names).
        made = image_id is not None and log.committed and image_id not in log.cached and made_since(info, started)
        if cancel.cancelled:
            if image_id and made:
                with contextlib.suppress(EngineError):
                    self.remove_image(image_id)
            raise Cancelled(f"{where}: cancelled", tuple(log.tail))
        if image_id is None:
            raise PlatformBuildError(f"{where}: the build ended without an image", tuple(log.tail))
        return image_id, info, made

    def _cache_params(self, request: BuildRequest) -> dict[str, Any]:
        """The registry cache's parameters, in the form this server reads: one repository on 4.3, JSON lists after."""
        params: dict[str, Any] = {}
        lists = version_tuple(self.server_version) >= CACHE_LISTS_SINCE
        for name, repositories in (("cachefrom", request.cache_from), ("cacheto", request.cache_to)):
            if len(repositories) > 1 and not lists:
                raise EngineError(f"{self.name}: podman {self.server_version} takes one {name} repository")
            if repositories:
                params[name] = json.dumps(list(repositories)) if lists else repositories[0]
        if request.cache_ttl:
            params["cachettl"] = request.cache_ttl
        if params and request.cache_tls_verify is not None:
            params["tlsVerify"] = request.cache_tls_verify  # the build's own pulls follow it too, as podman build's
        return params

    # -- what cancelled builds leave behind -------------------------------------------------------

    def _build_containers(self) -> set[str]:
        """buildah's working containers, which podman lists only as 'external' storage containers."""
        containers = self._json_params("get", "/containers/json", {"all": True, "external": True})
        return {str(c["Id"]) for c in containers if c.get("State") == "storage"}

    def _remember_containers(self) -> None:
        with self._lock:
            if self._containers_before is None:
                self._containers_before = self._build_containers()

    def clean_cancelled(self) -> tuple[str, ...]:
        """Stop what cancelled builds still run, and let podman remove their working containers itself.

        Podman 4.3 goes on with a build whose client went away until its running step ends, then removes its
        working containers (rm/forcerm). On imgfront's private service every running step is imgfront's, so
        it is killed, which ends the build at once. No container is ever removed here: on a shared store,
        another build's working containers look just like ours. What is still there is said, not guessed at.
        """
        if self._containers_before is None:
            return ()
        private = self.service is not None
        deadline = time.monotonic() + (PRIVATE_CANCEL_WAIT if private else SHARED_CANCEL_WAIT)
        quiet_since: float | None = None
        while True:
            running = self.service.kill_descendants() if self.service is not None else 0
            now = time.monotonic()
            quiet_since = (quiet_since or now) if not running else None
            try:
                leftovers = self._build_containers() - self._containers_before
            except EngineError:
                return ()  # the service went away; so did its builds
            settled = quiet_since is not None and now - quiet_since >= SETTLE
            if not leftovers or now > deadline or (private and settled):
                break
            time.sleep(0.2)
        if not leftovers:
            return ()
        ids = ", ".join(sorted(c[:12] for c in leftovers))
        if private:
            return (
                f"{self.name}: {len(leftovers)} working container(s) appeared on this store during the build and "
                f"are still there ({ids}); no step of imgfront's runs any more, so they are another build's: "
                "left alone",
            )
        return (
            f"{self.name}: {len(leftovers)} working container(s) appeared on this store during the build ({ids}); "
            "podman removes a cancelled build's own when its running step ends, and another build's look the same: "
            "left alone",
        )

    # -- images -----------------------------------------------------------------------------------

    def inspect_image(self, ref: str) -> ImageInfo | None:
        data = self._json("get", f"/images/{_q(ref)}/json", missing_ok=True)
        if data is None:
            return None
        return ImageInfo(
            id=str(data.get("Id", "")),
            digest=str(data.get("Digest", "")),
            os=str(data.get("Os", "")),
            architecture=str(data.get("Architecture", "")),
            variant=data.get("Variant") or None,
            labels=dict(data.get("Labels") or {}),
            created=parse_time(data.get("Created")),
            names=tuple(str(n) for n in data.get("RepoTags") or ()),
        )

    def export_image(self, image_id: str, oci: bool = False) -> Iterator[bytes]:
        archive = "oci-archive" if oci else "docker-archive"
        what = f"export of {image_id}"
        response = self._call("get", f"/images/{_q(image_id)}/get", what, params={"format": archive}, stream=True)
        _raise(response, f"{self.name}: {what}")
        try:
            with self._translated(what):
                yield from response.iter_content(chunk_size=1 << 20)
        finally:
            response.close()

    def import_image(self, chunks: Iterator[bytes]) -> str:
        response = self._call(
            "post",
            "/images/load",
            "import",
            data=chunks,
            headers={"Content-Type": "application/x-tar"},
        )
        _raise(response, f"{self.name}: import")
        names = self._fields(response, "import").get("Names") or []
        return str(names[0]).removeprefix("sha256:") if names else ""

    def remove_image(self, ref: str, force: bool = False) -> None:
        response = self._call("delete", f"/images/{_q(ref)}", f"removing {ref}", params={"force": force})
        if response.status_code != 404:
            _raise(response, f"{self.name}: removing {ref}")

    def prune(self) -> None:
        _raise(self._call("post", "/images/prune", "prune"), f"{self.name}: prune")

    def tag(self, image_id: str, name: str) -> None:
        repo, _, tag = name.rpartition(":")
        what = f"tagging {name}"
        response = self._call("post", f"/images/{_q(image_id)}/tag", what, params={"repo": repo, "tag": tag})
        _raise(response, f"{self.name}: {what}")

    def tag_image(self, image_id: str, name: str) -> None:
        self.tag(image_id, name)

    # -- base images for pipelines ----------------------------------------------------------------

    def resolve_base(self, ref: str, platform: Platform, pull: str = "missing") -> str:
        """Local storage first (a list's instance, or an image for the platform), else a pull for the platform.

        A list gives its instance's manifest digest. An image gives its id, the digest of its config: podman
        reports the list's digest as the `Digest` of an image pulled through a list, the same for every
        platform. Only a pull asks a registry: the manifest inspect API would go to one for a name not held
        locally.
        """
        where = f"{self.name}: base image {ref} for {platform}"
        if pull in ("always", "newer"):
            return self._pull(ref, platform, pull, where)
        if self._exists(f"/manifests/{_q(ref)}/exists"):
            data = self._json("get", f"/manifests/{_q(ref)}/json")
            for entry in data.get("manifests") or []:
                spec = entry.get("platform") or {}
                if platform.matches_image(spec.get("os"), spec.get("architecture"), spec.get("variant")):
                    return str(entry["digest"])
            # Pulling now would move the name off the local list.
            raise UsageError(
                f"{where}: the local list {ref} has no image for {platform}",
                hint=f"add one (podman manifest add {ref} ...) or build for the platforms it has",
            )
        image = self.inspect_image(ref)
        if image is not None and platform.matches_image(image.os, image.architecture, image.variant):
            return _config_digest(image)
        if pull == "never":
            found = f"local storage has it only for {_platform_text(image)}" if image else "it is not in local storage"
            raise UsageError(f"{where}: {found}, and the pull policy is never", hint="pull it, or drop --pull never")
        return self._pull(ref, platform, "missing", where)

    def _pull(self, ref: str, platform: Platform, policy: str, where: str) -> str:
        spec = platform.to_oci()
        params: dict[str, Any] = {
            "reference": ref,
            "policy": policy,
            "quiet": True,
            "OS": spec["os"],
            "Arch": spec["architecture"],
        }
        if "variant" in spec:
            params["Variant"] = spec["variant"]
        response = self._call("post", "/images/pull", f"pulling {ref}", params=params, stream=True)
        image_id, errors = "", []
        try:
            if response.status_code >= 400:
                raise EngineError(f"{where}: pull failed: {_error_text(response)}")
            with self._translated(f"pulling {ref}"):
                for message in _messages(response):
                    if message.get("error"):
                        errors.append(str(message["error"]).strip())
                    image_id = str(message.get("id") or image_id)
        finally:
            response.close()
        image = self.inspect_image(image_id) if image_id and not errors else None
        if image is None:
            raise EngineError(f"{where}: pull failed: {errors[-1] if errors else 'no image arrived'}")
        if not platform.matches_image(image.os, image.architecture, image.variant):
            raise EngineError(f"{where}: the registry has it only for {_platform_text(image)}")
        return _config_digest(image)

    def _exists(self, path: str) -> bool:
        response = self._call("get", path, path)
        if response.status_code == 404:
            return False
        _raise(response, f"{self.name}: {path}")
        return True

    # -- manifest lists ---------------------------------------------------------------------------

    def list_images(self, name: str) -> tuple[ImageInfo, ...] | None:
        """A local list's instances, each inspected (podman 4.3 cannot list all images)."""
        if not self._exists(f"/manifests/{_q(name)}/exists"):
            return None
        data = self._json("get", f"/manifests/{_q(name)}/json")
        if "manifests" not in data:
            return None
        repository = _repository(name)
        found = []
        for entry in data["manifests"]:
            digest = str(entry["digest"])
            image = self._instance(repository, digest)
            if image is not None:
                found.append(dataclasses.replace(image, digest=digest))
        return tuple(found)

    def _instance(self, repository: str, digest: str) -> ImageInfo | None:
        """A list's instance by its manifest digest.

        Up to 4.5 `repo@digest` finds it; from 4.6 (containers/common's hardened lookup) only images whose own
        names are in that repository are, so an untagged instance is found by the listing's digest filter, which
        4.3 rejects.
        """
        if parse_version(self.server_version) < DIGEST_FILTER_SINCE:
            return self.inspect_image(f"{repository}@{digest}")
        filters = json.dumps({"digest": [digest]})
        entries = self._json_params("get", "/images/json", {"filters": filters})
        ids = [str(e["Id"]) for e in entries if not e.get("IsManifestList")]
        return self.inspect_image(ids[0]) if ids else None

    def inspect_list(self, name: str) -> ListInfo | None:
        """A local list, with the digest storage holds for it (see listforms), not a hash of the API's view."""
        what = f"inspecting list {name}"
        response = self._call("get", f"/manifests/{_q(name)}/json", what)
        if response.status_code == 404:
            return None
        _raise(response, f"{self.name}: {what}")
        data = self._fields(response, what)
        if "manifests" not in data:
            return None  # a plain image by that name, not a list
        digests = tuple(str(m["digest"]) for m in data["manifests"])
        platforms = tuple(_entry_platform(m.get("platform") or {}) for m in data["manifests"])
        record = self._list_record(name)
        if record is None:
            # podman 4.3's listing fails once any list in the store names an instance that is gone; then the form
            # both versions store a list in (an OCI index) stands, unconfirmed by storage's digests.
            stored = assumed_list(data)
            list_id = self._list_id(name, digests)
            return ListInfo(name, list_id, stored.digest, stored.media_type, stored.size, digests, platforms)
        known = [str(r).partition("@")[2] for r in record.get("RepoDigests") or []]
        stored = stored_list(data, known, str(record.get("Digest", "")))
        return ListInfo(name, str(record["Id"]), stored.digest, stored.media_type, stored.size, digests, platforms)

    def list_view(self, name: str) -> dict[str, Any] | None:
        """A local list as the engine shows it (podman manifest inspect), or None when no list has that name."""
        data = self._json("get", f"/manifests/{_q(name)}/json", missing_ok=True)
        return dict(data) if isinstance(data, dict) and "manifests" in data else None

    def _list_record(self, name: str) -> dict[str, Any] | None:
        """The list's own entry in the image listing (its id, and every manifest digest storage keeps for it).

        Filtered by name, which both versions answer: 4.3 fails a listing that meets a list holding an image
        for the host's platform, but not this one; 5.x also lists such an instance under the list's name.
        """
        try:
            entries = self._json_params("get", "/images/json", {"filters": json.dumps({"reference": [name]})})
        except EngineError:
            return None
        named = [e for e in entries if e.get("IsManifestList", bool(e.get("RepoTags")))]
        return dict(named[0]) if len(named) == 1 else None

    def _list_id(self, name: str, digests: Sequence[str]) -> str:
        """A list's storage id when the listing fails: 4.3 cannot inspect lists, but an empty annotate answers."""
        if not digests:
            return ""
        body = json.dumps({"operation": "annotate", "images": [digests[0]]})
        response = self._call("put", f"/manifests/{_q(name)}", f"inspecting list {name}", data=body)
        if response.status_code >= 400:
            return ""
        return str(self._fields(response, f"inspecting list {name}").get("Id", ""))

    def create_list(self, instances: Sequence[ListInstance]) -> ListInfo:
        """Make the list under a temporary name of imgfront's own; no name a user gave moves yet."""
        temporary = f"localhost/imgfront-tmp-{uuid.uuid4().hex[:16]}:list"
        created = self._call("post", f"/manifests/{_q(temporary)}", "creating list")
        _raise(created, f"{self.name}: creating list")
        try:
            for instance in instances:
                spec = instance.platform.to_oci()
                body = {
                    "operation": "update",
                    "images": [f"containers-storage:{instance.image_id}"],
                    "os": spec["os"],
                    "arch": spec["architecture"],
                    "variant": spec.get("variant", ""),
                }
                what = f"adding {instance.platform} to the list"
                response = self._call("put", f"/manifests/{_q(temporary)}", what, data=json.dumps(body))
                _raise(response, f"{self.name}: {what}")
            info = self.inspect_list(temporary)
            if info is None:
                raise EngineError(f"{self.name}: the list {temporary} vanished after it was made")
        except BaseException:
            with contextlib.suppress(EngineError):
                self._drop_list_name(temporary)
            raise
        return info

    def name_list(self, made: ListInfo, names: Sequence[str]) -> ListInfo:
        """Move each name onto a list create_list made, drop its temporary name and lists left nameless."""
        previous = [old for old in (self.inspect_list(n) for n in names) if old and old.id and old.id != made.id]
        for name in names:
            self.tag(made.id, name)
        self._drop_list_name(made.name)
        for old in previous:
            self._remove_if_nameless(old.id)
        info = self.inspect_list(names[0])
        if info is None:
            raise EngineError(f"{self.name}: the list {names[0]} vanished after it was named")
        return info

    def drop_list(self, made: ListInfo) -> None:
        self._drop_list_name(made.name)

    def _drop_list_name(self, name: str) -> None:
        """Remove a list by name: podman only untags it while the list has other names."""
        _raise(self._call("delete", f"/manifests/{_q(name)}", f"removing {name}"), f"{self.name}: removing {name}")

    def _remove_if_nameless(self, list_id: str) -> None:
        """Remove a list that lost its last name, and keep one that still has others.

        The untag API resolves a list to its host instance on podman 4.3, so give the list a
        throwaway name and remove that: podman deletes the list only when no other name is left.
        """
        probe = f"localhost/imgfront-probe-{uuid.uuid4().hex[:16]}:x"
        with contextlib.suppress(EngineError):
            self.tag(list_id, probe)
            self._drop_list_name(probe)

    # -- pushing ----------------------------------------------------------------------------------

    def _push(
        self, path: str, destination: str, credentials: Credentials | None, params: dict[str, Any]
    ) -> APIResponse:
        headers = {"X-Registry-Auth": credentials.header(destination.split("/", 1)[0])} if credentials else {}
        try:
            response = self._call("post", path, f"pushing {destination}", params=params, headers=headers)
        except EngineError as e:
            raise push_failure(destination, self.name, f"lost the connection: {e.__cause__}") from None
        if response.status_code >= 400:
            secrets = credentials.secrets if credentials else ()
            body = _json_or_none(response)
            cause = str(body.get("cause") or body.get("message")) if body else _error_text(response)
            raise push_failure(destination, self.name, cause, secrets)
        return response

    def push_list(self, name: str, destination: str, credentials: Credentials | None, tls_verify: bool | None) -> str:
        """libpod's manifest push with all=true: every instance first, the list last, so the tag moves once."""
        params: dict[str, Any] = {"all": True}
        if tls_verify is not None:
            params["tlsVerify"] = tls_verify
        path = f"/manifests/{_q(name)}/registry/{_q(destination)}"
        response = self._push(path, destination, credentials, params)
        digest = str((_json_or_none(response) or {}).get("Id", ""))
        if not digest.startswith("sha256:"):
            raise EngineError(f"{self.name}: pushing {destination} gave no digest: {response.text[:200]}")
        return digest

    def push_image(
        self,
        image_id: str,
        platform: Platform,
        destination: str,
        credentials: Credentials | None,
        tls_verify: bool | None,
    ) -> str:
        """Push to `repository@<digest>`: no tag moves. podman can then not recompress, so layers go as stored."""
        image = self.inspect_image(image_id)
        if image is None or not image.digest:
            raise EngineError(f"{platform}@{self.name}: image {image_id[:12]} is not in storage")
        target = f"{_repository(destination)}@{image.digest}"
        params: dict[str, Any] = {"destination": target}
        if tls_verify is not None:
            params["tlsVerify"] = tls_verify
        self._push(f"/images/{_q(image_id)}/push", target, credentials, params)
        return image.digest

    # -- plumbing ---------------------------------------------------------------------------------

    def _json(self, method: str, path: str, missing_ok: bool = False) -> Any:
        return self._json_params(method, path, None, missing_ok)

    def _json_params(self, method: str, path: str, params: dict[str, Any] | None, missing_ok: bool = False) -> Any:
        """A call whose transport failures (a service gone, say) are EngineErrors like its error answers."""
        response = self._call(method, path, path, params=params)
        if missing_ok and response.status_code == 404:
            return None
        _raise(response, f"{self.name}: {path}")
        return self._body(response, path)

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> APIResponse:
        """Every request to the service goes through here: what the transport or podman-py raises becomes an
        EngineError naming the node and `what`; an error answer is the caller's to read."""
        with self._translated(what):
            response: APIResponse = getattr(self.client.api, method)(path, **kwargs)
        return response

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except TRANSPORT_ERRORS as e:
            raise EngineError(f"{self.name}: {what}: {e}") from e

    def _body(self, response: APIResponse, what: str) -> Any:
        with self._translated(what):
            return response.json()

    def _fields(self, response: APIResponse, what: str) -> dict[str, Any]:
        body = self._body(response, what)
        if not isinstance(body, dict):
            raise EngineError(f"{self.name}: {what}: the service answered {str(body)[:80]!r}")
        return body

    def close(self) -> None:
        if self._client_now is not None:
            self._client_now.close()
            self._client_now = None


def _entry_platform(platform: Mapping[str, Any]) -> str:
    """A list entry's platform as os/arch[/variant]."""
    return "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))


def _cache_hint(error: str, request: BuildRequest) -> str | None:
    """For a registry cache the registry refused: what to fix, as for a push (credentials, TLS)."""
    if "cache" not in error or not (request.cache_to or request.cache_from):
        return None
    return cause_hint(error, (*request.cache_to, *request.cache_from)[0])


def _cache_auth_header(request: BuildRequest) -> dict[str, str]:
    """X-Registry-Config, the build API's credentials: base64url JSON of each cache registry's auth config."""
    if not request.cache_credentials:
        return {}
    configs = {server: c.registry_auth(server) for server, c in request.cache_credentials.items()}
    return {"X-Registry-Config": base64.urlsafe_b64encode(json.dumps(configs).encode()).decode()}


def _messages(response: APIResponse) -> Iterator[dict[str, Any]]:
    for raw in response.iter_lines():
        if raw.strip():
            message = json.loads(raw)
            if isinstance(message, dict):
                yield message


def _json_or_none(response: APIResponse) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_text(response: APIResponse) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("cause") or body)
    except ValueError:
        return str(response.text).strip()


def _repository(name: str) -> str:
    """`localhost/web` of `localhost/web:1` or `localhost/web@sha256:...`; a registry's port is kept."""
    name = name.partition("@")[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.partition(':')[0]}" if head else last.partition(":")[0]


def _config_digest(image: ImageInfo) -> str:
    return image.id if image.id.startswith("sha256:") else f"sha256:{image.id}"


def _platform_text(image: ImageInfo | None) -> str:
    return "/".join(p for p in (image.os, image.architecture, image.variant) if p) if image else "nothing"


def _raise(response: APIResponse, what: str) -> None:
    if response.status_code >= 400:
        raise EngineError(f"{what} failed: {_error_text(response)}")


__all__ = ["APIError", "PodmanBuilder"]


def _is_for(image: ImageInfo, platform: Platform) -> bool:
    return platform.matches_image(image.os, image.architecture, image.variant)
