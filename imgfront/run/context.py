"""The build context: packed once, honouring .containerignore/.dockerignore, and sent to every node."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from docker.utils.build import tar as docker_tar

from imgfront.engines.base import NamedContext, PackedContext
from imgfront.errors import ImgfrontError, UsageError
from imgfront.util import rundir

CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")
IGNORE_FILES = (".containerignore", ".dockerignore")
# What podman and docker take as a remote context: a URL with a scheme, git@host:path, or github.com/...
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@|github\.com/)")
_GIT = re.compile(r"^(?:git://|git@|github\.com/|https?://[^#]*\.git(?:#|$))")
DOWNLOAD_TIMEOUT = (15.0, 300.0)


def context_folder(text: str) -> Path:
    """The folder a build context argument names; a git or http(s) URL is fetched into the run folder first."""
    if text == "-":
        raise UsageError(
            "a build context read from standard input ('-') is not supported",
            hint="put the Containerfile (or unpack the tar) into a folder and give the folder; -f - reads a "
            "Containerfile from standard input",
        )
    if _REMOTE.match(text):
        return remote_context(text)
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


def remote_context(url: str) -> Path:
    """A context from a URL, as podman takes them: a git repository (`URL.git#REF:SUBDIR`, `git@...`,
    `github.com/...`), or over http(s) a tar archive (gzip, bzip2 or xz) or a lone Containerfile."""
    folder = rundir.current().subdir("remote-context-")
    if _GIT.match(url):
        return _clone(url, folder)
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise UsageError(
            f"a build context from a {scheme}:// URL is not supported: {_without_password(url)}",
            hint="give a folder, a git URL, or an http(s) URL of a tar archive or a Containerfile",
        )
    return _download(url, folder)


def _clone(url: str, folder: Path) -> Path:
    """The commit REF names (default: the remote's HEAD), fetched alone; SUBDIR of it is the context."""
    repository, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    if repository.startswith("github.com/"):
        repository = "https://" + repository
    checkout = folder / "checkout"
    git = ["git", "-C", os.fspath(checkout)]
    fetch = [*git, "fetch", "--quiet", "--depth", "1", "--", repository, ref or "HEAD"]

    def run(step: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                step, capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, timeout=600
            )
        except FileNotFoundError:
            raise ImgfrontError("a git build context needs git", hint="install git (apt install git)") from None

    for step in (
        ["git", "init", "--quiet", os.fspath(checkout)],
        fetch,
        [*git, "checkout", "--quiet", "FETCH_HEAD"],
        [*git, "submodule", "update", "--quiet", "--init", "--recursive"],
    ):
        done = run(step)
        if done.returncode != 0 and step is fetch and "shallow" in done.stderr:
            done = run([a for a in step if a not in ("--depth", "1")])  # git's dumb http: the whole history
        if done.returncode != 0:
            problem = _hide_password(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "", url)
            raise UsageError(f"could not fetch the git context {_without_password(url)}: {problem}")
    shutil.rmtree(checkout / ".git", ignore_errors=True)
    context = (checkout / subdir).resolve() if subdir else checkout
    if not context.is_relative_to(checkout.resolve()) or not context.is_dir():
        raise UsageError(f"the git context {_without_password(url)} has no folder {subdir!r}")
    return context


def _download(url: str, folder: Path) -> Path:
    """A tar archive is unpacked into the context; anything else is taken as its Containerfile."""
    import requests

    shown = _without_password(url)
    body = folder / "download"
    try:
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code >= 400:
                raise UsageError(f"could not fetch the build context {shown}: HTTP {response.status_code}")
            with body.open("wb") as out:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
    except requests.RequestException as e:
        raise ImgfrontError(f"could not fetch the build context {shown}: {_hide_password(str(e), url)}") from None
    context = folder / "context"
    context.mkdir()
    if tarfile.is_tarfile(body):
        try:
            with tarfile.open(body, "r:*") as archive:
                _extract_data(archive, context)
        except (tarfile.TarError, OSError) as e:
            raise UsageError(f"the build context {shown} is not a tar archive imgfront can unpack: {e}") from None
    else:
        os.rename(body, context / "Containerfile")
    body.unlink(missing_ok=True)
    return context


def _extract_data(archive: tarfile.TarFile, dest: Path) -> None:
    """Unpack as Python's `data` filter does; by hand where Python predates it (Debian 12's 3.11.2)."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(dest, filter="data")
        return
    root = os.path.realpath(dest)
    members = []
    for member in archive.getmembers():
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            continue  # no devices or fifos
        target = os.path.realpath(os.path.join(root, member.name))
        link = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname)) if member.issym() else target
        if member.islnk():
            link = os.path.realpath(os.path.join(root, member.linkname))
        if os.path.isabs(member.name) or os.path.commonpath([root, target]) != root:
            raise tarfile.TarError(f"{member.name!r} is outside the archive's folder")
        if os.path.commonpath([root, link]) != root:
            raise tarfile.TarError(f"{member.name!r} links outside the archive's folder")
        member.mode &= 0o755  # no setuid, setgid or sticky bits, no group or other write
        member.uid = member.gid = os.getuid()
        members.append(member)
    archive.extractall(dest, members=members, numeric_owner=True)


def _hide_password(text: str, url: str) -> str:
    password = urlsplit(url).password if "://" in url else None
    return text.replace(password, "***") if password else text


def containerfile_from_stdin() -> Path:
    """`-f -`: the Containerfile read from standard input, kept in the run folder for the build."""
    text = sys.stdin.read()
    if not text.strip():
        raise UsageError("-f -: standard input held no Containerfile")
    path = rundir.current().subdir("stdin-") / "Containerfile"
    path.write_text(text)
    return path


def ignore_patterns(context: Path, ignorefile: Path | None = None) -> list[str]:
    """The exclude patterns: --ignorefile's, else the context's .containerignore, else its .dockerignore."""
    if ignorefile is not None:
        if not ignorefile.is_file():
            raise UsageError(f"--ignorefile {ignorefile}: no such file")
        # The servers read a .containerignore or .dockerignore in what they are sent as well: leave them out.
        return [*_patterns(ignorefile), *IGNORE_FILES]
    for path in (context / name for name in IGNORE_FILES):
        if path.is_file():
            return _patterns(path)
    return []


def _patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@dataclass(frozen=True)
class ContextSource:
    """`--build-context NAME=VALUE` as given: a folder, `docker-image://REF`, or an http(s) URL."""

    name: str
    folder: Path | None = None
    image: str | None = None
    url: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "source": os.fspath(self.folder) if self.folder else self.image or self.url or ""}


_CONTEXT_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def parse_build_context(text: str) -> ContextSource:
    """NAME=DIR, NAME=docker-image://REF or NAME=https://URL, each checked before any build."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise UsageError(
            f"invalid --build-context {text!r}",
            hint="write it as NAME=DIR, NAME=docker-image://REF or NAME=https://URL",
        )
    if not _CONTEXT_NAME.match(name):
        raise UsageError(f"invalid --build-context name {name!r}: letters, digits, '.', '_' and '-'")
    if value.startswith("docker-image://"):
        image = value.removeprefix("docker-image://")
        if not image:
            raise UsageError(f"--build-context {name}: docker-image:// names no image")
        return ContextSource(name, image=image)
    if value.startswith(("http://", "https://")):
        return ContextSource(name, url=value)
    if _REMOTE.match(value):
        raise UsageError(
            f"--build-context {name}: {_without_password(value)} is not a folder, docker-image:// or http(s) URL"
        )
    folder = Path(value)
    if not folder.is_dir():
        raise UsageError(f"--build-context {name}: {value} is not a folder")
    return ContextSource(name, folder=folder.absolute())


def parse_build_contexts(texts: list[str] | None) -> tuple[ContextSource, ...]:
    sources = tuple(parse_build_context(text) for text in texts or [])
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"--build-context {name} is given twice")
    return sources


NAMED_CONTEXT_FOLDER = "context"


def pack_named(source: ContextSource, workdir: Path, epoch: int | None = None) -> NamedContext:
    """A folder context as a tar of its own: the files under `context/`, and a Containerfile that copies them
    into an empty image, which each node builds first and the build then sees under the context's name.
    With a SOURCE_DATE_EPOCH its mtimes are clamped as `pack`'s are."""
    if source.folder is None:
        return NamedContext(source.name, image=source.image, url=source.url)
    fd, name = tempfile.mkstemp(prefix=f"named-{source.name}-", suffix=".tar", dir=workdir)
    containerfile = f"FROM scratch\nCOPY {NAMED_CONTEXT_FOLDER}/ /\n".encode()
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(".imgfront.Containerfile")
        info.size, info.mode = len(containerfile), 0o644
        archive.addfile(info, io.BytesIO(containerfile))
        archive.add(source.folder, arcname=NAMED_CONTEXT_FOLDER)
    tar = Path(name)
    if epoch is not None:
        clamp_mtimes(tar, epoch)
    packed = PackedContext(tar=tar, containerfile=".imgfront.Containerfile", size=tar.stat().st_size)
    return NamedContext(source.name, folder=packed, token=uuid.uuid4().hex)


def find_containerfile(context: Path, file: Path | None) -> Path:
    if file is not None:
        if not file.is_file():
            raise UsageError(f"no Containerfile at {file}")
        return file
    for name in CONTAINERFILE_NAMES:
        if (context / name).is_file():
            return context / name
    raise UsageError(f"no Containerfile or Dockerfile in {context}", hint="name one with -f/--file")


def pack(
    context: Path,
    containerfile: Path,
    workdir: Path,
    ignorefile: Path | None = None,
    epoch: int | None = None,
) -> PackedContext:
    """Tar the context once; a Containerfile outside it is added under a name of its own.

    With a SOURCE_DATE_EPOCH, every mtime is whole seconds and at most the epoch (see `clamp_mtimes`).
    """
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a directory")
    excludes = ignore_patterns(context, ignorefile)
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
    if epoch is not None:
        clamp_mtimes(tar, epoch)
    return PackedContext(tar=tar, containerfile=inside, size=tar.stat().st_size)


def clamp_mtimes(tar: Path, epoch: int) -> None:
    """Rewrite the tar in place with every mtime `min(whole seconds, epoch)`.

    buildah rounds a sub-second mtime to the nearest second and Docker truncates it, so a context that
    carries fractions gives layers that differ by engine (docs/reproducible.md).
    """
    fd, name = tempfile.mkstemp(prefix=".clamped-", suffix=".tar", dir=tar.parent)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            tarfile.open(tar, "r:") as source,
            tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as target,
        ):
            for member in source:
                member.mtime = min(int(member.mtime), epoch)
                member.pax_headers = {k: v for k, v in member.pax_headers.items() if k != "mtime"}
                target.addfile(member, source.extractfile(member) if member.isreg() else None)
        os.replace(name, tar)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def is_remote(text: str) -> bool:
    """Whether a context argument is a URL (git or http) rather than a folder here."""
    return bool(_REMOTE.match(text))


def commit_epoch(text: str) -> int:
    """--reproducible's epoch: the time of the latest commit of the git work tree the context folder is in."""
    if text == "-" or is_remote(text):
        raise UsageError(
            f"--reproducible takes its time from the context's git history, and {text} is not a folder here",
            hint="give --source-date-epoch N (or SOURCE_DATE_EPOCH) instead",
        )
    folder = context_folder(text)
    try:
        done = subprocess.run(
            ["git", "-C", os.fspath(folder), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise UsageError("--reproducible needs git", hint="install git, or give --source-date-epoch N") from None
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise UsageError(
            f"--reproducible: the context {text} is not in a git work tree with a commit",
            hint="commit it, or give --source-date-epoch N (or SOURCE_DATE_EPOCH) instead",
        )
    return int(done.stdout.strip())
