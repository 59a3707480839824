"""The settings rows of the options table (--network, --ulimit, --squash, --format...): how each value is read, what
each adapter makes of it, and that the table and the adapters' encoder tables cannot drift apart."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import AMD64, ARM64, DOCKER, FakeEngine

from imgfront.engines.base import NodeInfo, PackedContext
from imgfront.engines.docker import SETTING_KEYWORDS, setting_keywords
from imgfront.engines.podman import DOCKER_MANIFEST, SETTING_PARAMS, setting_params
from imgfront.errors import UsageError
from imgfront.options import BUILD_OPTIONS, FRONTEND, OPTIONS_BY_DEST, check_support, fit_engines, given_rows
from imgfront.pipeline import load
from imgfront.pipeline.build import PipelineBuild
from imgfront.pipeline.checkpoints import Checkpoint
from imgfront.run.build import Build, BuildOptions
from imgfront.run.invocation import resolve
from imgfront.run.progress import QuietProgress

PODMAN = NodeInfo("pod", "podman", "4.3.1", "4.3.1", (AMD64,), ())
SETTINGS = [row for row in BUILD_OPTIONS if row.setting]
PIPELINE = Path(__file__).parent / "fixtures" / "pipelines" / "web" / "pipeline.yaml"

# One value as the command line gives it, for every settings row.
SAMPLES: dict[str, object] = {
    "network": "none",
    "add_host": ["mirror:10.0.0.5"],
    "dns": ["10.0.0.1"],
    "dns_search": ["example.com"],
    "dns_option": ["ndots:2"],
    "ulimit": ["nofile=512:1024"],
    "volume": ["/srv/cache:/cache:ro"],
    "shm_size": "64m",
    "memory": "512m",
    "memory_swap": "1g",
    "cpu_shares": 512,
    "cpu_period": 100000,
    "cpu_quota": 50000,
    "cpuset_cpus": "0-1",
    "cpuset_mems": "0",
    "cgroup_parent": "/imgfront",
    "cap_add": ["CAP_NET_ADMIN"],
    "cap_drop": ["CAP_CHOWN"],
    "security_opt": ["label=disable", "seccomp=/etc/p.json", "apparmor=unconfined"],
    "device": ["/dev/fuse"],
    "isolation": "chroot",
    "env": ["A=1"],
    "unsetenv": ["B"],
    "squash": True,
    "squash_all": True,
    "layers": "false",
    "format": "docker",
    "timestamp": 0,
    "omit_history": True,
}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    return tmp_path


def settings_of(context: Path, **given: object) -> dict[str, object]:
    return dict(resolve({"context": str(context), **given}).options.settings)


def columns(text: str | None) -> set[str]:
    return {name.split(".")[0] for name in (text or "").split(", ") if name}


def test_every_settings_row_has_a_sample() -> None:
    assert {row.dest for row in SETTINGS} == set(SAMPLES)


def test_every_row_podman_takes_has_a_podman_encoder_and_every_encoder_a_row() -> None:
    podman = {row.dest for row in SETTINGS if row.podman not in (None, FRONTEND)}
    assert podman == set(SETTING_PARAMS)


def test_every_row_docker_takes_has_a_docker_keyword_and_every_keyword_a_row() -> None:
    docker = {row.dest for row in SETTINGS if row.docker not in (None, FRONTEND)}
    assert docker == set(SETTING_KEYWORDS)


@pytest.mark.parametrize("row", SETTINGS, ids=lambda r: r.dest)
def test_each_row_sends_only_the_parameters_its_row_names(row, context: Path) -> None:
    value = row.parse(SAMPLES[row.dest]) if row.parse else SAMPLES[row.dest]
    assert value is not None
    assert set(SETTING_PARAMS[row.dest](value)) <= columns(row.podman)
    if row.dest in SETTING_KEYWORDS:
        assert set(SETTING_KEYWORDS[row.dest](value)) == columns(row.docker)


def test_only_given_settings_reach_the_build(context: Path) -> None:
    assert settings_of(context) == {}
    got = settings_of(context, shm_size="64m", ulimit=["nofile=512:512"], squash_all=True, layers="false")
    assert got == {"shm_size": 64 << 20, "ulimit": ("nofile=512:512",), "squash_all": True, "layers": False}
    options = resolve({"context": str(context), "network": "host"}).options
    assert [row.dest for row in given_rows(options) if row.setting] == ["network"]


@pytest.mark.parametrize(
    ("text", "size"),
    [("64m", 64 << 20), ("1g", 1 << 30), ("1048576", 1 << 20), ("512k", 512 << 10), ("1.5MB", 3 << 19)],
)
def test_sizes_are_read_as_podman_reads_them(context: Path, text: str, size: int) -> None:
    assert settings_of(context, shm_size=text)["shm_size"] == size


def test_memory_swap_may_be_unlimited(context: Path) -> None:
    assert settings_of(context, memory_swap="-1")["memory_swap"] == -1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"shm_size": "64x"}, "invalid --shm-size '64x'"),
        ({"memory": "0"}, "invalid --memory '0': it must be more than 0 bytes"),
        ({"ulimit": ["nofile"]}, "invalid --ulimit 'nofile'"),
        ({"ulimit": ["files=1"]}, "invalid --ulimit 'files=1'"),
        ({"ulimit": ["nofile=a:b"]}, "the limits must be whole numbers"),
        ({"ulimit": ["nofile=2048:1024"]}, "the soft limit is above the hard one"),
        ({"network": "bridge"}, "invalid --network 'bridge'"),
        ({"format": "tar"}, "invalid --format 'tar'"),
        ({"isolation": "vm"}, "invalid --isolation 'vm'"),
        ({"add_host": ["mirror"]}, "invalid --add-host 'mirror'"),
        ({"add_host": ["mirror:300.1.1.1"]}, "invalid --add-host 'mirror:300.1.1.1'"),
        ({"security_opt": ["no-new-privileges"]}, "no-new-privileges is not supported"),
        ({"security_opt": ["mask=/x"]}, "invalid --security-opt 'mask=/x'"),
        ({"cpuset_cpus": "0-"}, "invalid --cpuset-cpus '0-'"),
        ({"layers": "maybe"}, "invalid --layers value 'maybe'"),
        ({"env": ["=1"]}, "invalid --env '=1'"),
        ({"squash": True, "layers": "true"}, "--squash cannot be combined with --layers"),
        ({"squash": True, "squash_all": True}, "--squash cannot be combined with --squash-all"),
        ({"network": "none", "dns": ["10.0.0.1"]}, "--dns cannot be used with --network none"),
        ({"network": "none", "add_host": ["a:10.0.0.1"]}, "--add-host cannot be used with --network none"),
        ({"network": "private", "isolation": "chroot"}, "--isolation chroot runs RUN steps in the node's network"),
    ],
)
def test_bad_values_are_one_refusal_before_any_build(context: Path, given: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as refused:
        settings_of(context, **given)
    assert message in refused.value.message and "\n" not in refused.value.message


def test_env_without_a_value_takes_this_environment(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HERE", "h")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert settings_of(context, env=["A=1", "FROM_HERE", "NOT_SET"])["env"] == ("A=1", "FROM_HERE=h")


def test_podman_gets_network_and_namespace_as_podman_remote_sends_them() -> None:
    none = setting_params({"network": "none"})
    assert none["networkmode"] == 1
    assert json.loads(str(none["nsoptions"])) == [{"Name": "network", "Host": False, "Path": ""}]
    host = setting_params({"network": "host"})
    assert host["networkmode"] == 2 and json.loads(str(host["nsoptions"]))[0]["Host"] is True


def test_podman_gets_lists_as_json_and_env_as_repeated_parameters() -> None:
    params = setting_params(
        {"add_host": ("a:1.2.3.4",), "ulimit": ("nofile=1:2",), "env": ("A=1", "B=2"), "unsetenv": ("C",)}
    )
    assert params == {
        "extrahosts": '["a:1.2.3.4"]',
        "ulimits": '["nofile=1:2"]',
        "setenv": ["A=1", "B=2"],
        "unsetenv": ["C"],
    }


def test_podman_splits_security_options_into_their_parameters() -> None:
    params = setting_params({"security_opt": ("label=disable", "label=level:s0", "seccomp=/p.json")})
    assert params == {"labelopts": '["disable", "level:s0"]', "seccomp": "/p.json"}


def test_squash_is_podmans_layers_false_and_squash_all_keeps_an_explicit_layers() -> None:
    assert setting_params({"squash": True}) == {"layers": None}
    assert setting_params({"squash_all": True}) == {"squash": 1, "layers": None}
    assert setting_params({"layers": True, "squash_all": True}) == {"squash": 1, "layers": 1}
    assert setting_params({"layers": False}) == {"layers": None}


def test_format_docker_asks_for_docker_media_types() -> None:
    assert setting_params({"format": "docker"}) == {"outputformat": DOCKER_MANIFEST}


def test_docker_gets_container_limits_as_one_keyword() -> None:
    keywords = setting_keywords({"memory": 1 << 29, "memory_swap": -1, "cpu_shares": 512, "add_host": ("a:1.2.3.4",)})
    assert keywords == {
        "container_limits": {"memory": 1 << 29, "memswap": -1, "cpushares": 512},
        "extra_hosts": ["a:1.2.3.4"],
    }


def test_an_adapter_never_drops_a_setting_it_has_no_encoder_for() -> None:
    with pytest.raises(UsageError):
        setting_keywords({"ulimit": ("nofile=1:2",)})


def test_squash_is_refused_on_a_docker_node_without_experimental_features(context: Path) -> None:
    options = resolve({"context": str(context), "squash": True}).options
    fit_engines(options, "podman", True, [PODMAN, DOCKER], lambda _: None)
    plain = replace(DOCKER, lacks=(("squash", "its daemon runs without experimental features"),))
    with pytest.raises(UsageError) as refused:
        fit_engines(options, "podman", True, [PODMAN, plain], lambda _: None)
    assert refused.value.message == (
        "--squash is not supported on docker node dock: its daemon runs without experimental features"
    )


def test_a_setting_docker_lacks_is_refused_on_docker_nodes_naming_node_and_option(context: Path) -> None:
    options = resolve({"context": str(context), "ulimit": ["nofile=512"], "shm_size": "64m"}).options
    check_support(OPTIONS_BY_DEST["shm_size"], DOCKER, lambda _: None)
    with pytest.raises(UsageError) as refused:
        fit_engines(options, "podman", True, [PODMAN, DOCKER], lambda _: None)
    assert refused.value.message == "--ulimit is not supported on docker nodes (dock)"
    fit_engines(options, "podman", True, [PODMAN], lambda _: None)


def test_every_platforms_request_carries_the_settings_and_so_do_a_pipelines_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    settings = {"network": "none", "ulimit": ("nofile=512:512",)}
    engine = FakeEngine()
    options = BuildOptions(context=tmp_path, platforms=(AMD64, ARM64), tags=("localhost/s:1",), settings=settings)
    Build(options, engine, [engine], QuietProgress()).run()
    assert sorted(map(str, (r.platform for r in engine.requests))) == ["linux/amd64", "linux/arm64"]
    assert all(r.settings == settings for r in engine.requests)

    pipeline = PipelineBuild(load(PIPELINE), options, engine, QuietProgress())
    packed = PackedContext(tmp_path / "context.tar", "Containerfile", 0)
    request = pipeline._request(packed, AMD64, Checkpoint("build", 0, "a" * 64))
    assert request.settings == settings


def test_volume_is_checked_here_and_refused_on_a_podman_older_than_4_4() -> None:
    from imgfront.option_values import parse_volumes
    from imgfront.options import OPTIONS_BY_DEST, check_support

    assert parse_volumes(["/srv:/cache:ro", "/a:/b"]) == ("/srv:/cache:ro", "/a:/b")
    for bad in ("cache:/cache", "/srv", "/a:/b:ro:x"):
        with pytest.raises(UsageError, match="invalid --volume"):
            parse_volumes([bad])
    old = NodeInfo("old", "podman", "4.3.1", "4.3.1", (AMD64,), (), False, "overlay", "unix:///x")
    with pytest.raises(UsageError, match=r"--volume needs podman 4\.4 or newer; node old runs 4\.3\.1"):
        check_support(OPTIONS_BY_DEST["volume"], old, lambda _: None)
