"""List builders: merge the per-platform results into one manifest list."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from imgfront.engines.base import BuildReport, ImageBuilder, ListInfo, ListInstance
from imgfront.errors import EngineError


class LocalListBuilder:
    """Makes the list in the local engine's storage, bringing images built elsewhere home first."""

    def __init__(
        self, local: ImageBuilder, builders: Mapping[str, ImageBuilder], note: Callable[[str], None] = print
    ) -> None:
        self.local = local
        self.builders = builders
        self.note = note
        self.imported: list[str] = []  # what bring_home put into local storage, to remove if the list fails

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
        self.local.import_image(counted(export))
        self.imported.append(report.image_id)
        here = self.local.inspect_image(report.image_id)
        if here is None:
            raise EngineError(f"{where}: the image did not arrive in local storage")
        self.note(f"{where}: brought home, {moved / 1e6:.1f} MB in {time.monotonic() - start:.1f} s")
        return replace(report, digest=here.digest)

    def stage(self, reports: Sequence[BuildReport]) -> ListInfo:
        """Make the list, under a temporary name, from reports whose images are already home (see bring_home)."""
        return self.local.create_list([ListInstance(r.image_id, r.platform) for r in reports])

    def publish(self, staged: ListInfo, names: Sequence[str]) -> ListInfo:
        """Move the names onto the staged list: the last step of a build, so a failure before it moves nothing."""
        return self.local.name_list(staged, names)
