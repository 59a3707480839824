"""doctor against a real service of each podman: the cgroups warning and the build options its API lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_doctor_warns_about_cgroups_v1_and_names_the_missing_build_options(podman_node, run_imgfront):
    result = run_imgfront(["doctor"], podman_node.env)
    lines = result.stdout.splitlines()
    version = podman_node.version
    hybrid = Path("/sys/fs/cgroup/unified").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    assert hybrid, "this test expects this machine's hybrid cgroups (see ENVIRONMENT.md)"
    cgroups = next(ln for ln in lines if ln.startswith("[warn] cgroups: "))
    assert f"v1 (hybrid) with podman {version}: podman 5 deprecates cgroups v1" in cgroups
    options = next(ln for ln in lines if " build options: " in ln)
    assert options.startswith(f"[warn] build options: API {version} has no ")
    if podman_node.major >= 5:  # 4.4 added volume, 5.3 retry; 5.6 the timestamps
        assert "volume" not in options and "sourcedateepoch (--source-date-epoch, 5.6+)" in options
    else:
        assert "volume (--volume, 4.4+), retry (--retry, 5.3+)" in options
    assert result.returncode == 0, result.stdout + result.stderr  # warnings are not failures
