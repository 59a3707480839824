"""`imgfront sbom` and `imgfront provenance` over OCI layouts, oci-archives and (with a fake engine) local storage.

The registry's side is tests/integration/test_referrers.py's, against a real registry.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import AMD64, ARM64, FakeEngine
from tiny_image import tiny_image

import imgfront.engines
from imgfront.cli import main as cli
from imgfront.engines.base import ListInstance
from imgfront.images.artifacts import (
    PROVENANCE_TYPE,
    REFERRERS_ANNOTATION,
    SBOM_TYPE,
    Attestation,
    add_artifact,
    canonical_json,
    tags_index,
)
from imgfront.images.blobs import OCI_INDEX, OCI_MANIFEST, BlobStore, Descriptor
from imgfront.images.kept import KeptAttestations
from imgfront.oci.attestations import Subject, subjects_of
from imgfront.oci.diff import Node
from imgfront.outputs.layout import tar_directory, write_layout


def sbom(name: str) -> Attestation:
    return Attestation("sbom", SBOM_TYPE, canonical_json({"spdxVersion": "SPDX-2.3", "name": name}))


def provenance(name: str) -> Attestation:
    return Attestation("provenance", PROVENANCE_TYPE, canonical_json({"_type": "in-toto", "subject": name}))


def doc(attestation: Attestation) -> Any:
    return json.loads(attestation.data)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(args))
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err.splitlines()


def run_ok(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """The printed JSON of a command that must exit 0 (cli.main returns without SystemExit then)."""
    cli.main(list(args))
    out = capsys.readouterr()
    assert out.err == ""
    return json.loads(out.out)


def two_platform_layout(tmp_path: Path, provenance_for_arm64: bool = True) -> Path:
    """linux/amd64 and linux/arm64 with an SBOM each, and provenance for amd64 (and arm64 unless told not to)."""
    store = BlobStore(tmp_path / "store")
    amd64, arm64 = tiny_image(store, "linux/amd64"), tiny_image(store, "linux/arm64")
    artifacts = {
        amd64.digest: [add_artifact(store, amd64, sbom("amd64")), add_artifact(store, amd64, provenance("amd64"))],
        arm64.digest: [add_artifact(store, arm64, sbom("arm64"))],
    }
    if provenance_for_arm64:
        artifacts[arm64.digest].append(add_artifact(store, arm64, provenance("arm64")))
    layout = tmp_path / "layout"
    write_layout(store, [amd64, arm64], layout, artifacts)
    return layout


def test_sbom_of_a_layout_prints_one_object_keyed_by_platform(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path)
    assert run_ok(capsys, "sbom", f"oci:{layout}") == {
        "linux/amd64": doc(sbom("amd64")),
        "linux/arm64": doc(sbom("arm64")),
    }
    assert run_ok(capsys, "provenance", f"oci-layout:{layout}") == {
        "linux/amd64": doc(provenance("amd64")),
        "linux/arm64": doc(provenance("arm64")),
    }


def test_one_platform_prints_its_document_as_it_is_pretty(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path)
    cli.main(["sbom", f"oci:{layout}", "--platform", "linux/arm64"])
    printed = capsys.readouterr().out
    assert printed == json.dumps(doc(sbom("arm64")), indent=2) + "\n"
    assert run_ok(capsys, "provenance", f"oci:{layout}", "--platform", "linux/arm64/v8") == doc(provenance("arm64"))


def test_platforms_repeat_or_split_at_commas(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path)
    both = {"linux/amd64": doc(sbom("amd64")), "linux/arm64": doc(sbom("arm64"))}
    assert run_ok(capsys, "sbom", f"oci:{layout}", "--platform", "linux/arm64,linux/amd64") == both
    assert run_ok(capsys, "sbom", f"oci:{layout}", "--platform", "linux/amd64", "--platform", "arm64") == both


def test_an_oci_archive_is_read_as_its_layout(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path)
    archive = tmp_path / "image.tar"
    tar_directory(layout, archive)
    assert run_ok(capsys, "sbom", f"oci-archive:{archive}", "--platform", "linux/amd64") == doc(sbom("amd64"))
    assert run_ok(capsys, "provenance", f"oci-archive:{archive}") == {
        "linux/amd64": doc(provenance("amd64")),
        "linux/arm64": doc(provenance("arm64")),
    }


def test_a_platform_without_one_exits_1_naming_it_and_the_build_flag(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path, provenance_for_arm64=False)
    code, out, err = run(capsys, "provenance", f"oci:{layout}")
    assert (code, out) == (1, "")
    assert err == [f"imgfront: oci:{layout}: no provenance for linux/arm64", "hint: build with --provenance"]
    assert run_ok(capsys, "provenance", f"oci:{layout}", "--platform", "linux/amd64") == doc(provenance("amd64"))


def test_a_layout_without_attestations_exits_1_for_every_platform(capsys: pytest.CaptureFixture[str], tmp_path):
    store = BlobStore(tmp_path / "store")
    write_layout(store, [tiny_image(store, "linux/amd64"), tiny_image(store, "linux/arm64")], tmp_path / "plain")
    code, out, err = run(capsys, "sbom", f"oci:{tmp_path / 'plain'}")
    assert (code, out) == (1, "")
    assert err == [
        f"imgfront: oci:{tmp_path / 'plain'}: no SBOM for linux/amd64, linux/arm64",
        "hint: build with --sbom",
    ]


def test_a_single_manifest_is_its_own_subject(capsys: pytest.CaptureFixture[str], tmp_path):
    """A layout whose index.json names one image manifest, not an index: its config gives the platform."""
    layout = tmp_path / "single"
    store = BlobStore(layout)
    image = tiny_image(store, "linux/arm64")
    tags = tags_index(store, {image.digest: [add_artifact(store, image, sbom("one"))]})
    assert tags is not None
    top = {"schemaVersion": 2, "manifests": [Descriptor(OCI_MANIFEST, image.digest, image.size).to_json()]}
    (layout / "index.json").write_bytes(canonical_json({**top, "annotations": {REFERRERS_ANNOTATION: tags.digest}}))
    assert run_ok(capsys, "sbom", f"oci:{layout}") == doc(sbom("one"))
    assert run_ok(capsys, "sbom", f"oci:{layout}", "--platform", "linux/arm64") == doc(sbom("one"))
    code, _, err = run(capsys, "provenance", f"oci:{layout}")
    assert (code, err[0]) == (1, f"imgfront: oci:{layout}: no provenance for linux/arm64")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("oci:{tmp}/nothing", "is not an OCI image layout"),
        ("oci-archive:{tmp}/nothing.tar", "no file"),
        ("oci-archive:{tmp}/layout/oci-layout", "cannot read"),
        ("dir:{tmp}/x", "unsupported transport"),
        ("docker://", "no image name"),
    ],
)
def test_an_unreadable_ref_exits_2_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path, ref: str, message: str):
    two_platform_layout(tmp_path)
    code, out, err = run(capsys, "sbom", ref.format(tmp=tmp_path))
    assert (code, out) == (2, "")
    assert err[0].startswith("imgfront: ") and message in err[0], err
    assert not any("Traceback" in line for line in err)


def test_a_platform_the_image_lacks_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path)
    code, out, err = run(capsys, "sbom", f"oci:{layout}", "--platform", "linux/s390x")
    assert (code, out) == (2, "")
    assert err == [f"imgfront: oci:{layout} has no linux/s390x image", "hint: it has linux/amd64, linux/arm64"]
    code, _, err = run(capsys, "sbom", f"oci:{layout}", "--platform", "linux/nothing")
    assert code == 2 and "unknown architecture" in err[0]


def test_a_damaged_document_exits_2(capsys: pytest.CaptureFixture[str], tmp_path):
    layout = two_platform_layout(tmp_path)
    digest = BlobStore(tmp_path / "scratch").add_bytes(sbom("arm64").data).partition(":")[2]
    (layout / "blobs" / "sha256" / digest).write_bytes(b"{}")
    code, out, err = run(capsys, "sbom", f"oci:{layout}", "--platform", "linux/arm64")
    assert (code, out) == (2, "")
    assert "does not match its digest" in err[0]


class _Index:
    """An ImageSource whose root is an index as buildx writes it: platforms, and an attestation entry."""

    label = "fake"

    def __init__(self, entries: list[Mapping[str, Any]]) -> None:
        self.body = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})

    def root(self) -> Node:
        return Node(OCI_INDEX, "sha256:" + "0" * 64, self.body)

    def instance(self, entry: Mapping[str, Any]) -> Node:
        raise AssertionError("subjects need no instance")

    def blob(self, digest: str) -> contextlib.AbstractContextManager[Any]:
        raise AssertionError("an index's subjects need no blob")


def test_subjects_skip_entries_without_a_platform_and_unknown_ones():
    a, b, c, d = ("sha256:" + x * 64 for x in "abcd")
    source = _Index(
        [
            {"digest": a, "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": b, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": c, "platform": {"os": "unknown", "architecture": "unknown"}},  # buildx's attestations
            {"digest": d},
        ]
    )
    assert subjects_of(source) == [Subject("linux/amd64", a), Subject("linux/arm64", b)]


# -- local storage: a fake engine's list, attestations kept under XDG_DATA_HOME -----------------------


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeEngine]:
    """The fake engine stands for the local podman, and the kept attestations live under tmp_path."""
    engine = FakeEngine()

    @contextlib.contextmanager
    def open_local() -> Iterator[FakeEngine]:
        yield engine

    monkeypatch.setattr(imgfront.engines, "open_local", open_local)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield engine


def _instance(engine: FakeEngine, image_id: str) -> Descriptor:
    info = engine.images[image_id].info
    return Descriptor(OCI_MANIFEST, info.digest, 500)


def test_a_local_list_reads_each_instance_attestations_kept_by_its_digest(
    capsys: pytest.CaptureFixture[str], local: FakeEngine, tmp_path: Path
):
    amd64, arm64 = local.add_image(AMD64), local.add_image(ARM64)
    made = local.create_list([ListInstance(amd64, AMD64), ListInstance(arm64, ARM64)])
    local.name_list(made, ["localhost/app:1"])
    kept = KeptAttestations(tmp_path / "data" / "imgfront" / "attestations")
    kept.add(_instance(local, amd64), [sbom("amd64"), provenance("amd64")])
    kept.add(_instance(local, arm64), [sbom("arm64")])

    assert run_ok(capsys, "sbom", "localhost/app:1") == {
        "linux/amd64": doc(sbom("amd64")),
        "linux/arm64": doc(sbom("arm64")),
    }
    assert run_ok(capsys, "sbom", "containers-storage:localhost/app:1", "--platform", "linux/arm64") == doc(
        sbom("arm64")
    )
    code, out, err = run(capsys, "provenance", "app:1")  # a name without a registry is local's localhost/
    assert (code, out, err[0]) == (1, "", "imgfront: app:1: no provenance for linux/arm64")
    assert local.removed == []  # nothing exported, nothing removed


def test_a_local_image_is_found_by_its_own_digest(
    capsys: pytest.CaptureFixture[str], local: FakeEngine, tmp_path: Path
):
    image = local.add_image(ARM64, names=["localhost/one:1"])
    KeptAttestations(tmp_path / "data" / "imgfront" / "attestations").add(_instance(local, image), [sbom("one")])
    assert run_ok(capsys, "sbom", "localhost/one:1") == doc(sbom("one"))
    code, _, err = run(capsys, "sbom", "localhost/absent:1")
    assert (code, err[0]) == (
        2,
        "imgfront: localhost/absent:1: no list or image named localhost/absent:1 in local storage",
    )
