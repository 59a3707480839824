"""Writing staged images out: an OCI image layout, a tar of one, and a multi-image docker-archive."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imgfront.errors import EngineError
from imgfront.images.archive import image_blobs
from imgfront.images.artifacts import REFERRERS_ANNOTATION, artifact_blobs, tags_index
from imgfront.images.blobs import OCI_INDEX, BlobStore, Descriptor
from imgfront.platforms import Platform

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copyfile(source, target)


def write_layout(
    store: BlobStore,
    images: Sequence[Descriptor],
    target: Path,
    artifacts: Mapping[str, Sequence[Descriptor]] | None = None,
) -> None:
    """index.json names one image index, which holds every platform's manifest with its `platform`.

    One entry in index.json is what lets `oci:DIR` work without a reference; the index under it is the
    multi-platform image, as buildx writes it.

    Artifacts (attestations, keyed by the manifest digest they refer to) cannot be entries of either: podman
    4.3 refuses `oci:DIR` once index.json has a second entry ("more than one image in oci, choose an image"),
    whether that is an artifact manifest, as oras writes them, or a `sha256-<hex>` referrers index; and
    clients take an image index's entries for images. So the distribution spec's referrers tag schema is kept
    one level down: index.json's `dev.imgfront.referrers` annotation names an index whose entries are each
    subject's referrers index, named `sha256-<hex>` by ref.name (see images/artifacts.py and
    oci/referrers.py's find_layout_referrers). Readers that do not know it see the image alone.
    """
    index = _dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [i.to_json() for i in images]})
    index_digest = store.add_bytes(index)
    artifacts = {subject: found for subject, found in (artifacts or {}).items() if found}
    unknown = set(artifacts) - {index_digest, *(image.digest for image in images)}
    if unknown:
        raise EngineError(f"artifacts refer to {', '.join(sorted(unknown))}, which this layout does not hold")
    blobs = target / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (target / "oci-layout").write_bytes(_dumps(LAYOUT_VERSION))
    digests = [index_digest, *(d for image in images for d in image_blobs(store, image))]
    tags = tags_index(store, artifacts)
    if tags is not None:
        referrers = [entry["digest"] for entry in store.json(tags.digest)["manifests"]]
        found = [d for entries in artifacts.values() for a in entries for d in artifact_blobs(store, a)]
        digests += [tags.digest, *referrers, *found]
    for digest in dict.fromkeys(digests):
        _link_or_copy(store.path(digest), blobs / digest.partition(":")[2])
    top = Descriptor(OCI_INDEX, index_digest, len(index))
    top_index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top.to_json()]}
    if tags is not None:
        top_index["annotations"] = {REFERRERS_ANNOTATION: tags.digest}
    (target / "index.json").write_bytes(_dumps(top_index))


def tar_directory(source: Path, target: Path) -> None:
    """A plain tar of the folder's content, with paths relative to it, as an oci-archive is."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)


def repo_tags(tags: Sequence[str], platform: Platform, several: bool) -> list[str]:
    """-t's names; with several platforms each gets `-<os>_<arch>[_<variant>]` on its tag, so none takes another's."""
    names = []
    for tag in tags:
        if "@" in tag:  # a digest names content, not something to load under
            continue
        names.append(f"{tag}-{platform.slug}" if several else tag)
    return names


def write_docker_archive(store: BlobStore, images: Sequence[Descriptor], tags: Sequence[str], target: Path) -> None:
    """`docker load` format: manifest.json with one entry per platform; configs and layers named by digest."""
    entries = []
    written: set[str] = set()
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:

        def add(digest: str, name: str) -> str:
            if name not in written:
                archive.add(store.path(digest), arcname=name, recursive=False)
                written.add(name)
            return name

        for image in images:
            assert image.platform is not None
            manifest = store.json(image.digest)
            config = manifest["config"]["digest"]
            entries.append(
                {
                    "Config": add(config, f"{config.partition(':')[2]}.json"),
                    "RepoTags": repo_tags(tags, image.platform, len(images) > 1) or None,
                    "Layers": [add(d, f"{d.partition(':')[2]}/layer.tar") for d in image_blobs(store, image)[2:]],
                }
            )
        data = _dumps(entries)
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
