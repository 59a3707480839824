"""The stored form of a manifest list, rebuilt from podman's views of it (bytes seen on podman 4.3.1 and 5.4.2)."""

from __future__ import annotations

import hashlib
import json

from imgfront.oci.index import DOCKER_LIST, OCI_INDEX, serialisations, stored_list

AMD = "sha256:" + "a" * 64
ARM = "sha256:" + "b" * 64
CREATED = "sha256:20b959ad5960230b65a77b746bdbf5d991ade4d7a129c2554e167acdcc990531"
# What storage holds for a list imgfront made (skopeo inspect --raw containers-storage:NAME), on both versions.
STORED = (
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":['
    f'{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{AMD}","size":721,'
    '"platform":{"architecture":"amd64","os":"linux"}},'
    f'{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{ARM}","size":721,'
    '"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}'
).encode()
STORED_DIGEST = "sha256:" + hashlib.sha256(STORED).hexdigest()


def view(media_type: str) -> dict[str, object]:
    """The manifest inspect API's answer: 4.3 calls it a Docker list, 5.x an OCI index; size before digest."""
    entries = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 721, "digest": d, "platform": p}
        for d, p in (
            (AMD, {"architecture": "amd64", "os": "linux"}),
            (ARM, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
        )
    ]
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}


def test_docker_list_view_of_podman_4_gives_the_stored_oci_index():
    found = stored_list(view(DOCKER_LIST), [CREATED, STORED_DIGEST], CREATED)
    assert (found.digest, found.media_type, found.size) == (STORED_DIGEST, OCI_INDEX, len(STORED))


def test_oci_view_of_podman_5_gives_the_stored_bytes_not_a_hash_of_the_view():
    data = view(OCI_INDEX)
    found = stored_list(data, [CREATED, STORED_DIGEST], CREATED)
    assert found.digest == STORED_DIGEST
    assert found.digest != "sha256:" + hashlib.sha256(json.dumps(data).encode()).hexdigest()


def test_unrebuildable_list_takes_the_digest_storage_gained_and_no_size():
    other = "sha256:" + "c" * 64
    found = stored_list({**view(OCI_INDEX), "annotations": {"dropped": "by the view"}}, [CREATED, other], CREATED)
    assert (found.digest, found.size) == (other, 0)


def test_two_digests_gained_are_no_digest_rather_than_a_guess():
    found = stored_list(view(OCI_INDEX), [CREATED, "sha256:" + "c" * 64, "sha256:" + "d" * 64], CREATED)
    assert found.digest == ""


def test_annotations_are_written_as_go_writes_them():
    data = {**view(OCI_INDEX), "annotations": {"z": "a<b>&c", "a": "é"}}
    body = dict(serialisations(data))[OCI_INDEX]
    assert body.endswith('],"annotations":{"a":"é","z":"a\\u003cb\\u003e\\u0026c"}}'.encode())
