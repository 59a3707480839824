"""action.yml's network, add-hosts, shm-size and ulimit inputs: how the inputs step splits them, and that the build
step passes each on as its imgfront build option (the options' effect is tests/integration/test_build_options.py's)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from action_runner import run_action

ROOT = Path(__file__).resolve().parents[2]


def test_add_hosts_split_at_commas_and_newlines_and_ulimits_at_newlines(tmp_path: Path) -> None:
    result = run_action(
        ROOT,
        {"add-hosts": "a.test:10.0.0.1, b.test:10.0.0.2\nc.test:10.0.0.3\n", "ulimit": "nofile=512:1024\n nproc=64 \n"},
        env={"PATH": os.environ["PATH"]},
        workspace=tmp_path / "workspace",
        runner_temp=tmp_path / "temp",
        only={"mask", "inputs"},
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
    result = run_action(
        ROOT,
        {"build-contexts": "extra=./a,base=docker-image://alpine:3\nweb=https://e.example/c.tar"},
        env={"PATH": os.environ["PATH"]},
        workspace=tmp_path / "workspace",
        runner_temp=tmp_path / "temp",
        only={"mask", "inputs"},
    )
    assert result.ok, result.log()
    assert result.step("inputs").outputs["build-contexts"].splitlines() == [
        "extra=./a",
        "base=docker-image://alpine:3",
        "web=https://e.example/c.tar",
    ]
