"""List builders: merge the per-platform results into one manifest list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from imgfront.engines.base import BuildReport, ImageBuilder, ListInfo, ListInstance
from imgfront.errors import EngineError


class LocalListBuilder:
    """Makes the list in the local engine's storage, bringing images built elsewhere home first."""

    def __init__(self, local: ImageBuilder, builders: Mapping[str, ImageBuilder]) -> None:
        self.local = local
        self.builders = builders

    def bring_home(self, report: BuildReport) -> BuildReport:
        """The report as the image is here: streamed over from its node unless local storage has it already."""
        if report.node == self.local.name:
            return report
        here = self.local.inspect_image(report.image_id)
        if here is None:
            self.local.import_image(self.builders[report.node].export_image(report.image_id))
            here = self.local.inspect_image(report.image_id)
            if here is None:
                raise EngineError(f"{report.platform}@{report.node}: the image did not arrive in local storage")
        return replace(report, digest=here.digest)

    def build(self, names: Sequence[str], reports: Sequence[BuildReport]) -> ListInfo:
        """Make the list from reports whose images are already home (see bring_home)."""
        instances = [ListInstance(r.image_id, r.platform) for r in reports]
        return self.local.commit_list(names, instances)
