"""Content ids: what changes them and what must not."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from imgfront.pipeline import compute_ids, inspect, load, parse
from imgfront.pipeline.ids import ResolvedPipeline
from imgfront.platforms import Platform

FIXTURES = Path(__file__).parent / "fixtures" / "pipelines"
DEBIAN = "docker.io/library/debian:bookworm"
DIGESTS = {DEBIAN: "sha256:" + "d" * 64}
CHECKSUM = "sha256:" + "a" * 64


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    folder = tmp_path / "hello"
    shutil.copytree(FIXTURES / "hello", folder)
    return folder / "pipeline.yaml"


def ids(resolved: ResolvedPipeline) -> list[str]:
    """Every id, build stages first, then main stages, then the output id."""
    return [s.id for t in resolved.trees for s in t.stages] + [resolved.output_id]


def resolve(path: Path, digests: dict[str, str] = DIGESTS) -> ResolvedPipeline:
    return compute_ids(load(path), digests)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_ids_are_sha256_of_canonical_json() -> None:
    text = "version: 1\npipeline: {base: scratch, stages: [{name: env, options: {vars: {A: b}}}]}\n"
    resolved = compute_ids(parse(text, Path("/nowhere/p.yaml")), {})
    stage = (
        '{"build":null,"inputs":{},"options":{"vars":{"A":"b"}},"previous":"scratch","sources":[],'
        '"type":"org.imgfront.env"}'
    )
    assert resolved.main.stages[0].id == hashlib.sha256(stage.encode()).hexdigest()
    output = '{"output":{"name":"org.imgfront.image","options":{}},"tree":"' + resolved.tree_id + '"}'
    assert resolved.output_id == hashlib.sha256(output.encode()).hexdigest()
    assert resolved.output_id == "293c438f60216775768e0c541184c40e6bb73239fcf7d232164d15477354b127"


def test_tree_id_is_the_last_stage_id(hello: Path) -> None:
    resolved = resolve(hello)
    assert resolved.tree_id == resolved.main.stages[-1].id
    assert resolved.build is not None and resolved.build.id == resolved.build.stages[-1].id


def test_a_tree_without_stages_has_its_base_digest_as_id(tmp_path: Path) -> None:
    resolved = compute_ids(
        parse(f"version: 1\npipeline: {{base: {DEBIAN}, stages: []}}\n", tmp_path / "p.yaml"), DIGESTS
    )
    assert resolved.tree_id == DIGESTS[DEBIAN]


def test_changing_a_source_url_keeps_every_id(tmp_path: Path) -> None:
    def pipeline(url: str) -> ResolvedPipeline:
        text = (
            f"version: 1\nsources: {{org.imgfront.urls: {{'{CHECKSUM}': '{url}'}}}}\n"
            f"pipeline: {{base: scratch, stages: [{{name: source, options: {{items: [{{checksum: '{CHECKSUM}', "
            "dest: /tool}]}}, {name: env, options: {vars: {A: b}}}]}\n"
        )
        return compute_ids(parse(text, tmp_path / "p.yaml"), {})

    assert ids(pipeline("https://one.example.org/tool")) == ids(pipeline("file:///mirror/tool"))


def test_changing_an_option_changes_that_stage_and_every_later_id(hello: Path) -> None:
    before = ids(resolve(hello))
    edit(hello, "gcc -O2 -static", "gcc -O3 -static")
    after = ids(resolve(hello))
    changed = [a != b for a, b in zip(before, after, strict=True)]
    # build: apt, copy, run; main: copy, config; output
    assert changed == [False, False, True, True, True, True]


def test_changing_a_main_option_leaves_the_build_ids(hello: Path) -> None:
    before = ids(resolve(hello))
    edit(hello, "entrypoint: [/usr/local/bin/hello]", "entrypoint: [/usr/local/bin/hello, -v]")
    changed = [a != b for a, b in zip(before, ids(resolve(hello)), strict=True)]
    assert changed == [False, False, False, False, True, True]


def test_changing_a_copied_file_changes_the_ids_from_that_stage_on(hello: Path) -> None:
    before = ids(resolve(hello))
    (hello.parent / "hello.c").write_text('int main(void) { return puts("changed") < 0; }\n')
    changed = [a != b for a, b in zip(before, ids(resolve(hello)), strict=True)]
    assert changed == [False, True, True, True, True, True]


def test_making_a_copied_file_executable_changes_its_id(hello: Path) -> None:
    before = ids(resolve(hello))
    (hello.parent / "hello.c").chmod(0o755)
    assert ids(resolve(hello))[1] != before[1]


def test_a_files_time_does_not_change_its_id(hello: Path) -> None:
    before = ids(resolve(hello))
    source = hello.parent / "hello.c"
    source.write_bytes(source.read_bytes())
    os.utime(source, (12345, 12345))
    assert ids(resolve(hello)) == before


def test_marking_a_checkpoint_keeps_every_id(hello: Path) -> None:
    before = ids(resolve(hello))
    edit(hello, "      checkpoint: true\n", "")
    assert ids(resolve(hello)) == before


def test_option_key_order_does_not_matter(tmp_path: Path) -> None:
    one = "version: 1\npipeline: {base: scratch, stages: [{name: config, options: {user: a, workdir: /w}}]}\n"
    two = "version: 1\npipeline: {base: scratch, stages: [{options: {workdir: /w, user: a}, name: config}]}\n"
    assert ids(compute_ids(parse(one, tmp_path / "p.yaml"), {})) == ids(
        compute_ids(parse(two, tmp_path / "p.yaml"), {})
    )


def test_a_new_base_digest_changes_every_id(hello: Path) -> None:
    before = ids(resolve(hello))
    after = ids(resolve(hello, {DEBIAN: "sha256:" + "e" * 64}))
    assert all(a != b for a, b in zip(before, after, strict=True))


def test_scratch_is_a_constant_that_the_platform_completes(tmp_path: Path) -> None:
    pipeline = parse("version: 1\npipeline: {base: scratch, stages: []}\n", tmp_path / "p.yaml")
    assert compute_ids(pipeline, {}).tree_id == "scratch"
    amd64 = compute_ids(pipeline, {}, Platform.parse("linux/amd64"))
    arm64 = compute_ids(pipeline, {}, Platform.parse("linux/arm64"))
    assert amd64.tree_id == "scratch:linux/amd64" and amd64.output_id != arm64.output_id


def test_a_base_without_a_digest_is_refused(hello: Path) -> None:
    with pytest.raises(
        ValueError, match=re.escape("no digest given for base image 'docker.io/library/debian:bookworm'")
    ):
        resolve(hello, {})


def test_the_output_id_follows_the_output_options(tmp_path: Path) -> None:
    base = "version: 1\npipeline: {base: scratch, stages: []}\n"
    plain = compute_ids(parse(base, tmp_path / "p.yaml"), {})
    other = compute_ids(parse(base + "output: {name: image, options: {squash: true}}\n", tmp_path / "p.yaml"), {})
    assert plain.tree_id == other.tree_id and plain.output_id != other.output_id


def test_inspect_fills_in_every_id(hello: Path) -> None:
    resolved = resolve(hello)
    assert resolved.build is not None
    shown = json.loads(json.dumps(inspect(resolved)))
    assert shown["build"]["id"] == resolved.build.id
    assert shown["pipeline"]["id"] == resolved.tree_id
    assert shown["output"] == {"name": "org.imgfront.image", "options": {}, "id": resolved.output_id}
    assert [s["id"] for s in shown["build"]["stages"] + shown["pipeline"]["stages"]] == ids(resolved)[:-1]
    assert shown["pipeline"]["stages"][0]["checkpoint"] is True
    assert shown["build"]["stages"][1]["inputs"]["content"][0] == resolved.build.stages[1].inputs["content"][0]
    assert shown["build"]["base_id"] == DIGESTS[DEBIAN]
