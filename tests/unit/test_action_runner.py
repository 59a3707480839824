"""tests/action_runner.py (the composite-action runner the action's tests use), and the parts of action.yml and
merge/action.yml that need no engine: their expressions, and their input-checking steps run with bash.

action_runner is importable because tests/conftest.py puts tests/ on sys.path (pytest's rootdir conftest).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from action_runner import (
    ActionResult,
    ExpressionError,
    condition,
    evaluate,
    expressions,
    read_file_command,
    run_action,
    substitute,
)

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = [ROOT, ROOT / "merge"]
CONTEXTS: dict[str, Any] = {
    "inputs": {"tags": "a:1", "no-cache": "false", "empty": ""},
    "steps": {"find": {"outputs": {"python": "/usr/bin/python3"}, "outcome": "success"}},
    "github": {"action_path": "/actions/imgfront"},
    "runner": {"temp": "/tmp/runner"},
    "env": {"HOME": "/root"},
}


# --- expressions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("'it''s'", "it's"),
        ("42", 42),
        ("1.5", 1.5),
        ("0xff", 255),
        ("true", True),
        ("null", None),
        ("inputs.tags", "a:1"),
        ("inputs.no-cache", "false"),  # a name with a dash is one name
        ("INPUTS.Tags", "a:1"),  # names ignore case
        ("inputs['tags']", "a:1"),
        ("steps.find.outputs.python", "/usr/bin/python3"),
        ("steps.missing.outputs.python", None),  # a missing property is null, not an error
        ("github.action_path", "/actions/imgfront"),
        ("runner.temp", "/tmp/runner"),
        ("env.HOME", "/root"),
    ],
)
def test_literals_and_context_lookups(expression: str, value: object) -> None:
    assert evaluate(expression, CONTEXTS) == value


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("'ABC' == 'abc'", True),  # strings compare ignoring case
        ("inputs.no-cache == 'true'", False),
        ("inputs.no-cache != 'true'", True),
        ("1 == '1'", True),  # mixed types compare as numbers
        ("true == 1", True),
        ("null == ''", True),  # both are 0: a skipped step's output equals ''
        ("steps.missing.outputs.x != ''", False),
        ("'abc' == 1", False),  # NaN equals nothing
        ("2 > 1", True),
        ("'b' >= 'A'", True),
        ("!inputs.empty", True),
        ("!(inputs.tags == 'a:1')", False),
        ("inputs.empty || 'fallback'", "fallback"),  # || and && give an operand, not a boolean
        ("inputs.tags || 'fallback'", "a:1"),
        ("inputs.tags && inputs.empty", ""),
        ("inputs.empty && inputs.tags", ""),
        ("steps.find.outputs.python || steps.setup.outputs.python-path", "/usr/bin/python3"),
        ("inputs.tags == 'a:1' && (inputs.empty == '' || false)", True),
    ],
)
def test_operators_follow_github(expression: str, value: object) -> None:
    assert evaluate(expression, CONTEXTS) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("secrets.token", "unknown context 'secrets'"),
        ("contains(inputs.tags, 'a')", "function contains() is not supported"),
        ("inputs.tags ==", "unexpected 'end'"),
        ("inputs.tags 'x'", "unexpected"),
        ("inputs.tags = 'x'", "cannot read"),
        ("(true", "expected ')'"),
    ],
)
def test_what_the_evaluator_does_not_take_is_an_error(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        evaluate(expression, CONTEXTS)


def test_substitute_puts_values_into_text() -> None:
    text = "${{ runner.temp }}/imgfront/${{ inputs.missing }}x-${{ true }}-${{ 3 }}"
    assert substitute(text, CONTEXTS) == "/tmp/runner/imgfront/x-true-3"
    assert expressions("a ${{ inputs.tags }} b ${{steps.x.outputs.y}}") == ["inputs.tags", "steps.x.outputs.y"]


@pytest.mark.parametrize(
    ("text", "failed", "runs"),
    [
        (None, False, True),
        (None, True, False),
        ("inputs.tags == 'a:1'", False, True),
        ("inputs.tags == 'a:1'", True, False),  # without a status function: success() && (...)
        ("${{ inputs.tags == 'a:1' }}", False, True),
        ("always()", True, True),
        ("always() && inputs.empty != ''", True, False),
        ("failure()", True, True),
        ("failure()", False, False),
        ("success() || failure()", True, True),
        (False, False, False),
    ],
)
def test_if_conditions(text: str | bool | None, failed: bool, runs: bool) -> None:
    assert condition(text, CONTEXTS, failed) is runs


def test_file_commands_read_lines_and_delimited_blocks(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text('a=1\nb=x=y\n\njson<<EOF_1\n{\n  "k": 1\n}\nEOF_1\nempty<<E\n\nE\n')
    assert read_file_command(path) == {"a": "1", "b": "x=y", "json": '{\n  "k": 1\n}', "empty": ""}
    assert read_file_command(tmp_path / "absent") == {}
    path.write_text("x<<END\nno end\n")
    with pytest.raises(ValueError, match="no closing delimiter"):
        read_file_command(path)


# --- the runner ----------------------------------------------------------------------------------

TOY = """\
name: toy
inputs:
  greeting: {default: hello}
  secret: {default: ""}
  fail: {default: "false"}
outputs:
  said: {value: "${{ steps.say.outputs.said }}"}
  tool: {value: "${{ steps.tool.outputs.where }}"}
  never: {value: "${{ steps.later.outputs.x }}"}
runs:
  using: composite
  steps:
    - id: mask
      shell: bash
      env: {SECRET: "${{ inputs.secret }}"}
      run: if [ -n "$SECRET" ]; then echo "::add-mask::$SECRET"; fi
    - id: say
      shell: bash
      env: {GREETING: "${{ inputs.greeting }}", DIR: "${{ runner.temp }}/bin"}
      run: |
        echo "said=$GREETING from $GITHUB_ACTION_PATH" >> "$GITHUB_OUTPUT"
        echo "SHARED=from say" >> "$GITHUB_ENV"
        mkdir -p "$DIR" && printf '#!/bin/sh\\necho tool\\n' > "$DIR/toy-tool" && chmod +x "$DIR/toy-tool"
        echo "$DIR" >> "$GITHUB_PATH"
        echo "### said $GREETING" >> "$GITHUB_STEP_SUMMARY"
        echo "::warning::a warning"
    - id: setup
      uses: actions/setup-python@v5
      with: {python-version: "3.12"}
    - id: tool
      shell: bash
      working-directory: sub
      run: |
        echo "where=$(command -v toy-tool) $SHARED $(basename "$PWD")" >> "$GITHUB_OUTPUT"
        echo "the secret is $SECRET_AGAIN" >&2
        echo "$SECRET_AGAIN" > written.txt
        if [ "$FAIL" = true ]; then exit 7; fi
      env: {SECRET_AGAIN: "${{ inputs.secret }}", FAIL: "${{ inputs.fail }}"}
    - id: later
      shell: bash
      run: echo "x=1" >> "$GITHUB_OUTPUT"
    - id: cleanup
      if: always()
      shell: bash
      run: echo "cleaned=yes" >> "$GITHUB_OUTPUT"
    - id: skipped
      if: inputs.greeting == 'nope'
      shell: bash
      run: exit 1
"""


def run_toy(tmp_path: Path, inputs: Mapping[str, object], **kwargs: Any) -> ActionResult:
    action = tmp_path / "action"
    action.mkdir(exist_ok=True)
    (action / "action.yml").write_text(TOY)
    (tmp_path / "workspace" / "sub").mkdir(parents=True, exist_ok=True)
    return run_action(
        action,
        inputs,
        env={"PATH": os.environ["PATH"]},
        workspace=tmp_path / "workspace",
        runner_temp=tmp_path / "temp",
        **kwargs,
    )


def test_runner_runs_steps_as_github_does(tmp_path: Path) -> None:
    result = run_toy(tmp_path, {"greeting": "hi"})
    assert result.ok and result.exit_code == 0
    assert result.outputs["said"] == f"hi from {tmp_path / 'action'}"
    assert result.outputs["tool"] == f"{tmp_path / 'temp' / 'bin' / 'toy-tool'} from say sub"
    assert result.outputs["never"] == "1"
    assert result.env == {"SHARED": "from say"}
    assert result.path == [os.fspath(tmp_path / "temp" / "bin")]
    assert result.summary == "### said hi\n"
    assert result.annotations == [("warning", "a warning")]
    assert "::warning::" not in result.log()
    setup = result.step("setup")
    assert (setup.status, setup.reason, setup.uses) == (
        "skipped",
        "uses: not run by this runner",
        "actions/setup-python@v5",
    )
    assert result.step("skipped").reason == "if: inputs.greeting == 'nope'"
    assert result.step("cleanup").outputs == {"cleaned": "yes"}


def test_defaults_fill_missing_inputs_and_unknown_inputs_are_refused(tmp_path: Path) -> None:
    assert run_toy(tmp_path, {}).outputs["said"].startswith("hello from")
    with pytest.raises(ValueError, match="greting"):
        run_toy(tmp_path, {"greting": "typo"})


def test_a_failed_step_stops_all_but_always_steps_and_gives_its_exit_code(tmp_path: Path) -> None:
    result = run_toy(tmp_path, {"fail": True})
    assert not result.ok and result.exit_code == 7
    assert result.step("tool").status == "failure"
    assert result.step("tool").outputs["where"]  # outputs written before the failure still count
    assert result.step("later").status == "skipped"
    assert result.outputs["never"] == ""
    assert result.step("cleanup").status == "success"


def test_masks_are_recorded_applied_and_leaks_found(tmp_path: Path) -> None:
    result = run_toy(tmp_path, {"secret": "hunter2"})
    assert result.masks == ["hunter2"]
    assert "the secret is ***" in result.log()
    assert "hunter2" not in result.log()
    leaks = result.leaks("hunter2")
    assert "stderr of step tool" in leaks
    assert os.fspath(tmp_path / "workspace" / "sub" / "written.txt") in leaks
    assert "stdout of step mask" not in leaks  # the ::add-mask:: command itself is not a leak
    assert result.leaks("not-there") == []


def test_without_a_step_summary_file_a_step_that_writes_one_fails_as_on_forgejo(tmp_path: Path) -> None:
    result = run_toy(tmp_path, {}, step_summary=False)
    assert result.step("say").status == "failure"
    assert "No such file or directory" in result.step("say").stderr
    assert result.summary == ""


def test_only_runs_the_selected_steps(tmp_path: Path) -> None:
    result = run_toy(tmp_path, {}, only={"say"})
    assert [s.id for s in result.steps if s.status == "success"] == ["say"]
    assert result.step("tool").reason == "not selected"


def test_a_stand_in_gives_a_step_that_is_not_run_its_outputs(tmp_path: Path) -> None:
    result = run_toy(tmp_path, {}, only={"mask"}, stand_in={"say": {"said": "as if said"}})
    assert result.step("say").reason == "not selected"
    assert result.outputs["said"] == "as if said"


def test_only_bash_steps_are_run(tmp_path: Path) -> None:
    action = tmp_path / "sh"
    action.mkdir()
    (action / "action.yml").write_text("runs:\n  using: composite\n  steps:\n    - {shell: pwsh, run: echo}\n")
    with pytest.raises(ValueError, match="shell 'pwsh'"):
        run_action(action, {}, env={}, workspace=tmp_path / "w", runner_temp=tmp_path / "t")


# --- the actions' own expressions and input checks -----------------------------------------------


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("action_dir", ACTIONS, ids=lambda p: p.relative_to(ROOT).as_posix() or "action.yml")
def test_action_expressions_name_declared_inputs_and_earlier_steps(action_dir: Path) -> None:
    """Inputs reach scripts through env: only (no ${{ }} in run:, where an input would be shell code), and
    every expression parses and names an input the action declares and a step before it."""
    action = yaml.safe_load((action_dir / "action.yml").read_text())
    declared = set(action["inputs"])
    steps = action["runs"]["steps"]
    seen: list[str] = []
    contexts = {**CONTEXTS, "inputs": dict.fromkeys(declared, ""), "steps": {}}
    for step in steps:
        assert "${{" not in step.get("run", ""), f"step {step.get('id')}: an expression inside run:"
        found = [e for s in _strings({k: v for k, v in step.items() if k != "run"}) for e in expressions(s)]
        if isinstance(step.get("if"), str):
            found.append(step["if"])
            condition(step["if"], contexts, failed=False)
        for expression in found:
            evaluate(expression, contexts)
            assert set(re.findall(r"(?<![\w.-])inputs\.([\w-]+)", expression)) <= declared, expression
            assert set(re.findall(r"(?<![\w.-])steps\.([\w-]+)", expression)) <= set(seen), expression
        if step.get("id"):
            seen.append(step["id"])
    for name, output in action["outputs"].items():
        for expression in expressions(output["value"]):
            assert set(re.findall(r"(?<![\w.-])steps\.([\w-]+)", expression)) <= set(seen), name
    for name, spec in action["inputs"].items():
        assert spec.get("description"), f"input {name} has no description"


def run_step(action_dir: Path, step: str, inputs: Mapping[str, object], tmp_path: Path) -> ActionResult:
    return run_action(
        action_dir,
        inputs,
        env={"PATH": os.environ["PATH"]},
        workspace=tmp_path / "workspace",
        runner_temp=tmp_path / "temp",
        only={"mask", step},
    )


def test_inputs_step_splits_lists_and_checks_flags(tmp_path: Path) -> None:
    result = run_step(
        ROOT,
        "inputs",
        {
            "platforms": "linux/amd64, linux/arm64\nlinux/arm/v7,",
            "tags": "ghcr.io/o/app:1\n ghcr.io/o/app:latest ",
            "labels": "a=1,b=2\ndesc=one, two\n\n",
            "build-args": "HTTP_PROXY\nVERSION=1.2,EXTRA=x",
            "no-cache": "TRUE",
            "username": "me",
            "password": "first line\nsecond line",
        },
        tmp_path,
    )
    assert result.ok, result.log()
    outputs = result.step("inputs").outputs
    assert outputs["platforms"] == "linux/amd64,linux/arm64,linux/arm/v7"
    assert outputs["tags"].splitlines() == ["ghcr.io/o/app:1", "ghcr.io/o/app:latest"]
    assert outputs["labels"].splitlines() == ["a=1", "b=2", "desc=one, two"]
    assert outputs["build-args"].splitlines() == ["HTTP_PROXY", "VERSION=1.2", "EXTRA=x"]
    assert (outputs["no-cache"], outputs["push"], outputs["tls-verify"]) == ("true", "false", "true")
    assert (outputs["registry"], outputs["login"]) == ("ghcr.io", "true")
    assert result.masks == ["first line", "second line"]


def test_inputs_step_splits_cache_lists_only_where_a_new_cache_begins(tmp_path: Path) -> None:
    result = run_step(
        ROOT,
        "inputs",
        {
            "cache-from": "ghcr.io/o/a-cache, ghcr.io/o/b-cache\ntype=registry,ref=ghcr.io/o/c,type=gha,scope=x\n",
            "cache-to": "type=registry,ref=ghcr.io/o/a-cache,mode=max",
        },
        tmp_path,
    )
    assert result.ok, result.log()
    outputs = result.step("inputs").outputs
    assert outputs["cache-from"].splitlines() == [
        "ghcr.io/o/a-cache",
        "ghcr.io/o/b-cache",
        "type=registry,ref=ghcr.io/o/c",
        "type=gha,scope=x",  # passed on whole, for imgfront to refuse
    ]
    assert outputs["cache-to"].splitlines() == ["type=registry,ref=ghcr.io/o/a-cache,mode=max"]


@pytest.mark.parametrize(
    ("tags", "registry"),
    [
        ("localhost/app:1", "localhost"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000"),
        ("quay.io/o/app", "quay.io"),
        ("library/app:1", "docker.io"),
        ("app", "docker.io"),
    ],
)
def test_registry_defaults_to_the_first_tags(tmp_path: Path, tags: str, registry: str) -> None:
    result = run_step(ROOT, "inputs", {"tags": tags}, tmp_path)
    assert result.step("inputs").outputs["registry"] == registry
    assert result.step("inputs").outputs["login"] == "false"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"push": "yes"}, "input push must be true or false, not 'yes'"),
        ({"tls-verify": ""}, "input tls-verify must be true or false"),
        ({"username": "me"}, "input username needs a password"),
        ({"password": "pw"}, "input password needs a username"),
    ],
)
def test_inputs_step_refuses_bad_input_with_exit_code_2(tmp_path: Path, inputs: dict[str, str], message: str) -> None:
    result = run_step(ROOT, "inputs", inputs, tmp_path)
    assert result.exit_code == 2
    assert any(message in text for kind, text in result.annotations if kind == "error"), result.annotations


HEX = ["a" * 64, "b" * 64, "c" * 64]


def test_merge_inputs_step_resolves_digests_in_the_first_tags_repository(tmp_path: Path) -> None:
    folder = tmp_path / "digests"
    folder.mkdir()
    (folder / HEX[2]).touch()  # named by the digest, empty: docker/build-push-action's habit
    (folder / "linux-arm64").write_text(f"sha256:{HEX[1]}\n")  # a repeat, dropped
    result = run_step(
        ROOT / "merge",
        "inputs",
        {
            "tags": "127.0.0.1:5000/o/app:1,127.0.0.1:5000/o/app:latest",
            "digests": f"sha256:{HEX[0]}\nother.io/o/base@sha256:{HEX[1]}, sha256:{HEX[1]}",
            "digests-dir": os.fspath(folder),
        },
        tmp_path,
    )
    assert result.ok, result.log()
    outputs = result.step("inputs").outputs
    assert outputs["tags"].splitlines() == ["127.0.0.1:5000/o/app:1", "127.0.0.1:5000/o/app:latest"]
    assert outputs["sources"].splitlines() == [
        f"127.0.0.1:5000/o/app@sha256:{HEX[0]}",
        f"other.io/o/base@sha256:{HEX[1]}",
        f"127.0.0.1:5000/o/app@sha256:{HEX[1]}",
        f"127.0.0.1:5000/o/app@sha256:{HEX[2]}",
    ]
    assert outputs["registry"] == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"tags": "", "digests": f"sha256:{HEX[0]}"}, "input tags names no image"),
        ({"tags": "r/app:1"}, "no digests"),
        ({"tags": "r/app:1", "digests": "sha256:abc"}, "'sha256:abc' is neither"),
        ({"tags": "r/app:1", "digests": "r/app:1"}, "is neither"),
        ({"tags": "r/app:1", "digests-dir": "/nonexistent"}, "no folder /nonexistent"),
    ],
)
def test_merge_inputs_step_refuses_bad_input_with_exit_code_2(
    tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    result = run_step(ROOT / "merge", "inputs", inputs, tmp_path)
    assert result.exit_code == 2
    assert any(message in text for kind, text in result.annotations if kind == "error"), result.annotations
