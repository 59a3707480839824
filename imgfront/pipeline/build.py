"""One `imgfront build -p`: ids per platform, the up-to-date check, compiling, building and checkpoints.

For each platform the base images' digests are resolved on the local engine and the ids computed.
When every tag already names a list whose instances are exactly this pipeline's outputs (the
`org.imgfront.output-id` label, one per platform), nothing is built: the metadata and id files are
written from the list as it is. Otherwise the pipeline is compiled into one context per platform,
resuming after the last checkpoint image that exists, and `imgfront.run.build.Build` builds those contexts
as it builds any Containerfile. Only after that build has succeeded is each checkpoint built again by
its target (from the layer cache) and tagged `localhost/imgfront-checkpoint:<stage id>`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from imgfront.engines.base import (
    BuildReport,
    BuildRequest,
    Cancellation,
    ImageBuilder,
    ImageInfo,
    ListInfo,
    PackedContext,
    SilentEvents,
)
from imgfront.errors import LOG_TAIL, BuildFailed, ImgfrontError, Interrupted, PlatformBuildError, UsageError
from imgfront.modes import PullPolicy
from imgfront.oci.push import push_list
from imgfront.pipeline.checkpoints import Checkpoint, resume_points, select
from imgfront.pipeline.compile import OUTPUT_ID_LABEL, CompiledPipeline, compile_pipeline
from imgfront.pipeline.ids import ResolvedPipeline, compute_ids
from imgfront.pipeline.model import SCRATCH, Pipeline
from imgfront.pipeline.sources import fetch
from imgfront.platforms import Platform, host_platform
from imgfront.run import context as build_context
from imgfront.run.build import Build, BuildOptions, BuildResult, automatic_args
from imgfront.run.metadata import metadata, write_metadata
from imgfront.run.plan import Plan
from imgfront.run.progress import Progress
from imgfront.run.scheduler import verify
from imgfront.util import rundir
from imgfront.util.files import write_atomically

CHECKPOINT_REPOSITORY = "localhost/imgfront-checkpoint"
Resume = Mapping[str, tuple[int, str]]


def checkpoint_image(stage_id: str) -> str:
    """The name a checkpoint is committed under: its stage id, which differs per platform."""
    return f"{CHECKPOINT_REPOSITORY}:{stage_id}"


def default_platform(pipeline: Pipeline) -> Platform:
    """This host's platform, unless the pipeline lists platforms without it: then the first one listed."""
    host = host_platform()
    return host if not pipeline.platforms or host in pipeline.platforms else pipeline.platforms[0]


def default_tag(pipeline: Pipeline) -> str | None:
    return f"localhost/{pipeline.name}:latest" if pipeline.name else None


def default_compile_dir(pipeline: Pipeline, platform: Platform) -> Path:
    """`./<name>-<platform slug>`, the name being the pipeline's (its last part) or its folder's."""
    name = pipeline.name.rsplit("/", 1)[-1] if pipeline.name else pipeline.folder.resolve().name
    return Path(f"{name or 'pipeline'}-{platform.slug}")


def base_images(pipeline: Pipeline) -> list[str]:
    """The base images an engine must resolve; `scratch` needs none."""
    return sorted({tree.base for tree in pipeline.trees if tree.base != SCRATCH})


def resolve(
    pipeline: Pipeline, engine: ImageBuilder | None, platform: Platform, pull: str = "missing"
) -> ResolvedPipeline:
    """Every id for one platform, from the digests `engine` gives the base images (None: only scratch)."""
    bases = base_images(pipeline)
    if bases and engine is None:
        raise ValueError("an engine is needed to resolve " + ", ".join(bases))
    digests = {base: engine.resolve_base(base, platform, pull) for base in bases} if engine else {}
    return compute_ids(pipeline, digests, platform)


def used_sources(resolved: ResolvedPipeline, start_after: Resume | None = None) -> set[str]:
    """Checksums used by the stages still to compile (those after each tree's resume point)."""
    needed: set[str] = set()
    for tree in resolved.trees:
        first = (start_after or {}).get(tree.name, (-1, ""))[0] + 1
        for stage in tree.stages[first:]:
            needed.update(stage.spec.kind.sources(stage.spec.options))
    return needed


def compile_to(
    pipeline: Pipeline,
    engine: ImageBuilder | None,
    platform: Platform,
    out_dir: Path,
    sources_dir: Path | None = None,
) -> CompiledPipeline:
    """What `imgfront compile` does: resolve, fetch the sources, and write the Containerfile and context."""
    resolved = resolve(pipeline, engine, platform)
    fetch(pipeline.sources, used_sources(resolved), sources_dir)
    return compile_pipeline(resolved, platform, out_dir, sources_dir=sources_dir)


class PipelineBuild:
    """Builds a pipeline for every platform of `options` on the local engine, or finds it up to date.

    `options` are `imgfront build`'s; their context and file are replaced by the compiled ones.
    `checkpoints` are `--checkpoint` selectors: a stage id or a prefix of one, a stage type, or `*`.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        options: BuildOptions,
        local: ImageBuilder,
        progress: Progress,
        checkpoints: Sequence[str] = (),
        sources_dir: Path | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.options = options
        self.local = local
        self.progress = progress
        self.selectors = tuple(checkpoints)
        self.sources_dir = sources_dir

    def run(self) -> BuildResult:
        """Build, or return the list as it is (with an empty plan) when it is up to date."""
        o = self.options
        resolved = {p: resolve(self.pipeline, self.local, p, o.pull) for p in o.platforms}
        chosen = self._chosen_checkpoints(resolved)
        current = self._current(resolved)
        if current is not None and (o.sbom or o.provenance):
            # The attestations are made from the build: every step comes from the cache, and the list stays.
            self.progress.note("up to date, built again from the cache for --sbom / --provenance")
        elif current is not None:
            return self._unchanged(*current)
        with tempfile.TemporaryDirectory(prefix="pipeline-", dir=rundir.current().path) as workdir:
            compiled = {
                p: self._compile(p, r, chosen[p], Path(workdir, "contexts", p.slug)) for p, r in resolved.items()
            }
            contexts = {p: (c.directory, c.containerfile) for p, c in compiled.items()}
            options = replace(o, context=self.pipeline.folder, file=None, target=None, contexts=contexts)
            result = Build(options, self.local, [self.local], self.progress).run()
            self._commit_checkpoints(compiled, Path(workdir))
        return result

    # -- checkpoints ------------------------------------------------------------------------------

    def _chosen_checkpoints(self, resolved: Mapping[Platform, ResolvedPipeline]) -> dict[Platform, frozenset[str]]:
        """Stage ids to keep, per platform; a selector must name a stage on at least one platform."""
        chosen = {p: {c.stage_id for c in select(r)} for p, r in resolved.items()}
        for selector in self.selectors:
            matched = False
            for platform, r in resolved.items():
                with contextlib.suppress(UsageError):  # an id names a stage of one platform only
                    chosen[platform].update(c.stage_id for c in select(r, [selector]))
                    matched = True
            if not matched:
                raise UsageError(f"--checkpoint {selector!r} names no stage", hint="give a stage id, a stage type or *")
        return {p: frozenset(ids) for p, ids in chosen.items()}

    def _checkpoint_exists(self, stage_id: str, platform: Platform) -> bool:
        image = self.local.inspect_image(checkpoint_image(stage_id))
        return image is not None and platform.matches_image(image.os, image.architecture, image.variant)

    def _resume(self, platform: Platform, resolved: ResolvedPipeline) -> Resume:
        """Where each tree can start: after its last committed checkpoint.

        Not with --no-cache (build everything again), nor with --pull always/newer: the builder would
        try to pull the checkpoint, which exists only in local storage.
        """
        o = self.options
        if o.no_cache or o.pull in ("always", "newer"):
            return {}
        found = resume_points(
            resolved,
            lambda stage_id: checkpoint_image(stage_id) if self._checkpoint_exists(stage_id, platform) else None,
        )
        for tree, (index, image) in sorted(found.items()):
            self.progress.note(f"{platform}: {tree} stages 0-{index} come from checkpoint {image}")
        return found

    def _compile(
        self, platform: Platform, resolved: ResolvedPipeline, checkpoints: Collection[str], out_dir: Path
    ) -> CompiledPipeline:
        resume = self._resume(platform, resolved)
        fetch(self.pipeline.sources, used_sources(resolved, resume), self.sources_dir)
        return compile_pipeline(
            resolved,
            platform,
            out_dir,
            start_after=resume,
            checkpoints=checkpoints,
            sources_dir=self.sources_dir,
        )

    def _commit_checkpoints(self, compiled: Mapping[Platform, CompiledPipeline], workdir: Path) -> None:
        """Build each new checkpoint's target (all cached by now) and name the image by its stage id."""
        cancel = Cancellation()
        try:
            for platform, c in compiled.items():
                todo = [cp for cp in c.checkpoints if not self._checkpoint_exists(cp.stage_id, platform)]
                if todo:
                    packed = build_context.pack(c.directory, c.containerfile, workdir)
                    for checkpoint in todo:
                        self._commit(platform, checkpoint, self._request(packed, platform, checkpoint), cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            with contextlib.suppress(ImgfrontError):
                self.local.clean_cancelled()
            raise Interrupted("interrupted while committing checkpoints; the image itself was built") from None

    def _request(self, packed: PackedContext, platform: Platform, checkpoint: Checkpoint) -> BuildRequest:
        """The main build's request, cut at the checkpoint's target, so that every layer comes from the cache."""
        o = self.options
        native = self.local.info().native[0]
        return BuildRequest(
            context=packed,
            platform=platform,
            build_args={**automatic_args(platform, native), **o.build_args},
            labels=o.labels,
            annotations=o.annotations,
            target=checkpoint.target,
            pull=PullPolicy.MISSING,  # the main build has just brought every base here
            settings=o.settings,  # as the main build had them, or its layers would not be the cache's
        )

    def _commit(self, platform: Platform, checkpoint: Checkpoint, request: BuildRequest, cancel: Cancellation) -> None:
        name = checkpoint_image(checkpoint.stage_id)
        try:
            report = self.local.build(
                request, SilentEvents(), cancel
            )  # a replay of cached layers: its log would repeat
            verify(self.local, report)
            self.local.tag_image(report.image_id, name)
        except ImgfrontError as e:
            lines = e.log_tail[-LOG_TAIL:] if isinstance(e, PlatformBuildError) else ()
            tail = "".join(f"\n  | {line}" for line in lines)
            raise BuildFailed(
                f"{platform}: committing checkpoint {name} failed (the image itself was built): {e.message}{tail}"
            ) from None
        tree = next(t for t in self.pipeline.trees if t.name == checkpoint.pipeline)
        kind = tree.stages[checkpoint.index].name
        self.progress.note(f"{platform}: checkpoint {checkpoint.pipeline} stage {checkpoint.index} ({kind}): {name}")

    # -- the up-to-date check ---------------------------------------------------------------------

    def _current(self, resolved: Mapping[Platform, ResolvedPipeline]) -> tuple[ListInfo, list[BuildReport]] | None:
        """The list and its instances when every tag already names this pipeline's outputs, else None.

        --no-cache asks for a fresh build, and annotations cannot be read back from an image: both build. So does
        reproducible mode: the list under the tags may hold images built without that epoch, and its push must
        send the normalised bytes, not podman's (a cached build and normalising give the same digests again).
        Only single images are inspected (by repo@digest): podman 4.3 cannot list images.
        """
        o = self.options
        if not o.tags or o.no_cache or o.annotations or o.source_date_epoch is not None:
            return None
        wanted = {p: r.output_id for p, r in resolved.items()}
        reports: list[BuildReport] | None = None
        for tag in o.tags:
            images = self.local.list_images(tag)
            found = self._matching(images, wanted) if images is not None else None
            if found is None:
                return None
            reports = reports or found
        image_list = self.local.inspect_list(o.tags[0])
        if image_list is None or reports is None:
            return None
        return image_list, reports

    def _matching(self, images: Sequence[ImageInfo], wanted: Mapping[Platform, str]) -> list[BuildReport] | None:
        """One report per wanted platform, if the list holds exactly those outputs (and --label's labels)."""
        found: dict[Platform, BuildReport] = {}
        for image in images:
            platform = next((p for p in wanted if p.matches_image(image.os, image.architecture, image.variant)), None)
            if platform is None or platform in found:
                return None  # a platform not asked for: a build would make a different list
            labels = {OUTPUT_ID_LABEL: wanted[platform], **self.options.labels}
            if any(image.labels.get(k) != v for k, v in labels.items()):
                return None
            found[platform] = BuildReport(image.id, image.digest, platform, self.local.name, 0.0)
        if set(found) != set(wanted):
            return None
        return [found[p] for p in wanted]

    def _unchanged(self, image_list: ListInfo, reports: list[BuildReport]) -> BuildResult:
        o = self.options
        pushed = push_list(self.local, image_list.name, o.tags, o.push, self.progress.note) if o.push else []
        data = metadata(o.tags, reports, image_list, pushed=pushed)
        if o.iidfile:
            write_atomically(o.iidfile, f"sha256:{image_list.id}")
        if o.metadata_file:
            write_metadata(o.metadata_file, data)
        platforms = ", ".join(str(r.platform) for r in reports)
        self.progress.note(f"up to date: {', '.join(o.tags)} already holds this pipeline's output for {platforms}")
        self.progress.summary(reports)
        return BuildResult(Plan(()), tuple(reports), image_list, data)
