"""Stage types: each one a small class with a name, a schema and a compile method."""

from imgfront.pipeline.stages.base import (
    CheckContext,
    CompileContext,
    ContextDir,
    ContextEntry,
    ContextFile,
    OptionError,
    StageOutput,
    StageType,
)
from imgfront.pipeline.stages.registry import StageRegistry, UnknownStageType, default_registry, load_registry

__all__ = [
    "CheckContext",
    "CompileContext",
    "ContextDir",
    "ContextEntry",
    "ContextFile",
    "OptionError",
    "StageOutput",
    "StageRegistry",
    "StageType",
    "UnknownStageType",
    "default_registry",
    "load_registry",
]
