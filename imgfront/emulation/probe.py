"""Which platforms a node can run, found by running a tiny program for each, since podman 4.3 does not say.

A probe is a static ELF of a hundred-odd bytes that calls exit(0), built here for each architecture; a build
of `FROM scratch`, `COPY probe`, `RUN ["/probe"]` for a platform succeeds exactly when the node can execute
that platform's binaries, natively or through a binfmt handler. Answers are cached per node.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imgfront.engines.base import BuildRequest, Cancellation, ImageBuilder, PackedContext, SilentEvents
from imgfront.errors import ImgfrontError
from imgfront.modes import PullPolicy
from imgfront.platforms import Arch, Platform
from imgfront.util import rundir
from imgfront.util.files import cache_home
from imgfront.util.jsonfile import JSONFileError, read_json_object, write_json

_BASE = 0x400000
CACHE_TTL = 24 * 3600


@dataclass(frozen=True)
class _Target:
    machine: int  # e_machine
    bits: int
    big_endian: bool
    code: bytes  # exit(0)
    flags: int = 0


def _words(*words: int, big: bool = False) -> bytes:
    return b"".join(struct.pack(">I" if big else "<I", w) for w in words)


_TARGETS: dict[Arch, _Target] = {
    # xor edi,edi; mov eax,60; syscall
    Arch.AMD64: _Target(62, 64, False, bytes.fromhex("31ffb83c0000000f05")),
    # mov x0,#0; mov x8,#93; svc #0
    Arch.ARM64: _Target(183, 64, False, _words(0xD2800000, 0xD2800BA8, 0xD4000001)),
    # mov r0,#0; mov r7,#1; svc #0 (EABI version 5)
    Arch.ARM: _Target(40, 32, False, _words(0xE3A00000, 0xE3A07001, 0xEF000000), flags=0x05000000),
    # xor ebx,ebx; mov eax,1; int 0x80
    Arch.I386: _Target(3, 32, False, bytes.fromhex("31dbb801000000cd80")),
    # li a0,0; li a7,93; ecall (RVC, double-float ABI)
    Arch.RISCV64: _Target(243, 64, False, _words(0x00000513, 0x05D00893, 0x00000073), flags=0x5),
    # li r0,1; li r3,0; sc (ELFv2)
    Arch.PPC64LE: _Target(21, 64, False, _words(0x38000001, 0x38600000, 0x44000002), flags=0x2),
    # lghi %r2,0; svc 1
    Arch.S390X: _Target(22, 64, True, bytes.fromhex("a72900000a01")),
}


def probe_binary(arch: Arch) -> bytes:
    """A static ELF executable for `arch` whose whole program is exit(0)."""
    t = _TARGETS[arch]
    e = ">" if t.big_endian else "<"
    if t.bits == 64:
        header_size, ph_size = 64, 56
    else:
        header_size, ph_size = 52, 32
    entry = _BASE + header_size + ph_size
    size = header_size + ph_size + len(t.code)
    ident = b"\x7fELF" + bytes([2 if t.bits == 64 else 1, 2 if t.big_endian else 1, 1]) + bytes(9)
    if t.bits == 64:
        header = ident + struct.pack(
            e + "HHIQQQIHHHHHH", 2, t.machine, 1, entry, header_size, 0, t.flags, header_size, ph_size, 1, 64, 0, 0
        )
        program = struct.pack(e + "IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    else:
        header = ident + struct.pack(
            e + "HHIIIIIHHHHHH", 2, t.machine, 1, entry, header_size, 0, t.flags, header_size, ph_size, 1, 40, 0, 0
        )
        program = struct.pack(e + "IIIIIIII", 1, 0, _BASE, _BASE, size, size, 5, 0x1000)
    return header + program + t.code


def probeable(platforms: Iterable[Platform]) -> list[Platform]:
    return [p for p in platforms if p.arch in _TARGETS]


def probe_context(platform: Platform) -> bytes:
    """The build context (a tar) that succeeds only where `platform`'s binaries run."""
    files = {
        "Containerfile": b'FROM scratch\nCOPY probe /probe\nRUN ["/probe"]\n',
        "probe": probe_binary(platform.arch),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _cache_file(node_key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in node_key)
    return cache_home() / "imgfront" / "nodes" / f"{safe}.json"


def cached(node_key: str, now: float | None = None) -> dict[str, bool]:
    """Earlier answers for a node (platform -> runnable), forgotten after a day."""
    try:
        data = read_json_object(_cache_file(node_key))
    except JSONFileError:
        return {}
    if (now or time.time()) - float(data.get("time", 0)) > CACHE_TTL:
        return {}
    return {str(k): bool(v) for k, v in data.get("platforms", {}).items()}


def remember(node_key: str, answers: dict[str, bool]) -> None:
    merged = {**cached(node_key), **answers}
    write_json(_cache_file(node_key), {"time": time.time(), "platforms": merged}, indent=None, sort_keys=True)


def probe_node(builder: ImageBuilder, candidates: Iterable[Platform], node_key: str) -> frozenset[Platform]:
    """The platforms among `candidates` that `builder` can run, by a probe build each (cached per node)."""
    known = cached(node_key)
    runnable: set[Platform] = set()
    answers: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="probe-", dir=rundir.current().path) as workdir:
        for platform in probeable(candidates):
            if str(platform) in known:
                if known[str(platform)]:
                    runnable.add(platform)
                continue
            tar = Path(workdir) / f"{platform.slug}.tar"
            tar.write_bytes(probe_context(platform))
            request = BuildRequest(
                PackedContext(tar, "Containerfile", tar.stat().st_size), platform, pull=PullPolicy.NEVER
            )
            try:
                report = builder.build(request, SilentEvents(), Cancellation())
            except ImgfrontError:
                answers[str(platform)] = False
                continue
            with contextlib.suppress(ImgfrontError):
                builder.remove_image(report.image_id, force=True)
            answers[str(platform)] = True
            runnable.add(platform)
    if answers:
        remember(node_key, answers)
    return frozenset(runnable)
