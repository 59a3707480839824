"""Carries out a plan: one build per assignment, concurrently, bounded by --jobs, cancellable as a whole."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tenacity

from imgfront.engines.base import BuildReport, BuildRequest, Cancellation, ImageBuilder
from imgfront.errors import BuildInterrupted, Cancelled, ImgfrontError, NodeLost, PlatformBuildError, signal_of
from imgfront.platforms import Platform
from imgfront.run.plan import Assignment, Plan
from imgfront.run.progress import Progress


@dataclass(frozen=True)
class Outcome:
    assignment: Assignment
    report: BuildReport | None = None
    error: ImgfrontError | None = None

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, Cancelled)


class _Events:
    """Forwards one build's events to the shared progress, tagged with its assignment."""

    def __init__(self, progress: Progress, assignment: Assignment) -> None:
        self.progress, self.assignment = progress, assignment

    def step(self, number: int, total: int, text: str) -> None:
        self.progress.step(self.assignment, number, total, text)

    def log(self, line: str) -> None:
        self.progress.log(self.assignment, line)


def verify(builder: ImageBuilder, report: BuildReport) -> None:
    """The image must be for the platform that was asked for; an engine may silently build the host's."""
    image = builder.inspect_image(report.image_id)
    if image is None:
        raise PlatformBuildError(f"{report.platform}@{report.node}: built image {report.image_id[:12]} is missing")
    if not report.platform.matches_image(image.os, image.architecture, image.variant):
        got = "/".join(p for p in (image.os, image.architecture, image.variant) if p)
        raise PlatformBuildError(
            f"{report.platform}@{report.node}: the image built is for {got}, not {report.platform}"
        )


Reassign = Callable[[Platform, frozenset[str]], Assignment]
MAX_NODE_LOSSES = 3


def run_plan(
    plan: Plan,
    builders: Mapping[str, ImageBuilder],
    request_for: Callable[[Assignment], BuildRequest],
    progress: Progress,
    jobs: int,
    cancel: Cancellation,
    reassign: Reassign | None = None,
) -> list[Outcome]:
    """Build every assignment; the first failure cancels the rest, since the list will not be made anyway.

    A node lost during a build is left out from then on, and `reassign` gives its platform to another node
    that can build it, a bounded number of times. An interrupt (Ctrl-C, or SIGTERM/SIGHUP as `Signalled`)
    cancels every build, waits for them to stop, and becomes a BuildInterrupted that carries the outcomes, so
    that the caller can remove what was built.
    """
    lost: set[str] = set()
    lock = threading.Lock()

    def build_somewhere(a: Assignment) -> tuple[Assignment, BuildReport]:
        current, loss = a, None
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(MAX_NODE_LOSSES),
            retry=tenacity.retry_if_exception_type(NodeLost),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if loss is not None:
                    with lock:
                        dead = frozenset(lost)
                    try:
                        if reassign is None:
                            raise ImgfrontError("no other node may take over")
                        current = reassign(a.platform, dead)
                    except ImgfrontError as e:
                        reason = e.message if reassign is None else f"no other node can build {a.platform}"
                        raise PlatformBuildError(f"{loss}; {reason}", loss.log_tail) from loss
                    progress.note(f"{a.label}: node lost, building on {current.node} ({current.mode.value})")
                try:
                    return current, builders[current.node].build(request_for(current), _Events(progress, a), cancel)
                except NodeLost as e:
                    with lock:
                        lost.add(current.node)
                    if cancel.cancelled:
                        raise Cancelled(f"{a.label}: cancelled") from None
                    loss = e
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def one(a: Assignment) -> Outcome:
        progress.started(a)
        try:
            if cancel.cancelled:
                raise Cancelled(f"{a.label}: cancelled")
            where, report = build_somewhere(a)
            builder = builders[where.node]
            try:
                verify(builder, report)
            except ImgfrontError as e:
                cancel.cancel()
                progress.failed(a, e)
                return Outcome(a, report, e)  # keep the report so the stray image can be removed
        except ImgfrontError as e:
            if not isinstance(e, Cancelled):
                cancel.cancel()
            progress.failed(a, e)
            return Outcome(a, error=e)
        progress.finished(a, report)
        return Outcome(a, report)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build")
    futures: dict[concurrent.futures.Future[Outcome], Assignment] = {}
    try:
        for a in plan.assignments:  # an interrupt may come while the first builds start
            futures[pool.submit(one, a)] = a
        concurrent.futures.wait(futures)
    except KeyboardInterrupt as interrupt:
        cancel.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise BuildInterrupted(_collect(futures), signal_of(interrupt)) from None
    pool.shutdown(wait=True)
    return _collect(futures)


def _collect(futures: Mapping[concurrent.futures.Future[Outcome], Assignment]) -> list[Outcome]:
    outcomes = []
    for future, a in futures.items():
        if future.cancelled():
            outcomes.append(Outcome(a, error=Cancelled(f"{a.label}: cancelled")))
        elif future.exception() is not None:
            error = future.exception()
            outcomes.append(Outcome(a, error=ImgfrontError(f"{a.label}: {error}")))
        else:
            outcomes.append(future.result())
    order = {a: i for i, a in enumerate(futures.values())}
    return sorted(outcomes, key=lambda o: order[o.assignment])
