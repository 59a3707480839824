"""Reproducible mode (issue 15): the same sources and SOURCE_DATE_EPOCH give the same digests, on every engine.

The Containerfile is Docker's form of the busybox base (a FROM scratch stage per platform beginning with COPY),
so that one file builds on podman 4.3, podman 5.x and Docker 20.10 alike. The issue asks for builds "at least a
minute apart"; here they are a few seconds apart, which already puts every step's files at another second.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from conftest import DOCKER_BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

EPOCH = "1700000000"
BOTH = "linux/amd64,linux/arm64"
APP = DOCKER_BUSYBOX_CONTAINERFILE + (
    'COPY data.txt /data.txt\nRUN uname -m > /built-on\nLABEL org.example.app=repro\nCMD ["cat", "/built-on"]\n'
)
FILES = {"data.txt": "some data\n"}
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def build(run_imgfront, env, context: Path, meta: Path, *args: str, platforms: str = BOTH) -> dict:
    result = run_imgfront(
        [
            "build",
            "--platform",
            platforms,
            "--no-cache",
            "--progress",
            "plain",
            "--metadata-file",
            meta,
            *args,
            context,
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(meta.read_text())


def digests(data: dict) -> dict[str, str]:
    return {b["platform"]: b["digest"] for b in data["imgfront.builds"]}


def test_two_no_cache_builds_give_the_same_digests_and_the_list_runs(
    podman_node, make_context, run_imgfront, emulation_ready, tmp_path
):
    context = make_context(APP, FILES)
    tag = f"localhost/repro-twice-{podman_node.major}:1"
    layout = tmp_path / "layout"
    first = build(
        run_imgfront,
        podman_node.env,
        context,
        tmp_path / "one.json",
        "--source-date-epoch",
        EPOCH,
        "-t",
        tag,
        "-o",
        "type=image",
        "-o",
        f"type=oci-layout,dest={layout}",
    )
    time.sleep(2)
    second = build(
        run_imgfront, podman_node.env, context, tmp_path / "two.json", "--source-date-epoch", EPOCH, "-t", tag
    )
    assert first["imgfront.source_date_epoch"] == int(EPOCH)
    assert digests(first) == digests(second)
    assert sorted(digests(first)) == sorted(MACHINES)
    assert first["containerimage.digest"] == second["containerimage.digest"]
    # The file output carries the normalised images, byte for byte.
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    listed = json.loads((layout / "blobs" / "sha256" / index.partition(":")[2]).read_text())["manifests"]
    assert {m["digest"] for m in listed} == set(digests(first).values())
    # What the user runs: each platform's normalised image by its id (podman 5 finds a list's untagged instance by
    # repo@digest only through the list), and the list by its tag.
    for made in first["imgfront.builds"]:
        ran = podman_node.podman("run", "--rm", "--platform", made["platform"], made["image_id"])
        assert ran.stdout.strip() == MACHINES[made["platform"]]
    for platform, machine in MACHINES.items():
        ran = podman_node.podman("run", "--rm", "--platform", platform, tag, "uname", "-m")
        assert ran.stdout.strip() == machine


def test_podman_4_podman_5_and_docker_give_the_same_digests(
    host_node, other_nodes, dockerd, make_context, run_imgfront, emulation_ready, tmp_path
):
    context = make_context(APP, FILES)
    other = other_nodes()
    assert other.major != host_node.major
    wheres = {
        f"podman{host_node.major}": [],
        f"podman{other.major}": ["--node", f"{other.url}?name=other", "--no-local"],
        "docker": ["--node", f"docker+{dockerd.url}", "--no-local"],
    }
    found = {}
    for name, where in wheres.items():
        tag = f"localhost/repro-engines-{name}:1"
        data = build(
            run_imgfront,
            host_node.env,
            context,
            tmp_path / f"{name}.json",
            "--source-date-epoch",
            EPOCH,
            "-t",
            tag,
            *where,
        )
        found[name] = digests(data)
        for platform, machine in MACHINES.items():
            ran = host_node.podman(
                "run", "--rm", "--platform", platform, f"repro-engines-{name}@{found[name][platform]}"
            )
            assert ran.stdout.strip() == machine
    first = next(iter(found.values()))
    assert all(d == first for d in found.values()), found


def test_a_changed_file_or_build_arg_changes_the_digest(host_node, make_context, run_imgfront, tmp_path):
    app = APP + "ARG FLAVOUR=plain\nRUN echo $FLAVOUR > /flavour\n"
    context = make_context(app, FILES)
    env, epoch = host_node.env, ("--source-date-epoch", EPOCH)

    def digest(name: str, *args: str) -> str:
        data = build(run_imgfront, env, context, tmp_path / f"{name}.json", *epoch, *args, platforms="linux/amd64")
        return digests(data)["linux/amd64"]

    plain = digest("plain")
    assert digest("again") == plain
    assert digest("arg", "--build-arg", "FLAVOUR=spicy") != plain
    (context / "data.txt").write_text("other data\n")
    assert digest("file") != plain


def test_without_an_epoch_two_builds_differ_and_diff_says_why(host_node, make_context, run_imgfront, tmp_path):
    context = make_context(APP, FILES)
    names = []
    for n in (1, 2):
        names.append(f"localhost/repro-none:{n}")
        build(run_imgfront, host_node.env, context, tmp_path / f"{n}.json", "-t", names[-1], platforms="linux/amd64")
        time.sleep(1.1)
    diff = run_imgfront(["diff", *names], host_node.env)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "created" in diff.stdout


def test_a_failed_reproducible_build_keeps_the_old_list_runnable(host_node, make_context, run_imgfront, tmp_path):
    tag = "localhost/repro-keep:1"
    context = make_context(APP, FILES)
    data = build(run_imgfront, host_node.env, context, tmp_path / "ok.json", "--source-date-epoch", EPOCH, "-t", tag)
    before = host_node.podman("manifest", "inspect", tag).stdout
    (context / "Containerfile").write_text(APP + "RUN exit 3\n")
    failed = run_imgfront(
        ["build", "--platform", BOTH, "--source-date-epoch", EPOCH, "-t", tag, context], host_node.env
    )
    assert failed.returncode == 1, failed.stderr
    assert host_node.podman("manifest", "inspect", tag).stdout == before
    for platform, machine in MACHINES.items():
        ran = host_node.podman("run", "--rm", "--platform", platform, tag, "uname", "-m")
        assert ran.stdout.strip() == machine
    assert data["containerimage.digest"]


def test_push_carries_the_normalised_digests(
    host_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    context = make_context(APP, FILES)
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    name = f"{registry.url}/repro/app:1"
    push = ("--push", "--tls-verify=false", "--authfile", str(authfile))
    data = build(
        run_imgfront, host_node.env, context, tmp_path / "m.json", "--source-date-epoch", EPOCH, "-t", name, *push
    )
    status, _, body = registry.get("/v2/repro/app/manifests/1")
    assert status == 200
    index = json.loads(body)
    pushed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
    assert pushed == digests(data)
    assert data["containerimage.digest"] == "sha256:" + hashlib.sha256(body).hexdigest()
    for digest in pushed.values():
        status, _, manifest = registry.get(f"/v2/repro/app/manifests/{digest}")
        assert status == 200 and "sha256:" + hashlib.sha256(manifest).hexdigest() == digest


def test_a_failed_reproducible_push_keeps_the_old_list_under_the_tag(
    host_node, readonly_registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    tag = f"{readonly_registry.url}/repro/keep:1"
    context = make_context(APP, FILES)
    build(run_imgfront, host_node.env, context, tmp_path / "ok.json", "--source-date-epoch", EPOCH, "-t", tag)
    before = host_node.podman("manifest", "inspect", tag).stdout
    (context / "data.txt").write_text("changed\n")
    authfile = readonly_registry.write_auth_file(tmp_path / "auth.json")
    push = ["--push", "--tls-verify=false", "--authfile", authfile]
    failed = run_imgfront(
        ["build", "--platform", BOTH, "--source-date-epoch", EPOCH, "-t", tag, *push, context], host_node.env
    )
    assert failed.returncode == 1, failed.stderr
    assert "the new list is kept as" in failed.stderr
    assert host_node.podman("manifest", "inspect", tag).stdout == before
    for platform, machine in MACHINES.items():
        ran = host_node.podman("run", "--rm", "--platform", platform, tag, "uname", "-m")
        assert ran.stdout.strip() == machine
