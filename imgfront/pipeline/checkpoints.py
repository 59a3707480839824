"""Checkpoints: which stages are kept as images, the build target of each, and where a build can resume.

A checkpoint is a stage after which the tree so far is committed as an image named by that stage's id.
In the compiled Containerfile the tree is split after each checkpoint stage into a named build stage,
`ckpt-<first 12 hex of the stage id>`, and the rest continues `FROM ckpt-...`; so
`podman build --target ckpt-<id>` builds exactly the stages up to and including that one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from imgfront.errors import UsageError
from imgfront.pipeline.ids import ResolvedPipeline
from imgfront.pipeline.stages.base import PREFIX

ALL = "*"


def target(stage_id: str) -> str:
    return f"ckpt-{stage_id[:12]}"


@dataclass(frozen=True)
class Checkpoint:
    pipeline: str  # "build" or "pipeline"
    index: int
    stage_id: str

    @property
    def target(self) -> str:
        return target(self.stage_id)


def select(resolved: ResolvedPipeline, selectors: Iterable[str] = ()) -> tuple[Checkpoint, ...]:
    """Stages marked `checkpoint: true`, plus those `--checkpoint` names: an id (or a prefix of one), a type, or *."""
    wanted = list(selectors)
    chosen: list[Checkpoint] = []
    used: set[str] = set()
    for tree in resolved.trees:
        for stage in tree.stages:
            names = {stage.spec.name, stage.spec.name.removeprefix(PREFIX)}
            hits = {s for s in wanted if s == ALL or s in names or (len(s) >= 6 and stage.id.startswith(s))}
            used |= hits
            if stage.spec.checkpoint or hits:
                chosen.append(Checkpoint(tree.name, stage.index, stage.id))
    unmatched = [s for s in wanted if s not in used]
    if unmatched:
        raise UsageError(f"--checkpoint {unmatched[0]!r} names no stage", hint="give a stage id, a stage type or *")
    return tuple(chosen)


def resume_points(resolved: ResolvedPipeline, lookup: Callable[[str], str | None]) -> dict[str, tuple[int, str]]:
    """For each tree, the last stage whose checkpoint image exists: {tree name: (stage index, image)}.

    `lookup(stage_id)` returns the image holding that stage's checkpoint, or None. Feed the result to
    `compile_pipeline(start_after=...)`.
    """
    found: dict[str, tuple[int, str]] = {}
    for tree in resolved.trees:
        for stage in reversed(tree.stages):
            image = lookup(stage.id)
            if image:
                found[tree.name] = (stage.index, image)
                break
    return found
