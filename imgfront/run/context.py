"""The build context: packed once, honouring .containerignore/.dockerignore, and sent to every node."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from docker.utils.build import tar as docker_tar
from podman.api import prepare_containerignore

from imgfront.engines.base import PackedContext
from imgfront.errors import UsageError

CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")
# What podman and docker take as a remote context: a URL with a scheme, git@host:path, or github.com/...
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@|github\.com/)")


def context_folder(text: str) -> Path:
    """The folder a build context argument names; a URL or `-` (standard input) is refused, for now, by name."""
    if text == "-":
        raise UsageError(
            "a build context read from standard input ('-') is not supported yet",
            hint="put the Containerfile (or unpack the tar) into a folder and give the folder",
        )
    if _REMOTE.match(text):
        raise UsageError(
            f"a build context from a URL is not supported yet: {_without_password(text)}",
            hint="clone or download it first and give its folder, e.g. git clone URL src && imgfront build src",
        )
    path = Path(text)
    if not path.exists():
        raise UsageError(f"context folder {text} does not exist")
    if not path.is_dir():
        raise UsageError(
            f"{text} is a file, not a folder",
            hint=f"give the folder to build in; name a Containerfile with -f: imgfront build -f {text} DIR",
        )
    return path


def _without_password(url: str) -> str:
    """The URL as given, but for a password or token in it (https://user:TOKEN@host/...)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


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
