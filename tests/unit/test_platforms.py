"""Platform parsing and normalisation: pure logic."""

from pathlib import Path

import pytest

from imgfront.errors import UsageError
from imgfront.platforms import Arch, Platform, host_platform, host_platforms, parse_platforms, x86_64_level


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/arm64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("arm64", "linux/arm64"),
        ("LINUX/ARM64", "linux/arm64"),
        (" linux/s390x ", "linux/s390x"),
    ],
)
def test_platform_normalises(text: str, expected: str) -> None:
    assert str(Platform.parse(text)) == expected


def test_arm64_and_arm64_v8_are_equal() -> None:
    assert Platform.parse("linux/arm64") == Platform.parse("linux/arm64/v8")
    assert hash(Platform.parse("linux/arm64")) == hash(Platform.parse("linux/arm64/v8"))


def test_local_means_this_host() -> None:
    assert Platform.parse("local") == host_platform()


@pytest.mark.parametrize("text", ["linux/sparc99", "windows/amd64", "linux/arm64/v7", "a/b/c/d", "", "linux/"])
def test_unknown_platform_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as info:
        Platform.parse(text)
    assert "platform" in info.value.message
    assert "\n" not in info.value.message


def test_platform_list_is_comma_separated_repeatable_and_deduplicated() -> None:
    got = parse_platforms(["linux/amd64,linux/arm64", "linux/arm64/v8", "linux/arm"])
    assert [str(p) for p in got] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def test_oci_form_writes_the_arm64_variant_as_buildx_does() -> None:
    assert Platform.parse("linux/arm64").to_oci() == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert Platform.parse("linux/amd64").to_oci() == {"os": "linux", "architecture": "amd64"}


def test_build_args_follow_buildkit() -> None:
    args = Platform.parse("linux/arm/v7").build_args("TARGET")
    assert args == {"TARGETPLATFORM": "linux/arm/v7", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"}
    assert Platform.parse("linux/arm64").build_args("BUILD")["BUILDVARIANT"] == ""


def test_image_config_matching_ignores_default_variant() -> None:
    arm64 = Platform.parse("linux/arm64")
    assert arm64.matches_image("linux", "arm64", None)
    assert arm64.matches_image("linux", "arm64", "v8")
    assert not arm64.matches_image("linux", "amd64", None)
    assert not arm64.matches_image("", "", None)


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", Arch.AMD64), ("aarch64", Arch.ARM64), ("armv7l", Arch.ARM)])
def test_host_platform_from_uname(machine: str, arch: Arch) -> None:
    assert host_platform(machine).arch is arch


def test_arch_names_for_qemu_and_uname() -> None:
    assert Arch.ARM64.to_qemu() == "aarch64"
    assert Arch.ARM.to_uname() == "armv7l"
    assert Arch.from_name("x86_64") is Arch.AMD64


def test_platforms_sort_by_os_arch_and_variant():
    platforms = [Platform.parse(p) for p in ("linux/s390x", "linux/arm/v6", "linux/amd64", "linux/arm/v7")]
    assert [str(p) for p in sorted(platforms)] == ["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/s390x"]


@pytest.mark.parametrize("value", ["", ",", " ", "linux/amd64,", ",linux/arm64", "linux/amd64,,linux/arm64"])
def test_an_empty_platform_is_an_error_not_this_hosts(value: str) -> None:
    with pytest.raises(UsageError, match="empty platform in"):
        parse_platforms([value])


V2_FLAGS = "fpu sse2 cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3"
V3_FLAGS = V2_FLAGS + " avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"
V4_FLAGS = V3_FLAGS + " avx512f avx512bw avx512cd avx512dq avx512vl"


@pytest.mark.parametrize(("flags", "level"), [("fpu sse2", 1), (V2_FLAGS, 2), (V3_FLAGS, 3), (V4_FLAGS, 4)])
def test_x86_64_level_follows_the_psabi(flags: str, level: int) -> None:
    assert x86_64_level(flags.split()) == level


def test_host_platforms_are_every_level_the_cpu_runs(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {V3_FLAGS}\n\nprocessor\t: 1\nflags\t\t: {V3_FLAGS}\n")
    assert [str(p) for p in host_platforms("x86_64", cpuinfo)] == ["linux/amd64", "linux/amd64/v2", "linux/amd64/v3"]
    assert host_platforms("aarch64", cpuinfo) == (Platform.parse("linux/arm64"),)


def test_a_lower_variant_runs_on_a_higher_cpu_of_its_architecture_only() -> None:
    v3 = Platform.parse("linux/amd64/v3")
    assert Platform.parse("linux/amd64/v2").runs_on(v3) and Platform.parse("linux/amd64").runs_on(v3)
    assert not Platform.parse("linux/amd64/v4").runs_on(v3)
    assert Platform.parse("linux/arm/v6").runs_on(Platform.parse("linux/arm/v7"))
    assert not Platform.parse("linux/arm64").runs_on(v3)


def test_an_amd64_image_without_a_variant_matches_the_level_asked_for() -> None:
    """podman 4.3 writes no variant into amd64 image configs."""
    assert Platform.parse("linux/amd64/v2").matches_image("linux", "amd64", None)
    assert not Platform.parse("linux/amd64/v2").matches_image("linux", "amd64", "v3")
    assert not Platform.parse("linux/arm/v6").matches_image("linux", "arm", None)
