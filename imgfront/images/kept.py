"""The attestations of images in local storage, which has no place for artifacts of its own.

They are kept as a registry would keep them, under the user's data folder (`$XDG_DATA_HOME/imgfront/attestations`):
a BlobStore of artifact manifests and documents (images/artifacts.py), and, per subject, its referrers index as
`referrers/sha256-<hex>.json`. Everything is found by the local image's manifest digest, so one folder serves every
store and engine; a later build of the same image replaces its documents of each type in the index (their blobs
stay). Two builds of one image at once may each write the index: the last one's entries are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgfront.images.artifacts import Attestation, add_artifact, document_digest, referrers_index, referrers_tag
from imgfront.images.blobs import BlobStore, Descriptor
from imgfront.util.files import data_home, write_atomically


def default_root() -> Path:
    return data_home() / "imgfront" / "attestations"


class KeptAttestations:
    """A local image's artifacts, found by its manifest digest as the referrers API finds them."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()
        self.store = BlobStore(self.root)
        self.referrers = self.root / "referrers"

    def _index_path(self, subject_digest: str) -> Path:
        return self.referrers / f"{referrers_tag(subject_digest)}.json"

    def add(self, subject: Descriptor, attestations: Sequence[Attestation]) -> list[Descriptor]:
        """Store each as an artifact of `subject` and list it in the subject's referrers index, in place of an
        earlier build's of the same type: the image is the same, and the newest document describes it."""
        added = [add_artifact(self.store, subject, a) for a in attestations]
        if not added:
            return added
        entries = self.find(subject.digest)
        replaced = {a.artifact_type for a in added}
        kept = [Descriptor.from_json(e) for e in entries if e.get("artifactType") not in replaced]
        new = kept + list(dict.fromkeys(added))
        if [a.digest for a in new] != [str(e.get("digest")) for e in entries]:
            write_atomically(self._index_path(subject.digest), referrers_index(new), mode=0o644)
        return added

    def find(self, subject_digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
        """The subject's referrers index entries, of one artifact type when given; none when it has none."""
        try:
            index = json.loads(self._index_path(subject_digest).read_bytes())
        except FileNotFoundError:
            return []
        entries = index.get("manifests") or []
        return [dict(e) for e in entries if artifact_type is None or e.get("artifactType") == artifact_type]

    def document(self, artifact_digest: str) -> bytes:
        """An artifact's document, as stored."""
        return self.store.read(document_digest(self.store.json(artifact_digest)))
