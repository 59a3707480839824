"""Where `imgfront diff` reads an image or list from, named as skopeo's transports name them.

- `containers-storage:NAME`, or NAME with no prefix: a list or image in the local podman's storage; each
  instance is exported through the API as an oci-archive (gzip layers), as file outputs are;
- `docker://REGISTRY/REPO[:TAG|@DIGEST]`: a registry, with the auth files' credentials and `--tls-verify`;
- `oci:DIR[:REF]` (or `oci-layout:`): an OCI image layout; `oci-archive:FILE[:REF]`: a tar of one.

Each is a thin `ImageSource` for `oci/diff.py`: the root manifest or index, an entry's image manifest, and blobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from imgfront.errors import EngineError, UsageError
from imgfront.images.blobs import CHUNK, OCI_MANIFEST, BlobStore
from imgfront.oci.diff import DiffError, Node
from imgfront.oci.index import serialisations
from imgfront.oci.references import Reference, parse_reference

if TYPE_CHECKING:
    from imgfront.engines.podman import PodmanBuilder
    from imgfront.oci.client import RegistryClient
    from imgfront.oci.diff import ImageSource

REF_NAME = "org.opencontainers.image.ref.name"
# A REF argument's help, for each command that reads one through Sources.
REF_HELP = (
    "NAME or containers-storage:NAME (local podman storage), docker://REGISTRY/REPO[:TAG|@DIGEST], "
    "oci:DIR[:REF] (or oci-layout:), oci-archive:FILE[:REF]."
)
TRANSPORTS = ("containers-storage:", "docker://", "oci:", "oci-layout:", "oci-archive:")
_UNSUPPORTED = ("docker-archive:", "docker-daemon:", "dir:", "ostree:", "sif:")
_IMAGE_ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class SourceOptions:
    tls_verify: bool | None = None
    authfile: Path | None = None


@dataclass(frozen=True)
class RegistryRef:
    """docker://REGISTRY/REPO[:TAG|@DIGEST]."""

    text: str
    reference: Reference


@dataclass(frozen=True)
class LayoutRef:
    """oci:DIR[:REF] or oci-layout:DIR[:REF] (a folder), oci-archive:FILE[:REF] (a tar of one)."""

    text: str
    path: Path
    ref: str | None
    archive: bool


@dataclass(frozen=True)
class LocalRef:
    """NAME or containers-storage:NAME: a list or image in the local podman's storage, by name or image id."""

    text: str
    name: str


SourceRef = RegistryRef | LayoutRef | LocalRef


def parse_source(text: str) -> SourceRef:
    """Which transport a reference names, and what it names there; nothing is opened yet."""
    if text.startswith("docker://"):
        return RegistryRef(text, parse_reference(text.removeprefix("docker://"), digest=True))
    for prefix in ("oci:", "oci-layout:", "oci-archive:"):
        if text.startswith(prefix):
            path, ref = _split_ref(text.removeprefix(prefix))
            return LayoutRef(text, path, ref, archive=prefix == "oci-archive:")
    name = text.removeprefix("containers-storage:")
    if not name:
        raise UsageError(f"no image name in {text!r}")
    if "://" in name or name.startswith(_UNSUPPORTED):
        raise UsageError(f"unsupported transport in {text!r}", hint=f"use one of {', '.join(TRANSPORTS)}")
    if not _IMAGE_ID.match(name):
        name = str(parse_reference(name, digest=True))
    return LocalRef(text, name)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _open_file(path: Path, what: str) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise DiffError(f"{what}: blob {path.name[:12]} is missing") from None


class LayoutSource:
    """An OCI image layout: index.json names the image or list (by `REF` when several are there)."""

    def __init__(self, label: str, index: bytes, path_of: Callable[[str], Path], ref: str | None) -> None:
        self.label = label
        self._index = index
        self._path_of = path_of
        self._ref = ref

    def _read(self, digest: str) -> bytes:
        with _open_file(self._path_of(digest), self.label) as f:
            return f.read()

    def _node(self, entry: Mapping[str, Any]) -> Node:
        digest = str(entry.get("digest", ""))
        body = self._read(digest)
        if _sha256(body) != digest:
            raise DiffError(f"{self.label}: blob {digest[:19]} does not match its digest")
        media_type = entry.get("mediaType") or json.loads(body).get("mediaType") or OCI_MANIFEST
        return Node(str(media_type), digest, body)

    def root(self) -> Node:
        try:
            index = json.loads(self._index)
            entries = list(index.get("manifests") or [])
        except (ValueError, AttributeError):
            raise DiffError(f"{self.label}: index.json is not an image index") from None
        if self._ref is not None:
            named = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == self._ref]
            if not named:
                raise DiffError(f"{self.label}: no image named {self._ref!r} in index.json")
            return self._node(named[0])
        if len(entries) == 1:
            return self._node(entries[0])
        return Node(
            str(index.get("mediaType") or "application/vnd.oci.image.index.v1+json"), _sha256(self._index), self._index
        )

    def instance(self, entry: Mapping[str, Any]) -> Node:
        return self._node(entry)

    def blob(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return _open_file(self._path_of(digest), self.label)


def _split_ref(text: str) -> tuple[Path, str | None]:
    """DIR or DIR:REF; a path that exists as given wins over a reference after its last colon."""
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    path, _, ref = text.rpartition(":")
    return Path(path), ref or None


def open_layout(label: str, folder: Path, ref: str | None) -> LayoutSource:
    if not (folder / "index.json").is_file() or not (folder / "blobs" / "sha256").is_dir():
        raise UsageError(f"{label}: {folder} is not an OCI image layout (no index.json and blobs/sha256/)")
    store = BlobStore(folder)  # its folders are there already, so this writes nothing
    return LayoutSource(label, (folder / "index.json").read_bytes(), _checked_path(store, label), ref)


def _checked_path(store: BlobStore, label: str) -> Callable[[str], Path]:
    def path_of(digest: str) -> Path:
        try:
            return store.path(digest)
        except EngineError as e:  # not a sha256 digest
            raise DiffError(f"{label}: {e.message}") from None

    return path_of


def _temporary_store(stack: contextlib.ExitStack) -> BlobStore:
    return BlobStore(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imgfront-diff-"))))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def open_archive(label: str, path: Path, ref: str | None, stack: contextlib.ExitStack) -> LayoutSource:
    """An oci-archive, unpacked into a content-addressed store: so each blob is checked against its name."""
    if not path.is_file():
        raise UsageError(f"{label}: no file {path}")
    store = _temporary_store(stack)
    try:
        names = store.add_archive(_file_chunks(path))
    except (OSError, tarfile.TarError, EngineError) as e:
        raise DiffError(f"{label}: cannot read {path} as a tar archive: {e}") from None
    if "index.json" not in names:
        raise UsageError(f"{label}: {path} is not an oci-archive (no index.json)")

    def path_of(digest: str) -> Path:
        stored = names.get(f"blobs/{digest.replace(':', '/')}")
        if stored is None:
            raise DiffError(f"{label}: blob {digest[:19]} is missing")
        if stored != digest:
            raise DiffError(f"{label}: blob {digest[:19]} does not match its digest")
        return store.path(stored)

    return LayoutSource(label, store.read(names["index.json"]), path_of, ref)


class RegistrySource:
    def __init__(self, label: str, client: RegistryClient, repository: str, reference: str) -> None:
        self.label = label
        self._client = client
        self._repository = repository
        self._reference = reference

    def _node(self, reference: str) -> Node:
        manifest = self._client.manifest(self._repository, reference)
        return Node(manifest.media_type, manifest.digest, manifest.body)

    def root(self) -> Node:
        return self._node(self._reference)

    def instance(self, entry: Mapping[str, Any]) -> Node:
        return self._node(str(entry.get("digest", "")))

    def blob(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self._client.open_blob(self._repository, digest)


class LocalSource:
    """A list or image in local podman storage; instances are exported (oci-archive) on first use."""

    def __init__(self, label: str, builder: PodmanBuilder, name: str, stack: contextlib.ExitStack) -> None:
        self.label = label
        self._builder = builder
        self._name = name
        self._stack = stack
        self._store: BlobStore | None = None
        self._ids: dict[str, str] = {}  # an instance's manifest digest -> its image id

    def _exported(self, image_id: str) -> Node:
        if self._store is None:
            self._store = _temporary_store(self._stack)
        manifest = self._store.import_archive(self._builder.export_image(image_id, oci=True))
        return Node(manifest.media_type, manifest.digest, self._store.read(manifest.digest))

    def root(self) -> Node:
        view = self._builder.list_view(self._name)
        if view is not None:
            info = self._builder.inspect_list(self._name)
            forms = dict(serialisations(view))
            body = next((b for b in forms.values() if info and _sha256(b) == info.digest), None)
            media_type = next((m for m, b in forms.items() if b == body), None)
            if body is None or media_type is None:
                media_type, body = next(iter(forms.items()))
            for image in self._builder.list_images(self._name) or ():
                self._ids[image.digest] = image.id
            return Node(media_type, (info.digest if info and info.digest else _sha256(body)), body)
        single = self._builder.inspect_image(self._name)
        if single is None:
            raise UsageError(
                f"{self.label}: no list or image named {self._name} in local storage",
                hint="for a registry write docker://REF, for a layout oci:DIR",
            )
        return self._exported(single.id)

    def instance(self, entry: Mapping[str, Any]) -> Node:
        digest = str(entry.get("digest", ""))
        image_id = self._ids.get(digest)
        if image_id is None:
            raise DiffError(f"{self.label}: the list's instance {digest[:19]} is not in local storage")
        return self._exported(image_id)

    def blob(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        if self._store is None:
            raise DiffError(f"{self.label}: blob {digest[:19]} was not exported")
        return _open_file(self._store.path(digest), self.label)


class Sources:
    """Opens each reference's source; the local engine once, and only when a reference needs it."""

    def __init__(self, options: SourceOptions, stack: contextlib.ExitStack) -> None:
        self._options = options
        self._stack = stack
        self._local: PodmanBuilder | None = None

    def local_engine(self) -> PodmanBuilder:
        """The local podman, opened on first use and closed with the stack."""
        if self._local is None:
            from imgfront.engines import open_local

            self._local = self._stack.enter_context(open_local())
        return self._local

    def client(self, source: RegistryRef) -> RegistryClient:
        """A client for the registry a docker:// reference names, with the auth files' credentials."""
        from imgfront.oci.client import open_registry

        return self._stack.enter_context(
            open_registry(source.reference, self._options.tls_verify, self._options.authfile)
        )

    def open(self, text: str) -> ImageSource:
        return self.open_ref(parse_source(text))

    def open_ref(self, source: SourceRef) -> ImageSource:
        label = source.text
        if isinstance(source, RegistryRef):
            reference = source.reference
            return RegistrySource(label, self.client(source), reference.path, reference.digest or reference.tag)
        if isinstance(source, LayoutRef):
            if source.archive:
                return open_archive(label, source.path, source.ref, self._stack)
            return open_layout(label, source.path, source.ref)
        return LocalSource(label, self.local_engine(), source.name, self._stack)
