"""--sbom and --provenance (issue 15) against real engines: podman 4.3 and 5.x, a Docker node, the registry.

Each platform's SBOM and provenance statement are found where a user would look: through the registry's
`sha256-<hex>` referrers tag after a push (Debian's registry has no referrers API), in an OCI layout, and for
local storage in imgfront's data folder. Every SBOM validates against the SPDX 2.3 JSON schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import pytest
from conftest import BUSYBOX_CONTAINERFILE, DOCKER_BUSYBOX_CONTAINERFILE

from imgfront.images.artifacts import PROVENANCE_TYPE, SBOM_TYPE, referrers_tag
from imgfront.images.kept import KeptAttestations
from imgfront.images.sbom import sbom_summary
from imgfront.model import Credentials
from imgfront.oci.client import RegistryClient
from imgfront.oci.referrers import fetch_document, find_layout_referrers, find_referrers, layout_document

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "tests" / "unit" / "fixtures" / "spdx-schema-2.3.json").read_text())
PLATFORMS = ("linux/amd64", "linux/arm64")
EPOCH = "1700000000"

# A build stage whose files the shipped image copies: its packages belong in the SBOM as build dependencies.
STAGED = (
    BUSYBOX_CONTAINERFILE.replace("FROM scratch", "FROM scratch AS build", 1)
    + """\
ARG GREETING=hello
RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo "$GREETING" > /greeting
FROM scratch
COPY --from=build /greeting /greeting
COPY --from=build /bin/busybox /bin/busybox
"""
)


def validate(document: bytes) -> dict:
    data = json.loads(document)
    jsonschema.validate(data, SCHEMA)
    assert data["spdxVersion"] == "SPDX-2.3"
    return data


def push_attested(
    run_imgfront, env, registry, tmp_path: Path, tag: str, push: Sequence[str], source: Sequence[object], **run: float
) -> tuple[dict, RegistryClient]:
    """Build SOURCE (a pipeline or a context, with its options) with --sbom --provenance and push it to TAG by PUSH's
    options, with the registry's credentials in tmp_path/auth.json; the metadata file, and a client to look."""
    authfile, meta = registry.write_auth_file(tmp_path / "auth.json"), tmp_path / "meta.json"
    attested = ["--sbom", "--provenance", "--metadata-file", meta]
    result = run_imgfront(
        ["build", "-t", tag, *push, "--tls-verify=false", "--authfile", authfile, *attested, *source], env, **run
    )
    assert result.returncode == 0, result.stderr
    client = RegistryClient(registry.url, Credentials(registry.user, registry.password), tls_verify=False)
    return json.loads(meta.read_text()), client


def test_hello_static_sbom_and_provenance_are_found_through_the_referrers_tag(
    podman_node, debian_base, registry, run_imgfront, tmp_path
):
    """The issue's "done when": examples/hello-static's SBOM lists its dpkg packages with versions for both
    platforms, validates, and is found through the referrers tag after a push; the provenance with it."""
    env = {**podman_node.env, "XDG_CACHE_HOME": os.fspath(tmp_path / "cache"), "XDG_DATA_HOME": os.fspath(tmp_path)}
    repository = f"attest/hello-static-{podman_node.major}"
    pipeline = ["-p", REPO / "examples" / "hello-static" / "pipeline.yaml"]
    tag = f"{registry.url}/{repository}:1"
    data, client = push_attested(run_imgfront, env, registry, tmp_path, tag, ["--push"], pipeline, timeout=900)
    authfile = tmp_path / "auth.json"
    with client:
        index = client.manifest(repository, "1").json()
        # The image index holds the two images alone: no attestation entries for podman to take for images.
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
        pushed = [a for a in data["imgfront.attestations"] if a["where"].startswith("docker://")]
        assert sorted((a["platform"], a["kind"]) for a in pushed) == sorted(
            (p, k) for p in PLATFORMS for k in ("sbom", "provenance")
        )
        for entry in index["manifests"]:
            digest = entry["digest"]
            platform = f"linux/{entry['platform']['architecture']}"
            tagged = client.manifest(repository, referrers_tag(digest)).json()  # the tag itself, as a client reads it
            assert {m["artifactType"] for m in tagged["manifests"]} == {SBOM_TYPE, PROVENANCE_TYPE}
            (sbom,) = find_referrers(client, repository, digest, SBOM_TYPE)
            assert {
                (a["platform"], a["artifact"]) for a in pushed if a["kind"] == "sbom" and a["subject"] == digest
            } == {(platform, sbom["digest"])}
            document = fetch_document(client, repository, sbom["digest"])
            validate(document)
            packages = {(kind, name): version for kind, name, version in sbom_summary(document)}
            # The shipped image is a static binary on scratch: its packages are the build stage's, with versions.
            assert packages[("build:deb", "gcc-12")].startswith("12.")
            assert packages[("build:deb", "libc6-dev")]
            assert packages[("build:deb", "dpkg")]
            (provenance,) = find_referrers(client, repository, digest, PROVENANCE_TYPE)
            statement = json.loads(fetch_document(client, repository, provenance["digest"]))
            assert statement["subject"][0]["digest"] == {"sha256": digest.partition(":")[2]}
            definition = statement["predicate"]["buildDefinition"]
            assert definition["externalParameters"]["platform"] == platform
            assert definition["internalParameters"]["engineVersion"] == podman_node.version
            bases = [d for d in definition["resolvedDependencies"] if d.get("uri", "").startswith("docker://")]
            assert bases and all(d.get("digest", {}).get("sha256") for d in bases), bases
    # `imgfront sbom` reads them back from the registry, each platform's.
    shown = run_imgfront(
        ["sbom", f"docker://{registry.url}/{repository}:1", "--tls-verify=false", "--authfile", authfile], env
    )
    assert shown.returncode == 0, shown.stderr
    assert sorted(json.loads(shown.stdout)) == list(PLATFORMS)
    # Local storage's list has them too, by its own instance digests.
    kept = KeptAttestations(tmp_path / "imgfront" / "attestations")
    for build in data["imgfront.builds"]:
        assert {e["artifactType"] for e in kept.find(build["digest"])} == {SBOM_TYPE, PROVENANCE_TYPE}


def staged_build(run_imgfront, env, make_context, tmp_path: Path, name: str, *args: str) -> tuple[dict, Path]:
    secret = tmp_path / "tok.txt"
    secret.write_text("s3cr3t-value-for-the-attestation-test\n")
    context = make_context(STAGED)
    layout, meta = tmp_path / f"{name}-layout", tmp_path / f"{name}.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            ",".join(PLATFORMS),
            "--sbom",
            "--provenance=mode=max",
            "--build-arg",
            "GREETING=hi",
            "--secret",
            f"id=tok,src={secret}",
            "-o",
            f"type=oci-layout,dest={layout}",
            "--metadata-file",
            meta,
            *args,
            context,
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    return json.loads(meta.read_text()), layout


def layout_attestations(layout: Path) -> dict[str, dict[str, bytes]]:
    """Each platform's documents by kind, found through the layout's referrers as a reader finds them."""
    top = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    index = json.loads((layout / "blobs" / "sha256" / top.partition(":")[2]).read_bytes())
    found: dict[str, dict[str, bytes]] = {}
    for entry in index["manifests"]:
        platform = f"linux/{entry['platform']['architecture']}"
        for artifact in find_layout_referrers(layout, entry["digest"]):
            kind = "sbom" if artifact["artifactType"] == SBOM_TYPE else "provenance"
            found.setdefault(platform, {})[kind] = layout_document(layout, artifact["digest"])
    return found


def stored_images(node) -> set[str]:
    """Every image id in the node's store, read from the store itself: podman 4.3's `images -a` fails on a store
    with a list made through the API ("checking if image ... is dangling"), whoever made it."""
    found = set()
    for listing in Path(node.graphroot).glob("*-images/images.json"):
        found |= {image["id"] for image in json.loads(listing.read_text())}
    assert found
    return found


KEEP = ("-t", "localhost/attest-staged:1", "-o", "type=image")  # the list in local storage too


def test_layout_carries_both_and_provenance_names_the_secret_but_never_its_value(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    env = {**podman_node.env, "XDG_DATA_HOME": os.fspath(tmp_path / "data")}
    data, layout = staged_build(run_imgfront, env, make_context, tmp_path, "first", *KEEP)
    found = layout_attestations(layout)
    assert sorted(found) == list(PLATFORMS)
    for platform, documents in found.items():
        sbom = validate(documents["sbom"])
        files = {f["fileName"] for f in sbom.get("files", [])}
        assert "./greeting" in files or "/greeting" in files, sorted(files)[:10]
        statement = json.loads(documents["provenance"])
        external = statement["predicate"]["buildDefinition"]["externalParameters"]
        assert external["platform"] == platform
        assert external["buildArgs"] == {"GREETING": "hi"}  # mode=max: the values
        assert external["secrets"] == ["tok"]
    # The secret's value is in no file imgfront wrote: not the layout, the metadata, or the kept attestations.
    for folder in (layout, tmp_path / "data", tmp_path / "first.json"):
        paths = [folder] if folder.is_file() else [p for p in folder.rglob("*") if p.is_file()]
        assert paths
        assert not [p for p in paths if b"s3cr3t" in p.read_bytes()]
    assert {a["where"] for a in data["imgfront.attestations"]} == {"outputs", "containers-storage"}


def test_the_stage_scan_leaves_no_image_behind(podman_node, make_context, run_imgfront, emulation_ready, tmp_path):
    """The SBOM builds the `build` stage again, from the cache: a second, cached build leaves the store as it was.

    One platform, with a first step of this test's own: with two, podman 4.3 takes one platform's cached steps
    for the other's and the second build runs again without the cache, --sbom or not (seen here).
    """
    scan = "FROM scratch AS build\nCOPY marker.txt /marker.txt\n" + STAGED.split("\n", 1)[1].replace(
        "RUN --mount=type=secret,id=tok test -s /run/secrets/tok && ", "RUN "
    )
    context = make_context(scan, {"marker.txt": tmp_path.name})
    env = {**podman_node.env, "XDG_DATA_HOME": os.fspath(tmp_path / "data")}
    meta = tmp_path / "meta.json"
    args = ["build", "--platform", "linux/arm64", "--sbom", "-t", "localhost/attest-scan:1", context]
    first = run_imgfront([*args, "--metadata-file", meta], env)
    assert first.returncode == 0, first.stderr
    before = stored_images(podman_node)
    second = run_imgfront(args, env)
    assert second.returncode == 0, second.stderr
    assert stored_images(podman_node) == before
    # What a user reads back from local storage: the list's SBOM, with the build stage's files' packages (none:
    # busybox has no package database) and the image's files; none of a kind not made (exit 1).
    shown = run_imgfront(["sbom", "localhost/attest-scan:1"], env)
    assert shown.returncode == 0, shown.stderr
    document = validate(shown.stdout.encode())
    assert any(f["fileName"].endswith("greeting") for f in document["files"])
    missing = run_imgfront(["provenance", "localhost/attest-scan:1"], env)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    # The image alone, by its id: one platform without -t makes no list.
    meta = tmp_path / "one.json"
    one = run_imgfront(["build", "--platform", "linux/arm64", "--provenance", "--metadata-file", meta, context], env)
    assert one.returncode == 0, one.stderr
    image_id = json.loads(meta.read_text())["imgfront.builds"][0]["image_id"]
    statement = run_imgfront(["provenance", image_id], env)
    assert statement.returncode == 0, statement.stderr
    assert (
        json.loads(statement.stdout)["predicate"]["buildDefinition"]["externalParameters"]["platform"] == "linux/arm64"
    )


def test_reproducible_attestations_are_the_same_bytes_on_a_second_no_cache_build(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    env = {**podman_node.env, "XDG_DATA_HOME": os.fspath(tmp_path / "data")}
    args = ("--source-date-epoch", EPOCH, "--no-cache")
    first, one = staged_build(run_imgfront, env, make_context, tmp_path, "one", *args)
    second, two = staged_build(run_imgfront, env, make_context, tmp_path, "two", *args)
    assert layout_attestations(one) == layout_attestations(two)
    assert first["imgfront.attestations"] == second["imgfront.attestations"]
    statement = json.loads(layout_attestations(one)["linux/arm64"]["provenance"])
    assert "startedOn" not in json.dumps(statement)
    assert statement["predicate"]["buildDefinition"]["internalParameters"]["sourceDateEpoch"] == int(EPOCH)


def test_remote_podman_and_docker_nodes_attest_their_own_builds(
    host_node, other_nodes, dockerd, make_context, run_imgfront, emulation_ready, tmp_path
):
    """The other podman release and Docker, each as the only node: the provenance names each one's engine."""
    other = other_nodes()
    context = make_context(DOCKER_BUSYBOX_CONTAINERFILE + "FROM scratch\nCOPY --from=2 /bin/busybox /bin/busybox\n")
    wheres = {
        "podman": (["--node", f"{other.url}?name=other", "--no-local"], other.version),
        "docker": (["--node", f"docker+{dockerd.url}", "--no-local"], None),
    }
    for engine, (where, version) in wheres.items():
        layout = tmp_path / f"{engine}-layout"
        result = run_imgfront(
            [
                "build",
                "--platform",
                ",".join(PLATFORMS),
                "--sbom",
                "--provenance",
                "-o",
                f"type=oci-layout,dest={layout}",
                *where,
                context,
            ],
            host_node.env,
        )
        assert result.returncode == 0, result.stderr
        found = layout_attestations(layout)
        assert sorted(found) == list(PLATFORMS)
        for documents in found.values():
            validate(documents["sbom"])
            internal = json.loads(documents["provenance"])["predicate"]["buildDefinition"]["internalParameters"]
            assert internal["engine"] == engine
            if version is not None:
                assert internal["engineVersion"] == version
            else:
                assert internal["engineVersion"].startswith("20.")


@pytest.mark.parametrize("mode", [("--push", "--push-from-nodes"), ("--push-by-digest",)], ids=["nodes", "digest"])
def test_pushed_from_the_nodes_each_image_gets_its_own(
    mode, podman_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    """The nodes push their images themselves; the attestations follow each one, by the digest it has there."""
    env = {**podman_node.env, "XDG_DATA_HOME": os.fspath(tmp_path / "data")}
    repository = f"attest/{mode[-1].replace('-', '')}-{podman_node.major}"
    tag = f"{registry.url}/{repository}" + (":1" if "--push" in mode else "")
    source = ["--platform", ",".join(PLATFORMS), make_context(BUSYBOX_CONTAINERFILE + "RUN echo nodes > /nodes\n")]
    data, client = push_attested(run_imgfront, env, registry, tmp_path, tag, mode, source)
    with client:
        for build in data["imgfront.builds"]:
            digest = build["pushed_digest"]
            found = {a["artifactType"] for a in find_referrers(client, repository, digest)}
            assert found == {SBOM_TYPE, PROVENANCE_TYPE}, build
            (provenance,) = find_referrers(client, repository, digest, PROVENANCE_TYPE)
            statement = json.loads(fetch_document(client, repository, provenance["digest"]))
            assert statement["subject"][0]["digest"]["sha256"] == digest.partition(":")[2]
    assert {a["where"] for a in data["imgfront.attestations"]} == {f"docker://{tag}"}
