"""Pipelines built, compiled and inspected through the CLI against a real podman service on private storage.

The base images are made in the node's storage under the names the examples use, so that the examples
build unchanged: `localhost/imgfront/busybox:latest` as `make base-image` makes it, and (for the one
Debian test) `localhost/imgfront/debian:bookworm` by `scripts/debian-base.sh`, as `make debian-base` does.
The stages dnf and apk cannot run here: no Fedora or Alpine image can be had without a registry.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import DEBIAN_BASE

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BOTH = "linux/amd64,linux/arm64"
PLATFORMS = ("linux/amd64", "linux/arm64")
UNAME = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
CHECKPOINT = "localhost/imgfront-checkpoint"


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def env(podman_node, tmp_path) -> dict[str, str]:
    """The node's environment, with a sources cache of the test's own."""
    return {**podman_node.env, "XDG_CACHE_HOME": os.fspath(tmp_path / "cache")}


def write_pipeline(folder: Path, text: str, files: dict[str, str | bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return path


def build(run_imgfront, env, pipeline: Path, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    result = run_imgfront(["build", "-p", pipeline, *args], env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def inspect_ids(run_imgfront, env, pipeline: Path, platform: str) -> dict:
    result = run_imgfront(["inspect", pipeline, "--platform", platform], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def events(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def image(node, ref: str) -> dict:
    return json.loads(node.podman("image", "inspect", ref).stdout)[0]


def shell(node, ref: str, platform: str, script: str) -> str:
    """Run a script in the image as root, whatever its entrypoint and user."""
    return node.podman(
        "run", "--rm", "--platform", platform, "--user", "0", "--entrypoint", "/bin/sh", ref, "-c", script
    ).stdout


def instances(meta: Path) -> dict[str, str]:
    """Platform -> image id, from a metadata file."""
    return {b["platform"]: b["image_id"] for b in json.loads(meta.read_text())["imgfront.builds"]}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def targz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- every stage type ----------------------------------------------------------------------------

STAGES = """\
version: 1
name: pl-stages
platforms: [linux/amd64, linux/arm64]
sources:
  org.imgfront.urls:
    "{note}": "file://{mirror}/note.txt"
    "{tool}": {{url: "file://{mirror}/tool.tar.gz"}}
build:
  base: localhost/imgfront/busybox:latest
  stages:
    - name: run
      options: {{commands: ["mkdir -p /out", "uname -m > /out/built-on"]}}
pipeline:
  base: localhost/imgfront/busybox:latest
  stages:
    - name: users
      options:
        groups: [{{name: app, gid: 2000}}]
        users: [{{name: app, uid: 2000, gid: 2000, home: /home/app}}, {{name: solo, uid: 2001}}]
    - name: copy
      options:
        paths:
          - {{src: site, dest: /srv/site, owner: "2000:2000"}}
          - {{src: tool.sh, dest: /usr/local/bin/tool, mode: "0750"}}
    - name: copy
      options: {{from: build, paths: [{{src: /out/built-on, dest: /etc/built-on}}]}}
    - name: files
      options: {{files: [{{path: /etc/app/app.conf, content: "level = 3\\n", mode: "0640", owner: "app:app"}}]}}
    - name: source
      options:
        items:
          - {{checksum: "{note}", dest: /opt/note.txt, mode: "0600"}}
          - {{checksum: "{tool}", dest: /opt/tool, extract: true}}
    - name: run
      options:
        commands: ['echo "$GREETING from $(uname -m)" > /greeting', "touch /doomed /also-doomed"]
        env: {{GREETING: hi}}
    - name: remove
      options: {{paths: [/doomed, /also-doomed]}}
    - name: env
      options: {{vars: {{APP_PORT: 8080, APP_MODE: "a $literal"}}}}
    - name: labels
      options: {{labels: {{org.example.stage-test: "yes"}}}}
    - name: config
      options:
        user: app
        workdir: /srv/site
        exposed_ports: [8080, "53/udp"]
        volumes: [/data]
        stop_signal: SIGINT
        entrypoint: [/bin/sh, -c]
        cmd: ["cat /greeting"]
"""

PROBE = """\
grep -E '^(app|solo):' /etc/passwd /etc/group
stat -c '%a %u:%g %n' /srv/site/index.html /usr/local/bin/tool /etc/app/app.conf /opt/note.txt
cat /etc/built-on /opt/note.txt /opt/tool/bin/tool.txt /greeting
test ! -e /doomed && test ! -e /also-doomed && echo removed
echo "GREETING=${GREETING-unset}"
"""


def test_every_stage_type_is_built_and_inspected(podman_node, busybox_base, run_imgfront, env, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    note, tool = b"a note\n", targz({"bin/tool.txt": b"from the archive\n"})
    (mirror / "note.txt").write_bytes(note)
    (mirror / "tool.tar.gz").write_bytes(tool)
    pipeline = write_pipeline(
        tmp_path / "stages",
        STAGES.format(note=sha256(note), tool=sha256(tool), mirror=mirror),
        {"site/index.html": "<p>hi</p>\n", "tool.sh": "#!/bin/sh\necho tool\n"},
    )
    meta = tmp_path / "meta.json"
    build(run_imgfront, env, pipeline, "--metadata-file", os.fspath(meta))
    # Fetched once into the cache, by checksum.
    assert (tmp_path / "cache" / "imgfront" / "sources" / "sha256" / sha256(tool)[7:]).read_bytes() == tool

    built = instances(meta)
    assert sorted(built) == list(PLATFORMS)
    for platform, image_id in built.items():
        ids = inspect_ids(run_imgfront, env, pipeline, platform)
        config = image(podman_node, image_id)["Config"]
        assert config["Labels"]["org.imgfront.tree-id"] == ids["pipeline"]["id"]
        assert config["Labels"]["org.imgfront.output-id"] == ids["output"]["id"]
        assert config["Labels"]["org.example.stage-test"] == "yes"
        assert "APP_PORT=8080" in config["Env"] and "APP_MODE=a $literal" in config["Env"]
        assert not any(e.startswith("GREETING=") for e in config["Env"])  # run's env is for its commands only
        assert config["User"] == "app"
        assert config["WorkingDir"] == "/srv/site"
        assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
        assert set(config["Volumes"]) == {"/data"}
        assert config["StopSignal"] == "SIGINT"
        assert config["Entrypoint"] == ["/bin/sh", "-c"] and config["Cmd"] == ["cat /greeting"]

        lines = shell(podman_node, image_id, platform, PROBE).splitlines()
        machine = UNAME[platform]
        assert re.fullmatch(r"/etc/passwd:app:x:2000:2000:[^:]*:/home/app:/bin/sh", lines[0]), lines
        assert re.fullmatch(r"/etc/passwd:solo:x:2001:2001:[^:]*:/home/solo:/bin/sh", lines[1]), lines
        assert lines[2:4] == ["/etc/group:app:x:2000:", "/etc/group:solo:x:2001:"]
        assert lines[4:8] == [
            "644 2000:2000 /srv/site/index.html",
            "750 0:0 /usr/local/bin/tool",
            "640 2000:2000 /etc/app/app.conf",
            "600 0:0 /opt/note.txt",
        ]
        # The build pipeline ran for the target platform, under emulation for arm64.
        assert lines[8:] == [machine, "a note", "from the archive", f"hi from {machine}", "removed", "GREETING=unset"]
        run = podman_node.podman("run", "--rm", "--platform", platform, image_id)
        assert run.stdout.strip() == f"hi from {machine}"


# --- compile: the eject path ---------------------------------------------------------------------

EJECT = """\
version: 1
name: pl-eject
platforms: [linux/arm64]
pipeline:
  base: localhost/imgfront/busybox:latest
  stages:
    - name: copy
      options: {paths: [{src: hello.txt, dest: /hello.txt}]}
    - name: run
      options: {commands: ["uname -m >> /hello.txt"]}
    - name: config
      options: {cmd: [cat, /hello.txt]}
"""


def test_compiled_output_builds_with_plain_podman_build(podman_node, busybox_base, run_imgfront, env, tmp_path):
    pipeline = write_pipeline(tmp_path / "eject", EJECT, {"hello.txt": "ejected\n"})
    # The default folder: ./<name>-<platform slug>, for the pipeline's only platform (not this host's).
    result = run_imgfront(["compile", pipeline], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / result.stdout.strip()
    assert out == tmp_path / "pl-eject-linux_arm64"
    again = run_imgfront(["compile", pipeline, "-o", tmp_path / "again", "--platform", "linux/arm64"], env)
    assert again.returncode == 0, again.stderr
    assert (out / "Containerfile").read_bytes() == (tmp_path / "again" / "Containerfile").read_bytes()

    podman_node.podman("build", "--platform", "linux/arm64", "-t", "localhost/pl-eject:plain", out)
    assert podman_node.podman("run", "--rm", "localhost/pl-eject:plain").stdout == "ejected\naarch64\n"
    labels = image(podman_node, "localhost/pl-eject:plain")["Config"]["Labels"]
    assert labels["org.imgfront.output-id"] == inspect_ids(run_imgfront, env, pipeline, "linux/arm64")["output"]["id"]


# --- the short-circuit ---------------------------------------------------------------------------

UNCHANGED = """\
version: 1
name: pl-unchanged
platforms: [linux/amd64, linux/arm64]
pipeline:
  base: localhost/imgfront/busybox:latest
  stages:
    - name: run
      options: {{commands: ["echo {marker} > /marker"]}}
"""


def test_unchanged_pipeline_is_up_to_date_without_starting_a_build(
    podman_node, busybox_base, run_imgfront, env, tmp_path
):
    pipeline = write_pipeline(tmp_path / "unchanged", UNCHANGED.format(marker="one"))
    first_meta, meta = tmp_path / "first.json", tmp_path / "meta.json"
    first_iid, iid = tmp_path / "first.iid", tmp_path / "iid"
    first = build(
        run_imgfront, env, pipeline, "--progress", "json", "--metadata-file", first_meta, "--iidfile", first_iid
    )
    assert [e["platform"] for e in events(first) if e["event"] == "started"]

    again = build(run_imgfront, env, pipeline, "--progress", "json", "--metadata-file", meta, "--iidfile", iid)
    kinds = [e["event"] for e in events(again)]
    assert "started" not in kinds and "plan" not in kinds, again.stdout
    notes = [e["message"] for e in events(again) if e["event"] == "note"]
    assert any(n.startswith("up to date: localhost/pl-unchanged:latest") for n in notes), notes

    # The same metadata as the build that made the list, and the list's id.
    was, now = json.loads(first_meta.read_text()), json.loads(meta.read_text())
    for data in (was, now):
        for b in data["imgfront.builds"]:
            del b["seconds"]
    assert now == was
    assert iid.read_text() == first_iid.read_text() and iid.read_text().startswith("sha256:")

    # A changed option is a new output id: it builds.
    write_pipeline(tmp_path / "unchanged", UNCHANGED.format(marker="two"))
    changed = build(run_imgfront, env, pipeline, "--progress", "json")
    assert sorted(e["platform"] for e in events(changed) if e["event"] == "started") == list(PLATFORMS)
    # --platform overrides the file's platforms; a list with another platform too is not up to date.
    narrowed = build(run_imgfront, env, pipeline, "--progress", "json", "--platform", "linux/amd64")
    assert [e["platform"] for e in events(narrowed) if e["event"] == "started"] == ["linux/amd64"]
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/pl-unchanged:latest").stdout)
    assert [m["platform"]["architecture"] for m in listed["manifests"]] == ["amd64"]


def test_a_reproducible_pipeline_gives_the_same_digests_after_a_build_without_its_epoch(
    podman_node, busybox_base, run_imgfront, env, tmp_path
):
    """The list a build without the epoch left under the tag is not taken as up to date for a reproducible one."""
    pipeline = write_pipeline(tmp_path / "repro", UNCHANGED.format(marker="repro").replace("pl-unchanged", "pl-repro"))

    def digests(*args: str) -> dict[str, str]:
        meta = tmp_path / "meta.json"
        build(run_imgfront, env, pipeline, "--metadata-file", meta, *args)
        return {b["platform"]: b["digest"] for b in json.loads(meta.read_text())["imgfront.builds"]}

    plain = digests()
    first = digests("--source-date-epoch", "1700000000")
    again = digests("--source-date-epoch", "1700000000", "--no-cache")
    assert sorted(first) == list(PLATFORMS)
    assert first != plain  # built and normalised, not the plain list the tag held
    assert again == first
    for platform in PLATFORMS:
        assert shell(podman_node, "localhost/pl-repro:latest", platform, "cat /marker; uname -m") == (
            f"repro\n{UNAME[platform]}\n"
        )


def test_pipeline_push_and_an_up_to_date_pipeline_pushes_what_it_has(
    podman_node, busybox_base, registry, run_imgfront, env, tmp_path
):
    pipeline = write_pipeline(tmp_path / "pushed", UNCHANGED.format(marker="pushed"))
    auth = registry.write_auth_file(tmp_path / "auth.json")
    push = ["--push", "--tls-verify=false", "--authfile", auth, "--progress", "json"]
    tag = "1"
    for meta in (tmp_path / "built.json", tmp_path / "unchanged.json"):
        result = build(
            run_imgfront, env, pipeline, "-t", f"{registry.url}/pl/app:{tag}", *push, "--metadata-file", meta
        )
        data = json.loads(meta.read_text())
        status, headers, body = registry.get(f"/v2/pl/app/manifests/{tag}")
        assert status == 200
        assert headers["Docker-Content-Digest"] == data["containerimage.digest"]
        arches = {m["platform"]["architecture"]: m["digest"] for m in json.loads(body)["manifests"]}
        assert set(arches) == {"amd64", "arm64"}
        assert {b["pushed_digest"] for b in data["imgfront.builds"]} == set(arches.values())
        notes = [e["message"] for e in events(result) if e["event"] == "note"]
        assert any(n.startswith(f"pushed {registry.url}/pl/app:1") for n in notes), notes
    # The second was up to date: nothing built, the list pushed as it was.
    assert "started" not in [e["event"] for e in events(result)]


def test_up_to_date_pipeline_reports_the_list_id_and_digest_storage_holds(
    podman_node, busybox_base, run_imgfront, env, tmp_path
):
    text = UNCHANGED.format(marker="stored").replace("name: pl-unchanged", "name: pl-stored")
    pipeline = write_pipeline(tmp_path / "stored", text)
    for run in ("built", "unchanged"):
        meta, iid = tmp_path / f"{run}.json", tmp_path / f"{run}.iid"
        result = build(run_imgfront, env, pipeline, "--progress", "json", "--metadata-file", meta, "--iidfile", iid)
        raw = subprocess.run(
            [*podman_node.cli[:-1], "skopeo", "inspect", "--raw", "containers-storage:localhost/pl-stored:latest"],
            env=podman_node.cli_env,
            capture_output=True,
            check=True,
        ).stdout
        assert json.loads(meta.read_text())["containerimage.digest"] == sha256(raw)
        assert run == "built" or "started" not in [e["event"] for e in events(result)]
    # The same list both times, by its storage id.
    assert (tmp_path / "built.iid").read_text() == (tmp_path / "unchanged.iid").read_text()


# --- checkpoints ---------------------------------------------------------------------------------

SHARED_PREFIX = """\
version: 1
name: {name}
platforms: [linux/amd64, linux/arm64]
pipeline:
  base: localhost/imgfront/busybox:latest
  stages:
    - name: run
      options: {{commands: ["echo early-stage-{token} > /early"]}}
      checkpoint: true
    - name: files
      options: {{files: [{{path: /late, content: "{late}"}}]}}
"""


def test_checkpoint_is_committed_and_a_shared_prefix_starts_from_it(
    podman_node, busybox_base, run_imgfront, env, tmp_path
):
    token = tmp_path.name  # unique, so that no other test left this checkpoint
    first = write_pipeline(tmp_path / "a", SHARED_PREFIX.format(name="pl-ckpt-a", token=token, late="a"))
    result = build(run_imgfront, env, first, "--progress", "plain")
    early = {p: inspect_ids(run_imgfront, env, first, p)["pipeline"]["stages"][0]["id"] for p in PLATFORMS}
    assert early["linux/amd64"] != early["linux/arm64"]  # ids differ per platform, and so do checkpoints
    for platform, stage_id in early.items():
        committed = image(podman_node, f"{CHECKPOINT}:{stage_id}")
        assert committed["Architecture"] == platform.split("/")[1]
        assert f"{platform}: checkpoint pipeline stage 0 (org.imgfront.run): {CHECKPOINT}:{stage_id}" in result.stderr
        assert shell(podman_node, f"{CHECKPOINT}:{stage_id}", platform, "cat /early; test ! -e /late && echo no-late")
        assert "org.imgfront.output-id" not in committed["Config"]["Labels"]

    # Another pipeline with the same first stage compiles only what follows it.
    second = write_pipeline(tmp_path / "b", SHARED_PREFIX.format(name="pl-ckpt-b", token=token, late="b"))
    resumed = build(run_imgfront, env, second, "--progress", "plain")
    for platform, stage_id in early.items():
        assert f"{platform}: pipeline stages 0-0 come from checkpoint {CHECKPOINT}:{stage_id}" in resumed.stderr
        assert f"[{platform}@local] STEP 1/3: FROM {CHECKPOINT}:{stage_id}" in resumed.stderr
    assert f"echo early-stage-{token}" not in resumed.stderr  # the early stage was not even in the Containerfile
    for platform in PLATFORMS:
        out = shell(podman_node, "localhost/pl-ckpt-b:latest", platform, "cat /early /late; echo; uname -m")
        assert out.split() == [f"early-stage-{token}", "b", UNAME[platform]]

    # --checkpoint by type adds one; one that names nothing is an error before anything is built.
    third = write_pipeline(tmp_path / "c", SHARED_PREFIX.format(name="pl-ckpt-c", token=token, late="c"))
    selected = build(run_imgfront, env, third, "--progress", "plain", "--checkpoint", "files")
    late = inspect_ids(run_imgfront, env, third, "linux/arm64")["pipeline"]["stages"][1]["id"]
    assert f"checkpoint pipeline stage 1 (org.imgfront.files): {CHECKPOINT}:{late}" in selected.stderr
    assert podman_node.podman("image", "exists", f"{CHECKPOINT}:{late}", check=False).returncode == 0
    wrong = run_imgfront(["build", "-p", third, "--checkpoint", "nosuchtype"], env)
    assert wrong.returncode == 2 and "--checkpoint 'nosuchtype' names no stage" in wrong.stderr


def test_failed_build_commits_no_checkpoint(podman_node, busybox_base, run_imgfront, env, tmp_path):
    pipeline = write_pipeline(
        tmp_path / "failing",
        f"""\
version: 1
name: pl-failing
platforms: [linux/amd64]
pipeline:
  base: localhost/imgfront/busybox:latest
  stages:
    - name: run
      options: {{commands: ["echo {tmp_path.name} > /kept"]}}
      checkpoint: true
    - name: run
      options: {{commands: ["echo failing on purpose >&2; exit 3"]}}
""",
    )
    stage_id = inspect_ids(run_imgfront, env, pipeline, "linux/amd64")["pipeline"]["stages"][0]["id"]
    result = run_imgfront(["build", "-p", pipeline, "--progress", "plain"], env)
    assert result.returncode == 1
    assert "build failed for linux/amd64" in result.stderr and "failing on purpose" in result.stderr
    assert "Traceback" not in result.stderr
    assert podman_node.podman("image", "exists", f"{CHECKPOINT}:{stage_id}", check=False).returncode == 1


# --- errors --------------------------------------------------------------------------------------


def test_checksum_mismatch_names_checksum_url_and_what_arrived(podman_node, run_imgfront, env, tmp_path):
    payload = tmp_path / "payload"
    payload.write_bytes(b"not what was promised\n")
    wanted = "sha256:" + "0" * 64
    pipeline = write_pipeline(
        tmp_path / "mismatch",
        f"""\
version: 1
name: pl-mismatch
sources:
  org.imgfront.urls:
    "{wanted}": "file://{payload}"
pipeline:
  base: scratch
  stages:
    - name: source
      options: {{items: [{{checksum: "{wanted}", dest: /payload}}]}}
""",
    )
    for command in (["build", "-p", pipeline, "--progress", "json"], ["compile", pipeline, "-o", tmp_path / "out"]):
        result = run_imgfront(command, env)
        assert result.returncode == 1, result.stderr
        message = result.stderr.splitlines()[0]
        assert message == (
            f"imgfront: source {wanted} from file://{payload} does not match: "
            f"what arrived is {sha256(payload.read_bytes())}"
        )
        assert "Traceback" not in result.stderr
        assert "started" not in result.stdout
    cache = tmp_path / "cache" / "imgfront" / "sources" / "sha256"
    assert not cache.exists() or os.listdir(cache) == []  # nothing stored, not even the unverified download


BAD_TYPE = """\
version: 1
pipeline:
  base: scratch
  stages:
    - name: env
      options: {vars: {A: b}}
    - name: apt
      options: {packages: 42}
"""
BAD_YAML = "version: 1\npipeline:\n  base: scratch\n  stages: [\n    - name: env\n"
UNKNOWN = "version: 1\npipeline:\n  base: scratch\n  stages:\n    - name: atp\n"


@pytest.mark.parametrize("command", ["build", "compile", "inspect"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BAD_TYPE, "pipeline.yaml: .pipeline.stages[1].options.packages: 42 is not of type 'array'"),
        (BAD_YAML, "pipeline.yaml:5:5: while parsing a flow node: expected the node content, but found '-'"),
        (UNKNOWN, "pipeline.yaml: .pipeline.stages[0].name: unknown stage type 'atp' (did you mean 'apt'?)"),
    ],
)
def test_pipeline_errors_are_one_line_and_exit_2(run_imgfront, env, tmp_path, command, text, message):
    pipeline = write_pipeline(tmp_path, text)
    args = ["build", "-p", pipeline] if command == "build" else [command, pipeline]
    result = run_imgfront(args, env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len([line for line in lines if not line.startswith("hint:")]) == 1, result.stderr
    assert lines[0].startswith("imgfront: ") and message in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "-p", "{p}", "."], "-p/--pipeline cannot be combined with a build context"),
        (["build", "-p", "{p}", "--target", "x"], "-p/--pipeline cannot be combined with --target"),
        (["build", "--checkpoint", "*", "."], "--checkpoint needs a pipeline"),
        (["compile", "{p}", "--platform", "linux/sparc"], "invalid platform 'linux/sparc'"),
        (["inspect", "/nonexistent/pipeline.yaml"], "cannot read pipeline file /nonexistent/pipeline.yaml"),
    ],
)
def test_pipeline_usage_errors_exit_2(run_imgfront, env, tmp_path, args, message):
    pipeline = write_pipeline(tmp_path, UNCHANGED.format(marker="x"))
    result = run_imgfront([a.replace("{p}", os.fspath(pipeline)) for a in args], env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


# --- the examples --------------------------------------------------------------------------------


def test_web_example_builds_for_amd64_and_arm64_and_serves(podman_node, busybox_base, run_imgfront, env):
    build(run_imgfront, env, EXAMPLES / "web" / "pipeline.yaml")
    config = image(podman_node, "localhost/web:latest")["Config"]
    assert (config["User"], config["WorkingDir"], list(config["ExposedPorts"])) == ("web", "/srv/www", ["8080/tcp"])
    serve = "httpd -c /etc/web/httpd.conf -h /srv/www -p 8080; sleep 0.5; wget -qO- localhost:8080/arch.txt"
    for platform in PLATFORMS:
        out = shell(podman_node, "localhost/web:latest", platform, serve + "; test ! -e /srv/www/README.md && echo ok")
        assert out.split() == ["built", "for", UNAME[platform], "ok"]


def test_hello_static_example_builds_on_debian_for_amd64_and_arm64(
    podman_node, debian_base, run_imgfront, env, tmp_path
):
    """The one Debian test: apt in a build pipeline, gcc, a static binary shipped on scratch."""
    pipeline = EXAMPLES / "hello-static" / "pipeline.yaml"
    result = build(run_imgfront, env, pipeline, "--progress", "plain")
    for platform in PLATFORMS:
        out = podman_node.podman("run", "--rm", "--platform", platform, "localhost/hello-static:latest").stdout
        assert out == f"hello from a static binary on {UNAME[platform]}\n"
        # The apt stage is kept as a checkpoint: the compiler, with the package caches on mounts, not in layers.
        apt = inspect_ids(run_imgfront, env, pipeline, platform)["build"]["stages"][0]["id"]
        assert f"{CHECKPOINT}:{apt}" in result.stderr
        listing = shell(podman_node, f"{CHECKPOINT}:{apt}", platform, "command -v gcc; ls /var/cache/apt/archives")
        assert listing.split()[0] == "/usr/bin/gcc" and not any(n.endswith(".deb") for n in listing.split())
    # Only the program ships: one layer, a few hundred KiB.
    shipped = image(podman_node, "localhost/hello-static:latest")
    assert len(shipped["RootFS"]["Layers"]) == 1 and shipped["Size"] < 2_000_000

    # The same service runs apt again: podman 4.3 would wait forever on a `sharing=locked` cache mount.
    again = write_pipeline(
        tmp_path / "apt-again",
        f"""\
version: 1
name: pl-apt-again
pipeline:
  base: {DEBIAN_BASE}
  stages:
    - name: apt
      options: {{packages: [make]}}
""",
    )
    result = run_imgfront(["build", "-p", again, "--platform", "linux/amd64", "--progress", "plain"], env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert shell(podman_node, "localhost/pl-apt-again:latest", "linux/amd64", "command -v make") == "/usr/bin/make\n"
