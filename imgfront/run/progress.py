"""Progress output: a live table on a terminal, prefixed lines, JSON events, or nothing."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from imgfront.errors import Cancelled, ImgfrontError
from imgfront.model import BuildReport
from imgfront.modes import ProgressMode
from imgfront.run.plan import Assignment, Plan

if TYPE_CHECKING:
    from rich.table import Table  # rich is loaded only to draw: quiet and json runs never need it


@dataclass
class _Row:
    assignment: Assignment
    state: str = "waiting"
    step: str = ""
    line: str = ""
    started: float | None = None
    ended: float | None = None

    def elapsed(self) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or time.monotonic()) - self.started:.1f}s"


@dataclass
class Progress:
    """Receives build events from every worker thread; subclasses decide what the user sees."""

    out: TextIO = field(default_factory=lambda: sys.stderr)
    rows: dict[Assignment, _Row] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        """Subclasses set up their output here (dataclass calls it only if the base defines it)."""

    def plan(self, plan: Plan) -> None:
        self.rows = {a: _Row(a) for a in plan.assignments}
        self.note("plan: " + "; ".join(plan.describe()))

    def _row(self, a: Assignment) -> _Row:
        return self.rows.setdefault(a, _Row(a))

    def started(self, a: Assignment) -> None:
        with self.lock:
            self._row(a).state, self._row(a).started = "building", time.monotonic()
        self.event(a, "started")

    def step(self, a: Assignment, number: int, total: int, text: str) -> None:
        with self.lock:
            self._row(a).step = f"{number}/{total}"
        self.event(a, "step", step=number, total=total, text=text)

    def log(self, a: Assignment, line: str) -> None:
        with self.lock:
            self._row(a).line = line
        self.event(a, "log", line=line)

    def finished(self, a: Assignment, report: BuildReport) -> None:
        self._end(a, "done")
        self.event(a, "done", image_id=report.image_id, digest=report.digest, seconds=round(report.seconds, 3))

    def failed(self, a: Assignment, error: ImgfrontError) -> None:
        self._end(a, "cancelled" if isinstance(error, Cancelled) else "failed")
        self.event(a, "failed", error=error.message)

    def _end(self, a: Assignment, state: str) -> None:
        with self.lock:
            self._row(a).state, self._row(a).ended = state, time.monotonic()

    def event(self, a: Assignment, kind: str, **data: Any) -> None:
        """One event for one platform; the base class shows nothing."""

    def note(self, message: str) -> None:
        """A message that belongs to no one platform."""

    def summary(self, reports: Sequence[BuildReport]) -> None:
        """The closing table of platform, node, digest and seconds."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class QuietProgress(Progress):
    pass


class PlainProgress(Progress):
    """Log lines prefixed `[linux/arm64@local]`, as a CI log wants them."""

    def event(self, a: Assignment, kind: str, **data: Any) -> None:
        text = {
            "log": data.get("line"),
            "started": f"building ({a.mode.value})",
            "failed": f"FAILED: {data.get('error')}",
            "done": f"done in {data.get('seconds')}s: {data.get('image_id', '')[:12]}",
        }.get(kind)
        if text is not None:
            with self.lock:
                print(f"[{a.label}] {text}", file=self.out, flush=True)

    def note(self, message: str) -> None:
        with self.lock:
            print(message, file=self.out, flush=True)

    def summary(self, reports: Sequence[BuildReport]) -> None:
        from rich.console import Console

        console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
        console.print(summary_table(reports))


class JsonProgress(Progress):
    """One JSON object per line on stdout, for programs."""

    def __post_init__(self) -> None:
        self.out = sys.stdout

    def _emit(self, record: dict[str, Any]) -> None:
        with self.lock:
            print(json.dumps(record, sort_keys=True), file=self.out, flush=True)

    def plan(self, plan: Plan) -> None:
        self.rows = {a: _Row(a) for a in plan.assignments}
        self._emit({"event": "plan", "time": time.time(), "plan": plan.to_json()})

    def event(self, a: Assignment, kind: str, **data: Any) -> None:
        self._emit({"event": kind, "time": time.time(), "platform": str(a.platform), "node": a.node, **data})

    def note(self, message: str) -> None:
        self._emit({"event": "note", "time": time.time(), "message": message})

    def summary(self, reports: Sequence[BuildReport]) -> None:
        self._emit({"event": "summary", "time": time.time(), "builds": [report_json(r) for r in reports]})


class TtyProgress(PlainProgress):
    """A live table, one row a platform: state, step N/M, elapsed time and the last log line."""

    def __post_init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.out)
        self.live = Live(console=self.console, refresh_per_second=8, transient=False, get_renderable=self._table)

    def _table(self) -> Table:
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("platform", "node", "state", "step", "time", "last line"):
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=60 if column == "last line" else None)
        with self.lock:
            for row in self.rows.values():
                table.add_row(
                    str(row.assignment.platform),
                    row.assignment.node,
                    row.state,
                    row.step,
                    row.elapsed(),
                    row.line,
                )
        return table

    def plan(self, plan: Plan) -> None:
        self.rows = {a: _Row(a) for a in plan.assignments}
        self.console.print("plan: " + "; ".join(plan.describe()))
        self.live.start()

    def event(self, a: Assignment, kind: str, **data: Any) -> None:
        if kind == "failed":
            self.live.console.print(f"[{a.label}] FAILED: {data.get('error')}", markup=False)

    def note(self, message: str) -> None:
        self.live.console.print(message, markup=False)

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def summary_table(reports: Sequence[BuildReport]) -> Table:
    from rich.table import Table

    table = Table(title=None, box=None, header_style="bold")
    for column in ("platform", "node", "digest", "seconds"):
        table.add_column(column, no_wrap=True)
    for r in reports:
        table.add_row(str(r.platform), r.node, r.digest, f"{r.seconds:.1f}")
    return table


def report_json(r: BuildReport) -> dict[str, Any]:
    return {
        "platform": str(r.platform),
        "node": r.node,
        "image_id": r.image_id,
        "digest": r.digest,
        "seconds": round(r.seconds, 3),
    }


def make_progress(mode: ProgressMode) -> Progress:
    if mode is ProgressMode.AUTO:
        mode = ProgressMode.TTY if sys.stderr.isatty() else ProgressMode.PLAIN
    kinds: dict[ProgressMode, type[Progress]] = {
        ProgressMode.TTY: TtyProgress,
        ProgressMode.PLAIN: PlainProgress,
        ProgressMode.JSON: JsonProgress,
        ProgressMode.QUIET: QuietProgress,
    }
    return kinds[ProgressMode(mode)]()
