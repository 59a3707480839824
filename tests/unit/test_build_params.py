"""Which build API parameters a server's version lacks, and doctor's lines about them and about cgroups."""

from imgfront.cli.doctor import build_params_check, cgroups_check
from imgfront.engines.build_params import missing_build_params, version_tuple


def test_versions_are_read_by_major_and_minor() -> None:
    assert version_tuple("4.3.1") == (4, 3)
    assert version_tuple("v5.6.0-dev") == (5, 6)
    assert version_tuple("unknown") == (0, 0)


def test_each_release_lacks_what_came_after_it() -> None:
    names = ["volume", "retry", "sourcedateepoch", "rewritetimestamp"]
    assert [p.param for p in missing_build_params("4.3.1")] == names
    assert [p.param for p in missing_build_params("4.9.4")] == names[1:]  # volume came in 4.4
    assert [p.param for p in missing_build_params("5.2.0")] == names[1:]  # retry in 5.3
    assert [p.param for p in missing_build_params("5.4.2")] == ["sourcedateepoch", "rewritetimestamp"]
    assert missing_build_params("5.6.0") == []


def test_doctor_names_the_missing_options_with_their_version() -> None:
    line = str(build_params_check("5.4.2", "5.4.2"))
    assert line.startswith("[warn] build options: API 5.4.2 has no sourcedateepoch (--source-date-epoch, 5.6+)")
    assert "[ok  ]" in str(build_params_check("5.6.1", "5.6.1"))


def test_doctor_warns_about_cgroups_v1_with_the_podman_version() -> None:
    check = cgroups_check("5.4.2", "v1 (hybrid)")
    assert check.warning and not check.ok
    assert str(check).startswith("[warn] cgroups: v1 (hybrid) with podman 5.4.2: podman 5 deprecates cgroups v1")
    assert cgroups_check("5.4.2", "v2").ok
