"""One image of a BlobStore as an oci-archive: what `podman load` takes, and what file outputs import again."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from imgfront.images.blobs import CHUNK, OCI_INDEX, BlobStore, Descriptor


def image_blobs(store: BlobStore, manifest: Descriptor) -> list[str]:
    """The manifest, its config and its layers: what an image needs from the store."""
    data = store.json(manifest.digest)
    return [manifest.digest, data["config"]["digest"], *(layer["digest"] for layer in data.get("layers", []))]


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    archive.addfile(info, io.BytesIO(data))


def write_archive(store: BlobStore, manifest: Descriptor, target: Path) -> None:
    """An oci-archive whose index.json names the manifest itself (no index under it), as `podman save` writes."""
    entry = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(archive, "index.json", json.dumps(index, separators=(",", ":")).encode())
        for digest in dict.fromkeys(image_blobs(store, manifest)):
            info = archive.gettarinfo(store.path(digest), arcname=f"blobs/sha256/{digest.partition(':')[2]}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with store.path(digest).open("rb") as blob:
                archive.addfile(info, blob)


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def archive_chunks(store: BlobStore, manifest: Descriptor, path: Path) -> Iterator[bytes]:
    """The image as an oci-archive stream (write_archive's), written to `path` first and removed after."""
    write_archive(store, manifest, path)
    try:
        yield from file_chunks(path)
    finally:
        path.unlink()
