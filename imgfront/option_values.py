"""How the values of `podman build`'s settings options are read: sizes, ulimits, hosts, networks, security options.

Each parser takes what the command line gave (None when the option was not given) and returns a plain value the
engine adapters encode (None again for "not asked"), or raises UsageError: one line, exit 2, before any build.
They read values as podman's own client does (docker/go-units for sizes and ulimits, buildah's parse package for
hosts and security options), so a value podman takes is taken here too.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Sequence

from imgfront.errors import UsageError

NETWORKS = ("none", "host", "private")
ISOLATIONS = ("oci", "chroot", "rootless", "default")
FORMATS = ("oci", "docker")

# go-units' RAMInBytes: a number, then an optional binary unit (k, m, g, t, p; "b", "ib" and case ignored).
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# go-units' ulimit names (ParseUlimit), as podman takes them.
ULIMITS = (
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)


def parse_size(option: str) -> Callable[[str | None], int | None]:
    """A size in bytes, "64m" or "1g" or "1048576", binary units as podman's --shm-size and --memory take it."""

    def parse(value: str | None) -> int | None:
        if value is None:
            return None
        match = _SIZE.match(value.strip())
        hint = "give a size such as 64m, 1g or 1048576 (bytes)"
        try:
            number = float(match[1]) if match else None
        except ValueError:
            number = None
        if match is None or number is None:
            raise UsageError(f"invalid {option} {value!r}", hint=hint)
        size = int(number * _UNITS[(match[2] or "").lower()])
        if size <= 0:
            raise UsageError(f"invalid {option} {value!r}: it must be more than 0 bytes", hint=hint)
        return size

    return parse


def parse_memory_swap(value: str | None) -> int | None:
    """--memory-swap: a size, or -1 for unlimited swap."""
    if value is not None and value.strip() == "-1":
        return -1
    return parse_size("--memory-swap")(value)


def parse_ulimits(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """NAME=SOFT[:HARD] each, NAME one of go-units' names, SOFT no more than HARD; sent to the engine as given."""
    if not values:
        return None
    for value in values:
        name, sep, limits = value.partition("=")
        soft_text, _, hard_text = limits.partition(":")
        hint = f"write it as NAME=SOFT[:HARD], e.g. nofile=1024:2048; NAME one of {', '.join(ULIMITS)}"
        if not sep or name not in ULIMITS:
            raise UsageError(f"invalid --ulimit {value!r}", hint=hint)
        try:
            soft, hard = int(soft_text), int(hard_text) if hard_text else None
        except ValueError:
            raise UsageError(f"invalid --ulimit {value!r}: the limits must be whole numbers", hint=hint) from None
        if hard is not None and soft > hard:
            raise UsageError(f"invalid --ulimit {value!r}: the soft limit is above the hard one", hint=hint)
    return tuple(values)


def parse_add_hosts(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """HOST:IP each, as buildah checks it: a name, a colon, then an IPv4 or IPv6 address."""
    if not values:
        return None
    for value in values:
        host, sep, address = value.partition(":")
        try:
            valid = bool(host and sep) and ipaddress.ip_address(address) is not None
        except ValueError:
            valid = False
        if not valid:
            raise UsageError(f"invalid --add-host {value!r}", hint="write it as HOST:IP, e.g. mirror.internal:10.0.0.5")
    return tuple(values)


def parse_security_opts(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """label=..., seccomp=PATH or apparmor=PROFILE each, the ones podman's build takes."""
    if not values:
        return None
    for value in values:
        if value == "no-new-privileges":
            raise UsageError("--security-opt no-new-privileges is not supported by podman build")
        name, sep, _ = value.partition("=")
        if not sep or name not in ("label", "seccomp", "apparmor"):
            raise UsageError(
                f"invalid --security-opt {value!r}", hint="use label=OPTION, seccomp=PROFILE.json or apparmor=PROFILE"
            )
    return tuple(values)


def parse_env(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """K=V each; K alone takes its value from imgfront's environment (skipped when unset), the same on every node."""
    if not values:
        return None
    result = []
    for value in values:
        key, sep, _ = value.partition("=")
        if not key:
            raise UsageError(f"invalid --env {value!r}", hint="write it as KEY=VALUE")
        if sep:
            result.append(value)
        elif key in os.environ:
            result.append(f"{key}={os.environ[key]}")
    return tuple(result) or None


def parse_volumes(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """`--volume HOST-DIR:CONTAINER-DIR[:OPTIONS]`, both paths absolute, as podman build takes them."""
    if not values:
        return None
    for value in values:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(p.startswith("/") for p in parts[:2]):
            raise UsageError(
                f"invalid --volume {value!r}",
                hint="write it as /HOST/DIR:/CONTAINER/DIR[:OPTIONS], e.g. /srv/cache:/cache:ro",
            )
    return tuple(values)


def parse_names(option: str) -> Callable[[Sequence[str] | None], tuple[str, ...] | None]:
    """A repeatable option's values, each non-empty, as given."""

    def parse(values: Sequence[str] | None) -> tuple[str, ...] | None:
        if not values:
            return None
        if any(not v.strip() for v in values):
            raise UsageError(f"{option} needs a value")
        return tuple(values)

    return parse


def parse_choice(option: str, choices: Sequence[str]) -> Callable[[str | None], str | None]:
    def parse(value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in choices:
            raise UsageError(f"invalid {option} {value!r}", hint=f"use one of {', '.join(choices)}")
        return value.lower()

    return parse


def parse_text(option: str) -> Callable[[str | None], str | None]:
    def parse(value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise UsageError(f"{option} needs a value")
        return value

    return parse


_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_cpuset(option: str) -> Callable[[str | None], str | None]:
    """A list of CPUs or memory nodes, "0-3,5", as the kernel's cpuset takes it."""

    def parse(value: str | None) -> str | None:
        if value is not None and not _CPUSET.match(value):
            raise UsageError(f"invalid {option} {value!r}", hint="give numbers and ranges, e.g. 0-3,5")
        return value

    return parse


def parse_flag(value: bool) -> bool | None:
    """A flag that asks for something only when given."""
    return True if value else None


BOOL_WORDS = ("true", "false", "1", "0", "yes", "no")  # what parse_bool takes


def parse_bool(option: str) -> Callable[[str | None], bool | None]:
    """--layers, --layers=true, --layers=false; None when not given."""

    def parse(value: str | None) -> bool | None:
        if value is None:
            return None
        if value.lower() in BOOL_WORDS[0::2]:
            return True
        if value.lower() in BOOL_WORDS[1::2]:
            return False
        raise UsageError(f"invalid {option} value {value!r}", hint=f"use {option}=true or {option}=false")

    return parse
