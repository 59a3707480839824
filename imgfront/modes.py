"""The choices of a build as enums: pull policy, push mode, progress mode, the local engine.

A leaf: the options table, progress, push and build all read them, and none of those is imported here.
"""

from __future__ import annotations

import enum


class PullPolicy(enum.StrEnum):
    ALWAYS = "always"
    MISSING = "missing"
    NEVER = "never"
    NEWER = "newer"


class PushMode(enum.StrEnum):
    HERE = "here"  # --push: the local list and every instance
    NODES = "nodes"  # --push-from-nodes: each node its own image, then the index from here
    DIGEST = "digest"  # --push-by-digest: each node its own image, no tag, no index


class ProgressMode(enum.StrEnum):
    AUTO = "auto"
    TTY = "tty"
    PLAIN = "plain"
    JSON = "json"
    QUIET = "quiet"

    @property
    def help(self) -> str:
        return _PROGRESS_HELP[self]


_PROGRESS_HELP = {
    ProgressMode.AUTO: "`tty` on a terminal, else `plain`",
    ProgressMode.TTY: "one row per platform with its state, step `N/M`, elapsed time and last log line",
    ProgressMode.PLAIN: "every log line prefixed `[linux/arm64@local]`, on stderr",
    ProgressMode.JSON: "one JSON object per line on stdout: `plan`, `started`, `step`, `log`, `done`, `failed`, "
    "`note`, `summary`, each with `event`, `time` and, per platform, `platform` and `node`",
    ProgressMode.QUIET: "nothing but errors",
}


class LocalEngine(enum.StrEnum):
    PODMAN = "podman"
    DOCKER = "docker"
