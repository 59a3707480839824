"""What a build sends: the packed context file as it is, with tar members added after it in memory at send time.

Secrets travel this way, as podman-remote sends them: each inside the context stream under a name nobody can
guess, and the build's `secrets` parameter names it. So their bytes never reach a file on this host, not even
the packed context; the podman server moves each out of the context folder before it builds (`COPY . .` cannot
take it), and gives it to the build as a secret file.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from types import TracebackType

from imgfront.engines.base import PackedContext
from imgfront.model import Secret

SECRET_PREFIX = ".imgfront-secret-"  # a member name's start; 128 random bits follow it


@dataclass(frozen=True)
class Upload:
    """The packed context's first `end` bytes (all of it when None), then `tail`, a tar of members of its own
    whose end-of-archive blocks end the stream."""

    tar: Path
    end: int | None = None
    tail: bytes = field(default=b"", repr=False)

    @property
    def size(self) -> int:
        return (self.tar.stat().st_size if self.end is None else self.end) + len(self.tail)

    def open(self) -> UploadStream:
        return UploadStream(self)


class UploadStream:
    """A readable body of known length (so the request has a Content-Length) that never copies the context."""

    def __init__(self, upload: Upload) -> None:
        self._file = upload.tar.open("rb")
        self._left = upload.end if upload.end is not None else -1  # -1: to the end of the file
        self._tail = upload.tail
        self._length = upload.size

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left != 0:
            want = self._left if size < 0 or 0 <= self._left < size else size
            chunk = self._file.read(want)
            if chunk:
                if self._left > 0:
                    self._left -= len(chunk)
                return chunk
            self._left = 0
        if not self._tail:
            return b""
        n = len(self._tail) if size < 0 else size
        chunk, self._tail = self._tail[:n], self._tail[n:]
        return chunk

    def close(self) -> None:
        self._file.close()
        self._tail = b""

    def __enter__(self) -> UploadStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def archive_end(tar: Path) -> tuple[int, frozenset[str]]:
    """Where the packed context's members end (its end-of-archive blocks begin), and the names it holds."""
    with tarfile.open(tar) as archive:
        members = archive.getmembers()
    end = 0
    if members:
        last = members[-1]
        end = last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return end, frozenset(m.name.removeprefix("./") for m in members)


def tar_members(files: Mapping[str, bytes], mode: int = 0o644) -> bytes:
    """A tar of these files, owned by this user as the packed context's files are, ending the archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            info.uid, info.gid = os.getuid(), os.getgid()
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def with_secrets(context: PackedContext, secrets: Sequence[Secret]) -> tuple[Upload, list[str]]:
    """The upload with each secret added under a random name, and the `secrets` parameter's entries naming them.

    The names are new for every request, so no two builds (nor a Containerfile's author) can know them.
    """
    if not secrets:
        return Upload(context.tar), []
    end, taken = archive_end(context.tar)
    names: dict[str, bytes] = {}
    specs = []
    for secret in secrets:
        name = SECRET_PREFIX + token_hex(16)
        while name in taken or name in names:
            name = SECRET_PREFIX + token_hex(16)
        names[name] = secret.value
        specs.append(f"id={secret.id},src={name}")
    return Upload(context.tar, end, tar_members(names, mode=0o600)), specs


__all__ = ["SECRET_PREFIX", "Upload", "UploadStream", "archive_end", "tar_members", "with_secrets"]
