"""The registry build cache against a real registry (docker-registry on loopback, htpasswd auth, no TLS):
`--cache-to` on one node store, then `--cache-from` on a fresh store of the same podman, where no step runs
again for either platform; and the refusals, each one line and exit 2 before any build."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from conftest import BUSYBOX_CONTAINERFILE, DOCKER_BUSYBOX_CONTAINERFILE

pytestmark = pytest.mark.slow

TWO = ("linux/amd64", "linux/arm64")
# The last RUN writes a random value: the same value after the rebuild proves the step did not run again. No ARG
# inside a stage: podman 4.3 never looks an ARG step up in the registry cache (see docs/build.md).
CACHED = (
    DOCKER_BUSYBOX_CONTAINERFILE
    + r"""RUN head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /random && uname -m > /arch
CMD ["cat", "/random"]
"""
)
STEPS = 4  # each platform's COPY, RUN --install, RUN, CMD (buildah skips the other platform's unused stage)
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def one_line_error(result) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("imgfront:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def cache_args(registry, authfile: Path, flag: str, repository: str) -> list[str]:
    return [flag, repository, "--tls-verify=false", "--authfile", str(authfile)]


def platform_lines(stderr: str, platform: str) -> list[str]:
    """The plain progress lines of one platform's build."""
    return [line for line in stderr.splitlines() if f"[{platform}]" in line or f"{platform}@" in line]


def image_id(iidfile: Path) -> str:
    return iidfile.read_text().removeprefix("sha256:")


def run_in(node, platform: str, name: str, *cmd: str) -> str:
    return str(node.podman("run", "--rm", "--platform", platform, name, *cmd).stdout.strip())


def test_cache_to_then_cache_from_on_a_fresh_store_runs_no_step_again_for_either_platform(
    extra_nodes, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    repository = f"{registry.url}/cache/app-{uuid.uuid4().hex[:8]}"
    ctx = make_context(CACHED)
    first, second = extra_nodes(), extra_nodes()

    cold = run_imgfront(
        [
            "build",
            "--platform",
            ",".join(TWO),
            "-t",
            "localhost/cache-cold:1",
            "--progress",
            "plain",
            *cache_args(registry, authfile, "--cache-to", f"type=registry,ref={repository},mode=max"),
            ctx,
        ],
        first.env,
    )
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count("Pushing cache") >= 2 * STEPS, cold.stderr

    again = run_imgfront(
        [
            "build",
            "--platform",
            ",".join(TWO),
            "-t",
            "localhost/cache-warm:1",
            "--progress",
            "plain",
            *cache_args(registry, authfile, "--cache-from", repository),
            ctx,
        ],
        second.env,
    )
    assert again.returncode == 0, again.stderr
    for platform in TWO:
        lines = platform_lines(again.stderr, platform)
        assert sum("Cache pulled from remote" in line for line in lines) == STEPS, "\n".join(lines)
        assert sum("Using cache" in line for line in lines) == STEPS, "\n".join(lines)
        assert run_in(first, platform, "localhost/cache-cold:1") == run_in(second, platform, "localhost/cache-warm:1")
        assert run_in(second, platform, "localhost/cache-warm:1", "cat", "/arch") == ARCH[platform]
    assert re.search(r"\b[0-9a-f]{32}\b", run_in(second, TWO[1], "localhost/cache-warm:1"))
    assert registry.password not in cold.stderr + cold.stdout + again.stderr + again.stdout


def test_an_arg_inside_a_stage_is_cached_on_podman_5_and_noted_on_podman_4_3(
    podman_node, extra_nodes, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    # One platform: a FROM scratch stage's ARG is the same step for every platform, which one store shares.
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    repository = f"{registry.url}/cache/arg-{uuid.uuid4().hex[:8]}"
    ctx = make_context(BUSYBOX_CONTAINERFILE + "RUN head -c 16 /dev/urandom | od -An -tx1 > /random\n")
    first, second = extra_nodes(), extra_nodes()
    platform = TWO[1]
    common = ["build", "--platform", platform, "--progress", "plain"]
    cold_id, warm_id = tmp_path / "cold.id", tmp_path / "warm.id"  # run by id: 4.3 looks a one-platform list up
    cold = run_imgfront(
        [*common, "--iidfile", cold_id, *cache_args(registry, authfile, "--cache-to", repository), ctx], first.env
    )
    assert cold.returncode == 0, cold.stderr
    again = run_imgfront(
        [*common, "--iidfile", warm_id, *cache_args(registry, authfile, "--cache-from", repository), ctx],
        second.env,
    )
    assert again.returncode == 0, again.stderr
    lines = platform_lines(again.stderr, platform)
    cold_random = first.podman("run", "--rm", image_id(cold_id), "cat", "/random").stdout
    warm_random = second.podman("run", "--rm", image_id(warm_id), "cat", "/random").stdout
    note = "does not look ARG steps up in the registry cache"
    if podman_node.major >= 5:
        assert sum("Using cache" in line for line in lines) == 4, "\n".join(lines)  # ARG, COPY, RUN, RUN
        assert warm_random == cold_random and note not in again.stderr
    else:
        assert not any("Cache pulled from remote" in line for line in lines), "\n".join(lines)
        assert warm_random != cold_random and note in again.stderr


def test_several_cache_sources_are_taken_on_podman_5_and_refused_on_podman_4_3(
    podman_node, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    ctx = make_context(CACHED)
    result = run_imgfront(
        [
            "build",
            "--platform",
            TWO[0],
            "--cache-from",
            f"{registry.url}/cache/none-{uuid.uuid4().hex[:8]}",
            "--cache-from",
            f"type=registry,ref={registry.url}/cache/other-{uuid.uuid4().hex[:8]}",
            "--tls-verify=false",
            "--authfile",
            authfile,
            ctx,
        ],
        podman_node.env,
    )
    if podman_node.major >= 5:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2, result.stderr
        assert "--cache-from names 2 repositories" in one_line_error(result)
        assert "building" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cache-from", "type=gha"], "--cache-from type=gha is not supported: only registry caches work"),
        (["--cache-to", "type=local,dest=/tmp/c"], "--cache-to type=local is not supported"),
        (["--cache-to", "type=inline"], "--cache-to type=inline is not supported"),
        (["--cache-to", "type=s3,region=x,bucket=y"], "--cache-to type=s3 is not supported"),
        (["--cache-to", "type=registry,ref=r.example/c,mode=min"], "podman cannot honour mode=min in --cache-to"),
        (["--cache-from", "r.example/c:buildcache"], "has a tag or digest: a podman cache is a whole repository"),
        (["--cache-from", "app-cache"], "names no registry"),
        (["--cache-ttl", "7d"], "invalid --cache-ttl '7d'"),
        (["--tls-verify=false"], "--tls-verify and --authfile are for --push, --cache-from and --cache-to"),
    ],
)
def test_bad_cache_input_is_one_line_and_exit_2_before_any_build(
    podman_node, make_context, run_imgfront, args, message
):
    result = run_imgfront(["build", *args, make_context(CACHED)], podman_node.env)
    assert result.returncode == 2, result.stderr
    assert message in one_line_error(result)
    assert "building" not in result.stderr


@pytest.mark.parametrize("flag", ["--cache-from", "--cache-to", "--cache-ttl"])
def test_a_docker_node_refuses_the_cache_before_building(
    podman_node, dockerd, make_context, run_imgfront, emulation_ready, flag
):
    before = len(dockerd.client().images(all=True))
    value = "1h" if flag == "--cache-ttl" else "r.example/app-cache"
    result = run_imgfront(
        ["build", "--no-local", "--node", f"docker+{dockerd.url}", flag, value, make_context(CACHED)],
        podman_node.env,
    )
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert f"{flag} is not supported on docker nodes" in line and str(dockerd.socket) in line, line
    assert "building" not in result.stderr
    assert len(dockerd.client().images(all=True)) == before


@pytest.mark.parametrize("missing", ["credentials", "tls-verify"])
def test_a_cache_push_the_registry_refuses_fails_the_build_naming_the_cache(
    podman_node, registry, make_context, run_imgfront, tmp_path, missing
):
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    access = ["--authfile", authfile] if missing == "tls-verify" else ["--tls-verify=false"]
    repository = f"{registry.url}/cache/refused-{uuid.uuid4().hex[:8]}"
    result = run_imgfront(
        ["build", "--platform", TWO[0], "--cache-to", repository, *access, make_context(CACHED)], podman_node.env
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{repository}-linux-amd64" in result.stderr  # podman's own words name the platform's repository
    hint = {"credentials": f"check the credentials: imgfront login {registry.url}", "tls-verify": "--tls-verify=false"}
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1 and hint[missing] in hints[0], result.stderr
    assert registry.password not in result.stderr + result.stdout


def test_remote_nodes_push_and_pull_their_own_steps(
    podman_node, extra_nodes, registry, make_context, run_imgfront, emulation_ready, tmp_path
):
    authfile = registry.write_auth_file(tmp_path / "auth.json")
    repository = f"{registry.url}/cache/farm-{uuid.uuid4().hex[:8]}"
    ctx = make_context(CACHED)
    cold_nodes, warm_nodes = (extra_nodes(), extra_nodes()), (extra_nodes(tcp=True), extra_nodes(tcp=True))
    results = {}
    for kind, nodes, flag in (("cold", cold_nodes, "--cache-to"), ("warm", warm_nodes, "--cache-from")):
        farm = [arg for node in nodes for arg in ("--node", node.url)]
        tag = f"localhost/cache-farm-{kind}-{uuid.uuid4().hex[:6]}:1"
        build = ["build", "--no-local", *farm, "--platform", ",".join(TWO), "-t", tag, "--progress", "plain"]
        result = run_imgfront([*build, *cache_args(registry, authfile, flag, repository), ctx], podman_node.env)
        assert result.returncode == 0, result.stderr
        results[kind] = (tag, result.stderr)
    assert results["warm"][1].count("Cache pulled from remote") == 2 * STEPS, results["warm"][1]
    for platform in TWO:  # the lists are home, in podman_node's store
        assert run_in(podman_node, platform, results["cold"][0]) == run_in(podman_node, platform, results["warm"][0])
