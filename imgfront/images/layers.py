"""A layer blob opened as a plain tar, whatever it is compressed with."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from imgfront.errors import EngineError
from imgfront.images.blobs import CHUNK, BlobStore

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# What a gzip stream that is cut short or corrupt raises while it is read.
GZIP_ERRORS = (OSError, EOFError, zlib.error)


def _is_gzip(blob: IO[bytes], digest: str) -> bool:
    magic = blob.read(4)
    blob.seek(0)
    if magic == ZSTD_MAGIC:
        raise EngineError(f"layer {digest[:19]} is zstd-compressed, which imgfront cannot read yet")
    return magic.startswith(GZIP_MAGIC)


@contextmanager
def open_layer(store: BlobStore, digest: str) -> Iterator[IO[bytes]]:
    """The layer as a seekable plain tar: the blob itself, or a temporary file it is decompressed into."""
    with store.path(digest).open("rb") as blob:
        if not _is_gzip(blob, digest):
            yield blob
            return
        with tempfile.TemporaryFile(dir=store.root) as plain:
            try:
                with gzip.GzipFile(fileobj=blob, mode="rb") as unzipped:
                    shutil.copyfileobj(unzipped, plain, CHUNK)
            except GZIP_ERRORS as e:
                raise EngineError(f"layer {digest[:19]} is not valid gzip: {e}") from None
            plain.seek(0)
            yield plain


@contextmanager
def stream_layer(store: BlobStore, digest: str) -> Iterator[IO[bytes]]:
    """The layer as a plain tar to read once from the start, decompressed as it is read (GZIP_ERRORS on damage)."""
    with store.path(digest).open("rb") as blob:
        if not _is_gzip(blob, digest):
            yield blob
            return
        with gzip.GzipFile(fileobj=blob, mode="rb") as unzipped:
            yield unzipped  # type: ignore[misc]
