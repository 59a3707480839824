"""`source`: files from the pipeline's sources, placed by checksum, optionally extracted.

Extraction uses ADD, which podman build unpacks for a local tar archive (plain, gzip, bzip2 or xz)
and which needs no tar inside the image, so it works on `scratch`. ADD copies anything else as it is,
silently, so the archive is checked here first. Files that are not extracted use COPY, never ADD.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any, ClassVar

from imgfront.errors import ImgfrontError, UsageError
from imgfront.pipeline.containerfile import copy
from imgfront.pipeline.stages.base import (
    ABSOLUTE_PATH,
    MODE,
    CheckContext,
    CompileContext,
    ContextEntry,
    ContextFile,
    OptionError,
    Options,
    StageOutput,
    StageType,
)

CHECKSUM: dict[str, Any] = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}


class Source(StageType):
    name = "org.imgfront.source"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["items"],
        "additionalProperties": False,
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["checksum", "dest"],
                    "additionalProperties": False,
                    "properties": {
                        "checksum": CHECKSUM,
                        "dest": ABSOLUTE_PATH,
                        "mode": MODE,
                        "extract": {"type": "boolean"},
                    },
                },
            }
        },
    }

    def check(self, options: Options, ctx: CheckContext) -> None:
        for i, item in enumerate(options["items"]):
            if item["checksum"] not in ctx.sources:
                raise OptionError(
                    ("items", i, "checksum"),
                    f"{item['checksum']} is not in sources",
                    hint="list it under sources: org.imgfront.urls with a URL to fetch it from",
                )
            if item.get("extract") and "mode" in item:
                raise OptionError(("items", i, "mode"), "an extracted archive keeps its own modes; drop mode")
            if not item.get("extract") and item["dest"].endswith("/"):
                raise OptionError(("items", i, "dest"), "name the file, not only its folder")

    def sources(self, options: Options) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item["checksum"] for item in options["items"]))

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        lines: list[str] = []
        files: dict[str, ContextEntry] = {}
        for item in options["items"]:
            checksum = item["checksum"]
            cached = ctx.source_file(checksum)
            if not cached.is_file():
                raise ImgfrontError(f"source {checksum} is not in the cache {ctx.sources_dir}", "fetch it first")
            key = f"sources/{checksum.removeprefix('sha256:')}"
            files[key] = ContextFile(origin=cached)
            if item.get("extract"):
                _check_archive(cached, checksum)
                lines.append(copy(key, item["dest"].rstrip("/") + "/", instruction="ADD"))
            else:
                lines.append(copy(key, item["dest"], chmod=item.get("mode")))
        return StageOutput(tuple(lines), files)


def _check_archive(path: Path, checksum: str) -> None:
    try:
        with tarfile.open(path, "r:*") as archive:
            archive.next()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise UsageError(
            f"source {checksum} cannot be extracted: it is not a tar archive (plain, gzip, bzip2 or xz)",
            hint="set extract: false to place the file as it is",
        ) from e
