"""`labels`: image labels (LABEL)."""

from __future__ import annotations

from typing import Any, ClassVar

from imgfront.pipeline.containerfile import assignments
from imgfront.pipeline.stages.base import (
    SCALAR,
    CheckContext,
    CompileContext,
    Options,
    StageOutput,
    StageType,
    scalar_text,
)
from imgfront.pipeline.stages.env import check_single_lines


class Labels(StageType):
    name = "org.imgfront.labels"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[^\\s=]+$"},
                "additionalProperties": SCALAR,
            }
        },
    }

    def check(self, options: Options, ctx: CheckContext) -> None:
        check_single_lines(options, "labels")

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        values = {k: scalar_text(v) for k, v in options["labels"].items()}
        return StageOutput((f"LABEL {assignments(values, quote_keys=True)}",))
