"""`files`: inline files, written into the generated context and copied into the image."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, ClassVar

from imgfront.pipeline.containerfile import copy
from imgfront.pipeline.stages.base import (
    MODE,
    OWNER,
    CompileContext,
    ContextDir,
    ContextEntry,
    ContextFile,
    Options,
    StageOutput,
    StageType,
)
from imgfront.pipeline.stages.copy import GLOB_CHARACTERS


class Files(StageType):
    name = "org.imgfront.files"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["files"],
        "additionalProperties": False,
        "properties": {
            "files": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["path", "content"],
                    "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string", "pattern": "^/[^\n\r]*[^/\n\r]$"},
                        "content": {"type": "string"},
                        "mode": MODE,
                        "owner": OWNER,
                    },
                },
            }
        },
    }

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        lines: list[str] = []
        files: dict[str, ContextEntry] = {}
        for i, item in enumerate(options["files"]):
            # The context name is cosmetic (the destination is a full path), so keep it free of globs.
            name = "".join("_" if c in GLOB_CHARACTERS else c for c in PurePosixPath(item["path"]).name)
            key = f"{ctx.prefix}/{i}/{name}"
            mode = item.get("mode")
            files[f"{ctx.prefix}/{i}"] = ContextDir()
            files[key] = ContextFile(int(mode, 8) if mode else 0o644, item["content"].encode())
            lines.append(copy(key, item["path"], chmod=mode, chown=item.get("owner")))
        return StageOutput(tuple(lines), files)
