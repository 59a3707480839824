"""Building a pipeline: defaults, base resolution, checkpoint selection and the up-to-date decision."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from fakes import FakeEngine

from imgfront.engines.base import BuildEvents, BuildReport, BuildRequest, Cancellation, ImageInfo, ListInfo
from imgfront.errors import UsageError
from imgfront.pipeline import load, parse
from imgfront.pipeline.build import (
    PipelineBuild,
    checkpoint_image,
    default_compile_dir,
    default_platform,
    default_tag,
    resolve,
    used_sources,
)
from imgfront.pipeline.compile import OUTPUT_ID_LABEL
from imgfront.platforms import Platform, host_platform
from imgfront.run.build import BuildOptions
from imgfront.run.progress import Progress

FIXTURES = Path(__file__).parent / "fixtures" / "pipelines"
AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
TAG = "localhost/web:latest"


class MockLocalEngine(FakeEngine):
    """The fake engine with base digests per platform and a list whose images are given; it builds nothing."""

    def __init__(self, images: Sequence[ImageInfo] | None = None) -> None:
        super().__init__("mock", native=(AMD64,), emulated=(ARM64,))
        self.given = images
        self.resolved: list[tuple[str, Platform, str]] = []

    def resolve_base(self, ref: str, platform: Platform, pull: str = "missing") -> str:
        self.resolved.append((ref, platform, pull))
        return f"sha256:{platform.arch.value}-{ref}"

    def list_images(self, name: str) -> tuple[ImageInfo, ...] | None:
        return tuple(self.given) if self.given is not None and name == TAG else None

    def inspect_list(self, name: str) -> ListInfo | None:
        if self.given is None:
            return None
        return ListInfo(name, "list-id", "sha256:list", "application/vnd.oci.image.index.v1+json", 1, ())

    def build(self, request: BuildRequest, events: BuildEvents, cancel: Cancellation) -> BuildReport:
        raise AssertionError("an up-to-date pipeline must not build")


class Notes(Progress):
    def note(self, message: str) -> None:
        self.notes = [*getattr(self, "notes", []), message]


def web() -> Path:
    return FIXTURES / "web" / "pipeline.yaml"


def image(platform: Platform, output_id: str, labels: dict[str, str] | None = None) -> ImageInfo:
    spec = platform.to_oci()
    return ImageInfo(
        f"id-{platform.arch.value}",
        f"sha256:{platform.arch.value}",
        spec["os"],
        spec["architecture"],
        spec.get("variant"),
        {OUTPUT_ID_LABEL: output_id, **(labels or {})},
    )


def pipeline_build(engine: MockLocalEngine, selectors: Sequence[str] = (), **options: object) -> PipelineBuild:
    settings: dict[str, object] = {"platforms": (AMD64, ARM64), "tags": (TAG,), **options}
    build_options = BuildOptions(context=Path("."), **settings)  # type: ignore[arg-type]
    return PipelineBuild(load(web()), build_options, engine, Notes(), checkpoints=selectors)


def output_ids(engine: MockLocalEngine) -> dict[Platform, str]:
    return {p: resolve(load(web()), engine, p).output_id for p in (AMD64, ARM64)}


def test_default_platform_is_the_host_unless_the_pipeline_leaves_it_out(tmp_path: Path) -> None:
    host = host_platform()
    other = ARM64 if host != ARM64 else AMD64
    assert default_platform(parse("version: 1\npipeline: {base: scratch, stages: []}\n", tmp_path / "p.yaml")) == host
    listed = f"version: 1\nplatforms: [{host}, {other}]\npipeline: {{base: scratch, stages: []}}\n"
    assert default_platform(parse(listed, tmp_path / "p.yaml")) == host
    without = f"version: 1\nplatforms: [{other}]\npipeline: {{base: scratch, stages: []}}\n"
    assert default_platform(parse(without, tmp_path / "p.yaml")) == other


def test_default_names_follow_the_pipeline_or_its_folder(tmp_path: Path) -> None:
    named = load(web())
    assert default_tag(named) == "localhost/web:latest"
    assert default_compile_dir(named, ARM64) == Path("web-linux_arm64")
    folder = tmp_path / "shop"
    folder.mkdir()
    nameless = parse("version: 1\npipeline: {base: scratch, stages: []}\n", folder / "pipeline.yaml")
    assert default_tag(nameless) is None
    assert default_compile_dir(nameless, AMD64) == Path("shop-linux_amd64")
    assert checkpoint_image("ab" * 32) == "localhost/imgfront-checkpoint:" + "ab" * 32


def test_bases_resolve_per_platform_and_scratch_needs_no_engine(tmp_path: Path) -> None:
    engine = MockLocalEngine()
    amd, arm = (resolve(load(web()), engine, p, "never") for p in (AMD64, ARM64))
    assert engine.resolved == [
        ("localhost/busybox:latest", AMD64, "never"),
        ("localhost/busybox:latest", ARM64, "never"),
    ]
    assert amd.main.base_id != arm.main.base_id and amd.output_id != arm.output_id
    scratch = parse("version: 1\npipeline: {base: scratch, stages: []}\n", tmp_path / "p.yaml")
    assert resolve(scratch, None, ARM64).main.base_id == "scratch:linux/arm64"
    with pytest.raises(ValueError, match="localhost/busybox:latest"):
        resolve(load(web()), None, AMD64)


def test_sources_are_needed_only_by_stages_still_to_build() -> None:
    resolved = resolve(load(web()), MockLocalEngine(), AMD64)
    checksum = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    assert used_sources(resolved) == {checksum}
    source_stage = next(s.index for s in resolved.main.stages if s.spec.name == "org.imgfront.source")
    assert used_sources(resolved, {"pipeline": (source_stage - 1, "x")}) == {checksum}
    assert used_sources(resolved, {"pipeline": (source_stage, "x")}) == set()


def test_a_checkpoint_id_of_one_platform_is_accepted_and_a_stray_selector_is_not() -> None:
    engine = MockLocalEngine()
    arm_users = resolve(load(web()), engine, ARM64).main.stages[0].id
    chosen = pipeline_build(engine, selectors=(arm_users[:12], "labels"))
    picked = chosen._chosen_checkpoints({p: resolve(load(web()), engine, p) for p in (AMD64, ARM64)})
    amd = resolve(load(web()), engine, AMD64)
    labels_index = next(s.index for s in amd.main.stages if s.spec.name == "org.imgfront.labels")
    assert picked[ARM64] >= {arm_users} and arm_users not in picked[AMD64]
    assert amd.main.stages[labels_index].id in picked[AMD64]
    chosen.selectors = ("nosuchstage",)
    with pytest.raises(UsageError, match="--checkpoint 'nosuchstage' names no stage"):
        chosen._chosen_checkpoints({AMD64: amd})


def test_up_to_date_when_the_list_holds_exactly_every_platforms_output() -> None:
    ids = output_ids(MockLocalEngine())
    engine = MockLocalEngine([image(AMD64, ids[AMD64]), image(ARM64, ids[ARM64])])
    builder = pipeline_build(engine)
    result = builder.run()
    assert not result.plan.assignments
    assert [(r.platform, r.image_id, r.digest) for r in result.reports] == [
        (AMD64, "id-amd64", "sha256:amd64"),
        (ARM64, "id-arm64", "sha256:arm64"),
    ]
    assert result.metadata["containerimage.digest"] == "sha256:list"
    assert builder.progress.notes == [  # type: ignore[attr-defined]
        "up to date: localhost/web:latest already holds this pipeline's output for linux/amd64, linux/arm64"
    ]


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("another output", {}),
        ("a platform more", {}),
        ("a platform less", {}),
        ("no tag", {"tags": ()}),
        ("--no-cache", {"no_cache": True}),
        ("--annotation", {"annotations": {"a": "b"}}),
        ("--label not on the image", {"labels": {"team": "x"}}),
    ],
)
def test_not_up_to_date(case: str, options: dict[str, object]) -> None:
    ids = output_ids(MockLocalEngine())
    images = {
        "another output": [image(AMD64, ids[AMD64]), image(ARM64, "0" * 64)],
        "a platform more": [
            image(AMD64, ids[AMD64]),
            image(ARM64, ids[ARM64]),
            image(Platform.parse("linux/arm/v7"), "1"),
        ],
        "a platform less": [image(AMD64, ids[AMD64])],
    }.get(case, [image(AMD64, ids[AMD64]), image(ARM64, ids[ARM64])])
    engine = MockLocalEngine(images)
    builder = pipeline_build(engine, **options)
    resolved = {p: resolve(load(web()), engine, p) for p in builder.options.platforms}
    assert builder._current(resolved) is None


def test_a_label_given_on_the_command_line_is_checked_on_the_image() -> None:
    ids = output_ids(MockLocalEngine())
    engine = MockLocalEngine([image(p, ids[p], {"team": "x"}) for p in (AMD64, ARM64)])
    builder = pipeline_build(engine, labels={"team": "x"})
    assert builder._current({p: resolve(load(web()), engine, p) for p in (AMD64, ARM64)}) is not None
