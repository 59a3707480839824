"""What each --progress mode shows."""

from __future__ import annotations

import io
import json

import pytest

from imgfront.errors import PlatformBuildError
from imgfront.model import BuildReport
from imgfront.platforms import Platform
from imgfront.run.plan import Assignment, Mode, Plan
from imgfront.run.progress import JsonProgress, PlainProgress, TtyProgress

ARM64 = Assignment(Platform.parse("linux/arm64"), "local", Mode.EMULATED)
REPORT = BuildReport("abc" * 21 + "d", "sha256:" + "1" * 64, ARM64.platform, "local", 1.25)


def test_plain_prefixes_every_line_with_platform_and_node() -> None:
    out = io.StringIO()
    progress = PlainProgress(out=out)
    progress.plan(Plan((ARM64,)))
    progress.started(ARM64)
    progress.log(ARM64, "STEP 1/2: FROM scratch")
    progress.finished(ARM64, REPORT)
    lines = out.getvalue().splitlines()
    assert lines[0] == "plan: linux/arm64 -> local (emulated)"
    assert "[linux/arm64@local] STEP 1/2: FROM scratch" in lines
    assert lines[-1].startswith("[linux/arm64@local] done in 1.25s")


def test_json_is_one_event_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    progress = JsonProgress()
    progress.plan(Plan((ARM64,)))
    progress.step(ARM64, 1, 2, "FROM scratch")
    progress.failed(ARM64, PlatformBuildError("linux/arm64@local: step failed"))
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["plan", "step", "failed"]
    assert events[1] == {**events[1], "platform": "linux/arm64", "node": "local", "step": 1, "total": 2}


def test_tty_table_has_a_row_per_platform_with_step_and_state() -> None:
    progress = TtyProgress(out=io.StringIO())
    progress.rows = {}
    progress.plan(Plan((ARM64,)))
    progress.started(ARM64)
    progress.step(ARM64, 3, 7, "RUN make")
    progress.log(ARM64, "compiling")
    progress.live.stop()
    table = progress._table()
    cells = [list(column.cells) for column in table.columns]
    assert [c[0] for c in cells][:4] == ["linux/arm64", "local", "building", "3/7"]
    assert cells[-1][0] == "compiling"
