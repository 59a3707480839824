"""An image's attestations read back: each platform's SBOM or provenance, from any source `imgfront diff` reads.

The subjects are the platforms' image manifests: a list's entries that name a real platform, or the one image.
A registry's artifacts are found through its referrers API or tag schema, a layout's or archive's through the
referrers index write_layout keeps, a local image's in KeptAttestations (by the digest the local list gives its
instance). Only manifests and the documents are read: no layer is exported or fetched.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imgfront.errors import ImgfrontError, UsageError
from imgfront.images.artifacts import KINDS
from imgfront.images.kept import KeptAttestations
from imgfront.oci.diff import platform_key
from imgfront.oci.referrers import fetch_document, find_layout_referrers, find_referrers, layout_document
from imgfront.oci.sources import LayoutRef, LocalRef, RegistryRef, RegistrySource, SourceOptions, Sources, parse_source
from imgfront.platforms import Platform

if TYPE_CHECKING:
    from imgfront.engines.base import ImageBuilder
    from imgfront.oci.client import RegistryClient
    from imgfront.oci.diff import ImageSource

# What the user is told to build with when an image has none of a kind.
BUILD_FLAGS = {"sbom": "--sbom", "provenance": "--provenance"}
_NAMES = {"sbom": "SBOM", "provenance": "provenance"}
_MAX_CONFIG = 1 << 20  # an image config is read for its platform only


class NotAttested(ImgfrontError):
    """A selected platform's image has no attestation of the kind asked for (exit 1)."""


class UnreadableSource(ImgfrontError):
    """The image, its list or an attestation could not be read (exit 2, as bad input: not "none found")."""

    exit_code = 2


@dataclass(frozen=True)
class Subject:
    """A platform's image manifest, which its attestations name as their `subject`."""

    platform: str | None  # os/arch[/variant] as platform_key writes it; None when the image does not say
    digest: str


class Attested(Protocol):
    """Where an image's subjects and their attestations are read from."""

    label: str

    def subjects(self) -> list[Subject]: ...

    def find(self, subject_digest: str, artifact_type: str) -> list[dict[str, Any]]: ...

    def document(self, artifact_digest: str) -> bytes: ...


def _key(spec: Mapping[str, Any] | None) -> str | None:
    """platform_key of an entry's platform; None for no platform or buildx's `unknown/unknown` attestations."""
    if not spec:
        return None
    key = platform_key({"platform": spec})
    return None if key == "unknown/unknown" else key


def subjects_of(source: ImageSource) -> list[Subject]:
    """An index's entries with a platform (the first of each platform), or the one manifest."""
    root = source.root()
    if root.is_index:
        found: dict[str, Subject] = {}
        for entry in root.json().get("manifests") or []:
            key = _key(entry.get("platform"))
            if key is not None and key not in found:
                found[key] = Subject(key, str(entry.get("digest", "")))
        return list(found.values())
    return [Subject(_config_platform(source, root.json()), root.digest)]


def _config_platform(source: ImageSource, manifest: Mapping[str, Any]) -> str | None:
    digest = (manifest.get("config") or {}).get("digest")
    if not digest:
        return None
    with source.blob(str(digest)) as f:
        try:
            config = json.loads(f.read(_MAX_CONFIG))
        except ValueError:
            return None
    if not isinstance(config, dict):
        return None
    return _key({k: config[k] for k in ("os", "architecture", "variant") if config.get(k)})


class RegistryAttested:
    def __init__(self, label: str, client: RegistryClient, repository: str, reference: str) -> None:
        self.label = label
        self._client = client
        self._repository = repository
        self._source = RegistrySource(label, client, repository, reference)

    def subjects(self) -> list[Subject]:
        return subjects_of(self._source)

    def find(self, subject_digest: str, artifact_type: str) -> list[dict[str, Any]]:
        return find_referrers(self._client, self._repository, subject_digest, artifact_type)

    def document(self, artifact_digest: str) -> bytes:
        return fetch_document(self._client, self._repository, artifact_digest)


class LayoutAttested:
    """An OCI layout folder or an oci-archive: the image through LayoutSource, its artifacts in the same files."""

    def __init__(self, label: str, source: ImageSource, path: Path) -> None:
        self.label = label
        self._source = source
        self._path = path

    def subjects(self) -> list[Subject]:
        return subjects_of(self._source)

    def find(self, subject_digest: str, artifact_type: str) -> list[dict[str, Any]]:
        return find_layout_referrers(self._path, subject_digest, artifact_type)

    def document(self, artifact_digest: str) -> bytes:
        return layout_document(self._path, artifact_digest)


class LocalAttested:
    """A list or image in local storage: the engine names its instances, KeptAttestations holds their artifacts."""

    def __init__(self, label: str, engine: ImageBuilder, name: str, kept: KeptAttestations) -> None:
        self.label = label
        self._engine = engine
        self._name = name
        self._kept = kept

    def subjects(self) -> list[Subject]:
        listed = self._engine.inspect_list(self._name)
        if listed is not None:
            platforms = listed.platforms or ("",) * len(listed.instances)
            found: dict[str, Subject] = {}
            for digest, text in zip(listed.instances, platforms, strict=True):
                key = _key(dict(zip(("os", "architecture", "variant"), text.split("/"), strict=False)))
                if key is not None and key not in found:
                    found[key] = Subject(key, digest)
            return list(found.values())
        image = self._engine.inspect_image(self._name)
        if image is None:
            raise UsageError(
                f"{self.label}: no list or image named {self._name} in local storage",
                hint="for a registry write docker://REF, for a layout oci:DIR",
            )
        spec = {"os": image.os, "architecture": image.architecture, "variant": image.variant}
        return [Subject(_key({k: v for k, v in spec.items() if v}), image.digest)]

    def find(self, subject_digest: str, artifact_type: str) -> list[dict[str, Any]]:
        return self._kept.find(subject_digest, artifact_type)

    def document(self, artifact_digest: str) -> bytes:
        return self._kept.document(artifact_digest)


def open_attested(
    text: str,
    sources: Sources,
    *,
    local: ImageBuilder | None = None,
    kept: KeptAttestations | None = None,
) -> Attested:
    """The image REF names, in any of `imgfront diff`'s transports; `local` and `kept` stand in for local storage."""
    ref = parse_source(text)
    if isinstance(ref, RegistryRef):
        reference = ref.reference
        return RegistryAttested(text, sources.client(ref), reference.path, reference.digest or reference.tag)
    if isinstance(ref, LayoutRef):
        return LayoutAttested(text, sources.open_ref(ref), ref.path)
    assert isinstance(ref, LocalRef)
    engine = local if local is not None else sources.local_engine()
    return LocalAttested(text, engine, ref.name, kept if kept is not None else KeptAttestations())


def _matches(subject: Subject, wanted: Platform) -> bool:
    if subject.platform is None:
        return False
    try:
        return Platform.parse(subject.platform) == wanted
    except UsageError:  # a platform imgfront does not build (windows, an unknown architecture)
        return False


def select(label: str, subjects: Sequence[Subject], platforms: Sequence[Platform]) -> list[Subject]:
    """The subjects of the platforms asked for (all without any), in the image's order."""
    if not subjects:
        raise UsageError(f"{label}: the list names no image with a platform")
    if not platforms:
        return list(subjects)
    has = ", ".join(s.platform or "one image of no stated platform" for s in subjects)
    for wanted in platforms:
        if not any(_matches(s, wanted) for s in subjects):
            raise UsageError(f"{label} has no {wanted} image", hint=f"it has {has}")
    return [s for s in subjects if any(_matches(s, wanted) for wanted in platforms)]


def documents(attested: Attested, kind: str, subjects: Sequence[Subject]) -> dict[Subject, Any]:
    """Each subject's document of `kind`, parsed; the last one listed when a subject has several.

    Raises NotAttested, naming every subject without one, before reading any document.
    """
    media_type = KINDS[kind]
    found = {s: attested.find(s.digest, media_type) for s in subjects}
    missing = [s for s, artifacts in found.items() if not artifacts]
    if missing:
        names = ", ".join(s.platform or "its image" for s in missing)
        raise NotAttested(f"{attested.label}: no {_NAMES[kind]} for {names}", hint=f"build with {BUILD_FLAGS[kind]}")
    parsed = {}
    for subject, artifacts in found.items():
        data = attested.document(str(artifacts[-1].get("digest", "")))
        try:
            parsed[subject] = json.loads(data)
        except ValueError:
            raise UnreadableSource(f"{attested.label}: the {_NAMES[kind]} of {subject.digest} is not JSON") from None
    return parsed


def render(found: Mapping[Subject, Any]) -> str:
    """One document as it is; several as one object keyed by platform."""
    if len(found) == 1:
        return json.dumps(next(iter(found.values())), indent=2)
    return json.dumps({s.platform: document for s, document in found.items()}, indent=2)


def show(
    kind: str,
    text: str,
    platforms: Sequence[Platform],
    options: SourceOptions,
    *,
    local: ImageBuilder | None = None,
    kept: KeptAttestations | None = None,
) -> str:
    """What `imgfront sbom` or `imgfront provenance` prints for REF.

    NotAttested (exit 1) when a selected platform has none; UsageError or UnreadableSource (exit 2) when REF,
    its list or a document cannot be read, so that 1 always means "none there".
    """
    try:
        with contextlib.ExitStack() as stack:
            attested = open_attested(text, Sources(options, stack), local=local, kept=kept)
            return render(documents(attested, kind, select(text, attested.subjects(), platforms)))
    except (NotAttested, UsageError, UnreadableSource):
        raise
    except ImgfrontError as e:
        raise UnreadableSource(e.message, e.hint) from e
    except OSError as e:
        raise UnreadableSource(f"{text}: cannot read it: {e}") from e
    except Exception as e:  # a stream broken half-way, a damaged manifest: still not "none there"
        raise UnreadableSource(f"{text}: {type(e).__name__}: {e}", hint="--debug shows the traceback") from e
