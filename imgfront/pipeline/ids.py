"""Content ids: what a stage, a tree and an output are, as sha256 over canonical JSON.

- A stage's id hashes its type, its options, the id before it (the previous stage's, or the base
  image's digest), the build pipeline's tree id (main pipeline only), the checksums of the sources it
  uses, and the content of what it copies from the pipeline's folder.
- A tree's id is its last stage's id (the base's digest when it has no stages).
- The output's id hashes the tree id and the output.

Names and URLs never enter an id: the same pipeline fetched from another mirror has the same ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imgfront.pipeline.model import SCRATCH, Pipeline, StageSpec, Tree, canonical_json
from imgfront.pipeline.schema import options_errors
from imgfront.platforms import Platform


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


@dataclass(frozen=True)
class ResolvedStage:
    spec: StageSpec
    index: int
    id: str
    inputs_json: str = "{}"  # the host content that went into the id

    @property
    def inputs(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.inputs_json)
        return value


@dataclass(frozen=True)
class ResolvedTree:
    tree: Tree
    base_id: str
    stages: tuple[ResolvedStage, ...]

    @property
    def name(self) -> str:
        return self.tree.name

    @property
    def id(self) -> str:
        return self.stages[-1].id if self.stages else self.base_id


@dataclass(frozen=True)
class ResolvedPipeline:
    pipeline: Pipeline
    build: ResolvedTree | None
    main: ResolvedTree
    output_id: str
    platform: Platform | None = None

    @property
    def tree_id(self) -> str:
        return self.main.id

    @property
    def trees(self) -> tuple[ResolvedTree, ...]:
        return (self.build, self.main) if self.build else (self.main,)

    def tree(self, name: str) -> ResolvedTree:
        for t in self.trees:
            if t.name == name:
                return t
        raise KeyError(name)


def base_id(base: str, base_digests: Mapping[str, str], platform: Platform | None) -> str:
    """What a base contributes; `scratch` is the same everywhere except for the platform it is built for."""
    if base == SCRATCH:
        return f"{SCRATCH}:{platform}" if platform else SCRATCH
    try:
        return base_digests[base]
    except KeyError:
        raise ValueError(f"no digest given for base image {base!r}") from None


def _resolve(pipeline: Pipeline, tree: Tree, start: str, build_id: str | None) -> ResolvedTree:
    previous, stages = start, []
    for index, spec in enumerate(tree.stages):
        options = spec.options
        with options_errors(pipeline.path, (tree.name, "stages", index, "options")):
            inputs = dict(spec.kind.inputs(options, pipeline.folder))
        stage_id = sha256_json(
            {
                "type": spec.name,
                "options": options,
                "previous": previous,
                "build": build_id,
                "sources": sorted(set(spec.kind.sources(options))),
                "inputs": inputs,
            }
        )
        stages.append(ResolvedStage(spec, index, stage_id, canonical_json(inputs)))
        previous = stage_id
    return ResolvedTree(tree, start, tuple(stages))


def compute_ids(
    pipeline: Pipeline, base_digests: Mapping[str, str], platform: Platform | None = None
) -> ResolvedPipeline:
    """Every id of the pipeline, given each base image's resolved digest (for one platform)."""
    build = None
    if pipeline.build:
        build = _resolve(pipeline, pipeline.build, base_id(pipeline.build.base, base_digests, platform), None)
    start = base_id(pipeline.main.base, base_digests, platform)
    main = _resolve(pipeline, pipeline.main, start, build.id if build else None)
    output = {"tree": main.id, "output": {"name": pipeline.output.name, "options": pipeline.output.options}}
    return ResolvedPipeline(pipeline, build, main, sha256_json(output), platform)


def inspect(resolved: ResolvedPipeline) -> dict[str, Any]:
    """The pipeline as JSON-able data with every id filled in (what `imgfront inspect` prints)."""
    p = resolved.pipeline
    out: dict[str, Any] = {"version": p.version}
    if p.name:
        out["name"] = p.name
    if p.platforms:
        out["platforms"] = [str(x) for x in p.platforms]
    if resolved.platform:
        out["platform"] = str(resolved.platform)
    if p.sources.items:
        out["sources"] = {"org.imgfront.urls": {i.checksum: {"url": i.url} for i in p.sources.items}}
    for tree in resolved.trees:
        out[tree.name] = {
            "base": tree.tree.base,
            "base_id": tree.base_id,
            "id": tree.id,
            "stages": [_stage(s) for s in tree.stages],
        }
    out["output"] = {"name": p.output.name, "options": p.output.options, "id": resolved.output_id}
    return out


def _stage(stage: ResolvedStage) -> dict[str, Any]:
    out: dict[str, Any] = {"id": stage.id, "name": stage.spec.name, "options": stage.spec.options}
    if stage.spec.checkpoint:
        out["checkpoint"] = True
    if stage.inputs_json != "{}":
        out["inputs"] = stage.inputs
    return out
