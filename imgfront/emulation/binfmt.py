"""The kernel's binfmt_misc handlers: reading `/proc/sys/fs/binfmt_misc` and parsing `binfmt.d` lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from imgfront.errors import ImgfrontError
from imgfront.platforms import Arch, Platform

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS32, _ELFCLASS64 = 1, 2
_ELFDATA2LSB, _ELFDATA2MSB = 1, 2
EM_386, EM_MIPS, EM_PPC64, EM_S390, EM_ARM = 3, 8, 21, 22, 40
EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 62, 183, 243, 258

# (EI_CLASS, EI_DATA, e_machine) -> architecture; a handler matching anything else is not one we build for.
_ELF_ARCH = {
    (_ELFCLASS64, _ELFDATA2LSB, EM_X86_64): Arch.AMD64,
    (_ELFCLASS64, _ELFDATA2LSB, EM_AARCH64): Arch.ARM64,
    (_ELFCLASS32, _ELFDATA2LSB, EM_ARM): Arch.ARM,
    (_ELFCLASS32, _ELFDATA2LSB, EM_386): Arch.I386,
    (_ELFCLASS64, _ELFDATA2LSB, EM_PPC64): Arch.PPC64LE,
    (_ELFCLASS64, _ELFDATA2MSB, EM_S390): Arch.S390X,
    (_ELFCLASS64, _ELFDATA2LSB, EM_RISCV): Arch.RISCV64,
    (_ELFCLASS64, _ELFDATA2LSB, EM_MIPS): Arch.MIPS64LE,
    (_ELFCLASS64, _ELFDATA2LSB, EM_LOONGARCH): Arch.LOONG64,
}


def elf_platform(magic: bytes, offset: int = 0) -> Platform | None:
    """The platform whose ELF binaries a handler's magic matches, or None if it matches no ELF header."""
    if offset != 0 or len(magic) < 20 or not magic.startswith(_ELF_MAGIC):
        return None
    ei_class, ei_data = magic[4], magic[5]
    if ei_data == _ELFDATA2LSB:
        machine = int.from_bytes(magic[18:20], "little")
    elif ei_data == _ELFDATA2MSB:
        machine = int.from_bytes(magic[18:20], "big")
    else:
        return None
    arch = _ELF_ARCH.get((ei_class, ei_data, machine))
    return Platform.make("linux", arch.value) if arch else None


@dataclass(frozen=True)
class Handler:
    """One registered handler, as the kernel shows it in `/proc/sys/fs/binfmt_misc/<name>`."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int = 0
    magic: bytes = b""
    mask: bytes = b""
    extension: str | None = None  # set instead of magic for handlers of type E

    @property
    def platform(self) -> Platform | None:
        if self.extension is not None:
            return None
        return elf_platform(self.magic, self.offset)

    @property
    def fix_binary(self) -> bool:
        """F: the kernel opened the interpreter at registration, so it works inside containers too."""
        return "F" in self.flags

    @property
    def credentials(self) -> bool:
        """C: setuid and setgid binaries run with their own credentials, not the interpreter's."""
        return "C" in self.flags


def parse_handler(name: str, text: str) -> Handler:
    """Parse the contents of `/proc/sys/fs/binfmt_misc/<name>`."""
    lines = text.splitlines()
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    try:
        return Handler(
            name=name,
            enabled=bool(lines) and lines[0].strip() == "enabled",
            interpreter=fields.get("interpreter", ""),
            flags=fields.get("flags", ""),
            offset=int(fields.get("offset", "0")),
            magic=bytes.fromhex(fields.get("magic", "")),
            mask=bytes.fromhex(fields.get("mask", "")),
            extension=fields["extension"].removeprefix(".") if "extension" in fields else None,
        )
    except ValueError as e:
        raise ImgfrontError(f"cannot parse binfmt_misc handler {name!r}: {e}") from None


def is_mounted(root: Path = BINFMT_MISC) -> bool:
    return (root / "register").exists()


def read_handlers(root: Path = BINFMT_MISC) -> list[Handler]:
    """Every registered handler, sorted by name; empty if binfmt_misc is not mounted."""
    if not is_mounted(root):
        return []
    handlers = []
    for path in sorted(root.iterdir()):
        if path.name in ("register", "status"):
            continue
        try:
            text = path.read_text()
        except FileNotFoundError:  # unregistered while we listed the directory
            continue
        handlers.append(parse_handler(path.name, text))
    return handlers


def working_handler(platform: Platform, root: Path = BINFMT_MISC) -> Path | None:
    """The entry of an enabled handler for PLATFORM's binaries with flag F (what containers need), if any."""
    try:
        if (root / "status").read_text().strip() != "enabled":
            return None
        handlers = read_handlers(root)
    except (OSError, ImgfrontError):
        return None
    for handler in handlers:
        found = handler.platform
        if handler.enabled and handler.fix_binary and found is not None and found.arch == platform.arch:
            return root / handler.name
    return None


@dataclass(frozen=True)
class RegisterLine:
    """A line for `register` as `binfmt.d` files hold it: `:name:type:offset:magic:mask:interpreter:flags`."""

    name: str
    type: str  # M (magic) or E (extension)
    offset: int
    magic: bytes  # for type E, the extension
    mask: bytes
    interpreter: str
    flags: str

    @property
    def platform(self) -> Platform | None:
        return elf_platform(self.magic, self.offset) if self.type == "M" else None

    def with_flag(self, flag: str) -> RegisterLine:
        return self if flag in self.flags else replace(self, flags=self.flags + flag)

    def __str__(self) -> str:
        magic = self.magic.decode() if self.type == "E" else _escape(self.magic)
        fields = [self.name, self.type, str(self.offset or ""), magic, _escape(self.mask)]
        return ":" + ":".join([*fields, self.interpreter, self.flags])


def parse_register_line(line: str) -> RegisterLine:
    """Parse one `binfmt.d` line; its first character is the field delimiter, usually `:`."""
    text = line.strip()
    parts = text[1:].split(text[0]) if text else []
    if len(parts) != 7 or parts[1] not in ("M", "E"):
        raise ImgfrontError(
            f"invalid binfmt_misc register line {line.strip()!r}",
            hint="expected :name:type:offset:magic:mask:interpreter:flags",
        )
    name, kind, offset, magic, mask, interpreter, flags = parts
    return RegisterLine(
        name=name,
        type=kind,
        offset=int(offset or "0"),
        magic=magic.encode() if kind == "E" else _unescape(magic),
        mask=_unescape(mask),
        interpreter=interpreter,
        flags=flags,
    )


def _unescape(text: str) -> bytes:
    """Decode `\\xNN` escapes; the kernel leaves every other character as it is."""
    parts = re.split(r"\\x([0-9a-fA-F]{2})", text)
    out = bytearray()
    for i, part in enumerate(parts):
        out += bytes.fromhex(part) if i % 2 else part.encode()
    return bytes(out)


def _escape(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)
