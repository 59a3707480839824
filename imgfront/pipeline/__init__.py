"""Pipelines: typed stages compiled into multi-stage Containerfiles, with content ids and sources."""

from imgfront.pipeline.checkpoints import Checkpoint, resume_points, select
from imgfront.pipeline.compile import CompiledPipeline, compile_pipeline
from imgfront.pipeline.format import load, parse
from imgfront.pipeline.ids import ResolvedPipeline, ResolvedStage, ResolvedTree, compute_ids, inspect
from imgfront.pipeline.model import Output, Pipeline, SourceItem, Sources, StageSpec, Tree
from imgfront.pipeline.sources import default_cache_dir, fetch

__all__ = [
    "Checkpoint",
    "CompiledPipeline",
    "Output",
    "Pipeline",
    "ResolvedPipeline",
    "ResolvedStage",
    "ResolvedTree",
    "SourceItem",
    "Sources",
    "StageSpec",
    "Tree",
    "compile_pipeline",
    "compute_ids",
    "default_cache_dir",
    "fetch",
    "inspect",
    "load",
    "parse",
    "resume_points",
    "select",
]
