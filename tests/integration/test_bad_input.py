"""Bad input to `imgfront build` is one line (and a hint) and exit 2, before any build starts; and a platform
variant this host's CPU runs builds natively, against a real podman service."""

from __future__ import annotations

import json

import pytest
from conftest import BUSYBOX_CONTAINERFILE

from imgfront.platforms import Platform, host_platforms

pytestmark = pytest.mark.slow

DIGEST = "sha256:" + "ab" * 32


def one_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("hint:")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", ""], "imgfront: empty platform in ''"),
        (["--platform", ","], "imgfront: empty platform in ','"),
        (["--platform", "linux/amd64,"], "imgfront: empty platform in 'linux/amd64,'"),
        (["-t", "app:" + "t" * 129], "is 129 characters long; a tag is at most 128"),
        (["-t", "reg.example/" + "a" * 250], "is 262 characters long; a name with its registry is at most 255"),
        (["-t", f"reg.example/app@{DIGEST}"], "a tag cannot name a digest"),
    ],
)
def test_bad_platform_or_tag_is_one_line_naming_the_rule(podman_node, make_context, run_imgfront, args, message):
    result = run_imgfront(["build", *args, str(make_context(BUSYBOX_CONTAINERFILE))], podman_node.env)
    assert result.returncode == 2, result.stderr
    assert len(one_line(result.stderr)) == 1 and message in result.stderr
    assert "STEP" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ("missing", "imgfront: context folder {tmp}/missing does not exist"),
        ("Containerfile", "imgfront: {tmp}/Containerfile is a file, not a folder"),
        (  # git and http(s) URLs are fetched (test_context_sources.py); another scheme is refused by name
            "ftp://bot:token@example.com/app.tar",
            "imgfront: a build context from a ftp:// URL is not supported: ftp://bot:***@example.com/app.tar",
        ),
        ("-", "imgfront: a build context read from standard input ('-') is not supported"),
    ],
)
def test_a_context_that_is_no_folder_says_what_it_is(podman_node, run_imgfront, tmp_path, context, message):
    (tmp_path / "Containerfile").write_text(BUSYBOX_CONTAINERFILE)
    arg = context if "://" in context or context == "-" else f"{tmp_path}/{context}"
    result = run_imgfront(["build", "-t", "ctx:1", arg], podman_node.env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == [message.format(tmp=tmp_path)]
    assert "no Containerfile" not in result.stderr


def test_a_variant_this_cpu_runs_builds_natively_and_install_agrees(podman_node, make_context, run_imgfront, tmp_path):
    v2 = Platform.parse("linux/amd64/v2")
    install = run_imgfront(["emulation", "install", "--platform", str(v2)], podman_node.env)
    # A chain of layers of its own from the first step: podman 4.3's cache ignores the variant (docs/build.md), so
    # layers shared with other tests' plain amd64 builds would carry v2 into them, or theirs into this one.
    own_chain = BUSYBOX_CONTAINERFILE.replace("FROM scratch\n", "FROM scratch\nLABEL test=variant-v2\n", 1)
    context, meta = make_context(own_chain), tmp_path / "meta.json"
    build = run_imgfront(
        ["build", "--platform", str(v2), "-t", "localhost/variant:1", "--metadata-file", meta, context], podman_node.env
    )
    if v2 not in host_platforms():  # an x86-64 CPU older than 2009: both refuse, naming the CPU's level
        assert (install.returncode, build.returncode) == (2, 2)
        assert "this host's CPU runs linux/amd64 at most" in build.stderr
        return
    assert install.returncode == 0 and install.stdout.strip() == "linux/amd64/v2: native ()"
    assert build.returncode == 0, build.stderr
    assert "linux/amd64/v2 -> local (native)" in build.stderr + build.stdout
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/variant:1").stdout)
    assert [m["platform"].get("variant") for m in listed["manifests"]] == ["v2"]
    [built] = json.loads(meta.read_text())["imgfront.builds"]
    assert built["digest"] == listed["manifests"][0]["digest"]
    ran = podman_node.podman("run", "--rm", built["image_id"], "echo", "ran")  # by id: 4.3 and 5.x look names up apart
    assert ran.stdout.strip() == "ran"
