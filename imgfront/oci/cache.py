"""A registry build cache as `--cache-from` and `--cache-to` name it: podman's bare `REPO`, or buildx's
`type=registry,ref=REPO[,key=value...]`.

Podman's cache is a whole repository: buildah pushes one image for every step of every stage, tagged with that
step's cache key (a hash of the base layers, the instruction and the build arguments it uses), and a later build
pulls the tag of each step's key. So the repository has neither tag nor digest, and names its registry. buildx's
other cache types (a GitHub Actions cache, a local folder, inline metadata, S3, Azure blobs) have no podman
counterpart and are refused, as are the keys of buildx's registry form that podman cannot honour.

A step's cache key does not name the platform, so steps whose inputs are the same on every platform (an ARG
first in a FROM scratch stage) would share one tag, and one platform's push would replace another's: the next
step's key, which hashes the base's history and its times, then finds nothing. So each platform keeps its steps
in a repository of its own beside the one named: `REPO-linux-amd64`, `REPO-linux-arm64` (`platform_repository`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from imgfront.errors import UsageError
from imgfront.model import Credentials
from imgfront.oci.references import parse_reference
from imgfront.platforms import Platform

# buildx's cache types that are not a registry, with what each would need.
OTHER_CACHE_TYPES = ("gha", "local", "inline", "s3", "azblob")
# buildx registry-cache keys with the one value that says what podman does anyway; any other value is refused.
HONOURED = {
    "mode": "max",  # buildah pushes every step of every stage, as buildx's mode=max
    "image-manifest": "true",  # each step is an ordinary image manifest
    "oci-mediatypes": "true",  # imgfront builds OCI images, so the cache images are OCI too
    "ignore-error": "false",  # a failed cache push fails the build, as podman does
}
_EXAMPLE = "e.g. ghcr.io/OWNER/APP-cache"
# Go's time.ParseDuration, which podman's cachettl is read with: "168h", "1h30m", "90s", "0".
_DURATION = re.compile(r"^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$")


def parse_cache(option: str, value: str) -> str:
    """One `--cache-from`/`--cache-to` value, in either form, as its repository (registry/path).

    A UsageError names what is wrong and what works instead.
    """
    text = value.strip()
    if not text:
        raise UsageError(f"{option} is empty", hint=f"name a registry repository, {_EXAMPLE}")
    if "=" not in text.split(",", 1)[0] and "," not in text:
        return _repository(option, text, text)
    keys: dict[str, str] = {}
    for item in text.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep or not key:
            raise UsageError(f"invalid {option} {value!r}: {item!r} is not key=value", hint=_form_hint())
        keys[key.strip().lower()] = val.strip()
    kind = keys.pop("type", "registry")
    if kind in OTHER_CACHE_TYPES:
        raise UsageError(
            f"{option} type={kind} is not supported: only registry caches work with podman "
            f"(buildx's {', '.join(OTHER_CACHE_TYPES)} caches have no podman counterpart)",
            hint=f"keep the cache in a registry: {option} type=registry,ref=REPO or {option} REPO, {_EXAMPLE}",
        )
    if kind != "registry":
        raise UsageError(f"unknown cache type {kind!r} in {option}", hint=_form_hint())
    ref = keys.pop("ref", "")
    if not ref:
        raise UsageError(f"{option} type=registry needs ref=REPO", hint=f"{option} type=registry,ref=REPO, {_EXAMPLE}")
    for key, val in keys.items():
        honoured = HONOURED.get(key) if option == "--cache-to" else None
        if honoured is None or val.lower() != honoured:
            raise UsageError(f"podman cannot honour {key}={val} in {option}", hint=_key_hint(option, key))
    return _repository(option, ref, value)


def parse_caches(option: str, values: Iterable[str] | None) -> tuple[str, ...]:
    """Every value of a repeatable cache option, each repository once, in the order given."""
    repos = [parse_cache(option, v) for v in values or ()]
    return tuple(dict.fromkeys(repos))


def parse_cache_ttl(value: str | None) -> str | None:
    """--cache-ttl as podman reads it (a Go duration): refused here rather than by every node's server."""
    if value is None:
        return None
    if not _DURATION.match(value.strip()):
        raise UsageError(f"invalid --cache-ttl {value!r}", hint="write a duration such as 168h, 30m or 1h30m")
    return value.strip()


def _repository(option: str, ref: str, given: str) -> str:
    if ref.startswith("docker://"):
        ref = ref[len("docker://") :]
    try:
        reference = parse_reference(ref, digest=True)
    except UsageError as e:
        raise UsageError(f"{option}: {e.message}", hint=f"name a registry repository, {_EXAMPLE}") from None
    first = ref.split("/", 1)[0]
    if "/" not in ref or not ("." in first or ":" in first or first == "localhost"):
        raise UsageError(
            f"{option} {given!r} names no registry",
            hint=f"a cache lives in a registry: name it first, {_EXAMPLE} or docker.io/USER/APP-cache",
        )
    _, colon, tail = ref.partition("@")[0].rpartition(":")
    if reference.digest or (colon and "/" not in tail):
        raise UsageError(
            f"{option} {given!r} has a tag or digest: a podman cache is a whole repository",
            hint=f"each step is a tag in it; name the repository alone, e.g. {reference.repository}",
        )
    return reference.repository


def _form_hint() -> str:
    return f"write REPO or type=registry,ref=REPO, {_EXAMPLE}"


def _key_hint(option: str, key: str) -> str:
    if option == "--cache-from":
        return "a podman cache source is only its repository: type=registry,ref=REPO"
    if key == "mode":
        return "podman always pushes every step of every stage (buildx's mode=max): drop mode or write mode=max"
    if key in HONOURED:
        return f"podman does {key}={HONOURED[key]}: drop {key} or write {key}={HONOURED[key]}"
    return f"drop {key}; podman's cache takes ref and {', '.join(f'{k}={v}' for k, v in HONOURED.items())}"


def cache_registry(repository: str) -> str:
    """The registry a cache repository is in, as auth files key it."""
    return repository.split("/", 1)[0]


def cache_credentials(repositories: Iterable[str], authfile: Path | None) -> dict[str, Credentials]:
    """The credentials for each cache repository's registry, from the auth files a push reads."""
    from imgfront.oci.auth import find_credentials  # here: it loads the Docker SDK, which parsing does not need

    found = {}
    for repository in repositories:
        credentials = find_credentials(repository, authfile)
        if credentials is not None:
            found[cache_registry(repository)] = credentials
    return found


def args_inside_stages(containerfile: str) -> bool:
    """Whether an ARG instruction follows a FROM: what podman 4.3 cannot find in a registry cache."""
    in_stage = False
    for line in containerfile.splitlines():
        word = line.strip().split(maxsplit=1)[:1]
        instruction = word[0].upper() if word else ""
        in_stage = in_stage or instruction == "FROM"
        if in_stage and instruction == "ARG":
            return True
    return False


def platform_repository(repository: str, platform: Platform) -> str:
    """The repository that holds one platform's steps: REPO-linux-arm64 (works on every registry, unlike a path)."""
    return f"{repository}-{str(platform).replace('/', '-')}"
