"""`imgfront build` against a real podman service, with storage isolated from the user's store."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE, start_two_platform_build

from imgfront.emulation.qemu import emulated_platforms
from imgfront.platforms import Platform

pytestmark = pytest.mark.slow

BASE = BUSYBOX_CONTAINERFILE


def image_ids(node) -> set[str]:
    """Every image in the node's storage; read from c/storage because podman 4.3 cannot list with lists present."""
    graphroot = node.podman("info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
    driver = node.podman("info", "--format", "{{.Store.GraphDriverName}}").stdout.strip()
    images = Path(graphroot) / f"{driver}-images" / "images.json"
    return {i["id"] for i in json.loads(images.read_text())} if images.exists() else set()


def list_digest(node, name: str) -> str:
    return node.podman("manifest", "inspect", name).stdout


def test_two_platform_build_makes_one_list_and_arm64_instance_runs(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    ctx = make_context(BASE + 'RUN uname -m > /built-on\nCMD ["uname", "-m"]\n')
    meta, iid = tmp_path / "meta.json", tmp_path / "iid"
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "localhost/two:1",
            "-t",
            "two:extra",
            "--progress",
            "plain",
            "--metadata-file",
            str(meta),
            "--iidfile",
            str(iid),
            str(ctx),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert "[linux/arm64@local]" in result.stderr

    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/two:1").stdout)
    platforms = sorted((m["platform"]["architecture"], m["platform"].get("variant", "")) for m in listed["manifests"])
    assert platforms == [("amd64", ""), ("arm64", "v8")]
    assert podman_node.podman("run", "--rm", "--platform", "linux/arm64", "localhost/two:1").stdout.strip() == "aarch64"
    assert (
        podman_node.podman("run", "--rm", "--platform", "linux/amd64", "localhost/two:extra").stdout.strip() == "x86_64"
    )

    data = json.loads(meta.read_text())
    assert data["image.name"] == "localhost/two:1,localhost/two:extra"
    assert data["containerimage.digest"].startswith("sha256:")
    assert data["containerimage.descriptor"]["digest"] == data["containerimage.digest"]
    assert sorted(b["platform"] for b in data["imgfront.builds"]) == ["linux/amd64", "linux/arm64"]
    assert {m["digest"] for m in listed["manifests"]} == {b["digest"] for b in data["imgfront.builds"]}
    assert iid.read_text().startswith("sha256:")


def test_automatic_build_args_are_the_same_on_every_platform(podman_node, make_context, run_imgfront, emulation_ready):
    args = ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH"]
    ctx = make_context(
        BASE + "".join(f"ARG {a}\n" for a in args) + "RUN echo " + " ".join(f"${a}" for a in args) + " > /args\n"
    )
    result = run_imgfront(["build", "--platform", "linux/arm64,linux/amd64", "-t", "args:1", str(ctx)], podman_node.env)
    assert result.returncode == 0, result.stderr
    out = podman_node.podman("run", "--rm", "--platform", "linux/arm64", "localhost/args:1", "cat", "/args").stdout
    host = Platform.parse("local")
    assert out.split() == ["linux/arm64", "linux", "arm64", str(host), "linux", host.arch.value]


def test_failed_platform_keeps_previous_list(podman_node, make_context, run_imgfront, emulation_ready):
    good = make_context(BASE + "RUN echo one > /version\n")
    assert (
        run_imgfront(
            ["build", "--platform", "linux/amd64,linux/arm64", "-t", "keep:1", str(good)], podman_node.env
        ).returncode
        == 0
    )
    before = list_digest(podman_node, "localhost/keep:1")

    # arm64 fails after amd64 has finished, so the amd64 image exists and must be removed again.
    bad = make_context(
        BASE
        + 'RUN echo two > /version\nRUN if [ "$(uname -m)" = aarch64 ]; then sleep 3; echo broken >&2; exit 3; fi\n'
    )
    result = run_imgfront(
        ["build", "--platform", "linux/amd64,linux/arm64", "-t", "keep:1", "--progress", "plain", str(bad)],
        podman_node.env,
    )
    assert result.returncode == 1
    assert "build failed for linux/arm64" in result.stderr
    assert "broken" in result.stderr  # the tail of the failed platform's log
    assert "Traceback" not in result.stderr
    assert list_digest(podman_node, "localhost/keep:1") == before
    built = [
        line.rsplit(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[linux/amd64@local] done")
    ]
    assert built, result.stderr
    assert podman_node.podman("image", "exists", built[0], check=False).returncode == 1


def test_keep_failed_keeps_the_images_that_built(podman_node, make_context, run_imgfront, emulation_ready):
    bad = make_context(BASE + 'RUN if [ "$(uname -m)" = aarch64 ]; then sleep 3; exit 3; fi\n')
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "kept:1",
            "--keep-failed",
            "--progress",
            "plain",
            str(bad),
        ],
        podman_node.env,
    )
    assert result.returncode == 1
    built = [
        line.rsplit(": ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[linux/amd64@local] done")
    ]
    assert built and podman_node.podman("image", "exists", built[0], check=False).returncode == 0
    assert podman_node.podman("manifest", "exists", "localhost/kept:1", check=False).returncode != 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_interrupted_build_on_the_private_service_leaves_nothing_behind(
    host_node, make_context, run_imgfront, emulation_ready
):
    """Ctrl-C: builds cancelled, built images removed, the private service stopped, exit 130.

    The private service is the host's podman, whatever podman_node is.
    """
    podman_node = host_node
    prefix = BASE + "RUN echo cached > /c\n"
    ctx = make_context(prefix + "RUN sleep 60\n")
    # Warm the cache for everything before the slow step, so any image left afterwards is a leak. Twice: podman
    # 4.3 may store a step of two platforms built at once twice, and miss the cache once on the next build.
    warm = make_context(prefix)
    for _ in range(2):
        warmed = run_imgfront(["build", "--platform", "linux/amd64,linux/arm64", "-t", "intr:1", warm], podman_node.env)
        assert warmed.returncode == 0, warmed.stderr
    before_list = list_digest(podman_node, "localhost/intr:1")
    before_images = image_ids(podman_node)

    env = {k: v for k, v in podman_node.env.items() if k != "CONTAINER_HOST"}  # imgfront starts its own service
    proc, seen = start_two_platform_build(env, ctx, "intr:1", "RUN sleep 60")
    services = [p for p in _children(proc.pid) if b"system\0service" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert services, "".join(seen)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + err
    assert "interrupted" in err and "Traceback" not in err
    assert all(not Path(f"/proc/{pid}").exists() for pid in services)
    assert podman_node.podman("ps", "--all", "--external", "--quiet").stdout.strip() == ""
    assert image_ids(podman_node) == before_images
    assert list_digest(podman_node, "localhost/intr:1") == before_list


def test_containerignore_is_honoured(podman_node, make_context, run_imgfront):
    ctx = make_context(
        BASE + "COPY . /ctx/\nRUN test -e /ctx/kept.txt && test ! -e /ctx/secret.txt && test ! -e /ctx/logs/a.log\n",
        files={".containerignore": "secret.txt\nlogs/**\n", "secret.txt": "s3cret", "kept.txt": "k", "logs/a.log": "x"},
    )
    result = run_imgfront(["build", "-t", "ignored:1", str(ctx)], podman_node.env)
    assert result.returncode == 0, result.stderr


def test_scratch_stage_cached_for_one_platform_is_not_taken_for_another(podman_node, make_context, run_imgfront):
    """Podman 4.3's layer cache ignores the platform of FROM scratch; imgfront rebuilds such a platform."""
    ctx = make_context("FROM scratch\nCOPY kept.txt /kept.txt\n", files={"kept.txt": "k"})
    for order in ("linux/arm64,linux/amd64", "linux/amd64,linux/arm64"):
        result = run_imgfront(
            ["build", "--platform", order, "--jobs", "1", "-t", "scratchy:1", "--progress", "plain", str(ctx)],
            podman_node.env,
        )
        assert result.returncode == 0, result.stderr
    arches = {m["platform"]["architecture"] for m in json.loads(list_digest(podman_node, "scratchy:1"))["manifests"]}
    assert arches == {"amd64", "arm64"}
    assert "building again without it" in result.stderr + result.stdout


def test_containerfile_outside_the_context_and_target(podman_node, make_context, run_imgfront, tmp_path):
    ctx = make_context("")
    outside = tmp_path / "elsewhere.Containerfile"
    outside.write_text(BASE.replace("FROM scratch", "FROM scratch AS base") + "FROM base AS final\nRUN exit 9\n")
    result = run_imgfront(
        ["build", "-f", str(outside), "--target", "base", "-t", "outside:1", str(ctx)], podman_node.env
    )
    assert result.returncode == 0, result.stderr


def test_labels_and_annotations_reach_every_instance(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    ctx = make_context(BASE)
    meta = tmp_path / "m.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "labelled:1",
            "--label",
            "org.example.team=a",
            "--annotation",
            "org.example.note=b",
            "--build-arg",
            "UNUSED=1",
            "--metadata-file",
            str(meta),
            str(ctx),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    for build in json.loads(meta.read_text())["imgfront.builds"]:
        labels = json.loads(
            podman_node.podman("image", "inspect", build["image_id"], "--format", "{{json .Labels}}").stdout
        )
        assert labels["org.example.team"] == "a"
        raw = json.loads(
            podman_node.run("skopeo", "inspect", "--raw", f"containers-storage:{build['image_id']}").stdout
        )
        assert raw["annotations"]["org.example.note"] == "b"


def test_progress_json_is_one_event_per_line(podman_node, make_context, run_imgfront):
    result = run_imgfront(["build", "-t", "json:1", "--progress", "json", str(make_context(BASE))], podman_node.env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and "step" in kinds and kinds[-1] == "summary"
    assert events[-1]["builds"][0]["digest"].startswith("sha256:")


def test_unbuildable_platform_fails_before_building_with_the_fix(podman_node, make_context, run_imgfront):
    candidates = [Platform.parse(p) for p in ("linux/s390x", "linux/ppc64le", "linux/mips64le", "linux/loong64")]
    missing = next(p for p in candidates if p not in emulated_platforms())
    result = run_imgfront(
        ["build", "--platform", f"linux/amd64,{missing}", "-t", "nope:1", str(make_context(BASE))], podman_node.env
    )
    assert result.returncode == 2
    assert f"imgfront emulation install --platform {missing}" in result.stderr
    assert "STEP" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["build", "--platform", "linux/sparc99", "."], 2, "invalid platform 'linux/sparc99'"),
        (["build", "-t", "Bad:Tag!", "."], 2, "invalid tag 'Tag!'"),
        (["build", "--progress", "fancy", "."], 2, "fancy"),
        (["build", "--label", "novalue", "."], 2, "invalid label"),
        (["build", "--pull=sometimes", "."], 2, "invalid pull policy"),
        (["build", "/nonexistent/context"], 2, "context folder /nonexistent/context does not exist"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(podman_node, run_imgfront, args, code, text):
    result = run_imgfront(args, podman_node.env)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if not line.startswith("hint:")]) == 1


def test_unreachable_engine_is_one_line_and_debug_shows_traceback(run_imgfront, make_context, podman_node):
    env = {**podman_node.env, "CONTAINER_HOST": "unix:///nonexistent/podman.sock"}
    result = run_imgfront(["build", str(make_context(BASE))], env)
    assert result.returncode == 1
    assert "no podman service answers at unix:///nonexistent/podman.sock" in result.stderr
    assert "Traceback" not in result.stderr
    debug = run_imgfront(["--debug", "build", str(make_context(BASE))], env)
    assert "Traceback" in debug.stderr


def test_build_without_tag_leaves_untagged_image(podman_node, make_context, run_imgfront, tmp_path):
    meta = tmp_path / "m.json"
    result = run_imgfront(["build", "--metadata-file", str(meta), str(make_context(BASE))], podman_node.env)
    assert result.returncode == 0, result.stderr
    build = json.loads(meta.read_text())["imgfront.builds"][0]
    assert podman_node.podman("image", "exists", build["image_id"], check=False).returncode == 0


def test_doctor_checks_engine_and_emulation(podman_node, run_imgfront, emulation_ready):
    result = run_imgfront(["doctor"], podman_node.env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (
        "engine:",
        f"server: podman {podman_node.version}",
        "storage:",
        "mode:",
        "binfmt_misc:",
        "qemu caveat:",
    ):
        assert name in result.stdout
    assert "linux/arm64" in result.stdout


def test_doctor_exits_1_when_a_check_fails(podman_node, run_imgfront, tmp_path):
    result = run_imgfront(["doctor"], {**podman_node.env, "CONTAINER_HOST": f"unix://{tmp_path}/none.sock"})
    assert result.returncode == 1
    assert "[FAIL] engine:" in result.stdout


def test_emulation_status_shows_arm64(run_imgfront, emulation_ready):
    result = run_imgfront(["emulation", "status"], dict(os.environ))
    assert result.returncode == 0
    assert "linux/arm64" in result.stdout


def stored_digest(node, name: str) -> str:
    """The digest of what storage holds for `name`, by skopeo beside the node's podman (in its container, for 5.x)."""
    raw = subprocess.run(
        [*node.cli[:-1], "skopeo", "inspect", "--raw", f"containers-storage:{name}"],
        env=node.cli_env,
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_reported_list_digest_is_the_one_storage_holds(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    meta = tmp_path / "meta.json"
    ctx = make_context(BASE + "RUN echo digest > /digest\n")
    result = run_imgfront(
        ["build", "--platform", "linux/amd64,linux/arm64", "-t", "localhost/stored:1", "--metadata-file", meta, ctx],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(meta.read_text())
    stored = stored_digest(podman_node, "localhost/stored:1")
    assert data["containerimage.digest"] == stored
    descriptor = data["containerimage.descriptor"]
    assert descriptor["digest"] == stored
    # Both versions store an OCI index, whatever their API calls it.
    assert descriptor["mediaType"] == "application/vnd.oci.image.index.v1+json"
    raw = subprocess.run(
        [*podman_node.cli[:-1], "skopeo", "inspect", "--raw", "containers-storage:localhost/stored:1"],
        env=podman_node.cli_env,
        capture_output=True,
        check=True,
    ).stdout
    assert descriptor["size"] == len(raw)
    for build in data["imgfront.builds"]:
        assert stored_digest(podman_node, build["image_id"]) == build["digest"]
