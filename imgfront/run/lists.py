"""List builders: merge the per-platform results into one manifest list."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from imgfront.engines.base import BuildReport, ImageBuilder, ListInfo, ListInstance
from imgfront.errors import EngineError, UsageError
from imgfront.platforms import Platform
from imgfront.util.readahead import read_ahead


class LocalListBuilder:
    """Makes the list in the local engine's storage, bringing images built elsewhere home first."""

    def __init__(
        self, local: ImageBuilder, builders: Mapping[str, ImageBuilder], note: Callable[[str], None] = print
    ) -> None:
        self.local = local
        self.builders = builders
        self.note = note
        self.imported: list[str] = []  # what bring_home put into local storage, to remove if the list fails
        self.unchanged = False  # stage found the names on a list of exactly these images: nothing to make

    def bring_home(self, report: BuildReport) -> BuildReport:
        """The report as the image is here: streamed over from its node unless local storage has it already."""
        if report.node == self.local.name:
            return report
        where = f"{report.platform}@{report.node}"
        here = self.local.inspect_image(report.image_id)
        if here is not None:
            self.note(f"{where}: image {report.image_id[:12]} already in local storage, not transferred")
            return replace(report, digest=here.digest)
        moved = 0

        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            nonlocal moved
            for chunk in chunks:
                moved += len(chunk)
                yield chunk

        start = time.monotonic()
        # oci-archive keeps annotations; a Docker engine at home can load only a docker-archive.
        export = self.builders[report.node].export_image(report.image_id, oci=self.local.loads_oci)
        self.local.import_image(counted(read_ahead(export)))  # the node's export runs ahead of the import
        self.imported.append(report.image_id)
        here = self.local.inspect_image(report.image_id)
        if here is None:
            raise EngineError(f"{where}: the image did not arrive in local storage")
        self.note(f"{where}: brought home, {moved / 1e6:.1f} MB in {time.monotonic() - start:.1f} s")
        return replace(report, digest=here.digest)

    def stage(self, reports: Sequence[BuildReport], names: Sequence[str] = ()) -> ListInfo:
        """Make the list, under a temporary name, from reports whose images are already home (see bring_home).

        When every name already names one list of exactly these images for these platforms (an unchanged
        rebuild), that list is the result as it is: nothing is made, and `publish` moves nothing.
        """
        current = self._unchanged(reports, names)
        if current is not None:
            self.unchanged = True
            return current
        return self.local.create_list([ListInstance(r.image_id, r.platform) for r in reports])

    def _unchanged(self, reports: Sequence[BuildReport], names: Sequence[str]) -> ListInfo | None:
        if not names or any(not r.digest for r in reports):
            return None
        lists = [self.local.inspect_list(name) for name in names]
        first = lists[0]
        if first is None or not first.platforms or any(other is None or other.id != first.id for other in lists):
            return None
        if first.instances != tuple(r.digest for r in reports) or len(first.platforms) != len(reports):
            return None
        try:
            listed = [Platform.parse(text) for text in first.platforms]
        except UsageError:
            return None
        return first if listed == [r.platform for r in reports] else None

    def publish(self, staged: ListInfo, names: Sequence[str]) -> ListInfo:
        """Move the names onto the staged list: the last step of a build, so a failure before it moves nothing."""
        if self.unchanged:
            return staged
        return self.local.name_list(staged, names)
