"""`copy`: files from the pipeline's folder, or from another pipeline (`from: build`), into the image.

Host files are read only inside the pipeline file's folder: absolute paths, `..` and symlinks that lead
out of it are refused. Symlinks inside it are followed, so the image gets the files they point to.
Modes are normalised as git keeps them (0755 if any execute bit is set, else 0644; folders 0755), so
that the same checkout gives the same ids and the same image on every machine.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from imgfront.pipeline.containerfile import copy
from imgfront.pipeline.stages.base import (
    ABSOLUTE_PATH,
    MODE,
    OWNER,
    CheckContext,
    CompileContext,
    ContextDir,
    ContextEntry,
    ContextFile,
    OptionError,
    Options,
    StageOutput,
    StageType,
)

GLOB_CHARACTERS = frozenset("*?[]\\")


@dataclass(frozen=True)
class Entry:
    """One file or folder to copy: where it sits below the copied path, and where on the host."""

    rel: str  # "" for the copied path itself
    host: Path
    is_dir: bool

    @property
    def mode(self) -> int:
        if self.is_dir:
            return 0o755
        return 0o755 if self.host.stat().st_mode & 0o111 else 0o644


def copied_name(src: str, resolved: Path) -> str:
    """The name the copy keeps: the last part of `src` as written (a link keeps its own name)."""
    name = PurePosixPath(src).name
    return resolved.name if name in ("", ".", "..") else name


def collect(folder: Path, src: str, where: tuple[str | int, ...]) -> list[Entry]:
    """Everything `src` names, in a stable order, refusing whatever lies outside `folder`."""
    if PurePosixPath(src).is_absolute():
        raise OptionError(where, f"{src!r} is an absolute path; name it relative to the pipeline's folder")
    root = folder.resolve()
    top = (root / src).resolve()
    if not top.is_relative_to(root):
        raise OptionError(where, f"{src!r} is outside the pipeline's folder {folder}")
    if not top.exists():
        raise OptionError(where, f"{src!r} does not exist in {folder}")
    if GLOB_CHARACTERS & set(copied_name(src, top)):
        raise OptionError(where, f"{src!r}: a copied name cannot hold * ? [ ] or \\ (COPY would glob it)")
    entries: list[Entry] = []

    def visit(path: Path, rel: str, parents: frozenset[Path]) -> None:
        real = path.resolve()
        shown = f"{src}/{rel}" if rel else src
        if not real.is_relative_to(root):
            raise OptionError(where, f"{shown!r} links outside the pipeline's folder {folder}")
        if not real.exists():
            raise OptionError(where, f"{shown!r} is a broken link")
        mode = real.stat().st_mode
        if stat.S_ISREG(mode):
            entries.append(Entry(rel, real, False))
        elif stat.S_ISDIR(mode):
            if real in parents:
                raise OptionError(where, f"{shown!r} links back to a folder that holds it")
            entries.append(Entry(rel, real, True))
            for child in sorted(real.iterdir(), key=lambda p: p.name):
                visit(child, f"{rel}/{child.name}" if rel else child.name, parents | {real})
        else:
            raise OptionError(where, f"{shown!r} is neither a file nor a folder")

    visit(top, "", frozenset())
    return entries


def digest(entries: list[Entry]) -> str:
    """The content hash of a copied path: names, kinds, modes and bytes; never times or owners."""
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.rel}\0{'d' if e.is_dir else 'f'}\0{e.mode:o}\0".encode())
        if not e.is_dir:
            h.update(hashlib.sha256(e.host.read_bytes()).hexdigest().encode())
        h.update(b"\n")
    return h.hexdigest()


class Copy(StageType):
    name = "org.imgfront.copy"
    schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["paths"],
        "additionalProperties": False,
        "properties": {
            "from": {"type": "string", "minLength": 1},
            "paths": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["src", "dest"],
                    "additionalProperties": False,
                    "properties": {
                        "src": {"type": "string", "minLength": 1},
                        "dest": ABSOLUTE_PATH,
                        "mode": MODE,
                        "owner": OWNER,
                    },
                },
            },
        },
    }

    def check(self, options: Options, ctx: CheckContext) -> None:
        source = options.get("from")
        if source is not None:
            if source not in ctx.pipelines:
                known = f" (it can copy from: {', '.join(sorted(ctx.pipelines))})" if ctx.pipelines else ""
                raise OptionError(
                    ("from",),
                    f"{source!r} names no pipeline this stage can copy from{known}",
                    hint="the main pipeline can copy from the build pipeline, defined under `build:`",
                )
            return
        for i, item in enumerate(options["paths"]):
            collect(ctx.folder, item["src"], ("paths", i, "src"))

    def reads_from(self, options: Options) -> frozenset[str]:
        source = options.get("from")
        return frozenset([source]) if source else frozenset()

    def inputs(self, options: Options, folder: Path) -> Mapping[str, Any]:
        if options.get("from"):
            return {}
        paths = options["paths"]
        return {"content": [digest(collect(folder, p["src"], ("paths", i, "src"))) for i, p in enumerate(paths)]}

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        source = options.get("from")
        lines: list[str] = []
        files: dict[str, ContextEntry] = {}
        for i, item in enumerate(options["paths"]):
            chmod, chown = item.get("mode"), item.get("owner")
            if source:
                lines.append(copy(item["src"], item["dest"], stage=source, chmod=chmod, chown=chown))
                continue
            entries = collect(ctx.folder, item["src"], ("paths", i, "src"))
            top = f"{ctx.prefix}/{i}/{copied_name(item['src'], entries[0].host)}"
            files[f"{ctx.prefix}/{i}"] = ContextDir()
            for e in entries:
                path = f"{top}/{e.rel}" if e.rel else top
                files[path] = ContextDir(e.mode) if e.is_dir else ContextFile(e.mode, origin=e.host)
            lines.append(copy(top, item["dest"], chmod=chmod, chown=chown))
        return StageOutput(tuple(lines), files)
