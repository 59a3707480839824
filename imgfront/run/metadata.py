"""The metadata file (--metadata-file): buildx's keys plus imgfront's own, in one defined structure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgfront.model import BuildReport, ListInfo
from imgfront.run.progress import report_json
from imgfront.util.jsonfile import write_json

if TYPE_CHECKING:
    from imgfront.oci.push import Pushed


def metadata(
    names: Sequence[str],
    reports: Sequence[BuildReport],
    image_list: ListInfo | None,
    outputs: Sequence[Mapping[str, str | None]] | None = None,
    pushed: Sequence[Pushed] = (),
    source_date_epoch: int | None = None,
) -> dict[str, Any]:
    """`containerimage.*` and `image.name` as buildx writes them; `imgfront.builds` one entry per platform.

    `imgfront.outputs` lists what was written, each as `{type, dest}`; None means the default, type=image.
    After a push, `containerimage.*` describe the index in the (first) registry, each build gets its
    `pushed_digest` there, and `imgfront.push` lists every name pushed with its digests.
    `imgfront.source_date_epoch` is reproducible mode's epoch, null when the build was not reproducible.
    """
    data: dict[str, Any] = {"image.name": ",".join(names)}
    first = pushed[0] if pushed else None
    if first is not None and first.digest:
        data["containerimage.digest"] = first.digest
        data["containerimage.descriptor"] = {"mediaType": first.media_type, "digest": first.digest, "size": first.size}
    elif first is not None and len(reports) == 1:
        data["containerimage.digest"] = first.instances.get(reports[0].platform)
    elif image_list is not None:
        # The digest storage holds for the list; without its size (bytes podman's view could not rebuild) no descriptor.
        data["containerimage.digest"] = image_list.digest or None
        if image_list.digest and image_list.size:
            data["containerimage.descriptor"] = {
                "mediaType": image_list.media_type,
                "digest": image_list.digest,
                "size": image_list.size,
            }
    elif len(reports) == 1:
        data["containerimage.digest"] = reports[0].digest
    data["imgfront.builds"] = [report_json(r) for r in reports]
    if first is not None:
        for build, report in zip(data["imgfront.builds"], reports, strict=True):
            build["pushed_digest"] = first.instances.get(report.platform)
        data["imgfront.push"] = [p.to_json() for p in pushed]
    data["imgfront.outputs"] = [dict(o) for o in outputs] if outputs is not None else [{"type": "image", "dest": None}]
    data["imgfront.source_date_epoch"] = source_date_epoch
    return data


def write_metadata(path: Path, data: dict[str, Any]) -> None:
    write_json(path, data, sort_keys=True)
