"""`remove`: delete paths from the image (literal paths, no globbing)."""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar

from imgfront.pipeline.containerfile import json_array
from imgfront.pipeline.stages.base import (
    ABSOLUTE_PATH,
    CheckContext,
    CompileContext,
    OptionError,
    Options,
    StageOutput,
    StageType,
)


class Remove(StageType):
    name = "org.imgfront.remove"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["paths"],
        "additionalProperties": False,
        "properties": {"paths": {"type": "array", "minItems": 1, "items": ABSOLUTE_PATH}},
    }

    def check(self, options: Options, ctx: CheckContext) -> None:
        for i, path in enumerate(options["paths"]):
            if posixpath.normpath(path) in ("/", "//"):
                raise OptionError(("paths", i), "refusing to remove /")

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        # The exec form passes each path as one argument: no shell, no quoting, no globbing.
        return StageOutput((f"RUN {json_array(['rm', '-rf', '--', *options['paths']])}",))
