"""Attestation artifacts without a registry: the artifact manifest's shape, and layouts that carry them."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from tiny_image import tiny_image

from imgfront.errors import EngineError
from imgfront.images.artifacts import (
    EMPTY_DIGEST,
    EMPTY_TYPE,
    KIND_ANNOTATION,
    PROVENANCE_TYPE,
    REFERRERS_ANNOTATION,
    SBOM_TYPE,
    Attestation,
    add_artifact,
)
from imgfront.images.blobs import OCI_INDEX, OCI_MANIFEST, BlobStore, Descriptor
from imgfront.oci.referrers import find_layout_referrers, layout_document
from imgfront.outputs.layout import write_layout
from imgfront.outputs.types import OciArchiveOutput, OciLayoutOutput, Staged

SBOM = Attestation("sbom", SBOM_TYPE, b'{"spdxVersion":"SPDX-2.3"}')
PROVENANCE = Attestation("provenance", PROVENANCE_TYPE, b'{"_type":"https://in-toto.io/Statement/v1"}')


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def test_artifact_manifest_has_the_type_the_empty_config_one_document_and_the_subject(store: BlobStore) -> None:
    image = tiny_image(store, "linux/amd64")
    artifact = add_artifact(store, image, SBOM)
    manifest = store.json(artifact.digest)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["artifactType"] == SBOM_TYPE
    assert manifest["config"] == {"mediaType": EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": 2}
    assert store.read(EMPTY_DIGEST) == b"{}"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SBOM_TYPE
    assert store.read(layer["digest"]) == SBOM.data
    assert manifest["subject"] == {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.size}
    assert manifest["annotations"] == {KIND_ANNOTATION: "sbom"}
    assert artifact.artifact_type == SBOM_TYPE
    assert artifact.to_json()["artifactType"] == SBOM_TYPE
    assert "platform" not in artifact.to_json()


def test_same_image_and_document_give_the_same_artifact_digest(tmp_path: Path) -> None:
    first, second = BlobStore(tmp_path / "a"), BlobStore(tmp_path / "b")
    one = add_artifact(first, tiny_image(first, "linux/arm64"), PROVENANCE)
    other = add_artifact(second, tiny_image(second, "linux/arm64"), PROVENANCE)
    assert one == other
    body = first.read(one.digest)
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    assert one != add_artifact(first, tiny_image(first, "linux/amd64"), PROVENANCE)


def test_unknown_attestation_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown attestation kind"):
        Attestation("vex", "application/json", b"{}")


def test_descriptor_without_the_new_fields_writes_what_it_wrote_before() -> None:
    plain = Descriptor(OCI_MANIFEST, "sha256:" + "0" * 64, 10)
    assert plain.to_json() == {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "size": 10}
    assert Descriptor.from_json(plain.to_json()) == plain


def two_platform_layout(store: BlobStore, target: Path) -> tuple[list[Descriptor], dict[str, tuple[Descriptor, ...]]]:
    images = [tiny_image(store, "linux/amd64"), tiny_image(store, "linux/arm64")]
    artifacts = {i.digest: (add_artifact(store, i, SBOM), add_artifact(store, i, PROVENANCE)) for i in images}
    write_layout(store, images, target, artifacts)
    return images, artifacts


def test_layout_keeps_one_entry_and_an_image_index_of_the_platforms_alone(store: BlobStore, tmp_path: Path) -> None:
    images, _ = two_platform_layout(store, tmp_path / "layout")
    top = json.loads((tmp_path / "layout" / "index.json").read_bytes())
    [entry] = top["manifests"]
    assert entry["mediaType"] == OCI_INDEX
    index = json.loads((tmp_path / "layout" / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes())
    assert [e["digest"] for e in index["manifests"]] == [i.digest for i in images]
    assert all("platform" in e and "artifactType" not in e for e in index["manifests"])
    assert REFERRERS_ANNOTATION in top["annotations"]


def test_layout_without_artifacts_is_as_before(store: BlobStore, tmp_path: Path) -> None:
    images = [tiny_image(store, "linux/amd64")]
    write_layout(store, images, tmp_path / "layout")
    top = json.loads((tmp_path / "layout" / "index.json").read_bytes())
    assert "annotations" not in top
    assert find_layout_referrers(tmp_path / "layout", images[0].digest) == []


def test_each_platforms_artifacts_are_found_in_the_layout(store: BlobStore, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    images, artifacts = two_platform_layout(store, layout)
    for image in images:
        found = find_layout_referrers(layout, image.digest)
        assert found == [a.to_json() for a in artifacts[image.digest]]
        [sbom] = find_layout_referrers(layout, image.digest, SBOM_TYPE)
        assert sbom["annotations"] == {KIND_ANNOTATION: "sbom"}
        assert layout_document(layout, sbom["digest"]) == SBOM.data
        for artifact in artifacts[image.digest]:  # every blob it needs is in the layout
            manifest = json.loads((layout / "blobs" / "sha256" / artifact.digest.split(":")[1]).read_bytes())
            for blob in [manifest["config"], *manifest["layers"]]:
                assert (layout / "blobs" / "sha256" / blob["digest"].split(":")[1]).is_file()
    assert find_layout_referrers(layout, "sha256:" + "1" * 64) == []


def test_artifacts_of_a_manifest_not_in_the_layout_are_refused(store: BlobStore, tmp_path: Path) -> None:
    image, stranger = tiny_image(store, "linux/amd64"), tiny_image(store, "linux/amd64", b"other\n")
    with pytest.raises(EngineError, match="does not hold"):
        write_layout(store, [image], tmp_path / "layout", {stranger.digest: (add_artifact(store, stranger, SBOM),)})


def test_oci_archive_output_carries_the_artifacts(store: BlobStore, tmp_path: Path) -> None:
    images = [tiny_image(store, "linux/amd64"), tiny_image(store, "linux/arm64")]
    artifacts = {i.digest: (add_artifact(store, i, SBOM),) for i in images}
    staged = Staged(store, tuple(images), ("example/app:1",), artifacts)
    OciArchiveOutput().write(staged, tmp_path / "image.tar")
    OciLayoutOutput().write(staged, tmp_path / "layout")
    with tarfile.open(tmp_path / "image.tar") as archive:
        index_json = archive.extractfile("index.json")
        assert index_json is not None and index_json.read() == (tmp_path / "layout" / "index.json").read_bytes()
    for image in images:
        [found] = find_layout_referrers(tmp_path / "image.tar", image.digest)
        assert found["digest"] == artifacts[image.digest][0].digest
        assert layout_document(tmp_path / "image.tar", found["digest"]) == SBOM.data


def test_a_layout_blob_that_does_not_match_its_digest_is_refused(store: BlobStore, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    images, artifacts = two_platform_layout(store, layout)
    artifact = artifacts[images[0].digest][0]
    document = store.json(artifact.digest)["layers"][0]["digest"]
    path = layout / "blobs" / "sha256" / document.split(":")[1]
    path.unlink()  # a hard link to the store's blob: replace it, do not write through it
    path.write_bytes(b"tampered")
    with pytest.raises(EngineError, match="does not match"):
        layout_document(layout, artifact.digest)
    assert hashlib.sha256(store.read(document)).hexdigest() == document.split(":")[1]
