"""Writing the file outputs: export each platform's image, stage it, write each output atomically beside its dest."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from imgfront.errors import EngineError
from imgfront.images.blobs import BlobStore, Descriptor
from imgfront.model import BuildReport
from imgfront.outputs.types import OutputSpec, Staged

Export = Callable[[BuildReport], Iterator[bytes]]
# A staged image's attestations, added to the staged store as artifacts (run/attest.py's Attester.for_output).
Attach = Callable[[BlobStore, Descriptor], tuple[Descriptor, ...]]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _commit(new: Path, dest: Path) -> None:
    """Put new in dest's place; a folder that was there is moved aside first and removed after."""
    if new.is_dir() and dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.rename(dest, old)
        os.rename(new, dest)
        _remove(old)
    else:
        os.replace(new, dest)


def write_outputs(
    specs: Sequence[OutputSpec],
    reports: Sequence[BuildReport],
    export: Export,
    tags: Sequence[str],
    attach: Attach | None = None,
) -> None:
    """Write every file output, each first beside its dest; only when all are written are they renamed into place.

    With `attach`, each image gets the artifacts it returns, which the layout outputs carry."""
    files = [s for s in specs if s.dest is not None]
    if not files:
        return
    dests = [s.dest for s in files if s.dest is not None]
    for dest in dests:
        dest.parent.mkdir(parents=True, exist_ok=True)
    # Beside the first dest, so that a layout's blobs are hard links rather than copies.
    with tempfile.TemporaryDirectory(prefix=".imgfront-stage-", dir=dests[0].parent) as stage:
        store = BlobStore(Path(stage))
        images = []
        for report in reports:
            try:
                images.append(replace(store.import_archive(export(report)), platform=report.platform))
            except (OSError, tarfile.TarError) as e:
                raise EngineError(f"{report.platform}@{report.node}: exporting the image failed: {e}") from e
        artifacts = {}
        if attach is not None and any(s.kind.carries_artifacts for s in files):
            artifacts = {image.digest: attach(store, image) for image in images}
        staged = Staged(store, tuple(images), tuple(tags), artifacts)
        written: list[tuple[Path, Path]] = []
        try:
            for spec, dest in zip(files, dests, strict=True):
                new = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
                written.append((new, dest))
                try:
                    spec.kind.write(staged, new / "out")
                except OSError as e:
                    raise EngineError(f"--output type={spec.type}: writing {dest} failed: {e}") from e
            for new, dest in written:
                _commit(new / "out", dest)
        finally:
            for new, _ in written:
                _remove(new)
