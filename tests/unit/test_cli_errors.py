"""How `imgfront` ends on an error: one line (and a hint), the exit code, a traceback only with --debug."""

from __future__ import annotations

import pytest

import imgfront.cli.doctor
from imgfront.cli import main as cli


def _mock_doctor_that_crashes() -> bool:
    raise RuntimeError("boom")


def _last_lines(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    return int(exit_.value.code or 0), capsys.readouterr().err.splitlines()


def test_unexpected_error_hints_at_debug_only_without_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(imgfront.cli.doctor, "run_doctor", _mock_doctor_that_crashes)

    code, lines = _last_lines(capsys, ["doctor"])
    assert code == 1
    assert lines == ["imgfront: unexpected error: boom", "hint: run again with --debug to see the traceback"]

    code, lines = _last_lines(capsys, ["--debug", "doctor"])
    assert code == 1
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "imgfront: unexpected error: boom"
    assert not any("--debug" in line for line in lines)
