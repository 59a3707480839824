"""A content-addressed blob store that takes an image archive streamed from a node: oci-archive or docker-archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from imgfront.errors import EngineError
from imgfront.platforms import Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
INDEXES = (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    artifact_type: str | None = None  # an OCI 1.1 artifact's type, as referrers lists carry it
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)  # not hashed: a dict cannot be

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            data["platform"] = self.platform.to_oci()
        if self.artifact_type is not None:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        """A descriptor as an index or referrers list holds it; a platform is not read back."""
        return cls(
            str(data["mediaType"]),
            str(data["digest"]),
            int(data["size"]),
            artifact_type=data.get("artifactType"),
            annotations=dict(data.get("annotations") or {}),
        )


class _ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


class BlobStore:
    """Blobs under ROOT/blobs/sha256/<hex>, each written to a temporary name, hashed, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or not hexdigest:
            raise EngineError(f"unsupported digest {digest!r} in an exported image")
        return self.blobs / hexdigest

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def json(self, digest: str) -> Any:
        return json.loads(self.read(digest))

    def add_file(self, source: IO[bytes]) -> str:
        hasher = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=self.blobs)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        os.replace(tmp, self.blobs / hasher.hexdigest())
        return f"sha256:{hasher.hexdigest()}"

    def add_bytes(self, data: bytes) -> str:
        return self.add_file(io.BytesIO(data))

    def add_archive(self, chunks: Iterator[bytes]) -> dict[str, str]:
        """Store every file of a tar stream; each file's name in it (links resolved) and its digest here."""
        files: dict[str, str] = {}
        links: dict[str, str] = {}
        with tarfile.open(fileobj=io.BufferedReader(_ChunkReader(chunks), CHUNK), mode="r|") as archive:
            for member in archive:
                name = posixpath.normpath(member.name.lstrip("/"))
                if member.isfile():
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    files[name] = self.add_file(extracted)
                elif member.issym():  # docker save links a layer it has written once already
                    links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        return {**{name: files[target] for name, target in links.items() if target in files}, **files}

    def import_archive(self, chunks: Iterator[bytes]) -> Descriptor:
        """Store every file of an oci-archive or docker-archive stream; return the image's manifest (OCI)."""
        files = self.add_archive(chunks)

        def digest_of(name: str) -> str:
            name = posixpath.normpath(name)
            if name not in files:
                raise EngineError(f"the exported image lacks {name}")
            return files[name]

        if "index.json" in files:
            return self._from_oci(self.json(files["index.json"]), digest_of)
        if "manifest.json" in files:
            return self._from_docker(self.json(files["manifest.json"]), digest_of)
        raise EngineError("the exported image is neither an oci-archive nor a docker-archive")

    def _from_oci(self, index: dict[str, Any], digest_of: Callable[[str], str]) -> Descriptor:
        manifests = index.get("manifests") or []
        if len(manifests) != 1 or manifests[0].get("mediaType") in INDEXES:
            raise EngineError("the exported oci-archive does not hold exactly one image manifest")
        digest = manifests[0]["digest"]
        if digest_of(f"blobs/{digest.replace(':', '/')}") != digest:
            raise EngineError(f"the exported oci-archive's manifest does not match its digest {digest}")
        manifest = self.json(digest)
        for blob in [manifest["config"], *manifest.get("layers", [])]:
            digest_of(f"blobs/{blob['digest'].replace(':', '/')}")  # present, and its content matches its name
        media_type = manifests[0].get("mediaType") or manifest.get("mediaType") or OCI_MANIFEST
        return Descriptor(media_type, digest, self.size(digest))

    def _from_docker(self, entries: list[dict[str, Any]], digest_of: Callable[[str], str]) -> Descriptor:
        """Docker's save format: the config and layer tars are kept as they are, under an OCI manifest."""
        if len(entries) != 1:
            raise EngineError("the exported docker-archive does not hold exactly one image")
        config = digest_of(entries[0]["Config"])
        layers = [digest_of(layer) for layer in entries[0]["Layers"]]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor(OCI_CONFIG, config, self.size(config)).to_json(),
            "layers": [Descriptor(OCI_LAYER, layer, self.size(layer)).to_json() for layer in layers],
        }
        data = json.dumps(manifest, indent=None, separators=(",", ":")).encode()
        return Descriptor(OCI_MANIFEST, self.add_bytes(data), len(data))
