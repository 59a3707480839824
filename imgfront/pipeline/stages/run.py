"""`run`: shell commands, each its own RUN step, with optional variables and shell."""

from __future__ import annotations

import shlex
from typing import Any, ClassVar

from imgfront.pipeline.containerfile import run
from imgfront.pipeline.stages.base import ENV_NAME, SCALAR, CompileContext, Options, StageOutput, StageType, scalar_text


class Run(StageType):
    name = "org.imgfront.run"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["commands"],
        "additionalProperties": False,
        "properties": {
            "commands": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
            "env": {"type": "object", "propertyNames": {"pattern": ENV_NAME}, "additionalProperties": SCALAR},
            "shell": {
                "oneOf": [
                    {"type": "string", "pattern": "^/"},
                    {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                ]
            },
        },
    }

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        env = options.get("env") or {}
        # Variables hold for this stage's commands only, not for the image: exported inside the step.
        exports = " ".join(f"{k}={shlex.quote(scalar_text(v))}" for k, v in sorted(env.items()))
        prefix = [f"export {exports}"] if exports else []
        shell = options.get("shell")
        argv = [shell, "-c"] if isinstance(shell, str) else shell
        return StageOutput(tuple(run([*prefix, c], shell=argv) for c in options["commands"]))
