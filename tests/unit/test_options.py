"""The rules between build options, in one place: what `resolve` refuses or makes of the command line, and what
`fit_engines` makes of it for the engines at hand (Docker holds no list; an option an engine lacks or a podman
too old for it is refused before any build)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fakes import AMD64, ARM64, DOCKER, PODMAN4, PODMAN5

from imgfront.cli import main as cli
from imgfront.engines.base import NodeInfo
from imgfront.errors import UsageError
from imgfront.modes import ProgressMode, PullPolicy, PushMode
from imgfront.oci.push import PushOptions
from imgfront.options import (
    OPTIONS_BY_DEST,
    Option,
    Unsupported,
    check_support,
    fit_engines,
    given_rows,
)
from imgfront.run.build import BuildOptions
from imgfront.run.invocation import Invocation, resolve
from imgfront.run.progress import JsonProgress, PlainProgress, QuietProgress, make_progress


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    return tmp_path


def resolved(context: Path, **given: object) -> Invocation:
    return resolve({"context": str(context), **given})


def refusal(context: Path, **given: object) -> str:
    with pytest.raises(UsageError) as refused:
        resolved(context, **given)
    return refused.value.message


def test_defaults_are_typed_and_the_same_as_the_cli_gives(context: Path) -> None:
    run = resolved(context)
    assert run.options.pull is PullPolicy.MISSING and run.options.push is None
    assert run.progress is ProgressMode.AUTO and run.engine == "podman" and run.connect_timeout == 15.0
    assert run.options.context == context and run.options.build_args == {}


def test_values_are_parsed_by_their_row(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_ENV", "e")
    run = resolved(
        context,
        pull="always",
        platform=["linux/arm64,linux/amd64"],
        tag=["app:1"],
        build_arg=["A=1", "FROM_ENV", "UNSET_HERE"],
        label=["k=v"],
        progress="json",
        push=True,
        tls_verify="false",
    )
    o = run.options
    assert o.pull is PullPolicy.ALWAYS and o.platforms == (ARM64, AMD64) and o.tags == ("localhost/app:1",)
    assert o.build_args == {"A": "1", "FROM_ENV": "e"} and o.labels == {"k": "v"}
    assert o.push == PushOptions(PushMode.HERE, False, None) and run.progress is ProgressMode.JSON


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"pull": "sometimes"}, "invalid pull policy 'sometimes'"),
        ({"push_from_nodes": True}, "--push-from-nodes needs --push"),
        ({"push": True, "push_from_nodes": True, "push_by_digest": True}, "cannot both be given"),
        ({"tls_verify": "true"}, "--tls-verify and --authfile are for --push, --cache-from and --cache-to"),
        ({"authfile": Path("auth.json")}, "--tls-verify and --authfile are for --push, --cache-from and --cache-to"),
        ({"push": True, "tls_verify": "maybe"}, "invalid --tls-verify value 'maybe'"),
        ({"checkpoint": ["*"]}, "--checkpoint needs a pipeline"),
        ({"label": ["novalue"]}, "invalid label 'novalue'"),
        ({"pipeline_file": Path("p.yaml")}, "-p/--pipeline cannot be combined with a build context"),
    ],
)
def test_each_rule_between_options_is_one_refusal(context: Path, given: dict[str, object], message: str) -> None:
    assert message in refusal(context, **given)


def test_push_modes_are_one_enum(context: Path) -> None:
    by_digest = resolved(context, push_by_digest=True, tag=["r.example/app:1"]).options.push
    from_nodes = resolved(context, push=True, push_from_nodes=True, tag=["r.example/app:1"]).options.push
    assert by_digest is not None and by_digest.mode is PushMode.DIGEST
    assert from_nodes is not None and from_nodes.mode is PushMode.NODES


def fit(options: BuildOptions, local: NodeInfo, holds_lists: bool, *nodes: NodeInfo) -> tuple[BuildOptions, list[str]]:
    notes: list[str] = []
    return fit_engines(options, local.driver, holds_lists, nodes or (local,), notes.append), notes


def test_a_local_engine_without_lists_pushes_from_the_nodes_and_says_so(context: Path) -> None:
    options = resolved(context, push=True, tag=["r.example/app:1"]).options
    fitted, notes = fit(options, DOCKER, False)
    assert fitted.push is not None and fitted.push.mode is PushMode.NODES
    assert notes == [
        "the local docker engine cannot hold a list: each node pushes its own image "
        "and the list is written to the registry (as --push-from-nodes)"
    ]
    assert options.push is not None and options.push.mode is PushMode.HERE  # the given options stay as given
    assert fit(options, PODMAN4, True)[0] == options


@pytest.mark.parametrize(
    ("given", "holds_lists", "message"),
    [
        ({"push": True}, True, "--push needs -t"),
        ({"tag": ["app:1"]}, False, "the local docker engine cannot hold the manifest list -t names"),
        ({"iidfile": Path("id"), "platform": ["linux/amd64,linux/arm64"]}, True, "--iidfile needs -t and type=image"),
    ],
)
def test_rules_that_need_the_engine_refuse_before_any_build(
    context: Path, given: dict[str, object], holds_lists: bool, message: str
) -> None:
    with pytest.raises(UsageError) as refused:
        fit(resolved(context, **given).options, DOCKER, holds_lists)
    assert message in refused.value.message


# Issue 13's options do not exist yet: these rows stand for one podman only and one podman 5.0 has first.
PODMAN_ONLY = Option(("--podman-thing",), "podman_thing", bool, "x", podman="thing", docker=None)
VOLUME = Option(("--volume",), "volume", list[str] | None, "x", podman="volume", docker="volumes")


def test_an_option_an_engine_lacks_is_refused_on_its_nodes_naming_the_node() -> None:
    check_support(PODMAN_ONLY, PODMAN4, lambda _: None)
    with pytest.raises(UsageError) as refused:
        check_support(PODMAN_ONLY, DOCKER, lambda _: None)
    assert refused.value.message == "--podman-thing is not supported on docker nodes (dock)"


def test_an_option_newer_than_a_nodes_podman_is_refused_with_both_versions() -> None:
    assert VOLUME.podman_since == (4, 4)  # from engines/build_params.py's table, the one place versions live
    check_support(VOLUME, PODMAN5, lambda _: None)
    check_support(VOLUME, DOCKER, lambda _: None)
    with pytest.raises(UsageError) as refused:
        check_support(VOLUME, PODMAN4, lambda _: None)
    assert refused.value.message == "--volume needs podman 4.4 or newer; node old runs 4.3.1"


def test_annotations_are_dropped_on_docker_with_a_note(context: Path) -> None:
    options = resolved(context, annotation=["a=b"], label=["l=m"]).options
    assert OPTIONS_BY_DEST["annotation"] in given_rows(options)
    assert OPTIONS_BY_DEST["annotation"].without is Unsupported.DROP
    fitted, notes = fit(options, PODMAN4, True, PODMAN4, DOCKER)
    assert fitted == options
    assert notes == [f"--annotation is not supported on docker nodes: {DOCKER.name}'s images are built without it"]
    assert OPTIONS_BY_DEST["no_cache"] not in given_rows(options)
    assert OPTIONS_BY_DEST["no_cache"] in given_rows(replace(options, no_cache=True))


def test_progress_modes_make_their_progress() -> None:
    assert isinstance(make_progress(ProgressMode.JSON), JsonProgress)
    assert isinstance(make_progress(ProgressMode.QUIET), QuietProgress)
    assert isinstance(make_progress(ProgressMode.AUTO), PlainProgress)  # pytest's stderr is no terminal


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--push-from-nodes", "."], "imgfront: --push-from-nodes needs --push"),
        (["build", "--pull=sometimes", "."], "imgfront: invalid pull policy 'sometimes'"),
        (["build", "--progress", "fancy", "."], "fancy"),
        (["build", "--ulimit", "nofile=x", "."], "imgfront: invalid --ulimit 'nofile=x'"),
        (["build", "--shm-size", "big", "."], "imgfront: invalid --shm-size 'big'"),
        (["build", "--network", "bridge", "."], "imgfront: invalid --network 'bridge'"),
        (["build", "--format", "tar", "."], "imgfront: invalid --format 'tar'"),
        (["build", "--timestamp", "-1", "."], "-1"),
    ],
)
def test_bad_input_from_the_command_line_is_one_line_and_exit_2_before_any_engine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "unix:///nonexistent/podman.sock")  # no engine is asked
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("hint:")]
    assert exit_.value.code == 2 and len(lines) == 1 and message in lines[0]
