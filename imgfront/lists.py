"""List builders: merge the per-platform results into one manifest list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from imgfront.engines.base import BuildReport, ImageBuilder, ListInfo, ListInstance


class LocalListBuilder:
    """Makes the list in the local engine's storage, bringing images built elsewhere home first."""

    def __init__(self, local: ImageBuilder, builders: Mapping[str, ImageBuilder]) -> None:
        self.local = local
        self.builders = builders

    def bring_home(self, report: BuildReport) -> str:
        """The local id of a report's image; streamed over from its node unless already here."""
        if report.node == self.local.name or self.local.inspect_image(report.image_id) is not None:
            return report.image_id
        return self.local.import_image(self.builders[report.node].export_image(report.image_id))

    def build(self, names: Sequence[str], reports: Sequence[BuildReport]) -> ListInfo:
        instances = [ListInstance(self.bring_home(r), r.platform) for r in reports]
        return self.local.commit_list(names, instances)
