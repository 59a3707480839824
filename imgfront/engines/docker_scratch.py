"""Empty base images for Docker's `FROM scratch` stages, and the Containerfile that builds those stages on them.

Docker 20.10's legacy builder commits a scratch stage's opening metadata step (ARG, ENV, LABEL...) for the
host's platform, and its next step then refuses that image for any other platform. A zero-layer image that
carries the platform gives the stage the platform instead: it has no layers, no history and an empty config,
so the stage's image has the layers and config a scratch build gives (Docker adds PATH to either).
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import string
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockerfile_parse import DockerfileParser

from imgfront.engines.upload import archive_end
from imgfront.platforms import Platform

REPOSITORY = "localhost/imgfront-scratch"  # imgfront's own name; localhost/ says it is never pulled
CONTAINERFILE = ".imgfront-docker.Containerfile"  # the rewritten file's name in the context sent to Docker
_SCRATCH = "scratch"
_COPYING = frozenset({"copy", "add"})  # a scratch stage opening with these gets its platform from them


def base_name(platform: Platform) -> str:
    """The name the empty image for a platform has in the engine: localhost/imgfront-scratch:linux_arm64."""
    return f"{REPOSITORY}:{platform.slug}"


def empty_image(platform: Platform) -> bytes:
    """A docker-archive of a zero-layer image for the platform, named base_name(platform).

    The variant is the platform's own (none for arm64), as Docker writes it for a scratch stage that opens
    with COPY; the config has no `created`, so the image id is the same on every engine.
    """
    config: dict[str, object] = {
        "architecture": platform.arch.value,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if platform.variant:
        config["variant"] = platform.variant
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [base_name(platform)], "Layers": []}]
    return _tar({config_name: config_bytes, "manifest.json": json.dumps(manifest).encode()})


@dataclass(frozen=True)
class Rewrite:
    """A Containerfile whose scratch stages that open with a metadata step build on an empty base instead."""

    containerfile: str
    lines: tuple[int, ...]  # the rewritten FROM instructions' first lines, counted from 1
    bases: tuple[str, ...]  # the other stages' base images, global ARGs filled in; for pulling them apart


def rewrite(text: str, base: str, build_args: Mapping[str, str]) -> Rewrite | None:
    """The Containerfile with each `FROM scratch` stage whose first step is not COPY or ADD built FROM base.

    None when no stage needs it, or when the file does not parse (Docker then reports that itself). A stage
    that names its platform (`FROM --platform=...`) or reaches scratch through an ARG is left as it is.
    """
    try:
        commands = instructions(text)
    except (ValueError, UnicodeError):
        return None
    lines = text.splitlines(keepends=True)
    stages: set[str] = set()
    global_args: dict[str, str] = {}
    rewritten: list[int] = []
    bases: list[str] = []
    in_stage = False
    for index, (cmd, words, start, end) in enumerate(commands):
        if cmd == "arg" and not in_stage:
            for arg in words:
                name, _, default = arg.partition("=")
                global_args[name] = build_args.get(name, default)
        if cmd != "from" or not words:
            continue
        in_stage = True
        flags = [w for w in words if w.startswith("--")]
        rest = [w for w in words if not w.startswith("--")]
        if not rest:
            continue
        image = rest[0]
        alias = rest[2] if len(rest) == 3 and rest[1].lower() == "as" else None
        following = commands[index + 1][0] if index + 1 < len(commands) else None
        if image.lower() == _SCRATCH and not flags and following not in (None, "from", *_COPYING):
            ending = lines[end][len(lines[end].rstrip("\r\n")) :] or "\n"
            said = f"FROM {base}" + (f" {rest[1]} {alias}" if alias else "")
            lines[start : end + 1] = [said + ending] + [ending] * (end - start)  # keeps the line numbers
            rewritten.append(start + 1)
        elif image.lower() != _SCRATCH and image.lower() not in stages:
            bases.append(string.Template(image).safe_substitute(global_args))
        if alias:
            stages.add(alias.lower())
    if not rewritten:
        return None
    return Rewrite("".join(lines), tuple(rewritten), tuple(bases))


def instructions(text: str) -> list[tuple[str, list[str], int, int]]:
    """(instruction in lower case, its words, first line, last line counted from 0), by dockerfile-parse.

    dockerfile-parse joins continued lines, drops comments and honours the escape directive, as Docker reads them.
    """
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    return [
        (
            str(i["instruction"]).lower(),
            shlex.split(str(i["value"]), posix=True),
            int(i["startline"]),
            int(i["endline"]),
        )
        for i in parser.structure
    ]


def with_containerfile(context: Path, text: str) -> tuple[str, int, bytes]:
    """How to send a packed context with another Containerfile added, without copying it.

    Returns the added file's name (CONTAINERFILE, or a variant of it the context does not hold), how many
    bytes of the context tar to send before its end-of-archive blocks, and the tar bytes to send after them.
    """
    end, names = archive_end(context)
    name, n = CONTAINERFILE, 1
    while name in names:
        name, n = f"{CONTAINERFILE}.{n}", n + 1
    return name, end, _tar({name: text.encode()})


def read_containerfile(context: Path, name: str) -> str | None:
    """The Containerfile as the packed context holds it; None if it is not there (Docker then says so)."""
    with tarfile.open(context) as archive:
        try:
            member = archive.extractfile(name)
        except KeyError:
            return None
        return member.read().decode(errors="replace") if member is not None else None


def _tar(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


__all__ = [
    "CONTAINERFILE",
    "REPOSITORY",
    "Rewrite",
    "base_name",
    "empty_image",
    "read_containerfile",
    "rewrite",
    "with_containerfile",
]
