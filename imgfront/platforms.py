"""Platforms (`os/arch[/variant]`): parsing, normalisation and what each architecture is called elsewhere."""

from __future__ import annotations

import enum
import platform as _pyplatform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imgfront.errors import UsageError


class Arch(enum.Enum):
    """A CPU architecture, named as OCI names it, that knows its qemu, uname and ELF names."""

    AMD64 = "amd64"
    ARM64 = "arm64"
    ARM = "arm"
    I386 = "386"
    PPC64LE = "ppc64le"
    S390X = "s390x"
    RISCV64 = "riscv64"
    MIPS64LE = "mips64le"
    LOONG64 = "loong64"

    def __lt__(self, other: object) -> bool:
        """By name, so that platforms sort (an Enum has no order of its own)."""
        if not isinstance(other, Arch):
            return NotImplemented
        return self.value < other.value

    def to_oci(self) -> str:
        return self.value

    def to_qemu(self) -> str:
        """The suffix of qemu's user-mode emulator and binfmt handler (`qemu-<name>`)."""
        return _QEMU[self]

    def to_uname(self) -> str:
        """What `uname -m` prints inside a container of this architecture."""
        return _UNAME[self]

    def default_variant(self) -> str | None:
        return _DEFAULT_VARIANT.get(self)

    @classmethod
    def from_name(cls, name: str) -> Arch:
        """Accept the OCI name or a common alias (x86_64, aarch64, armhf, i686...)."""
        key = name.strip().lower()
        try:
            return cls(key)
        except ValueError:
            pass
        if key in _ALIASES:
            return _ALIASES[key]
        known = ", ".join(a.value for a in cls)
        raise UsageError(f"unknown architecture {name!r}", hint=f"known architectures: {known}")


_QEMU = {
    Arch.AMD64: "x86_64",
    Arch.ARM64: "aarch64",
    Arch.ARM: "arm",
    Arch.I386: "i386",
    Arch.PPC64LE: "ppc64le",
    Arch.S390X: "s390x",
    Arch.RISCV64: "riscv64",
    Arch.MIPS64LE: "mips64el",
    Arch.LOONG64: "loongarch64",
}
_UNAME = {**_QEMU, Arch.ARM: "armv7l", Arch.I386: "i686", Arch.MIPS64LE: "mips64"}
_ALIASES = {
    "x86_64": Arch.AMD64,
    "x86-64": Arch.AMD64,
    "aarch64": Arch.ARM64,
    "armhf": Arch.ARM,
    "armv7l": Arch.ARM,
    "armv7": Arch.ARM,
    "i386": Arch.I386,
    "i686": Arch.I386,
    "x86": Arch.I386,
    "ppc64el": Arch.PPC64LE,
    "mips64el": Arch.MIPS64LE,
    "loongarch64": Arch.LOONG64,
}
_DEFAULT_VARIANT = {Arch.ARM64: "v8", Arch.ARM: "v7"}
# Variants each architecture accepts; the first is the default.
_VARIANTS: dict[Arch, tuple[str, ...]] = {
    Arch.ARM64: ("v8", "v9"),
    Arch.ARM: ("v7", "v6", "v5"),
    Arch.AMD64: ("v1", "v2", "v3", "v4"),
}
SUPPORTED_OS = ("linux",)
CPUINFO = Path("/proc/cpuinfo")
# The x86-64 psABI's microarchitecture levels, as /proc/cpuinfo names their flags (pni is SSE3, abm has LZCNT).
_X86_64_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}),
    frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
)


@dataclass(frozen=True, order=True)
class Platform:
    """A normalised target platform.

    `variant` is None where it is the architecture's only or baseline form (amd64 v1, arm64 v8),
    so that `linux/arm64` and `linux/arm64/v8` are equal; `arm` always carries a variant (v7 by default).
    """

    os: str
    arch: Arch
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch.value, self.variant) if p)

    @property
    def oci_variant(self) -> str | None:
        """The variant to write into an image index (buildx writes v8 for arm64)."""
        return self.variant or self.arch.default_variant()

    @property
    def slug(self) -> str:
        """A file-name-safe form, as buildx uses for per-platform folders: linux_arm_v7."""
        return str(self).replace("/", "_")

    def to_oci(self) -> dict[str, str]:
        spec = {"os": self.os, "architecture": self.arch.value}
        if self.oci_variant:
            spec["variant"] = self.oci_variant
        return spec

    def build_args(self, prefix: str) -> dict[str, str]:
        """The BuildKit-style automatic arguments for this platform: TARGETPLATFORM and friends."""
        return {
            f"{prefix}PLATFORM": str(self),
            f"{prefix}OS": self.os,
            f"{prefix}ARCH": self.arch.value,
            f"{prefix}VARIANT": self.variant or "",
        }

    @property
    def level(self) -> int:
        """The variant's number (amd64 v3 is 3, arm v6 is 6); the baseline's where none is given."""
        variant = self.variant or (_VARIANTS.get(self.arch) or ("v0",))[0]
        return int(variant.removeprefix("v"))

    def runs_on(self, cpu: Platform) -> bool:
        """Whether a CPU of platform `cpu` runs this platform's binaries itself (amd64 v3 runs v1 and v2)."""
        return (self.os, self.arch) == (cpu.os, cpu.arch) and self.level <= cpu.level

    def matches_image(self, os: str | None, arch: str | None, variant: str | None) -> bool:
        """Whether an image config's os/architecture/variant describe this platform."""
        try:
            other = Platform.make(os or "", arch or "", variant or None)
        except UsageError:
            return False
        # podman 4.3 writes no variant into an amd64 image's config, whichever level was asked for.
        return other == self or (self.arch is Arch.AMD64 and other.arch is Arch.AMD64 and not variant)

    @classmethod
    def make(cls, os: str, arch: str, variant: str | None = None) -> Platform:
        os = os.strip().lower()
        if os not in SUPPORTED_OS:
            raise UsageError(f"unsupported operating system {os!r}", hint="imgfront builds linux images")
        a = Arch.from_name(arch)
        if arch.strip().lower() in ("armv7l", "armv7") and not variant:
            variant = "v7"
        v = variant.strip().lower() if variant else None
        allowed = _VARIANTS.get(a, ())
        if v and v not in allowed:
            raise UsageError(f"unknown variant {v!r} for architecture {a.value}")
        if a is Arch.ARM:
            v = v or "v7"
        elif v == (allowed[0] if allowed else None):
            v = None
        return cls(os, a, v)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse `os/arch[/variant]`, an architecture alone (taken as linux), or `local`."""
        spec = text.strip()
        if spec.lower() == "local":
            return host_platform()
        parts = spec.split("/")
        try:
            if len(parts) == 1 and parts[0]:
                return cls.make("linux", parts[0])
            if len(parts) == 2:
                return cls.make(parts[0], parts[1])
            if len(parts) == 3:
                return cls.make(parts[0], parts[1], parts[2])
        except UsageError as e:
            raise UsageError(f"invalid platform {text!r}: {e.message}", hint=e.hint) from None
        raise UsageError(f"invalid platform {text!r}", hint="write it as os/arch[/variant], e.g. linux/arm64")


def parse_platforms(values: Iterable[str]) -> tuple[Platform, ...]:
    """Parse repeated, comma-separated --platform values into unique platforms, keeping their order."""
    seen: dict[Platform, None] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                raise UsageError(
                    f"empty platform in {value!r}",
                    hint="write os/arch[/variant], comma-separated (linux/amd64,linux/arm64); omit it for this host's",
                )
            seen.setdefault(Platform.parse(item), None)
    return tuple(seen)


def host_platform(machine: str | None = None) -> Platform:
    """The platform this host runs natively, at its baseline: what a build without --platform is for."""
    return Platform.make("linux", machine or _pyplatform.machine())


def x86_64_level(flags: Iterable[str]) -> int:
    """The highest x86-64 microarchitecture level (1 to 4) whose every feature is among a CPU's flags."""
    have, level = set(flags), 1
    for needed in _X86_64_LEVELS:
        if not needed <= have:
            break
        level += 1
    return level


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The first processor's flags in /proc/cpuinfo; empty where it has none (not x86)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def host_platforms(machine: str | None = None, cpuinfo: Path = CPUINFO) -> tuple[Platform, ...]:
    """Every platform this host's CPU runs natively, the baseline first: amd64 at each level its flags reach."""
    host = host_platform(machine)
    if host.arch is not Arch.AMD64:
        return (host,)
    top = x86_64_level(cpu_flags(cpuinfo))
    return (host, *(Platform.make("linux", "amd64", f"v{n}") for n in range(2, top + 1)))
