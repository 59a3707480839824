"""Build API parameters that not every podman server has: the one table of them, by the version that added each.

The libpod build API's names are the same in 4.3 and 5.x for everything 4.3 has; a server silently drops a
parameter it does not know, so a frontend has to ask the server's version before relying on one. A build option's
row in imgfront/options.py names its API parameter, and takes its version gate from here (`param_since`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VersionedParam:
    """A libpod build API query parameter, the `podman build` option it carries, and the first version with it."""

    param: str
    option: str
    since: tuple[int, int]

    @property
    def since_text(self) -> str:
        return ".".join(map(str, self.since))


BUILD_PARAMS_SINCE: tuple[VersionedParam, ...] = (
    VersionedParam("volume", "--volume", (4, 4)),
    VersionedParam("retry", "--retry", (5, 3)),
    VersionedParam("sourcedateepoch", "--source-date-epoch", (5, 6)),
    VersionedParam("rewritetimestamp", "--rewrite-timestamp", (5, 6)),
)

# cachefrom and cacheto: podman 4.3 reads one repository each; 4.4 (buildah's multi-repository cache) and later read
# a JSON list of them. Each server refuses the other form, so the adapter writes the one its server reads.
CACHE_LISTS_SINCE = (4, 4)
# Podman 4.3 (buildah 1.28) never looks an ARG step up in the registry cache, and on a store without that step the
# rest of the stage then runs; 4.4 looks it up after running the ARG.
CACHE_ARG_LOOKUP_SINCE = (4, 4)


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of "5.4.2", "4.3.1-dev" or "v5.0.0"; (0, 0) when it cannot be read."""
    match = re.match(r"v?(\d+)\.(\d+)", version.strip())
    return (int(match[1]), int(match[2])) if match else (0, 0)


def missing_build_params(server_version: str) -> list[VersionedParam]:
    """The parameters this server's version does not have yet."""
    have = version_tuple(server_version)
    return [p for p in BUILD_PARAMS_SINCE if have < p.since]


def param_since(param: str) -> tuple[int, int] | None:
    """The first podman version with this build API parameter; None for one 4.3 already has."""
    return next((p.since for p in BUILD_PARAMS_SINCE if p.param == param), None)
