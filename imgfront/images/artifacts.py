"""Attestations (an SBOM, provenance) as OCI 1.1 artifacts that refer to an image manifest by `subject`.

An artifact is an image manifest with an `artifactType`, the empty config and one layer: the document. Its
bytes are canonical JSON, so the same image and document always give the same artifact digest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imgfront.errors import EngineError
from imgfront.images.blobs import OCI_INDEX, OCI_MANIFEST, BlobStore, Descriptor

SBOM_TYPE = "application/spdx+json"
PROVENANCE_TYPE = "application/vnd.in-toto+json"
KINDS = {"sbom": SBOM_TYPE, "provenance": PROVENANCE_TYPE}
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
KIND_ANNOTATION = "dev.imgfront.attestation"
REF_NAME = "org.opencontainers.image.ref.name"
# On a layout's index.json: the digest of its tags index (tags_index), where each subject's referrers are.
REFERRERS_ANNOTATION = "dev.imgfront.referrers"


@dataclass(frozen=True)
class Attestation:
    kind: str  # "sbom" | "provenance"
    media_type: str  # SBOM_TYPE | PROVENANCE_TYPE
    data: bytes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown attestation kind {self.kind!r}: use one of {', '.join(KINDS)}")


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def referrers_tag(subject_digest: str) -> str:
    """The distribution spec's fallback tag for a subject's referrers: `sha256-<hex>`."""
    algorithm, _, hexdigest = subject_digest.partition(":")
    return f"{algorithm}-{hexdigest}"


def add_artifact(store: BlobStore, subject: Descriptor, attestation: Attestation) -> Descriptor:
    """Store the document, the empty config and the artifact manifest; return the manifest's descriptor.

    The descriptor carries `artifactType` and the kind annotation, as a referrers list holds it.
    """
    empty = store.add_bytes(EMPTY_DATA)
    assert empty == EMPTY_DIGEST
    document = Descriptor(attestation.media_type, store.add_bytes(attestation.data), len(attestation.data))
    annotations = {KIND_ANNOTATION: attestation.kind}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": attestation.media_type,
        "config": Descriptor(EMPTY_TYPE, empty, len(EMPTY_DATA)).to_json(),
        "layers": [document.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
        "annotations": annotations,
    }
    data = canonical_json(manifest)
    digest = store.add_bytes(data)
    return Descriptor(OCI_MANIFEST, digest, len(data), artifact_type=attestation.media_type, annotations=annotations)


def referrers_index(artifacts: Sequence[Descriptor]) -> bytes:
    """An image index listing artifacts, as the referrers API and its tag schema answer: canonical JSON."""
    entries = [a.to_json() for a in dict.fromkeys(artifacts)]  # once each, in the order given
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def artifact_blobs(store: BlobStore, artifact: Descriptor) -> list[str]:
    """The artifact manifest, its config and its document: what it needs from the store."""
    data = store.json(artifact.digest)
    return [artifact.digest, data["config"]["digest"], *(layer["digest"] for layer in data.get("layers", []))]


def subject_of(manifest: dict[str, Any]) -> str:
    """The digest an artifact manifest refers to."""
    subject = manifest.get("subject") or {}
    if not subject.get("digest"):
        raise EngineError("the artifact manifest has no subject")
    return str(subject["digest"])


def document_digest(manifest: dict[str, Any]) -> str:
    """The one layer of an artifact manifest: the document's digest."""
    layers = manifest.get("layers") or []
    if len(layers) != 1:
        raise EngineError(f"an attestation artifact holds one document, this one {len(layers)}")
    return str(layers[0]["digest"])


def tags_index(store: BlobStore, artifacts: Mapping[str, Sequence[Descriptor]]) -> Descriptor | None:
    """The referrers tag schema as one index: per subject, its referrers index named `sha256-<hex>`.

    Stores every referrers index and the index over them; None when no subject has artifacts.
    """
    entries = []
    for subject, found in sorted(artifacts.items()):
        if not found:
            continue
        body = referrers_index(found)
        tag = {REF_NAME: referrers_tag(subject)}
        entries.append(Descriptor(OCI_INDEX, store.add_bytes(body), len(body), annotations=tag).to_json())
    if not entries:
        return None
    data = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    return Descriptor(OCI_INDEX, store.add_bytes(data), len(data))


def tagged(index: Mapping[str, Any], tag: str) -> dict[str, Any] | None:
    """The entry of an index named `tag` by its ref.name annotation."""
    for entry in index.get("manifests") or []:
        if (entry.get("annotations") or {}).get(REF_NAME) == tag:
            return dict(entry)
    return None
