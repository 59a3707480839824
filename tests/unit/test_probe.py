"""The emulation probes: tiny static programs that must really run under qemu-user-static."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from imgfront.emulation.probe import cached, probe_binary, probe_context, remember
from imgfront.platforms import Arch, Platform

QEMU = {
    Arch.ARM64: "aarch64",
    Arch.ARM: "arm",
    Arch.RISCV64: "riscv64",
    Arch.PPC64LE: "ppc64le",
    Arch.S390X: "s390x",
    Arch.I386: "i386",
}


@pytest.mark.parametrize("arch", list(QEMU))
def test_probe_binary_exits_zero_under_its_qemu(arch: Arch, tmp_path: Path) -> None:
    emulator = shutil.which(f"qemu-{QEMU[arch]}-static")
    assert emulator, "qemu-user-static is missing: run make setup"
    program = tmp_path / "probe"
    program.write_bytes(probe_binary(arch))
    program.chmod(0o755)
    assert subprocess.run([emulator, str(program)], check=False).returncode == 0


def test_probe_binary_for_this_host_runs_natively(tmp_path: Path) -> None:
    program = tmp_path / "probe"
    program.write_bytes(probe_binary(Platform.parse("local").arch))
    program.chmod(0o755)
    assert subprocess.run([str(program)], check=False).returncode == 0


def test_a_foreign_probe_is_rejected_by_the_wrong_emulator(tmp_path: Path) -> None:
    program = tmp_path / "probe"
    program.write_bytes(probe_binary(Arch.RISCV64))
    program.chmod(0o755)
    assert subprocess.run(["qemu-aarch64-static", str(program)], capture_output=True, check=False).returncode != 0


def test_probe_context_holds_the_containerfile_and_program() -> None:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(probe_context(Platform.parse("linux/arm64")))) as tar:
        assert sorted(tar.getnames()) == ["Containerfile", "probe"]
        assert tar.extractfile("Containerfile").read() == b'FROM scratch\nCOPY probe /probe\nRUN ["/probe"]\n'  # type: ignore[union-attr]


def test_answers_are_cached_per_node_and_expire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    remember("podman-ssh://a", {"linux/arm64": True})
    remember("podman-ssh://a", {"linux/riscv64": False})
    assert cached("podman-ssh://a") == {"linux/arm64": True, "linux/riscv64": False}
    assert cached("podman-ssh://b") == {}
    assert cached("podman-ssh://a", now=10**12) == {}
