"""Compiling a resolved pipeline into a multi-stage Containerfile plus the build context it needs.

The output is byte-identical for the same input: entries are written in sorted order with fixed modes
and a fixed mtime, and the Containerfile holds no absolute paths or times. The build pipeline becomes
`FROM <base> AS build`; the main pipeline is the last, unnamed stage and ends with a LABEL carrying the
tree and output ids. See `checkpoints` for how checkpoint stages split a tree into named targets.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from imgfront.errors import UsageError
from imgfront.pipeline.checkpoints import Checkpoint, target
from imgfront.pipeline.containerfile import assignments
from imgfront.pipeline.ids import ResolvedPipeline, ResolvedStage, ResolvedTree
from imgfront.pipeline.model import BUILD, MAIN
from imgfront.pipeline.schema import options_errors
from imgfront.pipeline.sources import default_cache_dir
from imgfront.pipeline.stages.base import CompileContext, ContextDir, ContextEntry, ContextFile
from imgfront.platforms import Platform

CONTAINERFILE = "Containerfile"
OWNED = frozenset([CONTAINERFILE, "stages", "sources"])  # what compiling writes, and may replace
FIXED_MTIME = 1  # for reproducible context tars; 0 reads as "unset" to some tools
TREE_ID_LABEL = "org.imgfront.tree-id"
OUTPUT_ID_LABEL = "org.imgfront.output-id"


@dataclass(frozen=True)
class CompiledPipeline:
    directory: Path  # the build context; the Containerfile is inside it
    containerfile: Path
    checkpoints: tuple[Checkpoint, ...]  # the `ckpt-...` targets this Containerfile has
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def tree_id(self) -> str:
        return self.labels[TREE_ID_LABEL]

    @property
    def output_id(self) -> str:
        return self.labels[OUTPUT_ID_LABEL]


@dataclass
class _Writer:
    """Collects lines, context entries and checkpoint targets while the trees are compiled."""

    file: Path
    ctx: CompileContext  # all but the stage id
    marked: frozenset[str]
    lines: list[str] = field(default_factory=list)
    files: dict[str, ContextEntry] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def stage(self, tree: str, stage: ResolvedStage) -> None:
        with options_errors(self.file, (tree, "stages", stage.index, "options")):
            out = stage.spec.kind.compile(stage.spec.options, replace(self.ctx, stage_id=stage.id))
        self.lines += [f"# {stage.spec.name} {stage.id}", *out.lines]
        for key, entry in out.files.items():
            if self.files.setdefault(key, entry) != entry:
                raise RuntimeError(f"two stages write different {key} into the context")

    def tree(self, tree: ResolvedTree, name: str | None, resume: tuple[int, str] | None) -> None:
        start, base, note = 0, tree.tree.base, None
        if resume is not None:
            index, image = resume
            if not 0 <= index < len(tree.stages):
                raise ValueError(f"no stage {index} in {tree.name} to resume after")
            start, base = index + 1, image
            note = f"# {tree.name} stages 0-{index} come from checkpoint {tree.stages[index].id}"
        segment: list[ResolvedStage] = []
        for stage in tree.stages[start:]:
            segment.append(stage)
            if stage.id in self.marked:
                self._segment(tree.name, base, target(stage.id), segment, note)
                self.checkpoints.append(Checkpoint(tree.name, stage.index, stage.id))
                base, segment, note = target(stage.id), [], None
        self._segment(tree.name, base, name, segment, note)

    def _segment(self, tree: str, base: str, name: str | None, stages: list[ResolvedStage], note: str | None) -> None:
        self.lines += ["", *([note] if note else []), f"FROM {base} AS {name}" if name else f"FROM {base}"]
        for stage in stages:
            self.stage(tree, stage)


def compile_pipeline(
    resolved: ResolvedPipeline,
    platform: Platform | None,
    out_dir: Path,
    *,
    start_after: Mapping[str, tuple[int, str]] | None = None,
    checkpoints: Collection[str] = (),
    sources_dir: Path | None = None,
) -> CompiledPipeline:
    """Write `Containerfile` and the generated context into `out_dir`.

    `start_after` maps a tree name ("build", "pipeline") to (stage index, image): that image holds the
    stages up to the index, so only the later ones are emitted. `checkpoints` adds stage ids to the ones
    marked `checkpoint: true`.
    """
    platform = platform or resolved.platform
    pipeline = resolved.pipeline
    marked = frozenset(checkpoints) | {s.id for t in resolved.trees for s in t.stages if s.spec.checkpoint}
    ctx = CompileContext("", pipeline.folder, sources_dir or default_cache_dir(), platform)
    writer = _Writer(pipeline.path, ctx, marked)
    resume = dict(start_after or {})
    unknown = set(resume) - {t.name for t in resolved.trees}
    if unknown:
        raise ValueError(f"start_after names no pipeline: {', '.join(sorted(unknown))}")
    writer.lines.append(f"# Generated by imgfront from {pipeline.path.name}{f' for {platform}' if platform else ''}.")
    writer.lines.append("# Edit the pipeline, not this file: `imgfront compile` writes it again.")
    if resolved.build and _needs_build(resolved, resume.get(MAIN)):
        writer.tree(resolved.build, BUILD, resume.get(BUILD))
    writer.tree(resolved.main, None, resume.get(MAIN))
    labels = {TREE_ID_LABEL: resolved.tree_id, OUTPUT_ID_LABEL: resolved.output_id}
    writer.lines.append(f"LABEL {assignments(labels, quote_keys=True)}")
    _write(out_dir, "\n".join(writer.lines) + "\n", writer.files)
    return CompiledPipeline(out_dir, out_dir / CONTAINERFILE, tuple(writer.checkpoints), labels)


def _needs_build(resolved: ResolvedPipeline, main_resume: tuple[int, str] | None) -> bool:
    """The build pipeline is left out only when resuming leaves no stage that copies from it."""
    if main_resume is None:
        return True
    later = resolved.main.stages[main_resume[0] + 1 :]
    return any(BUILD in s.spec.kind.reads_from(s.spec.options) for s in later)


def _write(out_dir: Path, containerfile: str, files: Mapping[str, ContextEntry]) -> None:
    if out_dir.exists():
        foreign = sorted(set(os.listdir(out_dir)) - OWNED)
        if foreign:
            raise UsageError(
                f"{out_dir} holds files imgfront compile did not write: {', '.join(foreign[:3])}",
                hint="name an empty or new folder",
            )
        for name in OWNED:
            path = out_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in sorted(files):
        path, entry = out_dir / key, files[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(entry, ContextDir):
            path.mkdir(exist_ok=True)
        elif entry.origin is not None:
            shutil.copyfile(entry.origin, path)
        else:
            path.write_bytes(entry.data)
    (out_dir / CONTAINERFILE).write_text(containerfile, encoding="utf-8")
    _normalise(out_dir, files)


def _normalise(out_dir: Path, files: Mapping[str, ContextEntry]) -> None:
    """Fixed modes and mtimes everywhere, children before their folders."""
    for root, dirs, names in os.walk(out_dir, topdown=False):
        for name in [*names, *dirs]:
            path = Path(root, name)
            entry = files.get(path.relative_to(out_dir).as_posix())
            default = ContextDir() if name in dirs else ContextFile()
            os.chmod(path, (entry or default).mode)
            os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    os.utime(out_dir, (FIXED_MTIME, FIXED_MTIME))
