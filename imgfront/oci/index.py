"""The bytes a manifest list has in containers-storage, rebuilt from an engine's view of it, for its digest.

Neither podman 4.3 (a Docker list view) nor 5.x (an OCI index re-serialised) returns the bytes storage holds,
so a hash of the API's answer matches nothing. Storage keeps the digest of each manifest an image has had
(the image listing's `RepoDigests`); the list's own `Digest` stays the one it was created with. The stored
form is Go's encoding/json of the index (OCI or Docker, fields in struct order); the one whose hash storage
knows gives the digest, media type and size. Without a match (annotations a view drops, say), the one digest
storage gained since creation is the digest, with no size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

# Go struct field order: image-spec's Descriptor and Platform, containers/image's Schema2List.
_PLATFORM_FIELDS = ("architecture", "os", "os.version", "os.features", "variant", "features")
_OCI_ENTRY_FIELDS = ("mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType")
_DOCKER_ENTRY_FIELDS = ("mediaType", "size", "digest", "urls", "platform")
_OCI_INDEX_FIELDS = ("schemaVersion", "mediaType", "artifactType", "manifests", "subject", "annotations")
_DOCKER_LIST_FIELDS = ("schemaVersion", "mediaType", "manifests")
_ALWAYS = frozenset({"schemaVersion", "manifests", "mediaType", "digest", "size", "architecture", "os"})


@dataclass(frozen=True)
class StoredList:
    digest: str  # empty when storage's digests do not say which is current
    media_type: str
    size: int  # 0 when the bytes could not be rebuilt


def _go_json(value: Any) -> str:
    """Go's encoding/json: compact, non-ASCII kept, <, > and & escaped, map keys sorted."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _ordered(data: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The fields Go would write, in its order; omitempty ones only when set."""
    out: dict[str, Any] = {}
    for name in fields:
        value = data.get(name)
        if value or (name in _ALWAYS and name in data):
            out[name] = dict(sorted(value.items())) if isinstance(value, dict) and name == "annotations" else value
    return out


def serialisations(view: Mapping[str, Any]) -> Iterator[tuple[str, bytes]]:
    """(media type, bytes) of the list as storage would write it, as an OCI index and as a Docker list."""
    for media_type, index_fields, entry_fields in (
        (OCI_INDEX, _OCI_INDEX_FIELDS, _OCI_ENTRY_FIELDS),
        (DOCKER_LIST, _DOCKER_LIST_FIELDS, _DOCKER_ENTRY_FIELDS),
    ):
        entries = []
        for entry in view.get("manifests") or []:
            entry = dict(entry)
            if entry.get("platform"):
                entry["platform"] = _ordered(entry["platform"], _PLATFORM_FIELDS)
            entries.append(_ordered(entry, entry_fields))
        index = _ordered({**view, "mediaType": media_type, "manifests": entries}, index_fields)
        yield media_type, _go_json(index).encode()


def assumed_list(view: Mapping[str, Any]) -> StoredList:
    """The list as storage writes a list podman made (an OCI index), when storage's digests cannot be read."""
    media_type, body = next(serialisations(view))
    return StoredList("sha256:" + hashlib.sha256(body).hexdigest(), media_type, len(body))


def stored_list(view: Mapping[str, Any], known: Sequence[str], created: str) -> StoredList:
    """The stored list, from the engine's `view` of it and the digests storage keeps for it (`known`).

    `created` is the digest the list image was created with, which storage keeps first.
    """
    for media_type, body in serialisations(view):
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if digest in known:
            return StoredList(digest, media_type, len(body))
    gained = [d for d in dict.fromkeys(known) if d != created]
    if not gained and created:
        gained = [created]
    return StoredList(gained[0] if len(gained) == 1 else "", str(view.get("mediaType", "")), 0)
