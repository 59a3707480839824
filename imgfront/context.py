"""The build context: packed once, honouring .containerignore/.dockerignore, and sent to every node."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from docker.utils.build import tar as docker_tar
from podman.api import prepare_containerignore

from imgfront.engines.base import PackedContext
from imgfront.errors import UsageError

CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")


def find_containerfile(context: Path, file: Path | None) -> Path:
    if file is not None:
        if not file.is_file():
            raise UsageError(f"no Containerfile at {file}")
        return file
    for name in CONTAINERFILE_NAMES:
        if (context / name).is_file():
            return context / name
    raise UsageError(f"no Containerfile or Dockerfile in {context}", hint="name one with -f/--file")


def pack(context: Path, containerfile: Path, workdir: Path) -> PackedContext:
    """Tar the context once; a Containerfile outside it is added under a name of its own."""
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a directory")
    excludes = prepare_containerignore(os.fspath(context))
    try:
        inside = containerfile.resolve().relative_to(context.resolve()).as_posix()
        extra: tuple[str | None, str | None] = (inside, None)  # keeps it in the tar even if ignored
    except ValueError:
        inside = ".imgfront.Containerfile"
        extra = (inside, containerfile.read_text())
    fd, name = tempfile.mkstemp(prefix="context-", suffix=".tar", dir=workdir)
    with os.fdopen(fd, "wb") as out:
        # docker's matcher implements .dockerignore fully (!, **), which podman-py's does not.
        docker_tar(os.fspath(context), exclude=excludes, dockerfile=extra, fileobj=out)
    tar = Path(name)
    return PackedContext(tar=tar, containerfile=inside, size=tar.stat().st_size)
