"""Which foreign platforms qemu-user-static emulates here, and registering its handlers for containers."""

from __future__ import annotations

import enum
import os
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgfront.emulation.binfmt import (
    BINFMT_MISC,
    Handler,
    RegisterLine,
    is_mounted,
    parse_register_line,
    read_handlers,
)
from imgfront.errors import ImgfrontError, UsageError
from imgfront.platforms import Arch, Platform, host_platform, host_platforms

BINFMT_D = Path("/usr/lib/binfmt.d")

CAVEATS: tuple[str, ...] = (
    "/proc/cpuinfo inside an emulated container describes the host's CPU, not the emulated one.",
    "qemu runs threads of its own, so some syscalls of single-threaded programs behave differently.",
    "setuid and setgid binaries need the handler's C flag, which Debian's qemu handlers do not set.",
)


@dataclass(frozen=True)
class HandlerStatus:
    """One handler and what it means for builds on this host."""

    handler: Handler
    native: bool
    interpreter_found: bool

    @property
    def platform(self) -> Platform | None:
        return self.handler.platform

    @property
    def usable_in_containers(self) -> bool:
        # Without F the kernel looks the interpreter up inside the container, where it does not exist.
        return self.handler.enabled and self.handler.fix_binary

    @property
    def problem(self) -> str | None:
        if not self.handler.enabled:
            return "disabled"
        if not self.handler.fix_binary and not self.interpreter_found:
            return f"interpreter {self.handler.interpreter} not found"
        if not self.handler.fix_binary:
            return "no F flag: works on the host but not inside containers"
        return None


def status(root: Path = BINFMT_MISC, host: Platform | None = None) -> list[HandlerStatus]:
    """Every registered handler, with the platform it emulates (None if it is no ELF emulator)."""
    host = host or host_platform()
    return [
        HandlerStatus(
            handler=h,
            native=h.platform is not None and h.platform.arch is host.arch,
            interpreter_found=Path(h.interpreter).exists(),
        )
        for h in read_handlers(root)
    ]


def emulated_platforms(root: Path = BINFMT_MISC, host: Platform | None = None) -> frozenset[Platform]:
    """The foreign platforms whose binaries run inside containers here through an enabled F handler."""
    return frozenset(s.platform for s in status(root, host) if s.platform and s.usable_in_containers and not s.native)


def emulated_besides(native: Platform) -> tuple[Platform, ...]:
    """What an engine on this host emulates: every usable handler's platform but the engine's own, sorted."""
    return tuple(sorted(p for p in emulated_platforms() if p != native))


def fix_command(platforms: Iterable[Platform]) -> str:
    """The command that makes these platforms buildable here."""
    unique = ",".join(dict.fromkeys(str(p) for p in platforms))
    command = ["imgfront", "emulation", "install", "--platform", unique]
    return shlex.join(command if os.geteuid() == 0 else ["sudo", *command])


class Action(enum.Enum):
    REGISTERED = "registered"
    RE_REGISTERED = "re-registered"
    ALREADY_PRESENT = "already-present"
    NATIVE = "native"


@dataclass(frozen=True)
class InstallResult:
    platform: Platform
    handler: str
    action: Action


def installable_platforms(binfmt_d: Path = BINFMT_D, host: Platform | None = None) -> tuple[Platform, ...]:
    """The foreign platforms qemu-user-static has a handler for; what `install` does without --platform."""
    host = host or host_platform()
    return tuple(
        Platform.make("linux", a.value)
        for a in Arch
        if a is not host.arch and (binfmt_d / f"qemu-{a.to_qemu()}.conf").is_file()
    )


def install(
    platforms: Iterable[Platform],
    binfmt_d: Path = BINFMT_D,
    root: Path = BINFMT_MISC,
    host: Platform | None = None,
    cpus: Sequence[Platform] | None = None,
) -> list[InstallResult]:
    """Register qemu's handler, with flag F, for each foreign platform that has no usable one yet.

    A platform of the host's own architecture is native when the CPU (`cpus`: every level it runs) runs it,
    and is refused when not: qemu-user does not emulate the host's architecture, so no handler would help.
    """
    cpus = cpus or (host_platforms() if host is None else (host,))
    host = host or host_platform()
    beyond = [p for p in dict.fromkeys(platforms) if p.arch is host.arch and not any(p.runs_on(c) for c in cpus)]
    if beyond:
        best = max(cpus, key=lambda c: c.level)
        raise UsageError(
            f"cannot emulate {', '.join(str(p) for p in beyond)}: this host's CPU runs {best} at most, "
            "and qemu-user emulates other architectures only",
            hint=f"build {best} (or a lower variant) here, or on a node whose CPU has it (--node)",
        )
    current = status(root, host)
    present = {s.platform.arch: s.handler.name for s in current if s.platform and s.usable_in_containers}
    names = {s.handler.name for s in current}

    results: list[InstallResult] = []
    todo: list[tuple[InstallResult, RegisterLine]] = []
    for platform in dict.fromkeys(platforms):
        name = f"qemu-{platform.arch.to_qemu()}"
        if platform.arch is host.arch:
            results.append(InstallResult(platform, "", Action.NATIVE))
        elif platform.arch in present:
            results.append(InstallResult(platform, present[platform.arch], Action.ALREADY_PRESENT))
        else:
            action = Action.RE_REGISTERED if name in names else Action.REGISTERED
            result = InstallResult(platform, name, action)
            todo.append((result, _load_conf(binfmt_d, name, platform)))
            results.append(result)
    if not todo:
        return results

    if os.geteuid() != 0:
        raise ImgfrontError(
            "registering qemu's binfmt_misc handlers needs root",
            hint=fix_command(r.platform for r, _ in todo),
        )
    if not is_mounted(root):
        _mount(root)
    for result, line in todo:
        try:
            if result.action is Action.RE_REGISTERED:
                (root / result.handler).write_text("-1")
            (root / "register").write_text(str(line.with_flag("F")))
        except OSError as e:
            raise ImgfrontError(
                f"could not register {result.handler} for {result.platform}: {e.strerror or e}",
                hint=f"check that {line.interpreter} exists",
            ) from None
    return results


def _load_conf(binfmt_d: Path, name: str, platform: Platform) -> RegisterLine:
    path = binfmt_d / f"{name}.conf"
    if not path.is_file():
        if any(binfmt_d.glob("qemu-*.conf")):
            hint = f"qemu-user-static has no handler for {platform.arch.value} on this host"
        else:
            hint = "apt-get install qemu-user-static"
        raise ImgfrontError(f"cannot emulate {platform}: {path} does not exist", hint=hint)
    for text in path.read_text().splitlines():
        if text.strip() and not text.lstrip().startswith(("#", ";")):
            line = parse_register_line(text)
            if line.name == name:
                return line
    raise ImgfrontError(f"{path} has no line for handler {name}")


def _mount(root: Path) -> None:
    command = ["mount", "-t", "binfmt_misc", "binfmt_misc", os.fspath(root)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
        raise ImgfrontError(
            f"could not mount binfmt_misc: {shlex.join(command)}: {detail}",
            hint="the kernel needs binfmt_misc support (modprobe binfmt_misc)",
        ) from None
