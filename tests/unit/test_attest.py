"""--sbom and --provenance without an engine: the options, which stages the SBOM scans, and how each platform's
attestations are made per subject and handed to the file outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_provenance import facts  # the provenance tests' BuildFacts
from tiny_image import tiny_image

from imgfront.cli.main import load_command
from imgfront.errors import UsageError
from imgfront.images.artifacts import SBOM_TYPE, Attestation
from imgfront.images.blobs import BlobStore, Descriptor
from imgfront.model import BuildReport
from imgfront.oci.referrers import find_layout_referrers, layout_document
from imgfront.options import parse_provenance, parse_sbom
from imgfront.outputs import OutputSpec
from imgfront.outputs.write import write_outputs
from imgfront.platforms import Platform
from imgfront.run.attest import Made, stages

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


@pytest.mark.parametrize(
    ("value", "sbom"), [(None, False), ("true", True), ("TRUE", True), ("false", False), ("0", False)]
)
def test_sbom_takes_buildx_values(value: str | None, sbom: bool) -> None:
    assert parse_sbom(value) is sbom


def test_sbom_generator_is_refused_with_the_reason() -> None:
    with pytest.raises(UsageError, match="reads the image's package databases itself"):
        parse_sbom("generator=docker/buildkit-syft-scanner")


@pytest.mark.parametrize(
    ("value", "mode"),
    [(None, None), ("true", "min"), ("mode=min", "min"), ("mode=max", "max"), ("MODE=MAX", "max"), ("false", None)],
)
def test_provenance_takes_buildx_values(value: str | None, mode: str | None) -> None:
    assert parse_provenance(value) == mode


def test_provenance_with_an_unknown_mode_is_one_usage_error() -> None:
    with pytest.raises(UsageError, match="invalid --provenance value 'mode=full'"):
        parse_provenance("mode=full")


@pytest.mark.parametrize(
    ("args", "given"),
    [
        (["--sbom", "--provenance", "."], {"sbom": "true", "provenance": "true"}),
        (["--provenance=mode=max", "--sbom=false", "."], {"sbom": "false", "provenance": "mode=max"}),
        (["--pull", "--sbom", "."], {"pull": "always", "sbom": "true"}),
        (["--layers", "--no-cache", "."], {"layers": "true", "no_cache": True}),
    ],
)
def test_an_option_given_bare_leaves_the_next_option_alone(args: list[str], given: dict[str, object]) -> None:
    """typer 0.19 drops flag_value: without cli/main.py's allow_bare, `--sbom --provenance` read
    "--provenance" as --sbom's value."""
    command = load_command("build")
    context = command.make_context("build", args)
    assert {name: context.params[name] for name in given} == given
    assert context.params["context"] == "."


def test_tls_verify_given_bare_on_the_commands_that_read_images() -> None:
    for name in ("diff", "sbom", "provenance"):
        command = load_command(name)
        refs = ["a", "b"] if name == "diff" else ["a"]
        context = command.make_context(name, ["--tls-verify", "--authfile", "x", *refs])
        assert context.params["tls_verify"] == "true", name


STAGED = """\
ARG BASE=debian
FROM docker.io/library/debian:bookworm AS build
RUN make
FROM build AS test
RUN make test
FROM ${BASE} AS unused
FROM scratch
COPY --from=build /out/app /app
COPY --from=0 /etc/os-release /os-release
COPY --from=docker.io/library/alpine /etc/alpine-release /
COPY --from=test /report /report
"""


def test_the_sbom_scans_the_named_stages_the_final_stage_copies_from() -> None:
    copied, bases = stages(STAGED)
    assert [s.name for s in copied] == ["build", "test"]  # --from=0 is `build` too; an image is not a stage
    assert bases == ["docker.io/library/debian:bookworm"]  # not scratch, not a stage, not ${BASE}


def test_with_a_target_the_target_is_the_final_stage() -> None:
    copied, bases = stages(STAGED, target="test")
    assert copied == []  # `test` builds FROM build, copying nothing
    text = "FROM a AS one\nRUN x\nFROM b AS two\nCOPY --from=one /x /x\nFROM c\nCOPY --from=two /y /y\n"
    copied, bases = stages(text, target="two")
    assert [s.name for s in copied] == ["one"]
    assert bases == ["a", "b"]  # the stage after the target is not built


def test_a_single_stage_or_a_half_written_file_has_no_stage_to_scan() -> None:
    assert stages("FROM a\nCOPY \\") == ([], ["a"])
    assert stages("FROM a AS x\nFROM scratch\nCOPY --from=x --chown=1 /a /a\n")[0][0].name == "x"


def test_each_subject_gets_its_own_statement_and_the_same_sbom() -> None:
    made = Made(AMD64, sbom=b'{"spdxVersion":"SPDX-2.3"}', facts=facts(platform=AMD64), secrets=("hunter2",))
    here, there = made.for_subject("app", "sha256:" + "a" * 64), made.for_subject("app", "sha256:" + "b" * 64)
    assert [a.kind for a in here] == ["sbom", "provenance"]
    assert here[0] == there[0]
    statements = [json.loads(a.data) for a in (here[1], there[1])]
    assert [s["subject"][0]["digest"]["sha256"][0] for s in statements] == ["a", "b"]
    args = statements[0]["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"]
    assert args["VERSION"] == "1.2" and "hunter2" not in json.dumps(statements[0])


def test_only_what_was_asked_for_is_made() -> None:
    provenance_only = Made(ARM64, facts=facts(platform=ARM64, mode="min"))
    assert [a.kind for a in provenance_only.for_subject("app", "sha256:" + "c" * 64)] == ["provenance"]
    assert Made(ARM64).for_subject("app", "sha256:" + "c" * 64) == []


def archive_of(store: BlobStore, image: Descriptor, path: Path) -> bytes:
    from imgfront.images.archive import write_archive

    write_archive(store, image, path)
    return path.read_bytes()


def test_layout_outputs_carry_what_attach_gives_each_image_and_other_outputs_ask_for_none(tmp_path: Path) -> None:
    source = BlobStore(tmp_path / "source")
    images = {AMD64: tiny_image(source, "linux/amd64"), ARM64: tiny_image(source, "linux/arm64")}
    archives = {p: archive_of(source, i, tmp_path / f"{p.slug}.tar") for p, i in images.items()}
    reports = [BuildReport(f"id-{p.slug}", "", p, "local", 1.0) for p in images]
    asked: list[Platform] = []

    def attach(store: BlobStore, image: Descriptor) -> tuple[Descriptor, ...]:
        from imgfront.images.artifacts import add_artifact

        assert image.platform is not None
        asked.append(image.platform)
        return (add_artifact(store, image, Attestation("sbom", SBOM_TYPE, f'{{"for":"{image.platform}"}}'.encode())),)

    layout = tmp_path / "layout"
    write_outputs([OutputSpec("oci-layout", layout)], reports, lambda r: iter([archives[r.platform]]), (), attach)
    assert sorted(map(str, asked)) == ["linux/amd64", "linux/arm64"]
    for platform, image in images.items():
        (found,) = find_layout_referrers(layout, image.digest, SBOM_TYPE)
        assert json.loads(layout_document(layout, found["digest"])) == {"for": str(platform)}
    asked.clear()
    write_outputs(
        [OutputSpec("docker-archive", tmp_path / "d.tar")], reports, lambda r: iter([archives[r.platform]]), (), attach
    )
    assert asked == []  # a docker-archive has no place for them
