"""Pushing a build's results: the list from local storage, or each image from its node, then the index.

Three ways, one result shape (`Pushed` per name):
- from here (`--push`): the local list and every instance go to each -t, by the engine's own manifest push;
  in reproducible mode, the normalised images go from imgfront's own store instead (`push_store`);
- from the nodes (`--push-from-nodes`): each node pushes its image into each -t's repository, and the
  index is written to the registry here from their digests, so no image travels through this host;
- by digest (`--push-by-digest`): as from the nodes, but no index and no tag; a CI matrix merges later
  with `imgfront manifest create`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imgfront.engines.base import ImageBuilder
from imgfront.errors import UsageError
from imgfront.images.archive import image_blobs
from imgfront.images.blobs import BlobStore, Descriptor
from imgfront.images.normalise import canonical_json
from imgfront.model import BuildReport, Credentials
from imgfront.modes import PushMode
from imgfront.oci.auth import find_credentials
from imgfront.oci.client import (
    DOCKER_LIST,
    MANIFEST_TYPES,
    OCI_INDEX,
    Manifest,
    RegistryClient,
    RegistryError,
    open_registry,
)
from imgfront.oci.references import Reference, parse_reference
from imgfront.platforms import Platform


@dataclass(frozen=True)
class PushOptions:
    mode: PushMode = PushMode.HERE
    tls_verify: bool | None = None
    authfile: Path | None = None


@dataclass(frozen=True)
class Pushed:
    """What one name holds in its registry after the push."""

    name: str
    digest: str  # the index's; empty when pushed by digest only
    media_type: str = ""
    size: int = 0
    instances: Mapping[Platform, str] = field(default_factory=dict)  # each platform's manifest digest there

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest or None,
            "instances": {str(p): d for p, d in self.instances.items()},
        }


def _platform_of(entry: Mapping[str, Any]) -> Platform | None:
    spec = entry.get("platform") or {}
    try:
        return Platform.make(str(spec.get("os", "")), str(spec.get("architecture", "")), spec.get("variant"))
    except UsageError:
        return None  # an attestation or unknown architecture: not one of ours


def _credentials(reference: Reference, options: PushOptions) -> Credentials | None:
    return find_credentials(reference.repository, options.authfile)


def push_list(
    local: ImageBuilder, list_name: str, names: Sequence[str], options: PushOptions, note: Callable[[str], None]
) -> list[Pushed]:
    """Push the local list to every name, then read back what the registry holds."""
    pushed = []
    for name in names:
        reference = parse_reference(name)
        credentials = _credentials(reference, options)
        digest = local.push_list(list_name, name, credentials, options.tls_verify)
        with RegistryClient(reference.domain, credentials, options.tls_verify) as registry:
            index = registry.manifest(reference.path, digest)
        instances = _platform_digests(index.json().get("manifests", []))
        pushed.append(Pushed(name, index.digest, index.media_type, index.size, instances))
        note(f"pushed {name}: {index.digest}")
    return pushed


def push_store(
    store: BlobStore, images: Sequence[Descriptor], names: Sequence[str], options: PushOptions
) -> list[Pushed]:
    """Push images from a BlobStore byte for byte (reproducible mode), and an index over them, to every name.

    podman's own push compresses every layer again, which would give other digests than the normalised ones.
    The index is imgfront's canonical JSON of the entries, so it too depends only on the images.
    """
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [i.to_json() for i in images]})
    pushed = []
    for name in names:
        target = parse_reference(name)
        with open_registry(target, options.tls_verify, options.authfile) as registry:
            for image in images:
                for digest in image_blobs(store, image)[1:]:
                    registry.upload_blob(target.path, digest, store.path(digest))
                registry.put_manifest(target.path, image.digest, store.read(image.digest), image.media_type)
            digest = registry.put_manifest(target.path, target.tag, index, OCI_INDEX)
        instances = {i.platform: i.digest for i in images if i.platform is not None}
        pushed.append(Pushed(name, digest, OCI_INDEX, len(index), instances))
    return pushed


def push_from_nodes(
    builders: Mapping[str, ImageBuilder],
    reports: Sequence[BuildReport],
    names: Sequence[str],
    options: PushOptions,
    note: Callable[[str], None],
) -> list[Pushed]:
    """Each node pushes its own image (all at once) into each repository named; then the index, per name."""
    repositories: dict[str, str] = {}  # repository -> the first name in it, which Docker nodes tag after
    for name in names:
        repositories.setdefault(parse_reference(name).repository, name)
    by_repository: dict[str, dict[Platform, str]] = {}
    for repository, name in repositories.items():
        credentials = _credentials(parse_reference(name), options)

        def push(report: BuildReport, name: str = name, credentials: Credentials | None = credentials) -> str:
            builder = builders[report.node]
            return builder.push_image(report.image_id, report.platform, name, credentials, options.tls_verify)

        with ThreadPoolExecutor(max_workers=len(reports)) as pool:
            digests = list(pool.map(push, reports))
        by_repository[repository] = {r.platform: d for r, d in zip(reports, digests, strict=True)}
        for report, digest in zip(reports, digests, strict=True):
            note(f"{report.platform}@{report.node}: pushed {repository}@{digest}")
    if options.mode is PushMode.DIGEST:
        return [Pushed(repository, "", instances=by_repository[repository]) for repository in repositories]
    written = write_index(
        names, lambda target: [(target.path, d) for d in by_repository[target.repository].values()], options, note
    )
    # The platforms as the nodes built them, which the reports are matched against.
    return [replace(p, instances=by_repository[parse_reference(p.name).repository]) for p in written]


# -- writing an index in a registry ----------------------------------------------------------------


def _platform_digests(entries: Sequence[Mapping[str, Any]]) -> dict[Platform, str]:
    """Each platform's manifest digest in an index's entries."""
    return {p: str(e["digest"]) for e in entries if (p := _platform_of(e))}


def write_index(
    names: Sequence[str],
    sources: Callable[[Reference], Sequence[tuple[str, str]]],
    options: PushOptions,
    note: Callable[[str], None],
) -> list[Pushed]:
    """Write an index over `sources(name)` ((repository, digest or tag) in the name's registry) under every name.

    The index is made once per repository, and put under each of its tags.
    """
    made: dict[str, tuple[bytes, str]] = {}
    pushed = []
    for name in names:
        target = parse_reference(name)
        with open_registry(target, options.tls_verify, options.authfile) as registry:
            if target.repository not in made:
                made[target.repository] = make_index(registry, target.path, sources(target))
            body, media_type = made[target.repository]
            digest = registry.put_manifest(target.path, target.tag, body, media_type)
        pushed.append(Pushed(name, digest, media_type, len(body), _platform_digests(json.loads(body)["manifests"])))
        note(f"pushed {name}: {digest}")
    return pushed


def _entry(registry: RegistryClient, repository: str, manifest: Manifest) -> dict[str, Any]:
    """An index entry for one image manifest; its platform is read from the image's config.

    The variant is the platform's as local lists write it (arm64 -> v8): image configs often have none.
    """
    config = registry.blob_json(repository, str(manifest.json()["config"]["digest"]))
    platform: dict[str, Any] = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
    known = _platform_of({"platform": {**platform, "variant": config.get("variant")}})
    for key in ("os.version", "os.features"):
        if config.get(key):
            platform[key] = config[key]
    variant = known.oci_variant if known is not None else config.get("variant")
    if variant:
        platform["variant"] = variant
    return {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size, "platform": platform}


def _copy_into(registry: RegistryClient, manifest: Manifest, source: str, repository: str) -> None:
    """Make a manifest of `source` available in `repository` of the same registry: mount its blobs, put it."""
    data = manifest.json()
    if manifest.is_index:
        for child in data.get("manifests", []):
            _copy_into(registry, registry.manifest(source, str(child["digest"])), source, repository)
    else:
        for blob in [data["config"], *data.get("layers", [])]:
            registry.mount_blob(repository, str(blob["digest"]), source)
    registry.put_manifest(repository, manifest.digest, manifest.body, manifest.media_type)


def make_index(registry: RegistryClient, repository: str, sources: Sequence[tuple[str, str]]) -> tuple[bytes, str]:
    """An image index over `sources` (repository, digest), each copied into `repository` when elsewhere.

    A source that is itself an index gives its own entries. Two entries for one platform are refused.
    """
    entries: list[dict[str, Any]] = []
    seen: dict[Platform, str] = {}
    for source, digest in sources:
        manifest = registry.manifest(source, digest)
        if manifest.media_type not in (*MANIFEST_TYPES, OCI_INDEX, DOCKER_LIST):
            raise RegistryError(f"{registry.host}/{source}@{digest}: {manifest.media_type!r} is not an image")
        if source != repository:
            _copy_into(registry, manifest, source, repository)
        found = manifest.json()["manifests"] if manifest.is_index else [_entry(registry, source, manifest)]
        for entry in found:
            platform = _platform_of(entry)
            if platform is not None and platform in seen:
                raise UsageError(
                    f"two images for {platform}: {seen[platform]} and {registry.host}/{source}@{entry['digest']}"
                )
            if platform is not None:
                seen[platform] = f"{registry.host}/{source}@{entry['digest']}"
            entries.append(dict(entry))
    oci = any(e.get("mediaType", "").startswith("application/vnd.oci.") for e in entries)
    media_type = OCI_INDEX if oci else DOCKER_LIST
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    return json.dumps(index, separators=(",", ":")).encode(), media_type


def create_index(names: Sequence[str], sources: Sequence[str], options: PushOptions) -> list[Pushed]:
    """`imgfront manifest create`: one index over `sources`, written under every name (one registry)."""
    if not sources:
        raise UsageError("no --from given", hint="name each image pushed before: --from REPOSITORY@sha256:...")
    refs = [parse_reference(s, digest=True) for s in sources]
    targets = [parse_reference(name) for name in names]
    for target in targets:
        for ref in refs:
            if ref.domain != target.domain:
                raise UsageError(
                    f"{ref} is in another registry than {target}",
                    hint="manifest create works within one registry: push every platform there first",
                )
    from_refs = [(r.path, r.digest or r.tag) for r in refs]
    return write_index([str(t) for t in targets], lambda _: from_refs, options, lambda _: None)
