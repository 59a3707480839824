"""action.yml's network, add-hosts, shm-size, ulimit, sbom and provenance inputs: how the inputs step splits and checks
them, and that the build step passes each on as its imgfront build option (the options' effect is
tests/integration/test_build_options.py's)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from action_runner import ActionResult, run_action

ROOT = Path(__file__).resolve().parents[2]
INPUTS = {"mask", "inputs"}
BUILD = {"mask", "inputs", "build"}


def run_steps(
    tmp_path: Path,
    inputs: Mapping[str, object],
    steps: set[str],
    env: dict[str, str] | None = None,
    stand_in: dict[str, dict[str, str]] | None = None,
) -> ActionResult:
    """The action's STEPS run with INPUTS in a workspace and runner temp of the test's own."""
    return run_action(
        ROOT,
        inputs,
        env={"PATH": os.environ["PATH"], **(env or {})},
        workspace=tmp_path / "workspace",
        runner_temp=tmp_path / "temp",
        only=steps,
        stand_in=stand_in,
    )


def test_add_hosts_split_at_commas_and_newlines_and_ulimits_at_newlines(tmp_path: Path) -> None:
    result = run_steps(
        tmp_path,
        {"add-hosts": "a.test:10.0.0.1, b.test:10.0.0.2\nc.test:10.0.0.3\n", "ulimit": "nofile=512:1024\n nproc=64 \n"},
        INPUTS,
    )
    assert result.ok, result.log()
    outputs = result.step("inputs").outputs
    assert outputs["add-hosts"].splitlines() == ["a.test:10.0.0.1", "b.test:10.0.0.2", "c.test:10.0.0.3"]
    assert outputs["ulimit"].splitlines() == ["nofile=512:1024", "nproc=64"]


def test_the_build_step_passes_each_input_as_its_option() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    build = next(step for step in action["runs"]["steps"] if step.get("id") == "build")
    script = build["run"]
    for flag, variable in (
        ("--network", "NETWORK"),
        ("--add-host", "ADD_HOSTS"),
        ("--shm-size", "SHM_SIZE"),
        ("--ulimit", "ULIMIT"),
    ):
        assert variable in build["env"] and f'{flag} "${variable}"' in script
    assert {"network", "add-hosts", "shm-size", "ulimit"} <= set(action["inputs"])


def test_build_contexts_split_into_name_src_lines(tmp_path: Path) -> None:
    result = run_steps(
        tmp_path, {"build-contexts": "extra=./a,base=docker-image://alpine:3\nweb=https://e.example/c.tar"}, INPUTS
    )
    assert result.ok, result.log()
    assert result.step("inputs").outputs["build-contexts"].splitlines() == [
        "extra=./a",
        "base=docker-image://alpine:3",
        "web=https://e.example/c.tar",
    ]


@pytest.mark.parametrize(
    ("inputs", "sbom", "provenance"),
    [
        ({}, "", ""),
        ({"sbom": "TRUE", "provenance": " mode=MAX "}, "true", "mode=max"),
        ({"sbom": "false", "provenance": "mode=min"}, "false", "mode=min"),
        ({"sbom": True, "provenance": False}, "true", "false"),  # YAML booleans in with:
    ],
)
def test_sbom_and_provenance_take_build_push_actions_values(
    tmp_path: Path, inputs: dict[str, object], sbom: str, provenance: str
) -> None:
    result = run_steps(tmp_path, inputs, INPUTS)
    assert result.ok, result.log()
    outputs = result.step("inputs").outputs
    assert (outputs["sbom"], outputs["provenance"]) == (sbom, provenance)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"sbom": "yes"}, "input sbom must be true or false, not 'yes'"),
        ({"sbom": "mode=max"}, "input sbom must be true or false"),
        ({"provenance": "mode=full"}, "input provenance must be true, false, mode=min or mode=max, not 'mode=full'"),
        ({"provenance": "mode=max,builder-id=x"}, "input provenance must be"),
    ],
)
def test_other_sbom_and_provenance_values_fail_with_exit_code_2(
    tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    result = run_steps(tmp_path, inputs, INPUTS)
    assert result.exit_code == 2
    assert any(message in text for kind, text in result.annotations if kind == "error"), result.annotations


# A stand-in for the installed imgfront: records its arguments, one a line, and writes an empty metadata file.
RECORDING_IMGFRONT = """#!/bin/bash
printf '%s\\n' "$@" > "$RECORD"
while [ $# -gt 0 ]; do
  if [ "$1" = --metadata-file ]; then echo '{"imgfront.builds": []}' > "$2"; fi
  shift
done
"""


def recorded_build(tmp_path: Path, inputs: Mapping[str, object]) -> list[str]:
    """The arguments imgfront got from the build step, run with INPUTS and RECORDING_IMGFRONT installed."""
    fake = tmp_path / "imgfront"
    fake.write_text(RECORDING_IMGFRONT)
    fake.chmod(0o755)
    record = tmp_path / "args"
    stand_in = {"install": {"imgfront": str(fake), "python": sys.executable}}
    result = run_steps(tmp_path, inputs, BUILD, env={"RECORD": str(record)}, stand_in=stand_in)
    assert result.ok, result.log()
    return record.read_text().splitlines()


@pytest.mark.parametrize(
    ("inputs", "flags"),
    [
        ({}, []),
        ({"sbom": "true", "provenance": "mode=max"}, ["--sbom=true", "--provenance=mode=max"]),
        ({"sbom": "false", "provenance": "false"}, ["--sbom=false", "--provenance=false"]),
        ({"provenance": "true"}, ["--provenance=true"]),
    ],
)
def test_the_build_step_passes_sbom_and_provenance_as_options(
    tmp_path: Path, inputs: dict[str, str], flags: list[str]
) -> None:
    args = recorded_build(tmp_path, {**inputs, "tags": "localhost/app:1"})
    assert args[0] == "build"
    assert [a for a in args if a.startswith(("--sbom", "--provenance"))] == flags


def test_extra_args_go_to_imgfront_one_argument_a_line(tmp_path: Path) -> None:
    extra = "--memory=1g\n  --dns=10.0.0.1 \n\n--env=GREETING=hello world\r\n--label=$(touch /tmp/x)\n"
    args = recorded_build(tmp_path, {"tags": "localhost/app:1", "extra-args": extra})
    assert [a for a in args if a.startswith(("--memory", "--dns", "--env", "--label"))] == [
        "--memory=1g",
        "--dns=10.0.0.1",
        "--env=GREETING=hello world",
        "--label=$(touch /tmp/x)",
    ]
    assert args[-1] == "."  # the context stays last


def test_an_extra_args_line_that_is_not_an_option_fails_with_exit_code_2(tmp_path: Path) -> None:
    stand_in = {"install": {"imgfront": "/bin/false", "python": sys.executable}}
    result = run_steps(tmp_path, {"extra-args": "--memory\n1g"}, BUILD, stand_in=stand_in)
    assert result.exit_code == 2
    assert any("input extra-args takes options" in text for kind, text in result.annotations if kind == "error")
