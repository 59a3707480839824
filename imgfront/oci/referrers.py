"""Attestation artifacts in a registry and in an OCI layout: pushing them, finding an image's, reading one.

A registry with the OCI 1.1 referrers API indexes an artifact's `subject` itself and says so with the
`OCI-Subject` header. Without it (distribution 2.8, as Debian ships it), the distribution spec's referrers
tag schema stands in: an image index tagged `sha256-<hex of the subject>` lists the subject's artifacts, and
whoever pushes one keeps that index up to date. Two pushers at once can lose each other's entry there; the
spec accepts that race, and pushing again restores it.

Layouts written by outputs/layout.py hold the same tag schema one level down (see write_layout).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from imgfront.errors import EngineError
from imgfront.images.artifacts import (
    REFERRERS_ANNOTATION,
    artifact_blobs,
    canonical_json,
    document_digest,
    referrers_tag,
    subject_of,
    tagged,
)
from imgfront.images.blobs import OCI_INDEX, BlobStore, Descriptor
from imgfront.oci.client import RegistryClient, RegistryError


def push_artifacts(
    client: RegistryClient, repository: str, store: BlobStore, artifacts: Sequence[Descriptor]
) -> list[str]:
    """Upload each artifact's blobs (those there already are skipped), put its manifest by digest, and, where
    the registry does not index subjects itself, add it to the subject's `sha256-<hex>` index.

    The subject must be in the repository first: a registry may refuse an artifact whose subject it lacks.
    Returns the artifact digests.
    """
    pushed = []
    fallback: dict[str, list[Descriptor]] = {}  # subject -> artifacts the registry did not index
    for artifact in artifacts:
        for digest in artifact_blobs(store, artifact)[1:]:
            client.upload_blob(repository, digest, store.path(digest))
        put = client.put_manifest_response(
            repository, artifact.digest, store.read(artifact.digest), artifact.media_type
        )
        if put.digest != artifact.digest:
            raise RegistryError(f"{client.host}/{repository}: the registry named {artifact.digest} {put.digest}")
        if put.subject is None:
            fallback.setdefault(subject_of(store.json(artifact.digest)), []).append(artifact)
        pushed.append(artifact.digest)
    for subject, added in fallback.items():
        _add_to_tag(client, repository, subject, added)
    return pushed


def _add_to_tag(client: RegistryClient, repository: str, subject: str, added: Sequence[Descriptor]) -> None:
    """Read the subject's referrers index (none yet: empty), add what it lacks, and put it back if it changed."""
    tag = referrers_tag(subject)
    found = client.find_manifest(repository, tag, push=True)
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if found is not None:
        if found.media_type != OCI_INDEX:
            raise RegistryError(f"{client.host}/{repository}:{tag} is a {found.media_type}, not a referrers index")
        index = found.json()
    entries = list(index.get("manifests") or [])
    known = {str(entry.get("digest")) for entry in entries}
    new = [a.to_json() for a in added if a.digest not in known]
    if not new:
        return
    index["manifests"] = entries + list({entry["digest"]: entry for entry in new}.values())
    client.put_manifest(repository, tag, canonical_json(index), OCI_INDEX)


def _matching(entries: Sequence[Any], artifact_type: str | None) -> list[dict[str, Any]]:
    descriptors = [dict(e) for e in entries if isinstance(e, dict)]
    return [e for e in descriptors if artifact_type is None or e.get("artifactType") == artifact_type]


def find_referrers(
    client: RegistryClient, repository: str, subject_digest: str, artifact_type: str | None = None
) -> list[dict[str, Any]]:
    """The descriptors of the artifacts that refer to a manifest, of one artifactType when given.

    The referrers API first; a registry without it (404, or an answer that is no index) is read through the
    `sha256-<hex>` tag. The type is filtered here too: a registry may ignore the filter (the spec lets it).
    """
    listed = client.referrers(repository, subject_digest, artifact_type)
    if listed is None:
        found = client.find_manifest(repository, referrers_tag(subject_digest))
        if found is None or not found.is_index:
            return []
        listed = found.json()
    return _matching(listed.get("manifests") or [], artifact_type)


def fetch_document(client: RegistryClient, repository: str, artifact_digest: str) -> bytes:
    """An artifact's document (its one layer), checked against its digest."""
    manifest = client.manifest(repository, artifact_digest).json()
    return client.read_blob(repository, document_digest(manifest))


# -- in a layout or oci-archive -------------------------------------------------------------------


@contextlib.contextmanager
def _layout_files(layout: Path) -> Iterator[Callable[[str], bytes]]:
    """A reader of an OCI layout's files by name: in a folder, or in a tar of one (an oci-archive)."""
    if layout.is_dir():

        def from_folder(name: str) -> bytes:
            try:
                return (layout / name).read_bytes()
            except FileNotFoundError:
                raise EngineError(f"{layout}: no {name} in the layout") from None

        yield from_folder
        return
    with tarfile.open(layout) as archive:
        members = {m.name.removeprefix("./"): m for m in archive.getmembers() if m.isfile()}

        def from_archive(name: str) -> bytes:
            extracted = archive.extractfile(members[name]) if name in members else None
            if extracted is None:
                raise EngineError(f"{layout}: no {name} in the archive")
            with extracted:
                return extracted.read()

        yield from_archive


def _blob_json(read: Callable[[str], bytes], digest: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_blob(read, digest))
    return data


def _blob(read: Callable[[str], bytes], digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or not hexdigest:
        raise EngineError(f"unsupported digest {digest!r} in a layout")
    data = read(f"blobs/sha256/{hexdigest}")
    if hashlib.sha256(data).hexdigest() != hexdigest:
        raise EngineError(f"the layout's blob {digest} does not match its digest")
    return data


def find_layout_referrers(layout: Path, subject_digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
    """find_referrers for a layout folder or oci-archive that write_layout made: through index.json's
    `dev.imgfront.referrers` index, the subject's `sha256-<hex>` entry. A layout without them has none."""
    with _layout_files(layout) as read:
        top = json.loads(read("index.json"))
        tags_digest = (top.get("annotations") or {}).get(REFERRERS_ANNOTATION)
        if not tags_digest:
            return []
        entry = tagged(_blob_json(read, str(tags_digest)), referrers_tag(subject_digest))
        if entry is None:
            return []
        return _matching(_blob_json(read, str(entry["digest"])).get("manifests") or [], artifact_type)


def layout_document(layout: Path, artifact_digest: str) -> bytes:
    """fetch_document for a layout folder or oci-archive."""
    with _layout_files(layout) as read:
        return _blob(read, document_digest(_blob_json(read, artifact_digest)))
