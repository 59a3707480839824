"""KeptAttestations: a local image's artifacts under the data folder, found by its manifest digest."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from imgfront.images.artifacts import KIND_ANNOTATION, PROVENANCE_TYPE, SBOM_TYPE, Attestation, referrers_tag
from imgfront.images.blobs import OCI_MANIFEST, Descriptor
from imgfront.images.kept import KeptAttestations, default_root

SUBJECT = Descriptor(OCI_MANIFEST, "sha256:" + "a" * 64, 512)
OTHER = Descriptor(OCI_MANIFEST, "sha256:" + "b" * 64, 512)
SBOM = Attestation("sbom", SBOM_TYPE, b'{"spdxVersion":"SPDX-2.3"}')
PROVENANCE = Attestation("provenance", PROVENANCE_TYPE, b'{"_type":"https://in-toto.io/Statement/v1"}')


def test_added_attestations_are_found_by_subject_and_type_and_read_back(tmp_path: Path) -> None:
    kept = KeptAttestations(tmp_path)
    sbom, provenance = kept.add(SUBJECT, [SBOM, PROVENANCE])
    found = kept.find(SUBJECT.digest)
    assert [(e["digest"], e["artifactType"]) for e in found] == [
        (sbom.digest, SBOM_TYPE),
        (provenance.digest, PROVENANCE_TYPE),
    ]
    assert found[0]["annotations"] == {KIND_ANNOTATION: "sbom"}
    [only] = kept.find(SUBJECT.digest, PROVENANCE_TYPE)
    assert only["digest"] == provenance.digest
    assert kept.document(sbom.digest) == SBOM.data
    assert kept.document(provenance.digest) == PROVENANCE.data
    assert kept.find(OTHER.digest) == []
    assert kept.store.json(sbom.digest)["subject"]["digest"] == SUBJECT.digest


def test_adding_again_lists_each_once_and_a_later_kind_is_appended(tmp_path: Path) -> None:
    kept = KeptAttestations(tmp_path)
    [sbom] = kept.add(SUBJECT, [SBOM])
    index = tmp_path / "referrers" / f"{referrers_tag(SUBJECT.digest)}.json"
    first = index.read_bytes()
    assert kept.add(SUBJECT, [SBOM]) == [sbom]
    assert index.read_bytes() == first
    [provenance] = kept.add(SUBJECT, [PROVENANCE])
    assert [e["digest"] for e in json.loads(index.read_bytes())["manifests"]] == [sbom.digest, provenance.digest]
    assert stat.S_IMODE(index.stat().st_mode) == 0o644
    assert kept.add(OTHER, []) == []
    assert not (tmp_path / "referrers" / f"{referrers_tag(OTHER.digest)}.json").exists()


def test_two_folders_over_one_root_see_the_same_attestations(tmp_path: Path) -> None:
    [sbom] = KeptAttestations(tmp_path).add(SUBJECT, [SBOM])
    assert [e["digest"] for e in KeptAttestations(tmp_path).find(SUBJECT.digest, SBOM_TYPE)] == [sbom.digest]


def test_the_default_root_is_under_xdg_data_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_root() == tmp_path / "imgfront" / "attestations"
    assert KeptAttestations().root == tmp_path / "imgfront" / "attestations"
