"""Carries out a plan: one build per assignment, concurrently, bounded by --jobs, cancellable as a whole."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from imgfront.engines.base import BuildReport, BuildRequest, Cancellation, ImageBuilder
from imgfront.errors import ImgfrontError, PlatformBuildError
from imgfront.plan import Assignment, Plan
from imgfront.progress import Progress


@dataclass(frozen=True)
class Outcome:
    assignment: Assignment
    report: BuildReport | None = None
    error: ImgfrontError | None = None

    @property
    def cancelled(self) -> bool:
        return self.error is not None and self.error.message.endswith("cancelled")


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


def run_plan(
    plan: Plan,
    builders: Mapping[str, ImageBuilder],
    request_for: Callable[[Assignment], BuildRequest],
    progress: Progress,
    jobs: int,
    cancel: Cancellation,
) -> list[Outcome]:
    """Build every assignment; the first failure cancels the rest, since the list will not be made anyway.

    A KeyboardInterrupt cancels every build, waits for them to stop, and is raised again with the outcomes
    attached (`exc.outcomes`) so that the caller can remove what was built.
    """

    def one(a: Assignment) -> Outcome:
        builder = builders[a.node]
        progress.started(a)
        try:
            if cancel.cancelled:
                raise PlatformBuildError(f"{a.label}: cancelled")
            report = builder.build(request_for(a), _Events(progress, a), cancel)
            try:
                verify(builder, report)
            except ImgfrontError as e:
                cancel.cancel()
                progress.failed(a, e.message)
                return Outcome(a, report, e)  # keep the report so the stray image can be removed
        except ImgfrontError as e:
            if not isinstance(e, PlatformBuildError) or not e.message.endswith("cancelled"):
                cancel.cancel()
            progress.failed(a, e.message)
            return Outcome(a, error=e)
        progress.finished(a, report)
        return Outcome(a, report)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build")
    futures = {pool.submit(one, a): a for a in plan.assignments}
    try:
        concurrent.futures.wait(futures)
    except KeyboardInterrupt as interrupt:
        cancel.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        interrupt.outcomes = _collect(futures)  # type: ignore[attr-defined]
        raise
    pool.shutdown(wait=True)
    return _collect(futures)


def _collect(futures: Mapping[concurrent.futures.Future[Outcome], Assignment]) -> list[Outcome]:
    outcomes = []
    for future, a in futures.items():
        if future.cancelled():
            outcomes.append(Outcome(a, error=PlatformBuildError(f"{a.label}: cancelled")))
        elif future.exception() is not None:
            error = future.exception()
            outcomes.append(Outcome(a, error=ImgfrontError(f"{a.label}: {error}")))
        else:
            outcomes.append(future.result())
    order = {a: i for i, a in enumerate(futures.values())}
    return sorted(outcomes, key=lambda o: order[o.assignment])
