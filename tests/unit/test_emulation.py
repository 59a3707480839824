"""binfmt_misc parsing and qemu handler registration, against fixtures copied from a real Debian 12 host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgfront.emulation import (
    CAVEATS,
    Action,
    Handler,
    RegisterLine,
    elf_platform,
    emulated_platforms,
    fix_command,
    install,
    installable_platforms,
    is_mounted,
    parse_handler,
    parse_register_line,
    read_handlers,
    status,
)
from imgfront.emulation.binfmt import working_handler
from imgfront.errors import ImgfrontError, UsageError
from imgfront.platforms import Platform

FIXTURES = Path(__file__).parent / "fixtures" / "binfmt"
BINFMT_D = FIXTURES / "binfmt.d"
AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
RISCV64 = Platform.parse("linux/riscv64")
LOONG64 = Platform.parse("linux/loong64")
MIPS64LE = Platform.parse("linux/mips64le")


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A writable copy of a binfmt_misc with qemu handlers (some disabled or without F) and two others."""
    root = tmp_path / "binfmt_misc"
    shutil.copytree(FIXTURES / "proc", root)
    return root


@pytest.fixture
def empty_proc(tmp_path: Path) -> Path:
    """A mounted binfmt_misc with no handlers."""
    root = tmp_path / "empty_binfmt_misc"
    root.mkdir()
    (root / "register").touch()
    (root / "status").write_text("enabled\n")
    return root


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


def fixture_handler(name: str) -> Handler:
    return parse_handler(name, (FIXTURES / "proc" / name).read_text())


def conf_line(name: str) -> RegisterLine:
    return parse_register_line((BINFMT_D / f"{name}.conf").read_text())


def elf_header(ei_class: int, ei_data: int, machine: int) -> bytes:
    e_machine = machine.to_bytes(2, "little" if ei_data == 1 else "big")
    return b"\x7fELF" + bytes([ei_class, ei_data, 1]) + bytes(9) + b"\x02\x00" + e_machine


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qemu-aarch64", "linux/arm64"),
        ("qemu-arm", "linux/arm/v7"),
        ("qemu-riscv64", "linux/riscv64"),
        ("qemu-s390x", "linux/s390x"),
        ("qemu-ppc64le", "linux/ppc64le"),
        ("qemu-mips64el", "linux/mips64le"),
        ("qemu-loongarch64", "linux/loong64"),
        ("python3.11", None),
        ("DOSWin", None),
    ],
)
def test_handler_platform_comes_from_its_elf_magic(name: str, expected: str | None) -> None:
    platform = fixture_handler(name).platform
    assert (str(platform) if platform else None) == expected


def test_handler_platform_ignores_the_handler_name() -> None:
    riscv = fixture_handler("qemu-riscv64")
    misnamed = Handler("qemu-aarch64", True, riscv.interpreter, "F", magic=riscv.magic, mask=riscv.mask)
    assert misnamed.platform == RISCV64


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (elf_header(2, 1, 62), "linux/amd64"),
        (elf_header(1, 1, 3), "linux/386"),
        (elf_header(2, 2, 183), None),  # aarch64_be
        (elf_header(1, 2, 40), None),  # armeb
        (elf_header(2, 2, 21), None),  # big-endian ppc64
        (elf_header(1, 1, 243), None),  # riscv32
        (elf_header(1, 1, 62), None),  # x32
        (elf_header(2, 1, 2), None),  # sparc
        (elf_header(2, 1, 183)[:19], None),  # too short to hold e_machine
    ],
)
def test_elf_platform_honours_class_and_endianness(header: bytes, expected: str | None) -> None:
    platform = elf_platform(header)
    assert (str(platform) if platform else None) == expected


def test_elf_magic_at_an_offset_is_no_platform() -> None:
    assert elf_platform(elf_header(2, 1, 183), offset=4) is None


def test_parse_handler_reads_every_field() -> None:
    handler = fixture_handler("qemu-aarch64")
    assert handler == Handler(
        name="qemu-aarch64",
        enabled=True,
        interpreter="/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
        flags="POF",
        offset=0,
        magic=bytes.fromhex("7f454c460201010000000000000000000200b700"),
        mask=bytes.fromhex("ffffffffffffff00fffffffffffffffffeffffff"),
    )
    assert handler.fix_binary
    assert not handler.credentials


def test_parse_handler_reads_disabled_and_missing_flags() -> None:
    assert not fixture_handler("qemu-mips64el").enabled
    assert not fixture_handler("qemu-loongarch64").fix_binary
    assert fixture_handler("python3.11").flags == ""


def test_parse_handler_tolerates_extension_handlers() -> None:
    handler = fixture_handler("DOSWin")
    assert handler.extension == "exe"
    assert handler.magic == b""
    assert handler.platform is None


def test_credentials_flag_is_c() -> None:
    assert Handler("x", True, "/x", "POCF").credentials


def test_read_handlers_skips_register_and_status(proc: Path) -> None:
    names = [h.name for h in read_handlers(proc)]
    assert names == sorted(p.name for p in proc.iterdir() if p.name not in ("register", "status"))
    assert "qemu-aarch64" in names


def test_read_handlers_is_empty_when_binfmt_misc_is_not_mounted(tmp_path: Path) -> None:
    assert not is_mounted(tmp_path)
    assert read_handlers(tmp_path) == []
    assert read_handlers(tmp_path / "missing") == []
    assert emulated_platforms(tmp_path, host=AMD64) == frozenset()


def test_parse_register_line_decodes_hex_escapes() -> None:
    line = conf_line("qemu-aarch64")
    handler = fixture_handler("qemu-aarch64")
    assert (line.name, line.type, line.offset) == ("qemu-aarch64", "M", 0)
    assert (line.magic, line.mask) == (handler.magic, handler.mask)
    assert line.interpreter == handler.interpreter
    assert line.flags == "OPF"
    assert line.platform == ARM64


def test_parse_register_line_keeps_unescaped_characters() -> None:
    assert conf_line("qemu-loongarch64").magic.startswith(b"\x7fELF\x02\x01")
    python = conf_line("python3.11")
    assert (python.magic, python.mask, python.flags) == (b"\xa7\x0d\x0d\x0a", b"", "")
    assert python.platform is None


def test_parse_register_line_accepts_extension_type_and_other_delimiters() -> None:
    line = parse_register_line("|DOSWin|E||exe||/usr/bin/wine|")
    assert (line.type, line.magic, line.interpreter) == ("E", b"exe", "/usr/bin/wine")
    assert str(line) == ":DOSWin:E::exe::/usr/bin/wine:"


@pytest.mark.parametrize("conf", sorted(p.name for p in BINFMT_D.iterdir()))
def test_register_line_round_trips(conf: str) -> None:
    line = parse_register_line((BINFMT_D / conf).read_text())
    assert parse_register_line(str(line)) == line


@pytest.mark.parametrize("text", ["", "qemu-aarch64", ":name:M::magic::/interp", ":name:X::m::/i:F"])
def test_parse_register_line_rejects_malformed_lines(text: str) -> None:
    with pytest.raises(ImgfrontError, match="invalid binfmt_misc register line"):
        parse_register_line(text)


def test_emulated_platforms_needs_an_enabled_handler_with_f(proc: Path) -> None:
    assert emulated_platforms(proc, host=AMD64) == {
        ARM64,
        Platform.parse("linux/arm/v7"),
        RISCV64,
        Platform.parse("linux/s390x"),
        Platform.parse("linux/ppc64le"),
    }


def test_emulated_platforms_leaves_out_the_host(proc: Path) -> None:
    emulated = emulated_platforms(proc, host=ARM64)
    assert ARM64 not in emulated
    assert RISCV64 in emulated


def test_emulated_platforms_does_not_need_the_interpreter_on_the_host(proc: Path) -> None:
    # An F handler registered from inside a container (e.g. tonistiigi/binfmt) names a path only it had.
    text = (proc / "qemu-riscv64").read_text().replace("/usr/libexec/qemu-binfmt/", "/nonexistent/")
    (proc / "qemu-riscv64").write_text(text)
    assert RISCV64 in emulated_platforms(proc, host=AMD64)


def test_status_says_why_a_handler_is_unusable(proc: Path) -> None:
    by_name = {s.handler.name: s for s in status(proc, host=AMD64)}
    assert by_name["qemu-aarch64"].usable_in_containers
    assert by_name["qemu-aarch64"].problem is None
    assert by_name["qemu-mips64el"].problem == "disabled"
    assert not by_name["qemu-loongarch64"].usable_in_containers
    assert "F flag" in (by_name["qemu-loongarch64"].problem or "")
    assert by_name["python3.11"].platform is None
    assert not by_name["qemu-aarch64"].native
    assert {s.handler.name for s in status(proc, host=ARM64) if s.native} == {"qemu-aarch64"}


def test_status_notes_a_missing_interpreter_of_a_handler_without_f(tmp_path: Path, empty_proc: Path) -> None:
    text = (FIXTURES / "proc" / "qemu-loongarch64").read_text()
    (empty_proc / "qemu-loongarch64").write_text(text.replace("/usr/libexec/qemu-binfmt", os.fspath(tmp_path)))
    [entry] = status(empty_proc, host=AMD64)
    assert not entry.interpreter_found
    assert entry.problem == f"interpreter {tmp_path}/loongarch64-binfmt-P not found"


def test_install_writes_the_conf_line_to_register(empty_proc: Path, as_root: None) -> None:
    results = install([RISCV64], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64)
    assert [(r.platform, r.handler, r.action) for r in results] == [(RISCV64, "qemu-riscv64", Action.REGISTERED)]
    written = (empty_proc / "register").read_text()
    assert parse_register_line(written) == conf_line("qemu-riscv64")
    assert written.startswith(":qemu-riscv64:M::\\x7f\\x45\\x4c\\x46")
    assert written.endswith(":/usr/libexec/qemu-binfmt/riscv64-binfmt-P:OPF")


def test_install_adds_f_when_the_conf_lacks_it(tmp_path: Path, empty_proc: Path, as_root: None) -> None:
    binfmt_d = tmp_path / "binfmt.d"
    binfmt_d.mkdir()
    conf = (BINFMT_D / "qemu-riscv64.conf").read_text().replace(":OPF", ":OP")
    (binfmt_d / "qemu-riscv64.conf").write_text(conf)
    install([RISCV64], binfmt_d=binfmt_d, root=empty_proc, host=AMD64)
    assert parse_register_line((empty_proc / "register").read_text()).flags == "OPF"


def test_install_skips_handlers_already_present_without_needing_root(proc: Path, as_user: None) -> None:
    results = install([ARM64, Platform.parse("linux/arm/v6")], binfmt_d=BINFMT_D, root=proc, host=AMD64)
    assert [(r.handler, r.action) for r in results] == [
        ("qemu-aarch64", Action.ALREADY_PRESENT),
        ("qemu-arm", Action.ALREADY_PRESENT),
    ]
    assert (proc / "register").read_text() == ""


def test_install_reports_the_host_platform_as_native(empty_proc: Path, as_user: None) -> None:
    [result] = install([AMD64], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64)
    assert result.action is Action.NATIVE


def test_install_says_native_only_for_a_variant_the_cpu_runs(empty_proc: Path, as_user: None) -> None:
    v2, v3, v4 = (Platform.parse(f"linux/amd64/{v}") for v in ("v2", "v3", "v4"))
    cpus = (AMD64, v2, v3)
    [result] = install([v3], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64, cpus=cpus)
    assert result.action is Action.NATIVE
    with pytest.raises(UsageError, match="this host's CPU runs linux/amd64/v3 at most") as e:
        install([v4], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64, cpus=cpus)
    assert e.value.exit_code == 2
    assert (empty_proc / "register").read_text() == ""


def test_install_re_registers_a_handler_without_f(proc: Path, as_root: None) -> None:
    [result] = install([LOONG64], binfmt_d=BINFMT_D, root=proc, host=AMD64)
    assert (result.handler, result.action) == ("qemu-loongarch64", Action.RE_REGISTERED)
    assert (proc / "qemu-loongarch64").read_text() == "-1"
    assert parse_register_line((proc / "register").read_text()) == conf_line("qemu-loongarch64")


def test_install_re_registers_a_disabled_handler(proc: Path, as_root: None) -> None:
    [result] = install([MIPS64LE], binfmt_d=BINFMT_D, root=proc, host=AMD64)
    assert result.action is Action.RE_REGISTERED
    assert (proc / "qemu-mips64el").read_text() == "-1"


def test_install_refuses_non_root_with_the_command_to_run(empty_proc: Path, as_user: None) -> None:
    with pytest.raises(ImgfrontError, match="needs root") as caught:
        install([RISCV64, LOONG64], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64)
    assert caught.value.hint == "sudo imgfront emulation install --platform linux/riscv64,linux/loong64"
    assert (empty_proc / "register").read_text() == ""


def test_install_without_qemu_user_static_hints_the_package(tmp_path: Path, empty_proc: Path, as_root: None) -> None:
    with pytest.raises(ImgfrontError, match=r"qemu-riscv64\.conf does not exist") as caught:
        install([RISCV64], binfmt_d=tmp_path, root=empty_proc, host=AMD64)
    assert caught.value.hint == "apt-get install qemu-user-static"


def test_install_without_a_conf_for_that_arch_says_qemu_has_none(empty_proc: Path, as_root: None) -> None:
    with pytest.raises(ImgfrontError) as caught:
        install([Platform.parse("linux/386")], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64)
    assert caught.value.hint == "qemu-user-static has no handler for 386 on this host"


def test_install_checks_every_conf_before_writing(empty_proc: Path, as_root: None) -> None:
    with pytest.raises(ImgfrontError):
        install([RISCV64, Platform.parse("linux/386")], binfmt_d=BINFMT_D, root=empty_proc, host=AMD64)
    assert (empty_proc / "register").read_text() == ""


def mock_command(bin_dir: Path, name: str, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_install_mounts_binfmt_misc_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_root: None) -> None:
    log = tmp_path / "mount.log"
    mock_command(tmp_path / "bin", "mount", f'echo "$@" > {log}\n: > "$5/register"\n', monkeypatch)
    root = tmp_path / "binfmt_misc"
    root.mkdir()
    install([RISCV64], binfmt_d=BINFMT_D, root=root, host=AMD64)
    assert log.read_text() == f"-t binfmt_misc binfmt_misc {root}\n"
    assert parse_register_line((root / "register").read_text()).name == "qemu-riscv64"


def test_install_reports_a_failed_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_root: None) -> None:
    mock_command(tmp_path / "bin", "mount", 'echo "mount: permission denied" >&2\nexit 32\n', monkeypatch)
    with pytest.raises(ImgfrontError, match=r"could not mount binfmt_misc: mount -t .*: permission denied"):
        install([RISCV64], binfmt_d=BINFMT_D, root=tmp_path, host=AMD64)


def test_fix_command_uses_sudo_only_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    platforms = [RISCV64, Platform.parse("linux/s390x"), RISCV64]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert fix_command(platforms) == "sudo imgfront emulation install --platform linux/riscv64,linux/s390x"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert fix_command(platforms) == "imgfront emulation install --platform linux/riscv64,linux/s390x"


def test_installable_platforms_are_the_foreign_ones_with_a_conf() -> None:
    assert [str(p) for p in installable_platforms(BINFMT_D, host=AMD64)] == [
        "linux/arm64",
        "linux/arm/v7",
        "linux/ppc64le",
        "linux/s390x",
        "linux/riscv64",
        "linux/mips64le",
        "linux/loong64",
    ]
    assert ARM64 not in installable_platforms(BINFMT_D, host=ARM64)


def test_caveats_are_three_single_lines() -> None:
    assert len(CAVEATS) == 3
    assert all(c and "\n" not in c for c in CAVEATS)


@pytest.mark.slow
def test_install_on_this_host_is_idempotent() -> None:
    install([ARM64])
    [result] = install([ARM64])
    assert (result.handler, result.action) == ("qemu-aarch64", Action.ALREADY_PRESENT)
    assert ARM64 in emulated_platforms()


_IN_NAMESPACE = """
import json, sys
from pathlib import Path
from imgfront.emulation import install, read_handlers
from imgfront.platforms import Platform

root = Path(sys.argv[1])
actions = [r.action.value for r in install([Platform.parse("linux/riscv64")], root=root)]
line = Path("/usr/lib/binfmt.d/qemu-loongarch64.conf").read_text().strip()
(root / "register").write_text(line.removesuffix("F"))
actions += [r.action.value for r in install([Platform.parse("linux/loong64")], root=root)]
actions += [r.action.value for r in install([Platform.parse("linux/riscv64")], root=root)]
print(json.dumps({"actions": actions, "flags": {h.name: h.flags for h in read_handlers(root)}}))
"""


@pytest.mark.slow
def test_install_mounts_and_registers_in_a_private_binfmt_misc(tmp_path: Path) -> None:
    # Since Linux 6.7 each user namespace can mount its own binfmt_misc, so this leaves the host's alone.
    root = tmp_path / "binfmt_misc"
    root.mkdir()
    command = ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", _IN_NAMESPACE]
    env = {**os.environ, "PYTHONPATH": os.fspath(Path(__file__).parents[2])}
    done = subprocess.run([*command, os.fspath(root)], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["actions"] == ["registered", "re-registered", "already-present"]
    assert out["flags"] == {"qemu-loongarch64": "POF", "qemu-riscv64": "POF"}


def test_working_handler_is_an_enabled_one_with_flag_f_for_the_platform(proc: Path) -> None:
    assert working_handler(ARM64, proc) == proc / "qemu-aarch64"
    assert working_handler(Platform.parse("linux/loong64"), proc) is None  # registered without F
    assert working_handler(Platform.parse("linux/mips64le"), proc) is None  # disabled
    (proc / "status").write_text("disabled\n")
    assert working_handler(ARM64, proc) is None  # binfmt_misc itself switched off
    assert working_handler(ARM64, proc / "missing") is None
