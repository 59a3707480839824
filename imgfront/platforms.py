"""Platforms (`os/arch[/variant]`): parsing, normalisation and what each architecture is called elsewhere."""

from __future__ import annotations

import enum
import platform as _pyplatform
from collections.abc import Iterable
from dataclasses import dataclass

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

    def matches_image(self, os: str | None, arch: str | None, variant: str | None) -> bool:
        """Whether an image config's os/architecture/variant describe this platform."""
        try:
            other = Platform.make(os or "", arch or "", variant or None)
        except UsageError:
            return False
        return other == self

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
    """The platform this host runs natively."""
    return Platform.make("linux", machine or _pyplatform.machine())
