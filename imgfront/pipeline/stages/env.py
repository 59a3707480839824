"""`env`: variables set in the image (ENV)."""

from __future__ import annotations

from typing import Any, ClassVar

from imgfront.pipeline.containerfile import assignments
from imgfront.pipeline.stages.base import (
    ENV_NAME,
    SCALAR,
    CheckContext,
    CompileContext,
    OptionError,
    Options,
    StageOutput,
    StageType,
    scalar_text,
)


def check_single_lines(options: Options, key: str) -> None:
    for name, value in options[key].items():
        if "\n" in scalar_text(value) or "\r" in scalar_text(value):
            raise OptionError((key, name), "a value cannot hold a line break in a Containerfile")


class Env(StageType):
    name = "org.imgfront.env"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["vars"],
        "additionalProperties": False,
        "properties": {
            "vars": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": ENV_NAME},
                "additionalProperties": SCALAR,
            }
        },
    }

    def check(self, options: Options, ctx: CheckContext) -> None:
        check_single_lines(options, "vars")

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        values = {k: scalar_text(v) for k, v in options["vars"].items()}
        return StageOutput((f"ENV {assignments(values, quote_keys=False)}",))
