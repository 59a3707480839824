"""The GitHub Actions (action.yml and merge/action.yml) run as a GitHub runner runs them, against a real podman
service on private storage and a real registry on loopback.

tests/action_runner.py runs the composite action's `run:` steps with the inputs substituted, reads their
GITHUB_OUTPUT back and skips `uses:` steps. The action path is this checkout, whose imgfront the test venv
already has, so the install step uses that (one test installs into a venv of its own, from PyPI). Each
call of `run` is one job on a fresh runner: its own RUNNER_TEMP, the same podman storage.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
from action_runner import ActionResult, run_action
from conftest import BUSYBOX_CONTAINERFILE, DOCKER_BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BOTH = "linux/amd64,linux/arm64"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

BASE = BUSYBOX_CONTAINERFILE
APP = BASE + 'RUN uname -m > /built-on\nCMD ["uname", "-m"]\n'


class RunAction(Protocol):
    def __call__(
        self,
        inputs: Mapping[str, object],
        action: str = "",
        runner_temp: Path | None = None,
        step_summary: bool = True,
    ) -> ActionResult: ...


@pytest.fixture
def run(podman_node: Any, tmp_path: Path) -> RunAction:
    """Runs the action at ROOT/action as one job; the workspace is tmp_path, where make_context puts contexts.

    PATH starts with this venv's bin, as after `pip install -e .`; REGISTRY_AUTH_FILE names a file that
    does not exist, so that only the action's own login can let a push in.
    """
    env = dict(podman_node.env)
    env["PATH"] = os.pathsep.join([os.fspath(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env["REGISTRY_AUTH_FILE"] = os.fspath(tmp_path / "no-auth.json")
    counter = itertools.count()

    def run_one(
        inputs: Mapping[str, object], action: str = "", runner_temp: Path | None = None, step_summary: bool = True
    ) -> ActionResult:
        return run_action(
            ROOT / action,
            inputs,
            env=env,
            workspace=tmp_path,
            runner_temp=runner_temp or tmp_path / f"runner-temp-{next(counter)}",
            step_summary=step_summary,
        )

    return run_one


def stored_image(node: Any, name: str) -> dict[str, Any]:
    """The c/storage record of the image (or list) with this name: podman 4.3 resolves a list's name to an
    instance when inspecting it, so read the record that holds the list's own id and digest."""
    graphroot = node.podman("info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
    driver = node.podman("info", "--format", "{{.Store.GraphDriverName}}").stdout.strip()
    records = json.loads((Path(graphroot) / f"{driver}-images" / "images.json").read_text())
    found = [r for r in records if name in r.get("names", [])]
    assert len(found) == 1, f"{name}: {len(found)} records"
    return dict(found[0])


def index_platforms(index: Mapping[str, Any]) -> list[str]:
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index.get("manifests", []))


def explain(result: ActionResult) -> str:
    """Each step's status and masked output, for assertion messages."""
    parts = []
    for step in result.steps:
        parts.append(f"--- {step.id or step.name}: {step.status} {step.reason} exit {step.exit_code}")
        parts.extend(result.mask(text) for text in (step.stdout, step.stderr) if text)
    return "\n".join(parts)


def test_one_runner_with_emulation_builds_the_list_and_reports_it(
    run: RunAction, make_context: Any, podman_node: Any, emulation_ready: Path
) -> None:
    context = make_context(APP)
    result = run(
        {
            "context": context.name,
            "platforms": "linux/amd64,\nlinux/arm64",
            "tags": "localhost/action-one:1",
            "labels": "org.example.one=1,org.example.two=two, with a comma",
            "emulation": True,
        }
    )
    assert result.ok, explain(result)
    assert result.step("setup-python").reason.startswith("if:")  # this checkout's imgfront was found
    assert result.step("install").outputs["imgfront"] == os.fspath(Path(sys.executable).parent / "imgfront")
    assert "linux/arm64" in result.step("Register qemu emulation").stdout

    metadata = json.loads(result.outputs["metadata"])
    builds = {b["platform"]: b for b in metadata["imgfront.builds"]}
    assert sorted(builds) == ["linux/amd64", "linux/arm64"]
    assert result.outputs["digest"] == metadata["containerimage.digest"]
    assert DIGEST.match(result.outputs["digest"])
    assert result.outputs["tags"] == "localhost/action-one:1"
    assert result.outputs["digests"] == ""

    # The list in local storage is the one the outputs name.
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/action-one:1").stdout)
    assert {m["digest"] for m in listed["manifests"]} == {b["digest"] for b in builds.values()}
    stored = stored_image(podman_node, "localhost/action-one:1")
    assert result.outputs["imageid"] == f"sha256:{stored['id']}"
    # The list's digest: the one storage holds for it, as skopeo reads it.
    raw = podman_node.run("skopeo", "inspect", "--raw", "containers-storage:localhost/action-one:1").stdout
    assert result.outputs["digest"] == "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    assert (
        podman_node.podman("run", "--rm", "--platform", "linux/arm64", "localhost/action-one:1").stdout.strip()
        == "aarch64"
    )
    labels = json.loads(
        podman_node.podman("image", "inspect", "--format", "{{json .Labels}}", builds["linux/arm64"]["image_id"]).stdout
    )
    assert labels["org.example.one"] == "1"
    assert labels["org.example.two"] == "two, with a comma"

    # The job summary: a table with one row per platform.
    assert "| platform | node | digest | seconds |" in result.summary
    for platform, build in builds.items():
        assert re.search(rf"^\| {platform} \| local \| `{build['digest']}` \| [0-9.]+ \|$", result.summary, re.M)
    assert result.outputs["digest"] in result.summary


def test_push_logs_in_with_a_masked_password_and_pushes_the_list_and_each_image(
    run: RunAction, make_context: Any, registry: Any, emulation_ready: Path
) -> None:
    context = make_context(APP)
    repository = "action/push"
    inputs = {
        "context": context.name,
        "platforms": BOTH,
        "tags": f"{registry.url}/{repository}:1",
        "push": "true",
        "tls-verify": "false",
        "emulation": "true",
    }
    refused = run(inputs)
    assert refused.exit_code == 1, explain(refused)  # no credentials: the registry refuses the push

    result = run({**inputs, "username": registry.user, "password": registry.password})
    assert result.ok, explain(result)
    assert "Login Succeeded" in result.step("login").stdout
    assert registry.password in result.masks
    assert result.leaks(registry.password) == []
    assert registry.password not in result.log()
    assert not list(Path(result.step("login").outputs["authfile"]).parent.glob("auth-*.json"))  # removed at the end

    status, index_digest, index = registry.manifest(repository, "1")
    assert status == 200, index
    assert index_platforms(index) == ["linux/amd64", "linux/arm64"]
    assert result.outputs["digest"] == index_digest  # after a push, the list's digest is the registry's
    for instance in index["manifests"]:
        found, digest, _ = registry.manifest(repository, instance["digest"])
        assert (found, digest) == (200, instance["digest"])
    assert sorted(result.outputs["digests"].splitlines()) == sorted(m["digest"] for m in index["manifests"])
    assert result.outputs["tags"] == f"{registry.url}/{repository}:1"
    assert "| pushed digest |" in result.summary


def test_matrix_of_by_digest_jobs_then_merge_makes_one_index(
    run: RunAction, make_context: Any, registry: Any, emulation_ready: Path, tmp_path: Path
) -> None:
    context = make_context(APP)
    repository = "action/matrix"
    login = {"username": registry.user, "password": registry.password, "tls-verify": "false"}
    digests = {}
    for platform in ("linux/amd64", "linux/arm64"):
        job = run(
            {
                "context": context.name,
                "platforms": platform,
                "tags": f"{registry.url}/{repository}",
                "push": "true",
                "push-by-digest": "true",
                "emulation": platform == "linux/arm64",
                **login,
            }
        )
        assert job.ok, explain(job)
        digest = job.outputs["digest"]
        assert DIGEST.match(digest), job.outputs
        assert job.outputs["digests"] == digest
        assert job.outputs["tags"] == ""  # nothing was tagged
        assert json.loads(job.outputs["metadata"])["imgfront.builds"][0]["pushed_digest"] == digest
        assert registry.manifest(repository, digest)[:2] == (200, digest)
        assert job.leaks(registry.password) == []
        digests[platform] = digest
    assert registry.manifest(repository, "latest")[0] == 404  # by digest only: nothing tagged

    merged = run(
        {
            "tags": f"{registry.url}/{repository}:1, {registry.url}/{repository}:stable",
            "digests": "\n".join(digests.values()),
            **login,
        },
        action="merge",
    )
    assert merged.ok, explain(merged)
    assert merged.leaks(registry.password) == []
    assert merged.outputs["sources"].splitlines() == [f"{registry.url}/{repository}@{d}" for d in digests.values()]
    for tag in ("1", "stable"):
        status, digest, index = registry.manifest(repository, tag)
        assert status == 200, index
        assert digest == merged.outputs["digest"]
        assert index_platforms(index) == ["linux/amd64", "linux/arm64"]
        assert {m["digest"] for m in index["manifests"]} == set(digests.values())
    assert merged.outputs["digest"] in merged.summary

    # The same from a folder of digest files, as actions/download-artifact leaves them: one named by the
    # digest's hex (docker/build-push-action's habit), one holding the digest.
    folder = tmp_path / "digests"
    folder.mkdir()
    (folder / digests["linux/amd64"].removeprefix("sha256:")).touch()
    (folder / "linux-arm64").write_text(digests["linux/arm64"] + "\n")
    from_folder = run(
        {"tags": f"{registry.url}/{repository}:2", "digests-dir": os.fspath(folder), **login}, action="merge"
    )
    assert from_folder.ok, explain(from_folder)
    status, _, index = registry.manifest(repository, "2")
    assert status == 200 and {m["digest"] for m in index["manifests"]} == set(digests.values())


def test_both_actions_work_on_a_runner_without_a_step_summary(run: RunAction, make_context: Any, registry: Any) -> None:
    """Forgejo's and Gitea's runners set no GITHUB_STEP_SUMMARY: the actions skip the summary, nothing else."""
    context = make_context(APP)
    repository = "action/no-summary"
    login = {"username": registry.user, "password": registry.password, "tls-verify": "false"}
    job = run(
        {
            "context": context.name,
            "platforms": "linux/amd64",
            "tags": f"{registry.url}/{repository}",
            "push": "true",
            "push-by-digest": "true",
            **login,
        },
        step_summary=False,
    )
    assert job.ok, explain(job)
    digest = job.outputs["digest"]
    assert DIGEST.match(digest) and registry.manifest(repository, digest)[:2] == (200, digest)
    assert job.summary == ""

    merged = run({"tags": f"{registry.url}/{repository}:1", "digests": digest, **login}, "merge", step_summary=False)
    assert merged.ok, explain(merged)
    status, listed, index = registry.manifest(repository, "1")
    assert (status, listed) == (200, merged.outputs["digest"])
    assert [m["digest"] for m in index["manifests"]] == [digest]


def test_pipeline_input_builds_the_pipeline_under_its_own_name(
    run: RunAction, busybox_base: str, podman_node: Any, tmp_path: Path
) -> None:
    """examples/web, renamed: without tags, the list is named after the pipeline, and its platforms are the
    ones emulation registers."""
    shutil.copytree(ROOT / "examples" / "web", tmp_path / "web")
    pipeline = tmp_path / "web" / "pipeline.yaml"
    pipeline.write_text(re.sub(r"^name: web$", "name: action-web", pipeline.read_text(), flags=re.M))
    result = run({"pipeline": "web/pipeline.yaml", "emulation": "true"})
    assert result.ok, explain(result)
    assert "linux/arm64" in result.step("Register qemu emulation").stdout
    assert result.outputs["tags"] == "localhost/action-web:latest"
    metadata = json.loads(result.outputs["metadata"])
    assert sorted(b["platform"] for b in metadata["imgfront.builds"]) == ["linux/amd64", "linux/arm64"]
    listed = json.loads(podman_node.podman("manifest", "inspect", "localhost/action-web:latest").stdout)
    assert {m["digest"] for m in listed["manifests"]} == {b["digest"] for b in metadata["imgfront.builds"]}
    assert result.outputs["imageid"] == f"sha256:{stored_image(podman_node, 'localhost/action-web:latest')['id']}"
    page = podman_node.podman(
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--entrypoint",
        "cat",
        "localhost/action-web:latest",
        "/srv/www/arch.txt",
    )
    assert page.stdout.strip() == "built for aarch64"
    assert "| linux/arm64 | local |" in result.summary


def runner_env(node: Any, tmp_path: Path) -> dict[str, str]:
    """The `run` fixture's environment, for another node: a runner with a store of its own."""
    env = dict(node.env)
    env["PATH"] = os.pathsep.join([os.fspath(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env["REGISTRY_AUTH_FILE"] = os.fspath(tmp_path / "no-auth.json")
    return env


def test_cache_inputs_push_every_step_and_a_fresh_runner_builds_from_them(
    run: RunAction,
    make_context: Any,
    registry: Any,
    podman_node: Any,
    extra_nodes: Any,
    emulation_ready: Path,
    tmp_path: Path,
) -> None:
    # No ARG inside a stage: podman 4.3 never finds one in a registry cache.
    context = make_context(DOCKER_BUSYBOX_CONTAINERFILE + "RUN head -c 16 /dev/urandom | od -An -tx1 > /random\n")
    name = f"action/cache-{os.urandom(4).hex()}"
    repository = f"{registry.url}/{name}"
    login = {"registry": registry.url, "username": registry.user, "password": registry.password, "tls-verify": "false"}
    common = {"context": context.name, "platforms": BOTH, "emulation": "true", **login}
    first = run({**common, "tags": "localhost/action-cache:1", "cache-to": f"type=registry,ref={repository},mode=max"})
    assert first.ok, explain(first)
    assert f"--cache-to type=registry,ref={repository},mode=max" in first.step("build").stdout
    for platform in ("linux-amd64", "linux-arm64"):
        status, _, body = registry.get(f"/v2/{name}-{platform}/tags/list")
        assert status == 200 and len(json.loads(body)["tags"]) >= 3, body  # COPY, RUN, RUN at least

    # A second job on a fresh runner: a list input, comma-separated, where podman takes several sources.
    sources = f"{repository}, type=registry,ref={registry.url}/action/empty" if podman_node.major >= 5 else repository
    fresh = extra_nodes()
    second = run_action(
        ROOT,
        {**common, "tags": "localhost/action-cache:2", "cache-from": sources},
        env=runner_env(fresh, tmp_path),
        workspace=tmp_path,
        runner_temp=tmp_path / "runner-temp-fresh",
    )
    assert second.ok, explain(second)
    command = second.step("build").stdout
    assert f"--cache-from {repository}" in command
    assert (f"--cache-from type=registry,ref={registry.url}/action/empty" in command) == (podman_node.major >= 5)
    log = second.log()
    assert log.count("Cache pulled from remote") == 2 * 3, log  # each platform's COPY, RUN --install, RUN
    for platform in ("linux/amd64", "linux/arm64"):
        ran = [podman_node, fresh]
        values = {
            node.podman("run", "--rm", "--platform", platform, f"localhost/action-cache:{i}", "cat", "/random").stdout
            for i, node in enumerate(ran, 1)
        }
        assert len(values) == 1  # the RUN did not run again
    assert registry.password not in first.log() + log


@pytest.mark.parametrize(
    ("inputs", "failing_step"),
    [
        ({"platforms": "linux/bogus"}, "build"),  # imgfront's own check
        ({"pipeline": "pipeline.yaml", "context": "."}, "build"),  # a pipeline brings its own context
        ({"no-cache": "maybe"}, "inputs"),  # the action's check, before anything is installed or built
        ({"username": "someone"}, "inputs"),  # a user without a password
        ({"cache-from": "type=gha,scope=main"}, "build"),  # only registry caches work
        ({"cache-to": "type=registry,ref=r.example/c,mode=min"}, "build"),
        ({"build-contexts": "nameonly"}, "inputs"),
        ({"build-contexts": "extra=./no-such-folder"}, "build"),
    ],
)
def test_bad_input_fails_the_step_with_exit_code_2(
    run: RunAction, make_context: Any, inputs: dict[str, str], failing_step: str
) -> None:
    context = make_context(APP)
    result = run({"context": context.name, **inputs})
    assert result.exit_code == 2, explain(result)
    step = result.step(failing_step)
    assert (step.status, step.exit_code) == ("failure", 2)
    assert [s.id for s in result.steps if s.status == "failure"] == [failing_step]
    assert result.step("build").status == ("failure" if failing_step == "build" else "skipped")
    assert any(kind == "error" for kind, _ in result.annotations)
    assert "Traceback" not in result.log()


def test_install_makes_a_venv_once_when_imgfront_is_not_installed(podman_node: Any, tmp_path: Path) -> None:
    """Without an imgfront from this checkout on PATH, the action installs one into RUNNER_TEMP (from PyPI's
    packages) and reuses it while the checkout is unchanged; the checkout itself is left as it was."""
    venv_bin = os.fspath(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and p != venv_bin)
    if shutil.which("imgfront", path=path):
        pytest.fail(f"an imgfront outside this venv is on PATH ({shutil.which('imgfront', path=path)}); remove it")
    env = {**podman_node.env, "PATH": path}
    temp = tmp_path / "runner-temp"
    steps = ("mask", "inputs", "find", "setup-python", "install")
    before = sorted(p.name for p in ROOT.iterdir())

    first = run_action(ROOT, {}, env=env, workspace=tmp_path, runner_temp=temp, only=steps)
    assert first.ok, explain(first)
    imgfront = first.step("install").outputs["imgfront"]
    assert imgfront == os.fspath(temp / "imgfront" / "venv" / "bin" / "imgfront")
    assert "imgfront 0." in first.step("install").stdout
    assert sorted(p.name for p in ROOT.iterdir()) == before

    again = run_action(ROOT, {}, env=env, workspace=tmp_path, runner_temp=temp, only=steps)
    assert again.ok, explain(again)
    assert "reusing" in again.step("install").stdout
    assert again.step("install").outputs["imgfront"] == imgfront


def test_secrets_inputs_reach_run_steps_masked_and_nowhere_else(
    podman_node: Any, make_context: Any, tmp_path: Path
) -> None:
    """secrets (one a line, and a quoted one of two lines), secret-files and secret-envs each reach a RUN step's
    /run/secrets/ID; every value, and each line of the multi-line one, is masked and shows nowhere."""
    token, first, second = (f"{kind}-{uuid.uuid4().hex}" for kind in ("token", "first", "second"))
    from_file, from_env = f"file-{uuid.uuid4().hex}", f"env-{uuid.uuid4().hex}"
    outside = Path(tempfile.mkdtemp(prefix="action-secret-"))  # not under the workspace, which leaks() reads
    try:
        secret_file = outside / "index.netrc"
        secret_file.write_text(from_file + "\n")
        steps = "".join(
            f"RUN --mount=type=secret,id={i} sha256sum /run/secrets/{i} | cut -d' ' -f1 > /{i}.sha\n"
            for i in ("token", "multi", "netrc", "fromenv")
        )
        context = make_context(APP + steps)
        env = dict(podman_node.env)
        env["PATH"] = os.pathsep.join([os.fspath(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        env["REGISTRY_AUTH_FILE"] = os.fspath(tmp_path / "no-auth.json")
        env["PRIVATE_INDEX_TOKEN"] = from_env
        result = run_action(
            ROOT,
            {
                "context": context.name,
                "tags": "localhost/action-secrets:1",
                "secrets": f'token={token}\n"multi={first}\n{second}"',
                "secret-files": f"netrc={secret_file}",
                "secret-envs": "fromenv=PRIVATE_INDEX_TOKEN",
            },
            env=env,
            workspace=tmp_path,
            runner_temp=tmp_path / "runner-temp",
        )
    finally:
        shutil.rmtree(outside)
    assert result.ok, explain(result)
    for value in (token, first, second, from_file, from_env):
        assert value in result.masks
        assert result.leaks(value) == []
    assert "--secret id=token,env=IMGFRONT_SECRET_0" in result.step("build").stdout
    shas = podman_node.podman(
        "run", "--rm", "localhost/action-secrets:1", "cat", "/token.sha", "/multi.sha", "/netrc.sha", "/fromenv.sha"
    ).stdout.split()
    values = (token, f"{first}\n{second}", from_file + "\n", from_env)
    assert shas == [hashlib.sha256(v.encode()).hexdigest() for v in values]


@pytest.mark.parametrize(
    ("inputs", "failing_step"),
    [
        ({"secrets": "a-value-with-no-id"}, "build"),  # the parser's check: an id=value line has an id
        ({"secret-envs": "NO_ID_HERE"}, "inputs"),  # id=VARIABLE lines
        ({"secret-files": "key=missing.txt"}, "build"),  # imgfront's check, before any build
    ],
)
def test_bad_secret_inputs_fail_with_exit_code_2_and_show_no_value(
    run: RunAction, make_context: Any, inputs: dict[str, str], failing_step: str
) -> None:
    context = make_context(APP)
    result = run({"context": context.name, **inputs})
    assert result.exit_code == 2, explain(result)
    assert [s.id for s in result.steps if s.status == "failure"] == [failing_step]
    assert "Traceback" not in result.log() and "STEP" not in result.log()
    assert result.leaks("a-value-with-no-id") == []


def test_build_contexts_input_gives_the_build_its_named_contexts(
    run: RunAction, make_context: Any, podman_node: Any, tmp_path: Path
) -> None:
    context = make_context(APP + "COPY --from=extra /note /note\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "note").write_text("named\n")
    result = run({"context": context.name, "tags": "localhost/action-named:1", "build-contexts": f"extra={extra}"})
    assert result.ok, explain(result)
    note = podman_node.podman("run", "--rm", "localhost/action-named:1", "cat", "/note").stdout
    assert note == "named\n"
