"""Pushing to a real registry (docker-registry on loopback, htpasswd auth): from here, from the nodes,
by digest and merged later, from Docker; logins, the auth files, and errors that name their cause."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE, DOCKER_BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

BASE = BUSYBOX_CONTAINERFILE
TWO = "linux/amd64,linux/arm64"


def assert_no_secret(secret: str, *texts: str, folder: Path | None = None, skip: tuple[Path, ...] = ()) -> None:
    for text in texts:
        assert secret not in text
    if folder is not None:
        for path in folder.rglob("*"):
            if path.is_file() and path not in skip:
                assert secret.encode() not in path.read_bytes(), path


def one_line_error(result) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("imgfront:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_login_push_list_and_every_instance_to_each_tag(
    podman_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    authfile, meta = tmp_path / "auth" / "auth.json", tmp_path / "meta.json"
    login = run_imgfront(
        ["login", registry.url, "-u", registry.user, "--password-stdin", "--tls-verify=false", "--authfile", authfile],
        podman_node.env,
        input=registry.password + "\n",
    )
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded!" in login.stdout
    assert oct(authfile.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(authfile.read_text())["auths"][registry.url]["auth"]
    assert base64.b64decode(stored).decode() == f"{registry.user}:{registry.password}"
    # Again without credentials: the stored ones still work, so they are kept.
    again = run_imgfront(["login", registry.url, "--tls-verify=false", "--authfile", authfile], podman_node.env)
    assert again.returncode == 0, again.stderr
    assert "Already logged in" in again.stdout
    nobody = run_imgfront(
        ["login", registry.url, "--tls-verify=false", "--authfile", authfile.with_name("none.json")], podman_node.env
    )
    assert nobody.returncode == 2
    assert "no user name given" in one_line_error(nobody)

    repo = f"{registry.url}/team/app"
    ctx = make_context(BASE + "RUN echo pushed > /pushed\n")
    result = run_imgfront(
        [
            "build",
            "--platform",
            TWO,
            "-t",
            f"{repo}:1",
            "-t",
            f"{repo}:latest",
            "--push",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "--metadata-file",
            meta,
            "--progress",
            "json",
            ctx,
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(meta.read_text())
    status, _, index = registry.manifest("team/app", "1")
    assert status == 200
    _, headers, _ = registry.get("/v2/team/app/manifests/1")
    assert headers["Docker-Content-Digest"] == data["containerimage.digest"]
    assert data["containerimage.descriptor"]["digest"] == data["containerimage.digest"]
    assert registry.manifest("team/app", "latest")[::2] == (status, index)
    in_registry = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert set(in_registry) == {"amd64", "arm64"}
    for build in data["imgfront.builds"]:
        arch = build["platform"].split("/")[1]
        assert build["pushed_digest"] == in_registry[arch]
        status, _, image = registry.manifest("team/app", in_registry[arch])
        assert status == 200
        for blob in [image["config"], *image["layers"]]:
            assert registry.get(f"/v2/team/app/blobs/{blob['digest']}")[0] == 200
    assert [p["name"] for p in data["imgfront.push"]] == [f"{repo}:1", f"{repo}:latest"]
    # The list stays in local storage as well.
    assert podman_node.podman("manifest", "inspect", f"{repo}:1").returncode == 0
    assert_no_secret(registry.password, login.stdout, login.stderr, result.stdout, result.stderr)
    assert_no_secret(registry.password, folder=tmp_path, skip=(authfile,))

    logout = run_imgfront(["logout", registry.url, "--authfile", authfile], podman_node.env)
    assert logout.returncode == 0, logout.stderr
    assert json.loads(authfile.read_text())["auths"] == {}


def test_credentials_come_from_registry_auth_file_then_docker_config(
    podman_node, registry, make_context, run_imgfront, tmp_path
):
    ctx = make_context(BASE)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    env = {**podman_node.env, "HOME": str(home), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    env.pop("REGISTRY_AUTH_FILE", None)
    env.pop("DOCKER_CONFIG", None)
    push = ["build", "-t", f"{registry.url}/creds/app:1", "--push", "--tls-verify=false", ctx]

    # Docker's config, the last place looked in.
    registry.write_auth_file(home / ".docker" / "config.json")
    result = run_imgfront(push, env)
    assert result.returncode == 0, result.stderr

    # REGISTRY_AUTH_FILE wins over the default files; a wrong password there is refused.
    bad = registry.write_auth_file(tmp_path / "bad.json", password="wrong-password-123")
    result = run_imgfront(push, {**env, "REGISTRY_AUTH_FILE": str(bad)})
    assert result.returncode == 1
    assert "authentication required" in one_line_error(result) or "unauthorized" in result.stderr
    assert "imgfront login" in result.stderr
    # And --authfile wins over REGISTRY_AUTH_FILE.
    good = registry.write_auth_file(tmp_path / "good.json")
    result = run_imgfront([*push[:-1], "--authfile", good, ctx], {**env, "REGISTRY_AUTH_FILE": str(bad)})
    assert result.returncode == 0, result.stderr


def test_bad_credentials_are_one_line_exit_1_and_never_shown(
    podman_node, registry, make_context, run_imgfront, tmp_path
):
    wrong = "Wr0ng-Secret-Pa55word"
    bad = registry.write_auth_file(tmp_path / "auth.json", password=wrong)
    ctx = make_context(BASE)
    for debug in ([], ["--debug"]):
        result = run_imgfront(
            [
                *debug,
                "build",
                "-t",
                f"{registry.url}/bad/app:1",
                "--push",
                "--tls-verify=false",
                "--authfile",
                bad,
                "--metadata-file",
                tmp_path / "meta.json",
                ctx,
            ],
            podman_node.env,
        )
        assert result.returncode == 1
        if not debug:
            assert "pushing" in one_line_error(result)
        assert_no_secret(wrong, result.stdout, result.stderr)
    assert not (tmp_path / "meta.json").exists()
    login = run_imgfront(
        [
            "login",
            registry.url,
            "-u",
            registry.user,
            "--password-stdin",
            "--tls-verify=false",
            "--authfile",
            tmp_path / "new.json",
        ],
        podman_node.env,
        input=wrong + "\n",
    )
    assert login.returncode == 1
    assert "credentials were refused" in one_line_error(login)
    assert not (tmp_path / "new.json").exists()
    assert_no_secret(wrong, login.stdout, login.stderr)


def test_registry_without_tls_needs_tls_verify_false(podman_node, registry, make_context, run_imgfront, tmp_path):
    result = run_imgfront(
        [
            "build",
            "-t",
            f"{registry.url}/tls/app:1",
            "--push",
            "--authfile",
            registry.write_auth_file(tmp_path / "auth.json"),
            make_context(BASE),
        ],
        podman_node.env,
    )
    assert result.returncode == 1
    one_line_error(result)
    assert "--tls-verify=false" in result.stderr


def test_refused_push_and_missing_repository_are_one_line_exit_1(
    podman_node, readonly_registry, make_context, run_imgfront, tmp_path
):
    authfile = readonly_registry.write_auth_file(tmp_path / "auth.json")
    result = run_imgfront(
        [
            "build",
            "-t",
            f"{readonly_registry.url}/ro/app:1",
            "--push",
            "--tls-verify=false",
            "--authfile",
            authfile,
            make_context(BASE),
        ],
        podman_node.env,
    )
    assert result.returncode == 1
    assert f"pushing {readonly_registry.url}/ro/app:1 from" in one_line_error(result)

    missing = run_imgfront(
        [
            "manifest",
            "create",
            f"{readonly_registry.url}/ro/app:1",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "--from",
            f"{readonly_registry.url}/nothing/here@sha256:{'0' * 64}",
        ],
        podman_node.env,
    )
    assert missing.returncode == 1
    assert "not found" in one_line_error(missing)


def test_push_from_nodes_brings_nothing_home(
    podman_node, extra_nodes, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    amd, arm = extra_nodes(), extra_nodes()
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--platform",
            TWO,
            "--no-local",
            "--node",
            f"{amd.url}?name=amd",
            "--node",
            f"{arm.url}?name=arm",
            "-t",
            f"{registry.url}/nodes/app:1",
            "--push",
            "--push-from-nodes",
            "--tls-verify=false",
            "--authfile",
            registry.write_auth_file(tmp_path / "auth.json"),
            "--metadata-file",
            meta,
            "--progress",
            "plain",
            make_context(BASE + "RUN echo from-nodes > /where\n"),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    assert "brought home" not in result.stderr
    data = json.loads(meta.read_text())
    assert data["imgfront.outputs"] == []
    status, _, index = registry.manifest("nodes/app", "1")
    assert status == 200
    assert registry.get("/v2/nodes/app/manifests/1")[1]["Docker-Content-Digest"] == data["containerimage.digest"]
    pushed = {b["platform"]: b["pushed_digest"] for b in data["imgfront.builds"]}
    assert {(m["platform"]["architecture"], m["digest"]) for m in index["manifests"]} == {
        ("amd64", pushed["linux/amd64"]),
        ("arm64", pushed["linux/arm64"]),
    }
    # Nothing was brought home: no list and no image here.
    assert podman_node.podman("manifest", "exists", f"{registry.url}/nodes/app:1", check=False).returncode != 0
    for build in data["imgfront.builds"]:
        assert podman_node.podman("image", "exists", build["image_id"], check=False).returncode != 0


def test_ci_matrix_push_by_digest_then_manifest_create(
    podman_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    ctx = make_context(BASE + "RUN uname -m > /arch\n")
    digests = []
    for platform in ("linux/amd64", "linux/arm64"):
        meta = tmp_path / f"{platform.replace('/', '_')}.json"
        result = run_imgfront(
            [
                "build",
                "--platform",
                platform,
                "-t",
                f"{registry.url}/matrix/app",
                "--push-by-digest",
                "--tls-verify=false",
                "--authfile",
                authfile,
                "--metadata-file",
                meta,
                ctx,
            ],
            podman_node.env,
        )
        assert result.returncode == 0, result.stderr
        data = json.loads(meta.read_text())
        digest = data["containerimage.digest"]
        assert digest == data["imgfront.builds"][0]["pushed_digest"]
        assert registry.manifest("matrix/app", digest)[0] == 200
        digests.append(digest)
    # By digest only: the repository has no tag.
    status, _, body = registry.get("/v2/matrix/app/tags/list")
    assert status == 404 or not json.loads(body).get("tags")

    meta = tmp_path / "merged.json"
    merged = run_imgfront(
        ["manifest", "create", f"{registry.url}/matrix/release:1", "--tag", f"{registry.url}/matrix/release:stable"]
        + [arg for d in digests for arg in ("--from", f"{registry.url}/matrix/app@{d}")]
        + ["--tls-verify=false", "--authfile", authfile, "--metadata-file", meta],
        podman_node.env,
    )
    assert merged.returncode == 0, merged.stderr
    index_digest = merged.stdout.strip()
    assert json.loads(meta.read_text())["containerimage.digest"] == index_digest
    for tag in ("1", "stable"):
        status, headers, body = registry.get(f"/v2/matrix/release/manifests/{tag}")
        assert status == 200 and headers["Docker-Content-Digest"] == index_digest
        index = json.loads(body)
        assert sorted(m["digest"] for m in index["manifests"]) == sorted(digests)
        assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    # The instances were mounted into the new repository, so the index there is whole.
    for d in digests:
        assert registry.manifest("matrix/release", d)[0] == 200

    # The same platform twice is refused before anything is written.
    twice = run_imgfront(
        [
            "manifest",
            "create",
            f"{registry.url}/matrix/release:twice",
            "--tls-verify=false",
            "--authfile",
            authfile,
            "--from",
            f"{registry.url}/matrix/app@{digests[0]}",
            "--from",
            f"{registry.url}/matrix/release:1",
        ],
        podman_node.env,
    )
    assert twice.returncode == 2
    assert "two images for" in one_line_error(twice)

    # A name in another registry is refused before any name is written.
    elsewhere = run_imgfront(
        [
            "manifest",
            "create",
            f"{registry.url}/matrix/never:1",
            "--tag",
            "elsewhere.example/matrix/never:1",
            "--from",
            f"{registry.url}/matrix/app@{digests[0]}",
            "--tls-verify=false",
            "--authfile",
            authfile,
        ],
        podman_node.env,
    )
    assert elsewhere.returncode == 2
    assert "in another registry" in one_line_error(elsewhere)
    assert registry.get("/v2/matrix/never/manifests/1")[0] == 404


def test_docker_engine_as_local_node_pushes_a_list(
    dockerd, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    meta = tmp_path / "meta.json"
    env = {**dockerd.env, "HOME": str(tmp_path)}
    result = run_imgfront(
        [
            "build",
            "--engine",
            "docker",
            "--platform",
            TWO,
            "-t",
            f"{registry.url}/docker/app:1",
            "--push",
            "--tls-verify=false",
            "--authfile",
            registry.write_auth_file(tmp_path / "auth.json"),
            "--metadata-file",
            meta,
            "--progress",
            "plain",
            "--output",
            f"type=oci-layout,dest={tmp_path / 'layout'}",
            make_context(DOCKER_BUSYBOX_CONTAINERFILE + "RUN echo docker > /engine\n"),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "cannot hold a list" in result.stderr
    # The file output is written from the Docker engine too, and skopeo reads both platforms from it.
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'layout'}"], capture_output=True, text=True, check=True
    )
    assert {m["platform"]["architecture"] for m in json.loads(raw.stdout)["manifests"]} == {"amd64", "arm64"}
    data = json.loads(meta.read_text())
    status, _, index = registry.manifest("docker/app", "1")
    assert status == 200
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    assert {m["digest"] for m in index["manifests"]} == {b["pushed_digest"] for b in data["imgfront.builds"]}
    # Docker pushes tags only: each platform has its own.
    _, _, body = registry.get("/v2/docker/app/tags/list")
    assert set(json.loads(body)["tags"]) == {"1", "1-linux_amd64", "1-linux_arm64"}

    no_list = run_imgfront(
        ["build", "--engine", "docker", "-t", "localhost/x:1", make_context(DOCKER_BUSYBOX_CONTAINERFILE)], env
    )
    assert no_list.returncode == 2
    assert "cannot hold the manifest list" in one_line_error(no_list)


def test_push_needs_a_tag_and_options_need_push(podman_node, make_context, run_imgfront):
    ctx = make_context(BASE)
    for args, text in (
        (["--push"], "--push needs -t"),
        (["-t", "x:1", "--push-from-nodes"], "--push-from-nodes needs --push"),
        (["-t", "x:1", "--tls-verify=false"], "are for --push"),
        (["-t", "x:1", "--push", "--tls-verify=maybe"], "invalid --tls-verify"),
    ):
        result = run_imgfront(["build", *args, ctx], {**os.environ, **podman_node.env})
        assert result.returncode == 2, (args, result.stderr)
        assert text in one_line_error(result)


def index_platforms(index: dict) -> list[tuple[str, str | None]]:
    return sorted((m["platform"]["architecture"], m["platform"].get("variant")) for m in index["manifests"])


def test_pushed_list_digest_is_the_registrys(
    podman_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            *("build", "--platform", TWO, "-t", f"{registry.url}/digest/app:1", "--push", "--tls-verify=false"),
            *("--authfile", registry.write_auth_file(tmp_path / "auth.json"), "--metadata-file", meta),
            make_context(BASE + "RUN echo pushed-digest > /d\n"),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(meta.read_text())
    status, digest, index = registry.manifest("digest/app", "1")
    assert status == 200
    assert data["containerimage.digest"] == digest == data["containerimage.descriptor"]["digest"]
    assert data["imgfront.push"][0]["digest"] == digest
    assert index_platforms(index) == [("amd64", None), ("arm64", "v8")]
    assert f"pushed {registry.url}/digest/app:1: {digest}" in result.stdout + result.stderr


def test_indexes_written_from_node_digests_carry_the_platform_variant(
    podman_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    authfile, meta = registry.write_auth_file(tmp_path / "auth.json"), tmp_path / "meta.json"
    result = run_imgfront(
        [
            *("build", "--platform", TWO, "-t", f"{registry.url}/variant/app:1", "--push", "--push-from-nodes"),
            *("--tls-verify=false", "--authfile", authfile, "--metadata-file", meta),
            make_context(BASE + "RUN echo variant > /variant\n"),
        ],
        podman_node.env,
    )
    assert result.returncode == 0, result.stderr
    status, digest, index = registry.manifest("variant/app", "1")
    assert status == 200 and json.loads(meta.read_text())["containerimage.digest"] == digest
    assert index_platforms(index) == [("amd64", None), ("arm64", "v8")]

    pushed = [f"{registry.url}/variant/app@{m['digest']}" for m in index["manifests"]]
    merged = run_imgfront(
        ["manifest", "create", f"{registry.url}/variant/merged:1", "--tls-verify=false", "--authfile", authfile]
        + [arg for ref in pushed for arg in ("--from", ref)],
        podman_node.env,
    )
    assert merged.returncode == 0, merged.stderr
    status, digest, index = registry.manifest("variant/merged", "1")
    assert status == 200 and merged.stdout.strip() == digest
    assert index_platforms(index) == [("amd64", None), ("arm64", "v8")]
