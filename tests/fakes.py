"""FakeEngine: the one in-memory stand-in for an engine, named as a fake, for unit tests of whole builds.

It implements every `ImageBuilder` method over dictionaries: images with names and a "made by a build" flag,
manifest lists with names, pushes into a dict of registries. What each platform's build does is scripted:

- `Script.OK`: a new image (created by this build);
- `Script.CACHED`: the image already there for that platform (as podman reports a fully cached build);
- `Script.FAIL`: the step fails, with a log tail;
- `Script.BLOCK`: the build waits until it is cancelled;
- `Script.LOST`: the node goes away (NodeLost);
- `Script.INTERRUPT`: the process gets SIGINT while the build runs, as when the user presses Ctrl-C.

Real engines are tested in tests/integration; this fake only lets the logic above the seam (Build, the
scheduler, lists, metadata, push modes) be driven end to end in milliseconds.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

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
)
from imgfront.errors import Cancelled, EngineError, NodeLost, PlatformBuildError
from imgfront.model import Credentials
from imgfront.nodes.connections import Connection
from imgfront.platforms import Platform

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
# What nodes of each engine report, for unit tests of the options' rules (check_support, fit_engines).
PODMAN4 = NodeInfo("old", "podman", "4.3.1", "4.3.1", (AMD64,), ())
PODMAN5 = NodeInfo("new", "podman", "5.4.2", "5.4.2", (AMD64,), ())
DOCKER = NodeInfo("dock", "docker", "20.10.24", "1.41", (AMD64,), ())
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class Script(enum.Enum):
    OK = "ok"
    CACHED = "cached"
    FAIL = "fail"
    BLOCK = "block"
    LOST = "lost"
    INTERRUPT = "interrupt"


@dataclass
class FakeImage:
    info: ImageInfo
    names: set[str] = field(default_factory=set)


@dataclass
class FakeList:
    id: str
    instances: tuple[tuple[str, Platform], ...]  # (image id, platform)
    names: set[str] = field(default_factory=set)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(json.dumps([i for i, _ in self.instances]).encode()).hexdigest()


_counter = itertools.count(1)


def _new_id() -> str:
    return hashlib.sha256(f"{os.getpid()}-{next(_counter)}".encode()).hexdigest()


class FakeEngine(ImageBuilder):
    """An in-memory engine (a fake: no podman behind it), scripted per platform."""

    driver = "fake"
    loads_oci = True

    def __init__(
        self,
        name: str = "local",
        native: Sequence[Platform] = (AMD64,),
        emulated: Sequence[Platform] = (ARM64,),
        script: Mapping[Platform, Script] | None = None,
        push_fails: bool = False,
    ) -> None:
        self.name = name
        self.connection = Connection(name, f"fake://{name}")
        self.native, self.emulated = tuple(native), tuple(emulated)
        self.script = dict(script or {})
        self.push_fails = push_fails
        self.images: dict[str, FakeImage] = {}
        self.lists: dict[str, FakeList] = {}
        self.pushed: dict[str, str] = {}  # destination -> what was pushed there (list or image id)
        self.removed: list[str] = []
        self.builds: list[Platform] = []
        self.requests: list[BuildRequest] = []  # every build request, as the adapter got it
        self._lock = threading.Lock()

    # -- what a test sets up and checks -----------------------------------------------------------

    def add_image(self, platform: Platform, names: Sequence[str] = ()) -> str:
        spec = platform.to_oci()
        image_id = _new_id()
        info = ImageInfo(image_id, f"sha256:{image_id}", spec["os"], spec["architecture"], spec.get("variant"), {})
        self.images[image_id] = FakeImage(info, set(names))
        return image_id

    def list_named(self, name: str) -> FakeList | None:
        return next((lst for lst in self.lists.values() if name in lst.names), None)

    def runnable(self, name: str, platform: Platform) -> bool:
        """What `podman run --platform` checks: the list under `name` has an instance for it that is in storage."""
        found = self.list_named(name)
        return found is not None and any(p == platform and i in self.images for i, p in found.instances)

    # -- the interface ----------------------------------------------------------------------------

    def status(self) -> None:
        pass

    def info(self) -> NodeInfo:
        return NodeInfo(self.name, self.driver, "0.0", "0.0", self.native, self.emulated)

    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        where = f"{request.platform}@{self.name}"
        with self._lock:
            self.builds.append(request.platform)
            self.requests.append(request)
        script = self.script.get(request.platform, Script.OK)
        events.step(1, 1, f"RUN {script.value}")
        if script is Script.FAIL:
            raise PlatformBuildError(f"{where}: step 1 failed", ("broken",))
        if script is Script.LOST:
            raise NodeLost(f"{where}: lost the connection to the build")
        if script in (Script.BLOCK, Script.INTERRUPT):
            woken = threading.Event()
            cancel.on_cancel(woken.set)
            if script is Script.INTERRUPT:
                os.kill(os.getpid(), signal.SIGINT)
            woken.wait(10)
            raise Cancelled(f"{where}: cancelled")
        if cancel.cancelled:
            raise Cancelled(f"{where}: cancelled")
        if script is Script.CACHED:
            cached = next(
                (
                    i
                    for i, img in self.images.items()
                    if request.platform.matches_image(img.info.os, img.info.architecture, img.info.variant)
                ),
                None,
            )
            if cached is None:
                raise AssertionError(f"Script.CACHED for {request.platform}, but {self.name} holds no such image")
            return BuildReport(cached, f"sha256:{cached}", request.platform, self.name, 0.0, created=False)
        image_id = self.add_image(request.platform)
        time.sleep(0.01)
        return BuildReport(image_id, f"sha256:{image_id}", request.platform, self.name, 0.01, created=True)

    def clean_cancelled(self) -> tuple[str, ...]:
        return ()

    def inspect_image(self, ref: str) -> ImageInfo | None:
        found = self.images.get(ref) or next((img for img in self.images.values() if ref in img.names), None)
        return replace(found.info, names=tuple(sorted(found.names))) if found else None

    def export_image(self, image_id: str, oci: bool = False) -> Iterator[bytes]:
        info = self.images[image_id].info
        yield json.dumps({"id": info.id, "os": info.os, "arch": info.architecture, "variant": info.variant}).encode()

    def import_image(self, chunks: Iterator[bytes]) -> str:
        data = json.loads(b"".join(chunks))
        info = ImageInfo(data["id"], f"sha256:{data['id']}", data["os"], data["arch"], data["variant"], {})
        self.images.setdefault(data["id"], FakeImage(info))
        return str(data["id"])

    def remove_image(self, ref: str, force: bool = False) -> None:
        if ref in self.images:
            del self.images[ref]
            self.removed.append(ref)

    def prune(self) -> None:
        pass

    def inspect_list(self, name: str) -> ListInfo | None:
        found = self.list_named(name) or self.lists.get(name)
        if found is None:
            return None
        digests = tuple(f"sha256:{i}" for i, _ in found.instances)
        return ListInfo(
            name, found.id, found.digest, OCI_INDEX, 100, digests, tuple(str(p) for _, p in found.instances)
        )

    def create_list(self, instances: Sequence[ListInstance]) -> ListInfo:
        made = FakeList(_new_id(), tuple((i.image_id, i.platform) for i in instances))
        temporary = f"localhost/imgfront-tmp-{made.id[:16]}:list"
        made.names.add(temporary)
        self.lists[made.id] = made
        info = self.inspect_list(temporary)
        assert info is not None
        return info

    def name_list(self, made: ListInfo, names: Sequence[str]) -> ListInfo:
        for other in self.lists.values():
            other.names.difference_update(names)
        self.lists[made.id].names.update(names)
        self.lists[made.id].names.discard(made.name)
        for list_id in [i for i, lst in self.lists.items() if not lst.names]:
            del self.lists[list_id]
        info = self.inspect_list(names[0])
        assert info is not None
        return info

    def drop_list(self, made: ListInfo) -> None:
        self.lists.pop(made.id, None)

    def push_list(self, name: str, destination: str, credentials: Credentials | None, tls_verify: bool | None) -> str:
        if self.push_fails:
            raise EngineError(f"{self.name}: pushing {destination} failed: the registry refused it")
        found = self.inspect_list(name)
        assert found is not None
        self.pushed[destination] = found.id
        return found.digest

    def push_image(
        self,
        image_id: str,
        platform: Platform,
        destination: str,
        credentials: Credentials | None,
        tls_verify: bool | None,
    ) -> str:
        if self.push_fails:
            raise EngineError(f"{self.name}: pushing {destination} failed: the registry refused it")
        self.pushed[destination] = image_id
        return f"sha256:{image_id}"

    def close(self) -> None:
        pass
