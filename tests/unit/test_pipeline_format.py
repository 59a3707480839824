"""Loading pipeline files: YAML and JSON, schema errors by path, unknown types, refused paths, plugins."""

from __future__ import annotations

import dataclasses
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest

from imgfront.errors import ImgfrontError, UsageError
from imgfront.pipeline import compute_ids, load, parse
from imgfront.pipeline.stages import CompileContext, StageOutput, StageType, load_registry
from imgfront.platforms import Platform

FIXTURES = Path(__file__).parent / "fixtures" / "pipelines"
DEBIAN = {"docker.io/library/debian:bookworm": "sha256:" + "d" * 64}
CHECKSUM = "sha256:" + "a" * 64


def parse_in(folder: Path, text: str, name: str = "pipeline.yaml") -> Any:
    return parse(text, folder / name)


def error_of(folder: Path, text: str, name: str = "pipeline.yaml") -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse_in(folder, text, name)
    assert caught.value.exit_code == 2
    return caught.value


def stages(*lines: str) -> str:
    return "version: 1\npipeline:\n  base: scratch\n  stages:\n" + "".join(f"    - {line}\n" for line in lines)


def test_yaml_file_loads_into_frozen_values() -> None:
    pipeline = load(FIXTURES / "hello" / "pipeline.yaml")
    assert pipeline.name == "hello"
    assert pipeline.platforms == (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
    assert pipeline.build is not None and pipeline.build.base == "docker.io/library/debian:bookworm"
    assert [s.name for s in pipeline.build.stages] == ["org.imgfront.apt", "org.imgfront.copy", "org.imgfront.run"]
    assert [s.name for s in pipeline.main.stages] == ["org.imgfront.copy", "org.imgfront.config"]
    assert pipeline.main.stages[0].checkpoint and not pipeline.main.stages[1].checkpoint
    assert pipeline.build.stages[0].options == {"packages": ["gcc", "libc6-dev"]}
    assert pipeline.output.name == "org.imgfront.image"
    assert pipeline.folder == FIXTURES / "hello"
    with pytest.raises(dataclasses.FrozenInstanceError):
        pipeline.name = "other"  # type: ignore[misc]


def test_json_file_loads_the_same_pipeline_as_yaml() -> None:
    from_yaml = compute_ids(load(FIXTURES / "hello" / "pipeline.yaml"), DEBIAN)
    from_json = compute_ids(load(FIXTURES / "hello" / "pipeline.json"), DEBIAN)
    assert from_json.output_id == from_yaml.output_id
    assert from_json.pipeline.main == from_yaml.pipeline.main


def test_short_and_full_stage_names_are_the_same_stage(tmp_path: Path) -> None:
    short = parse_in(tmp_path, stages("{name: env, options: {vars: {A: b}}}"))
    full = parse_in(tmp_path, stages("{name: org.imgfront.env, options: {vars: {A: b}}}"))
    assert short.main.stages == full.main.stages
    assert compute_ids(short, {}).tree_id == compute_ids(full, {}).tree_id


def test_sources_accept_a_url_or_an_object(tmp_path: Path) -> None:
    other = "sha256:" + "b" * 64
    text = (
        f"version: 1\nsources:\n  org.imgfront.urls:\n    '{CHECKSUM}': https://example.org/a\n"
        f"    '{other}': {{url: 'file:///srv/b'}}\npipeline: {{base: scratch, stages: []}}\n"
    )
    sources = parse_in(tmp_path, text).sources
    assert sources.url(CHECKSUM) == "https://example.org/a"
    assert sources.url(other) == "file:///srv/b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            stages("{name: run, options: {commands: [make]}}", "{name: apt, options: {packages: 42}}"),
            ".pipeline.stages[1].options.packages: 42 is not of type 'array'",
        ),
        (
            "version: 1\nbuild: {base: debian, stages: [{name: dnf, options: {packages: []}}]}\n"
            "pipeline: {base: scratch, stages: []}\n",
            ".build.stages[0].options.packages: [] should be non-empty",
        ),
        ("pipeline: {base: scratch, stages: []}\n", ".: 'version' is a required property"),
        ("version: 2\npipeline: {base: scratch, stages: []}\n", ".version: 1 was expected"),
        (
            "version: 1\nextra: 1\npipeline: {base: scratch, stages: []}\n",
            ".: Additional properties are not allowed ('extra' was unexpected)",
        ),
        (stages("{name: run, options: {}}"), ".pipeline.stages[0].options: 'commands' is a required property"),
        (
            stages("{name: run, option: {}}"),
            ".pipeline.stages[0]: Additional properties are not allowed ('option' was unexpected)",
        ),
        (
            "version: 1\nsources: {org.imgfront.urls: {'sha256:abc': 'https://x'}}\n"
            "pipeline: {base: scratch, stages: []}\n",
            """.sources["org.imgfront.urls"]: 'sha256:abc' does not match""",
        ),
        (
            f"version: 1\nsources: {{org.imgfront.urls: {{'{CHECKSUM}': 'ftp://x'}}}}\n"
            "pipeline: {base: scratch, stages: []}\n",
            f""".sources["org.imgfront.urls"]["{CHECKSUM}"]: 'ftp://x' does not match""",
        ),
        (
            stages("{name: config, options: {exposed_ports: [0]}}"),
            ".pipeline.stages[0].options.exposed_ports[0]: 0 is less than the minimum of 1",
        ),
        (
            stages("{name: copy, options: {paths: [{src: a, dest: relative}]}}"),
            ".pipeline.stages[0].options.paths[0].dest: 'relative' does not match",
        ),
        (
            "version: 1\nplatforms: [linux/amd64, linux/sparc]\npipeline: {base: scratch, stages: []}\n",
            ".platforms[1]: invalid platform 'linux/sparc'",
        ),
        (
            stages('{name: labels, options: {labels: {a.b: "x\\ny"}}}'),
            """.pipeline.stages[0].options.labels["a.b"]: a value cannot hold a line break""",
        ),
        (
            stages("{name: copy, options: {from: build, paths: [{src: /a, dest: /b}]}}"),
            ".pipeline.stages[0].options.from: 'build' names no pipeline this stage can copy from",
        ),
        (
            stages(f"{{name: source, options: {{items: [{{checksum: '{CHECKSUM}', dest: /a}}]}}}}"),
            f".pipeline.stages[0].options.items[0].checksum: {CHECKSUM} is not in sources",
        ),
        (stages("{name: remove, options: {paths: [/usr/..]}}"), ".pipeline.stages[0].options.paths[0]: refusing"),
        ("version: 1\npipeline: {base: build, stages: []}\n", ".pipeline.base: 'build' names the build pipeline"),
        ("version: 1\npipeline: {base: scratch, stages: []}\noutput: {name: tarball}\n", ".output.name: unknown"),
        ("version: 1\n1: x\npipeline: {base: scratch, stages: []}\n", ".: key 1 is not a string"),
        ("version: 1\nname: 2024-01-01\npipeline: {base: scratch, stages: []}\n", ".name: datetime.date"),
        ("", "the file is empty"),
        ("- 1\n", ".: [1] is not of type 'object'"),
    ],
)
def test_schema_error_names_its_path(tmp_path: Path, text: str, expected: str) -> None:
    error = error_of(tmp_path, text)
    assert error.message.startswith(f"{tmp_path / 'pipeline.yaml'}: ")
    assert expected in error.message
    assert "\n" not in error.message


def test_unquoted_yaml_mode_gets_a_hint(tmp_path: Path) -> None:
    error = error_of(tmp_path, stages("{name: files, options: {files: [{path: /a, content: x, mode: 0755}]}}"))
    assert ".pipeline.stages[0].options.files[0].mode: 493 is not of type 'string'" in error.message
    assert error.hint is not None and '"0755"' in error.hint


def test_yaml_error_gives_line_and_column(tmp_path: Path) -> None:
    error = error_of(tmp_path, "version: 1\npipeline:\n  base: scratch\n  stages: [\n    - a\n")
    assert error.message.startswith(f"{tmp_path / 'pipeline.yaml'}:5:5: ")


def test_json_error_gives_line_and_column(tmp_path: Path) -> None:
    error = error_of(tmp_path, '{"version": 1,\n "pipeline": {,}}', name="pipeline.json")
    assert error.message.startswith(f"{tmp_path / 'pipeline.json'}:2:15: ")


@pytest.mark.parametrize(("name", "guess"), [("org.imgfront.atp", "apt"), ("user", "users"), ("copyy", "copy")])
def test_unknown_stage_type_names_the_closest_and_the_known_ones(tmp_path: Path, name: str, guess: str) -> None:
    error = error_of(tmp_path, stages(f"{{name: {name}}}"))
    assert f".pipeline.stages[0].name: unknown stage type {name!r} (did you mean {guess!r}?)" in error.message
    assert "known types: apk, apt, config, copy, dnf, env, files, labels, remove, run, source, users" in error.message


def copy_error(folder: Path, src: str) -> str:
    (folder / "pipeline.yaml").write_text(stages(f"{{name: copy, options: {{paths: [{{src: '{src}', dest: /x}}]}}}}"))
    with pytest.raises(UsageError) as caught:
        load(folder / "pipeline.yaml")
    assert caught.value.exit_code == 2
    return caught.value.message


def test_copy_refuses_a_path_that_climbs_out(tmp_path: Path) -> None:
    message = copy_error(tmp_path, "../../etc/shadow")
    assert ".pipeline.stages[0].options.paths[0].src: '../../etc/shadow' is outside the pipeline's folder" in message


def test_copy_refuses_an_absolute_path(tmp_path: Path) -> None:
    assert "'/etc/shadow' is an absolute path" in copy_error(tmp_path, "/etc/shadow")


def test_copy_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "shadow").symlink_to("/etc/shadow")
    assert "'shadow' is outside the pipeline's folder" in copy_error(folder, "shadow")


def test_copy_refuses_a_symlink_inside_a_copied_folder_that_leads_out(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    (folder / "www").mkdir(parents=True)
    (folder / "www" / "index.html").write_text("hi")
    (folder / "www" / "secret").symlink_to(tmp_path)
    assert "'www/secret' links outside the pipeline's folder" in copy_error(folder, "www")


def test_copy_refuses_a_missing_path(tmp_path: Path) -> None:
    assert "'nothing.c' does not exist in" in copy_error(tmp_path, "nothing.c")


def test_copy_follows_a_symlink_that_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "real.c").write_text("int main;")
    (tmp_path / "link.c").symlink_to("real.c")
    (tmp_path / "pipeline.yaml").write_text(stages("{name: copy, options: {paths: [{src: link.c, dest: /x}]}}"))
    assert load(tmp_path / "pipeline.yaml").main.stages[0].options["paths"][0]["src"] == "link.c"


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read pipeline file"):
        load(tmp_path / "missing.yaml")


class Greeting(StageType):
    name = "com.example.greeting"
    schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {"to": {"type": "string"}}}

    def compile(self, options: Any, ctx: CompileContext) -> StageOutput:
        return StageOutput((f"RUN echo hello {options.get('to', 'world')}",))


class Impostor(Greeting):
    name = "org.imgfront.run"


def entry_point(value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name="x", value=value, group="imgfront.stages")


def test_a_plugin_stage_type_is_loaded_from_its_entry_point(tmp_path: Path) -> None:
    registry = load_registry(lambda: [entry_point(f"{__name__}:Greeting")])
    loaded = parse(stages("{name: com.example.greeting, options: {to: you}}"), tmp_path / "p.yaml", registry)
    assert loaded.main.stages[0].name == "com.example.greeting"
    error = error_of_registry(tmp_path, stages("{name: com.example.greeting, options: {to: 3}}"), registry)
    assert ".pipeline.stages[0].options.to: 3 is not of type 'string'" in error
    without = error_of_registry(tmp_path, stages("{name: com.example.greeting}"), load_registry(lambda: []))
    assert "unknown stage type 'com.example.greeting'" in without


def error_of_registry(folder: Path, text: str, registry: Any) -> str:
    with pytest.raises(UsageError) as caught:
        parse(text, folder / "p.yaml", registry)
    return caught.value.message


def test_a_plugin_cannot_take_a_builtin_name() -> None:
    with pytest.raises(ImgfrontError, match=re.escape("two stage types are named 'org.imgfront.run'")):
        load_registry(lambda: [entry_point(f"{__name__}:Impostor")])


def test_a_broken_plugin_is_named() -> None:
    with pytest.raises(ImgfrontError, match="no_such_module"):
        load_registry(lambda: [entry_point("no_such_module:Thing")])


def test_every_builtin_type_has_a_valid_schema() -> None:
    registry = load_registry(lambda: [])
    assert registry.names == [
        "apk", "apt", "config", "copy", "dnf", "env", "files", "labels", "remove", "run", "source", "users"
    ]  # fmt: skip
    assert all(t.name.startswith("org.imgfront.") for t in registry.types.values())


def test_loading_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pipeline = load(FIXTURES / "hello" / "pipeline.yaml")
    assert (
        compute_ids(pipeline, DEBIAN).output_id
        == compute_ids(load(Path(os.path.relpath(pipeline.path))), DEBIAN).output_id
    )
