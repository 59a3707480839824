"""The scheduler's checks that need no engine: architecture verification, cancellation, fail-fast.

`MislabellingEngine` is the fake engine made to stand for an engine that ignores the requested platform and builds the
host's (Docker's legacy builder can), which the real podman on this machine never does.
"""

from __future__ import annotations

import pytest
from fakes import FakeEngine, Script

from imgfront.engines.base import (
    BuildEvents,
    BuildReport,
    BuildRequest,
    Cancellation,
    ImageInfo,
    NodeInfo,
    PackedContext,
)
from imgfront.errors import NodeLost, PlatformBuildError
from imgfront.platforms import Platform
from imgfront.run.plan import Assignment, make_plan
from imgfront.run.progress import QuietProgress
from imgfront.run.scheduler import run_plan, verify

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


class MislabellingEngine(FakeEngine):
    """Mock engine: every image it builds says amd64; a build for `fail` fails, others wait to be cancelled."""

    def __init__(self, fail: Platform | None = None, block: Platform | None = None) -> None:
        super().__init__(
            "mock", script={p: Script.FAIL for p in (fail,) if p} | {p: Script.BLOCK for p in (block,) if p}
        )

    def inspect_image(self, ref: str) -> ImageInfo | None:
        return ImageInfo(ref, "sha256:x", "linux", "amd64", None, {})


def _request(platform: Platform) -> BuildRequest:
    return BuildRequest(PackedContext(tar=None, containerfile="Containerfile", size=0), platform)  # type: ignore[arg-type]


def test_image_of_the_wrong_architecture_is_rejected() -> None:
    engine = MislabellingEngine()
    verify(engine, BuildReport("id", "sha256:x", AMD64, "mock", 0.0))
    with pytest.raises(PlatformBuildError, match="the image built is for linux/amd64, not linux/arm64"):
        verify(engine, BuildReport("id", "sha256:x", ARM64, "mock", 0.0))


def test_wrong_architecture_fails_that_platform_and_keeps_its_report_for_removal() -> None:
    engine = MislabellingEngine()
    plan = make_plan([AMD64, ARM64], [engine.info()])
    outcomes = run_plan(plan, {"mock": engine}, lambda a: _request(a.platform), QuietProgress(), 2, Cancellation())
    by_platform = {o.assignment.platform: o for o in outcomes}
    assert by_platform[AMD64].error is None
    assert by_platform[ARM64].error is not None and by_platform[ARM64].report is not None


def test_first_failure_cancels_the_other_builds() -> None:
    engine = MislabellingEngine(fail=AMD64, block=ARM64)
    plan = make_plan([AMD64, ARM64], [engine.info()])
    cancel = Cancellation()
    outcomes = run_plan(plan, {"mock": engine}, lambda a: _request(a.platform), QuietProgress(), 2, cancel)
    assert cancel.cancelled
    failed = {o.assignment.platform: o for o in outcomes}
    assert failed[AMD64].error is not None and not failed[AMD64].cancelled
    assert failed[ARM64].cancelled


def test_cancellation_runs_closers_once_even_when_registered_late() -> None:
    cancel, calls = Cancellation(), []
    forget = cancel.on_cancel(lambda: calls.append("a"))
    cancel.on_cancel(lambda: calls.append("b"))
    forget()
    cancel.cancel()
    cancel.cancel()
    cancel.on_cancel(lambda: calls.append("late"))
    assert calls == ["b", "late"]


class DyingEngine(MislabellingEngine):
    """Mock engine whose connection drops in every build, as a node killed mid-build does."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        raise NodeLost(f"{request.platform}@{self.name}: lost the connection to the build")


class HealthyEngine(MislabellingEngine):
    """Mock engine that labels images truthfully."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        return BuildReport(f"id-{self.name}", "sha256:x", request.platform, self.name, 0.0)

    def inspect_image(self, ref: str) -> ImageInfo | None:
        return ImageInfo(ref, "sha256:x", "linux", "amd64", None, {})


def test_platform_of_a_lost_node_is_rebuilt_on_another() -> None:
    dying, healthy = DyingEngine("dying"), HealthyEngine("healthy")
    infos = [NodeInfo("dying", "mock", "0", "0", (AMD64,), ()), NodeInfo("healthy", "mock", "0", "0", (AMD64,), ())]
    plan = make_plan([AMD64], infos)
    assert plan.assignments[0].node == "dying"

    def reassign(platform: Platform, dead: frozenset[str]) -> Assignment:
        return make_plan([platform], [i for i in infos if i.name not in dead]).assignments[0]

    outcomes = run_plan(
        plan,
        {"dying": dying, "healthy": healthy},
        lambda a: _request(a.platform),
        QuietProgress(),
        1,
        Cancellation(),
        reassign,
    )
    assert outcomes[0].error is None
    assert outcomes[0].report is not None and outcomes[0].report.node == "healthy"


def test_lost_node_with_no_other_able_node_fails_the_build() -> None:
    dying = DyingEngine("dying")
    infos = [NodeInfo("dying", "mock", "0", "0", (AMD64,), ())]

    def reassign(platform: Platform, dead: frozenset[str]) -> Assignment:
        return make_plan([platform], [i for i in infos if i.name not in dead]).assignments[0]

    outcomes = run_plan(
        make_plan([AMD64], infos),
        {"dying": dying},
        lambda a: _request(a.platform),
        QuietProgress(),
        1,
        Cancellation(),
        reassign,
    )
    assert outcomes[0].error is not None
    assert outcomes[0].error.message == (
        "linux/amd64@dying: lost the connection to the build; no other node can build linux/amd64"
    )
