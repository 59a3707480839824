"""--cache-from, --cache-to and --cache-ttl: both forms parsed, buildx's other caches and keys refused, and what the
podman adapter sends: one repository on 4.3, JSON lists on 4.4 and later, the cache registries' credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fakes import AMD64, DOCKER, PODMAN4, PODMAN5

from imgfront.engines.base import BuildRequest, NodeInfo, PackedContext
from imgfront.engines.podman import PodmanBuilder
from imgfront.errors import UsageError
from imgfront.model import Credentials
from imgfront.nodes.connections import Connection
from imgfront.oci.cache import (
    OTHER_CACHE_TYPES,
    args_inside_stages,
    cache_credentials,
    parse_cache,
    parse_cache_ttl,
    parse_caches,
    platform_repository,
)
from imgfront.options import fit_engines
from imgfront.run.invocation import resolve


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    return tmp_path


def refused(option: str, value: str) -> UsageError:
    with pytest.raises(UsageError) as error:
        parse_cache(option, value)
    return error.value


@pytest.mark.parametrize(
    "value",
    [
        "ghcr.io/owner/app-cache",
        "type=registry,ref=ghcr.io/owner/app-cache",
        " type=registry , ref=ghcr.io/owner/app-cache ",
        "ref=ghcr.io/owner/app-cache",  # buildx's type defaults to registry
        "docker://ghcr.io/owner/app-cache",
    ],
)
def test_both_forms_give_the_repository(value: str) -> None:
    assert parse_cache("--cache-from", value) == "ghcr.io/owner/app-cache"


def test_a_registry_with_a_port_and_localhost_are_registries() -> None:
    assert parse_cache("--cache-to", "127.0.0.1:5000/cache/app") == "127.0.0.1:5000/cache/app"
    assert parse_cache("--cache-to", "localhost:5000/app") == "localhost:5000/app"


def test_cache_to_takes_the_buildx_keys_that_say_what_podman_does() -> None:
    value = "type=registry,ref=ghcr.io/o/c,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=false"
    assert parse_cache("--cache-to", value) == "ghcr.io/o/c"


@pytest.mark.parametrize("kind", OTHER_CACHE_TYPES)
@pytest.mark.parametrize("option", ["--cache-from", "--cache-to"])
def test_buildx_other_cache_types_are_refused_naming_the_registry_form(option: str, kind: str) -> None:
    error = refused(option, f"type={kind},scope=main")
    assert error.message.startswith(f"{option} type={kind} is not supported: only registry caches work")
    assert all(other in error.message for other in OTHER_CACHE_TYPES)
    assert error.hint is not None and "type=registry,ref=REPO" in error.hint


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--cache-to", "type=registry,ref=ghcr.io/o/c,mode=min", "podman cannot honour mode=min in --cache-to"),
        ("--cache-to", "type=registry,ref=ghcr.io/o/c,ignore-error=true", "cannot honour ignore-error=true"),
        ("--cache-to", "type=registry,ref=ghcr.io/o/c,compression=zstd", "cannot honour compression=zstd"),
        ("--cache-from", "type=registry,ref=ghcr.io/o/c,mode=max", "cannot honour mode=max in --cache-from"),
        ("--cache-to", "type=registry", "--cache-to type=registry needs ref=REPO"),
        ("--cache-to", "type=registry,ref", "is not key=value"),
        ("--cache-from", "type=floppy,ref=x.io/a", "unknown cache type 'floppy'"),
        ("--cache-from", "ghcr.io/o/c:buildcache", "has a tag or digest: a podman cache is a whole repository"),
        ("--cache-from", "type=registry,ref=ghcr.io/o/c:buildcache", "has a tag or digest"),
        ("--cache-from", f"ghcr.io/o/c@sha256:{'a' * 64}", "has a tag or digest"),
        ("--cache-from", "app-cache", "names no registry"),
        ("--cache-from", "owner/app-cache", "names no registry"),
        ("--cache-from", "ghcr.io/Owner/App", "must be lower case"),
        ("--cache-from", "  ", "--cache-from is empty"),
    ],
)
def test_what_podman_cannot_do_is_refused_with_the_reason(option: str, value: str, message: str) -> None:
    assert message in refused(option, value).message


def test_a_tagged_cache_ref_is_told_the_repository_to_use() -> None:
    hint = refused("--cache-to", "ghcr.io/o/c:buildcache").hint
    assert hint == "each step is a tag in it; name the repository alone, e.g. ghcr.io/o/c"


def test_repeated_repositories_are_kept_once_in_order() -> None:
    assert parse_caches("--cache-from", ["b.io/x", "type=registry,ref=a.io/y", "b.io/x"]) == ("b.io/x", "a.io/y")
    assert parse_caches("--cache-from", None) == ()


@pytest.mark.parametrize("value", ["168h", "1h30m", "90s", "0", "1.5h", "300ms"])
def test_cache_ttl_takes_go_durations(value: str) -> None:
    assert parse_cache_ttl(value) == value


@pytest.mark.parametrize("value", ["7d", "1 h", "h", "-1h", "forever"])
def test_cache_ttl_refuses_what_podman_cannot_read(value: str) -> None:
    with pytest.raises(UsageError, match="invalid --cache-ttl"):
        parse_cache_ttl(value)


def test_resolve_fills_the_cache_fields_and_lets_tls_verify_and_authfile_reach_the_cache(context: Path) -> None:
    run = resolve(
        {
            "context": str(context),
            "cache_from": ["type=registry,ref=r.example/app-cache"],
            "cache_to": ["r.example/app-cache"],
            "cache_ttl": "24h",
            "tls_verify": "false",
            "authfile": Path("auth.json"),
        }
    )
    o = run.options
    assert (o.cache_from, o.cache_to, o.cache_ttl) == (("r.example/app-cache",), ("r.example/app-cache",), "24h")
    assert o.cache_tls_verify is False and o.cache_authfile == Path("auth.json") and o.push is None


def fit(context: Path, node: NodeInfo, **given: object) -> None:
    options = resolve({"context": str(context), **given}).options
    fit_engines(options, node.driver, True, (node,), lambda _: None)


def test_several_cache_repositories_need_podman_4_4(context: Path) -> None:
    two = {"cache_from": ["a.io/x", "b.io/y"]}
    fit(context, PODMAN5, **two)
    with pytest.raises(UsageError) as error:
        fit(context, PODMAN4, **two)
    assert error.value.message == "--cache-from names 2 repositories; node old runs podman 4.3.1, which takes one"
    fit(context, PODMAN4, cache_from=["a.io/x"], cache_to=["a.io/x"])


@pytest.mark.parametrize("given", [{"cache_from": ["a.io/x"]}, {"cache_to": ["a.io/x"]}, {"cache_ttl": "1h"}])
def test_docker_nodes_refuse_every_cache_option_naming_option_and_node(context: Path, given: dict[str, object]) -> None:
    with pytest.raises(UsageError) as error:
        fit(context, DOCKER, **given)
    flag = "--" + next(iter(given)).replace("_", "-")
    assert error.value.message == f"{flag} is not supported on docker nodes (dock)"


def request(**cache: object) -> BuildRequest:
    return BuildRequest(PackedContext(Path("c.tar"), "Containerfile", 0), AMD64, **cache)  # type: ignore[arg-type]


def builder(version: str) -> PodmanBuilder:
    b = PodmanBuilder(Connection("n", "unix:///nowhere.sock"))
    b.server_version = version
    return b


def test_podman_4_3_gets_one_repository_and_later_ones_json_lists() -> None:
    r = request(cache_from=("a.io/x",), cache_to=("a.io/x",), cache_ttl="1h", cache_tls_verify=False)
    assert builder("4.3.1")._cache_params(r) == {
        "cachefrom": "a.io/x",
        "cacheto": "a.io/x",
        "cachettl": "1h",
        "tlsVerify": False,
    }
    two = request(cache_from=("a.io/x", "b.io/y"))
    assert builder("5.4.2")._cache_params(two) == {"cachefrom": '["a.io/x", "b.io/y"]'}
    assert builder("4.4.0")._cache_params(request(cache_to=("a.io/x",))) == {"cacheto": '["a.io/x"]'}
    assert builder("5.4.2")._cache_params(request(cache_tls_verify=False)) == {}  # no cache, no say over TLS


def test_the_cache_registries_credentials_go_in_x_registry_config(tmp_path: Path) -> None:
    from imgfront.engines.podman import _cache_auth_header

    authfile = tmp_path / "auth.json"
    token = base64.b64encode(b"user:s3cret").decode()
    authfile.write_text(json.dumps({"auths": {"r.example": {"auth": token}}}))
    found = cache_credentials(["r.example/app-cache", "other.example/c"], authfile)
    assert found == {"r.example": Credentials("user", "s3cret")}
    header = _cache_auth_header(request(cache_from=("r.example/app-cache",), cache_credentials=found))
    decoded = json.loads(base64.urlsafe_b64decode(header["X-Registry-Config"]))
    assert decoded == {"r.example": {"username": "user", "password": "s3cret", "serveraddress": "r.example"}}
    assert _cache_auth_header(request(cache_from=("r.example/app-cache",))) == {}


def test_each_platform_keeps_its_steps_in_a_repository_beside_the_named_one() -> None:
    from imgfront.platforms import Platform

    assert platform_repository("ghcr.io/o/app-cache", AMD64) == "ghcr.io/o/app-cache-linux-amd64"
    assert platform_repository("r.io/c", Platform.parse("linux/arm/v7")) == "r.io/c-linux-arm-v7"


@pytest.mark.parametrize(
    ("containerfile", "inside"),
    [
        ("FROM scratch\nARG TARGETARCH\nCOPY x /\n", True),
        ("ARG TARGETARCH\nFROM scratch AS base-${TARGETARCH}\nCOPY x /\n", False),
        ("FROM a AS one\nRUN x\nFROM b\n  arg V=1\n", True),
        ("# ARG in a comment\nFROM scratch\nCOPY x /\n", False),
    ],
)
def test_an_arg_after_a_from_is_what_podman_4_3_cannot_find_in_the_cache(containerfile: str, inside: bool) -> None:
    assert args_inside_stages(containerfile) is inside
