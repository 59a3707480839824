"""An image's file tree after all its layers, whiteouts applied: each regular file's checksums, streamed.

Layers are read once each, from the start; only the files a caller asks to keep are held in memory.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TypeAlias

from imgfront.errors import EngineError
from imgfront.images.archive import image_blobs
from imgfront.images.blobs import CHUNK, BlobStore, Descriptor
from imgfront.images.layers import GZIP_ERRORS, stream_layer

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class TreeFile:
    """A regular file of the final tree; `data` only for files the caller kept, checksums only when asked for."""

    path: str
    size: int
    sha1: str = ""
    sha256: str = ""
    data: bytes | None = None


_OTHER = None  # a symlink, hard link, device or fifo: it takes a name but is no regular file
_Node: TypeAlias = "dict[str, _Node] | TreeFile | None"


class _Tree:
    """Folders as nested dicts, so a whiteout of a folder drops everything under it at once."""

    def __init__(self) -> None:
        self.root: dict[str, _Node] = {}

    def _folder(self, parts: list[str], create: bool) -> dict[str, _Node] | None:
        folder = self.root
        for part in parts:
            child = folder.get(part)
            if not isinstance(child, dict):
                if not create:
                    return None
                child = folder[part] = {}  # a folder's content replaces a file of its name below
            folder = child
        return folder

    def remove(self, path: str) -> None:
        *parents, base = path.split("/")
        folder = self._folder(parents, create=False)
        if folder is not None:
            folder.pop(base, None)

    def clear(self, path: str) -> None:
        folder = self._folder(path.split("/") if path else [], create=False)
        if folder is not None:
            folder.clear()

    def put(self, path: str, node: _Node) -> None:
        *parents, base = path.split("/")
        folder = self._folder(parents, create=True)
        assert folder is not None
        if isinstance(node, dict) and isinstance(folder.get(base), dict):
            return  # a folder again: what is under it stays
        folder[base] = node

    def files(self) -> Iterator[TreeFile]:
        stack: list[dict[str, _Node]] = [self.root]
        while stack:
            folder = stack.pop()
            for node in folder.values():
                if isinstance(node, dict):
                    stack.append(node)
                elif node is not None:
                    yield node


def _relative(name: str) -> str:
    """The member's path from the image's root, "" for the root itself."""
    path = posixpath.normpath(name.lstrip("/"))
    if path == ".." or path.startswith("../"):
        raise EngineError(f"a layer names a path outside the image: {name!r}")
    return "" if path == "." else path


def _file(path: str, member: tarfile.TarInfo, source: IO[bytes], checksums: bool, keep: bool) -> TreeFile:
    sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
    chunks: list[bytes] = []
    while chunk := source.read(CHUNK):
        if checksums:
            sha1.update(chunk)
            sha256.update(chunk)
        if keep:
            chunks.append(chunk)
    data = b"".join(chunks) if keep else None
    if not checksums:
        return TreeFile(path, member.size, data=data)
    return TreeFile(path, member.size, sha1.hexdigest(), sha256.hexdigest(), data)


def _apply(tree: _Tree, layer: IO[bytes], keep: Callable[[str], bool], checksums: bool) -> None:
    """Whiteouts hide what lower layers have (not this one's own files, whatever their order), then files go on."""
    cleared: list[str] = []
    removed: list[str] = []
    added: list[tuple[str, _Node]] = []
    with tarfile.open(fileobj=layer, mode="r|") as archive:
        for member in archive:
            path = _relative(member.name)
            parent, base = posixpath.split(path)
            if base == OPAQUE:
                cleared.append(parent)
            elif base.startswith(WHITEOUT):
                removed.append(posixpath.join(parent, base[len(WHITEOUT) :]))
            elif not path:
                continue
            elif member.isdir():
                added.append((path, {}))
            elif member.isreg():
                source = archive.extractfile(member)
                assert source is not None
                added.append((path, _file(path, member, source, checksums, keep(path))))
            else:
                added.append((path, _OTHER))
    for path in cleared:
        tree.clear(path)
    for path in removed:
        tree.remove(path)
    for path, node in added:
        tree.put(path, node)


def image_files(
    store: BlobStore, manifest: Descriptor, keep: Callable[[str], bool], *, checksums: bool = True
) -> list[TreeFile]:
    """The regular files of MANIFEST's image by path, with the content of those KEEP says yes to."""
    tree = _Tree()
    for digest in image_blobs(store, manifest)[2:]:
        with stream_layer(store, digest) as layer:
            try:
                _apply(tree, layer, keep, checksums)
            except tarfile.TarError as e:
                raise EngineError(f"layer {digest[:19]} is not a valid tar: {e}") from None
            except GZIP_ERRORS as e:
                raise EngineError(f"layer {digest[:19]} is not valid gzip: {e}") from None
    return sorted(tree.files(), key=lambda file: file.path)
