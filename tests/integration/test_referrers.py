"""Attestations against the real registry (Debian's docker-registry 2.8: no referrers API) and host podman.

Images are made by hand in a BlobStore (tests/tiny_image.py), so no build is needed. podman runs on a
storage root of its own under the test's tmp_path, never on the host's store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from integration.services.registry import RegistryServer
from tiny_image import tiny_image

from imgfront.images.artifacts import (
    KIND_ANNOTATION,
    PROVENANCE_TYPE,
    SBOM_TYPE,
    Attestation,
    add_artifact,
    referrers_tag,
)
from imgfront.images.blobs import OCI_INDEX, BlobStore, Descriptor
from imgfront.model import Credentials
from imgfront.oci.client import RegistryClient
from imgfront.oci.push import PushOptions, push_store
from imgfront.oci.referrers import fetch_document, find_layout_referrers, find_referrers, push_artifacts
from imgfront.outputs.layout import tar_directory, write_layout

pytestmark = pytest.mark.slow

SBOM = Attestation("sbom", SBOM_TYPE, b'{"spdxVersion":"SPDX-2.3","name":"app"}')
PROVENANCE = Attestation("provenance", PROVENANCE_TYPE, b'{"_type":"https://in-toto.io/Statement/v1"}')

Podman = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    """The host's podman on a vfs store of its own, removed after the test."""
    root = tmp_path / "podman-root"
    runroot = Path(tempfile.mkdtemp(prefix="imgfront-rr-"))  # podman wants a runroot under 50 characters
    base = ["podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "vfs"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, check=False)

    try:
        yield run
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)


@pytest.fixture
def pushed(registry: RegistryServer, tmp_path: Path) -> tuple[BlobStore, list[Descriptor], str, RegistryClient]:
    """Two platforms' tiny images and their index pushed to REGISTRY/refs/app:1 (each test its own repository)."""
    store = BlobStore(tmp_path / "store")
    images = [tiny_image(store, "linux/amd64"), tiny_image(store, "linux/arm64")]
    repository = f"refs/{tmp_path.name.lower()}"
    options = PushOptions(tls_verify=False, authfile=registry.write_auth_file(tmp_path / "auth.json"))
    push_store(store, images, [f"{registry.url}/{repository}:1"], options)
    client = RegistryClient(registry.url, Credentials(registry.user, registry.password), tls_verify=False)
    return store, images, repository, client


def test_artifacts_are_found_through_the_referrers_tag(
    registry: RegistryServer, pushed: tuple[BlobStore, list[Descriptor], str, RegistryClient]
) -> None:
    store, images, repository, client = pushed
    amd64, arm64 = images
    before = client.manifest(repository, "1")
    sbom, provenance = add_artifact(store, amd64, SBOM), add_artifact(store, amd64, PROVENANCE)
    with client:
        assert push_artifacts(client, repository, store, [sbom, provenance]) == [sbom.digest, provenance.digest]
        assert client.referrers(repository, amd64.digest) is None  # distribution 2.8: no referrers API

        status, _, tag_index = registry.manifest(repository, referrers_tag(amd64.digest))
        assert status == 200
        assert tag_index["mediaType"] == OCI_INDEX
        assert [(e["digest"], e["artifactType"]) for e in tag_index["manifests"]] == [
            (sbom.digest, SBOM_TYPE),
            (provenance.digest, PROVENANCE_TYPE),
        ]

        found = find_referrers(client, repository, amd64.digest)
        assert [e["digest"] for e in found] == [sbom.digest, provenance.digest]
        assert found[0]["annotations"] == {KIND_ANNOTATION: "sbom"}
        [only] = find_referrers(client, repository, amd64.digest, PROVENANCE_TYPE)
        assert only["digest"] == provenance.digest
        assert fetch_document(client, repository, sbom.digest) == SBOM.data
        assert fetch_document(client, repository, provenance.digest) == PROVENANCE.data
        assert find_referrers(client, repository, arm64.digest) == []

        after = client.manifest(repository, "1")
        assert (after.digest, after.body) == (before.digest, before.body)
        assert [e["digest"] for e in after.json()["manifests"]] == [amd64.digest, arm64.digest]
        assert client.manifest(repository, amd64.digest).body == store.read(amd64.digest)


def test_pushing_an_artifact_again_lists_it_once(
    registry: RegistryServer, pushed: tuple[BlobStore, list[Descriptor], str, RegistryClient]
) -> None:
    store, images, repository, client = pushed
    sbom = add_artifact(store, images[1], SBOM)
    with client:
        push_artifacts(client, repository, store, [sbom])
        _, first, _ = registry.manifest(repository, referrers_tag(images[1].digest))
        push_artifacts(client, repository, store, [sbom, sbom])
        _, second, tag_index = registry.manifest(repository, referrers_tag(images[1].digest))
        assert second == first
        assert [e["digest"] for e in tag_index["manifests"]] == [sbom.digest]
        provenance = add_artifact(store, images[1], PROVENANCE)
        push_artifacts(client, repository, store, [provenance])  # a later push adds to what is there
        assert [e["digest"] for e in find_referrers(client, repository, images[1].digest)] == [
            sbom.digest,
            provenance.digest,
        ]


def test_pushed_image_still_pulls_with_podman(
    registry: RegistryServer, pushed: tuple[BlobStore, list[Descriptor], str, RegistryClient], podman: Podman
) -> None:
    store, images, repository, client = pushed
    with client:
        push_artifacts(client, repository, store, [add_artifact(store, image, SBOM) for image in images])
    creds = f"{registry.user}:{registry.password}"
    pulled = podman("pull", "-q", "--tls-verify=false", "--creds", creds, f"{registry.url}/{repository}:1")
    assert pulled.returncode == 0, pulled.stderr
    config = store.json(images[0].digest)["config"]["digest"]  # the host's platform, amd64
    assert pulled.stdout.strip() == config.partition(":")[2]


def test_layout_with_artifacts_still_pulls_with_podman(tmp_path: Path, podman: Podman) -> None:
    store = BlobStore(tmp_path / "store")
    images = [tiny_image(store, "linux/amd64"), tiny_image(store, "linux/arm64")]
    artifacts = {i.digest: (add_artifact(store, i, SBOM), add_artifact(store, i, PROVENANCE)) for i in images}
    layout = tmp_path / "layout"
    write_layout(store, images, layout, artifacts)
    tar_directory(layout, tmp_path / "image.tar")
    config = store.json(images[0].digest)["config"]["digest"].partition(":")[2]
    for source in (f"oci:{layout}", f"oci-archive:{tmp_path / 'image.tar'}"):
        pulled = podman("pull", "-q", source)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.strip() == config
    arm = podman("pull", "-q", "--platform", "linux/arm64", f"oci:{layout}")
    assert arm.returncode == 0, arm.stderr
    assert arm.stdout.strip() == store.json(images[1].digest)["config"]["digest"].partition(":")[2]
    assert [e["artifactType"] for e in find_layout_referrers(tmp_path / "image.tar", images[1].digest)] == [
        SBOM_TYPE,
        PROVENANCE_TYPE,
    ]


def test_sbom_and_provenance_commands_print_each_platforms_pushed_document(
    registry: RegistryServer,
    pushed: tuple[BlobStore, list[Descriptor], str, RegistryClient],
    run_imgfront: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    store, images, repository, client = pushed
    sboms = {i.digest: Attestation("sbom", SBOM_TYPE, f'{{"name":"{i.platform}"}}'.encode()) for i in images}
    amd64, arm64 = images
    proof = Attestation("provenance", PROVENANCE_TYPE, b'{"_type":"https://in-toto.io/Statement/v1","n":1}')
    with client:
        artifacts = [add_artifact(store, i, sboms[i.digest]) for i in images] + [add_artifact(store, amd64, proof)]
        push_artifacts(client, repository, store, artifacts)
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}

    def imgfront(*args: str) -> subprocess.CompletedProcess[str]:
        return run_imgfront([*args, "--tls-verify=false", "--authfile", authfile], env)

    for ref in (f"docker://{registry.url}/{repository}:1", f"docker://{registry.url}/{repository}@{arm64.digest}"):
        both = imgfront("sbom", ref)
        assert both.returncode == 0, both.stderr
        expected = {str(i.platform): json.loads(sboms[i.digest].data) for i in images}
        if "@" in ref:  # the arm64 manifest itself: its one document, as it is
            expected = json.loads(sboms[arm64.digest].data)
        assert json.loads(both.stdout) == expected
    for image in images:
        assert image.platform is not None
        one = imgfront("sbom", f"docker://{registry.url}/{repository}:1", "--platform", str(image.platform))
        assert one.returncode == 0, one.stderr
        assert one.stdout == json.dumps(json.loads(sboms[image.digest].data), indent=2) + "\n"

    ref = f"docker://{registry.url}/{repository}:1"
    amd64_only = imgfront("provenance", ref, "--platform", "linux/amd64")
    assert amd64_only.returncode == 0, amd64_only.stderr
    assert json.loads(amd64_only.stdout) == json.loads(proof.data)
    missing = imgfront("provenance", ref)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.splitlines() == [
        f"imgfront: {ref}: no provenance for linux/arm64",
        "hint: build with --provenance",
    ]
    absent = imgfront("sbom", f"docker://{registry.url}/{repository}:absent")
    assert (absent.returncode, absent.stdout) == (2, "")
    assert len(absent.stderr.splitlines()) == 1 and "absent" in absent.stderr
