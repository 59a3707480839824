"""`imgfront doctor`: one line per check of what a build needs, with a hint for each failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer

from imgfront.engines.build_params import missing_build_params
from imgfront.errors import ImgfrontError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    warning: bool = False

    def __str__(self) -> str:
        mark = "ok  " if self.ok else ("warn" if self.warning else "FAIL")
        line = f"[{mark}] {self.name}: {self.detail}"
        return line + (f"\n       hint: {self.hint}" if self.hint and not self.ok else "")


def _cgroups_hybrid() -> bool:
    return Path("/sys/fs/cgroup/unified").is_dir()


def _local_cgroups() -> str:
    """This host's cgroups: "v2" (unified), "v1 (hybrid)" or "v1"."""
    if Path("/sys/fs/cgroup/cgroup.controllers").is_file():
        return "v2"
    return "v1 (hybrid)" if _cgroups_hybrid() else "v1"


def cgroups_check(server_version: str, cgroup_version: str) -> Check:
    """podman 5 deprecates cgroups v1 (and warns on every call); a later release drops it."""
    version = cgroup_version or _local_cgroups()
    if version.startswith("v2"):
        return Check("cgroups", True, f"v2 with podman {server_version}")
    return Check(
        "cgroups",
        False,
        f"{version} with podman {server_version}: podman 5 deprecates cgroups v1, and a later podman drops it",
        "boot with systemd.unified_cgroup_hierarchy=1 (cgroups v2); podman 5 is quiet with "
        "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
        warning=True,
    )


def build_params_check(server_version: str, api_version: str) -> Check:
    missing = missing_build_params(server_version)
    if not missing:
        return Check("build options", True, f"API {api_version} has every build option imgfront knows")
    names = ", ".join(f"{p.param} ({p.option}, {p.since_text}+)" for p in missing)
    return Check(
        "build options",
        False,
        f"API {api_version} has no {names}",
        "a newer podman has them; podman drops an option its API does not know",
        warning=True,
    )


def _engine_checks() -> Iterator[Check]:
    from imgfront.engines import open_local

    podman = shutil.which("podman")
    if podman:
        version = subprocess.run([podman, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        yield Check("podman", True, version or podman)
    else:
        yield Check(
            "podman",
            False,
            "not installed",
            "apt-get install podman buildah (or your distribution's)",
            warning=bool(os.environ.get("CONTAINER_HOST")),
        )
    try:
        with open_local() as engine:
            info, details = engine.info(), engine.host_details()
            yield Check("engine", True, f"{engine.connection.source}: {engine.connection.uri}")
            yield Check("server", True, f"podman {info.server_version}, API {info.api_version} (4.3 or newer needed)")
            driver = str(details.get("store", {}).get("graphDriverName", ""))
            yield Check(
                "storage",
                driver == "overlay",
                f"driver {driver or 'unknown'}",
                "vfs copies every layer; configure overlay in storage.conf for speed",
                warning=True,
            )
            mode = "rootless" if details.get("host", {}).get("security", {}).get("rootless") else "rootful"
            yield Check("mode", True, mode)
            cgroups = str(details.get("host", {}).get("cgroupVersion", ""))
            if cgroups == "v1" and engine.connection.uri.startswith("unix://") and _cgroups_hybrid():
                cgroups = "v1 (hybrid)"  # a service on this host shares its kernel's cgroups
            yield cgroups_check(info.server_version, cgroups)
            yield build_params_check(info.server_version, info.api_version)
            runtime = details.get("host", {}).get("ociRuntime", {}).get("name", "")
            bad = runtime == "crun" and _cgroups_hybrid()
            yield Check(
                "runtime",
                not bad,
                f"OCI runtime {runtime or 'unknown'}",
                'crun fails on hybrid cgroups here: set runtime = "runc" under [engine] in containers.conf',
            )
    except ImgfrontError as e:
        yield Check("engine", False, e.message, e.hint or "start one: podman system service --time=0")


def _emulation_checks() -> Iterator[Check]:
    from imgfront.emulation import binfmt, qemu

    if not binfmt.is_mounted():
        # Native builds need no emulation; inside a container the host's handlers are not visible at all.
        yield Check(
            "binfmt_misc",
            False,
            "not mounted: only this machine's own platform builds here",
            "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc (imgfront emulation install does); "
            "in a container, build other platforms on a --node",
            warning=True,
        )
        return
    handlers = [h for h in binfmt.read_handlers() if h.platform is not None]
    usable = sorted(str(h.platform) for h in handlers if h.enabled and h.fix_binary)
    lacking = sorted(h.name for h in handlers if h.enabled and not h.fix_binary)
    yield Check(
        "binfmt_misc",
        bool(usable),
        "emulates " + (", ".join(usable) or "nothing"),
        f"run: {qemu.fix_command(qemu.installable_platforms())}",
        warning=True,
    )
    if lacking:
        yield Check(
            "binfmt flags",
            False,
            f"handlers without the F flag: {', '.join(lacking)}",
            "containers cannot use them; run: imgfront emulation install",
            warning=True,
        )
    for caveat in qemu.CAVEATS:
        yield Check("qemu caveat", True, caveat)


def run_doctor() -> bool:
    ok = True
    for check in (*_engine_checks(), *_emulation_checks()):
        print(check)
        ok = ok and (check.ok or check.warning)
    return ok


doctor_app = typer.Typer(add_completion=False)


@doctor_app.command("doctor")
def doctor() -> None:
    """Check the engine, its API, storage, emulation and mode; one line a check, with a hint for each failure."""
    if not run_doctor():
        raise typer.Exit(1)
