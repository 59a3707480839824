"""Reproducible mode: each platform's image, exported from its node, normalised for the epoch here.

The normalised images live in a BlobStore in the run's folder. They are loaded into local storage (where the
list is made) as oci-archives, which podman 4.3 and 5.x store with the manifest's bytes, so the list names
the normalised digests; file outputs and the push read the BlobStore itself, since a podman export or push
compresses the layers again (docs/reproducible.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from imgfront.engines.base import BuildReport, ImageBuilder
from imgfront.errors import EngineError, ImgfrontError
from imgfront.images.archive import archive_chunks, file_chunks, write_archive
from imgfront.images.blobs import BlobStore, Descriptor
from imgfront.images.normalise import normalise
from imgfront.util import signals
from imgfront.util.readahead import read_ahead


class Normaliser:
    """Normalises the builds' images into one store, and loads them into the local engine when asked."""

    def __init__(
        self,
        store: BlobStore,
        epoch: int,
        local: ImageBuilder,
        builders: Mapping[str, ImageBuilder],
        note: Callable[[str], None] = print,
    ) -> None:
        self.store = store
        self.epoch = epoch
        self.local = local
        self.builders = builders
        self.note = note
        self.images: dict[str, Descriptor] = {}  # by the normalised image's id (its config digest's hex)
        self.imported: list[str] = []  # what load put into local storage that was not there: to remove on failure

    def run(self, reports: Sequence[BuildReport], load: bool) -> tuple[BuildReport, ...]:
        """Every report as its normalised image: the id and digest it has (here, when loaded)."""
        with ThreadPoolExecutor(max_workers=max(1, len(reports))) as pool:
            return tuple(pool.map(lambda r: self._one(r, load), reports))

    def _one(self, report: BuildReport, load: bool) -> BuildReport:
        where = f"{report.platform}@{report.node}"
        image = normalise(self.store, export_into(self.store, self.builders[report.node], report), self.epoch)
        image_id = self.store.json(image.digest)["config"]["digest"].partition(":")[2]
        self.images[image_id] = image
        if load:
            self._load(image, image_id, where)
        self.note(f"{where}: normalised for SOURCE_DATE_EPOCH {self.epoch}: {image.digest}")
        return replace(report, image_id=image_id, digest=image.digest, created=False)

    def _load(self, image: Descriptor, image_id: str, where: str) -> None:
        here = self.local.inspect_image(image_id)
        if here is not None and here.digest == image.digest:
            return  # an earlier run's, perhaps the old list's instance: never this run's to remove
        archive = self.store.root / f"{image_id}.oci.tar"
        write_archive(self.store, image, archive)
        try:
            with signals.deferred():  # loaded and recorded together, so a failure removes what it loaded
                self.local.import_image(file_chunks(archive))
                if here is None:
                    self.imported.append(image_id)
        finally:
            archive.unlink()
        loaded = self.local.inspect_image(image_id)
        if loaded is None or loaded.digest != image.digest:
            got = loaded.digest if loaded is not None else "nothing"
            raise EngineError(f"{where}: local storage holds the normalised image as {got}, not {image.digest}")

    def archive(self, report: BuildReport) -> Iterator[bytes]:
        """The normalised image of a report `run` returned, as an oci-archive stream (for file outputs)."""
        path = self.store.root / f"{report.image_id}-{report.platform.slug}.out.tar"
        return archive_chunks(self.store, self.images[report.image_id], path)

    def remove_imported(self) -> None:
        for image_id in self.imported:
            with contextlib.suppress(ImgfrontError):
                self.local.remove_image(image_id, force=False)


def export_into(store: BlobStore, builder: ImageBuilder, report: BuildReport) -> Descriptor:
    """A report's image exported from the node that built it into `store` (read ahead), with its platform."""
    try:
        exported = store.import_archive(read_ahead(builder.export_image(report.image_id, oci=True)))
    except OSError as e:
        raise EngineError(f"{report.platform}@{report.node}: exporting the image failed: {e}") from e
    return replace(exported, platform=report.platform)


def descriptors(normaliser: Normaliser, reports: Sequence[BuildReport]) -> list[Descriptor]:
    """The normalised manifests of these reports, each with its platform."""
    return [replace(normaliser.images[r.image_id], platform=r.platform) for r in reports]
