"""Flatten an image's layers into one folder, honouring whiteouts as overlay storage does."""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path

from imgfront.errors import EngineError
from imgfront.images.archive import image_blobs
from imgfront.images.blobs import BlobStore, Descriptor

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def _relative(name: str) -> str:
    path = posixpath.normpath(name.lstrip("/"))
    if path == ".." or path.startswith("../"):
        raise EngineError(f"a layer names a path outside the image: {name!r}")
    return path


def _inside(root: Path, relative: str) -> Path:
    """root/relative, refused when a symlink on the way leads out of root."""
    target = root / relative
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(target.parent)]) != real_root:
        raise EngineError(f"a layer writes through a link out of the image: {relative!r}")
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _checked(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's 'tar' filter refuses paths out of dest; unlike it, keep modes such as setuid as they are."""
    tarfile.tar_filter(member, dest)
    if member.islnk():
        _relative(member.linkname)
    return member.replace(name=_relative(member.name), deep=False)


def apply_layer(layer: tarfile.TarFile, root: Path) -> None:
    """Whiteouts hide what lower layers put there; then the layer's own files go on top."""
    members = layer.getmembers()
    for member in members:
        path = _relative(member.name)
        parent, base = posixpath.split(path)
        if base == OPAQUE:
            folder = _inside(root, parent) if parent else root
            if folder.is_dir() and not folder.is_symlink():
                for child in folder.iterdir():
                    _remove(child)
        elif base.startswith(WHITEOUT):
            _remove(_inside(root, posixpath.join(parent, base[len(WHITEOUT) :])))
    kept = [m for m in members if not posixpath.basename(_relative(m.name)).startswith(WHITEOUT)]
    for member in kept:
        path = _relative(member.name)
        if path == ".":
            continue
        target = _inside(root, path)
        if not (member.isdir() and target.is_dir() and not target.is_symlink()):
            _remove(target)  # a file replaces what was there; never write through an old symlink
    layer.extractall(root, members=kept, numeric_owner=True, filter=_checked)


def write_rootfs(store: BlobStore, manifest: Descriptor, root: Path) -> None:
    root.mkdir(parents=True)
    for digest in image_blobs(store, manifest)[2:]:
        try:
            with tarfile.open(store.path(digest), "r:*") as layer:
                apply_layer(layer, root)
        except tarfile.ReadError as e:
            raise EngineError(f"cannot read layer {digest[:19]} (zstd layers are not supported): {e}") from e
