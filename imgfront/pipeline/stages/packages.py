"""`apt`, `dnf` and `apk`: install packages with the package caches on cache mounts.

The caches (package files and repository indexes) live on `RUN --mount=type=cache` folders, one per
cache and platform, so they are reused between builds and never land in a layer. The mounts sit below
CACHE_ROOT and each tool is told to use them, rather than being mounted over /var/cache/apt and the like:
podman 4.3 (buildah 1.28) deletes a mount target that existed in the image, which would leave apt
without /var/lib/apt/lists for later stages. Only the empty mount points stay behind.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from typing import Any, ClassVar

from imgfront.pipeline.containerfile import cache_mount, run
from imgfront.pipeline.stages.base import CompileContext, Options, StageOutput, StageType

CACHE_ROOT = "/tmp/imgfront-cache"
PACKAGE: dict[str, Any] = {"type": "string", "pattern": "^[^\\s-][^\\s]*$"}  # no option injection
LINE: dict[str, Any] = {"type": "string", "pattern": "^[^\n\r]+$"}


def _schema(repository: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["packages"],
        "additionalProperties": False,
        "properties": {
            "packages": {"type": "array", "minItems": 1, "items": PACKAGE},
            "repositories": {"type": "array", "items": repository},
        },
    }


def _write(lines: Sequence[str], path: str, append: bool = False) -> str:
    return f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)} {'>>' if append else '>'}{path}"


def _name(lines: Sequence[str]) -> str:
    """A file name that follows the content, so two stages never overwrite each other's lists."""
    return "imgfront-" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


class PackageManager(StageType):
    caches: ClassVar[tuple[str, ...]]  # folder names below CACHE_ROOT

    def mounts(self, ctx: CompileContext) -> list[str]:
        slug = ctx.platform.slug if ctx.platform else "any"
        return [cache_mount(f"{CACHE_ROOT}/{name}", f"imgfront-{name}-{slug}") for name in self.caches]

    def packages(self, options: Options) -> str:
        return " ".join(shlex.quote(p) for p in options["packages"])


class Apt(PackageManager):
    name = "org.imgfront.apt"
    schema: ClassVar[dict[str, Any]] = _schema(LINE)  # sources.list lines: "deb URL SUITE COMPONENT..."
    caches = ("apt", "apt-lists")

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        repos = options.get("repositories", [])
        apt = f"apt-get -o Dir::Cache={CACHE_ROOT}/apt -o Dir::State::Lists={CACHE_ROOT}/apt-lists"
        statements = [_write(repos, f"/etc/apt/sources.list.d/{_name(repos)}.list")] if repos else []
        statements += [
            f"{apt} update",
            f"DEBIAN_FRONTEND=noninteractive {apt} -o APT::Keep-Downloaded-Packages=true"
            f" install -y --no-install-recommends {self.packages(options)}",
        ]
        return StageOutput((run(statements, mounts=self.mounts(ctx)),))


class Dnf(PackageManager):
    name = "org.imgfront.dnf"
    schema: ClassVar[dict[str, Any]] = _schema(
        {
            "type": "object",
            "required": ["id", "baseurl"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]+$"},
                "baseurl": LINE,
                "gpgkey": LINE,
                "gpgcheck": {"type": "boolean"},
            },
        }
    )
    caches = ("dnf",)

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        statements = []
        if repos := options.get("repositories", []):
            lines = [line for r in repos for line in _repo_lines(r)]
            statements.append(_write(lines, f"/etc/yum.repos.d/{_name(lines)}.repo"))
        # dnf4 reads cachedir as root, dnf5 system_cachedir; both know both.
        cache = f"{CACHE_ROOT}/dnf"
        flags = (
            f"--setopt=cachedir={cache} --setopt=system_cachedir={cache} --setopt=keepcache=True"
            " --setopt=install_weak_deps=False"
        )
        statements += [
            f"dnf install -y {flags} {self.packages(options)}",
            "rm -rf /var/log/dnf*.log /var/log/hawkey.log",
        ]
        return StageOutput((run(statements, mounts=self.mounts(ctx)),))


def _repo_lines(repo: dict[str, Any]) -> list[str]:
    gpgcheck = repo.get("gpgcheck", "gpgkey" in repo)
    lines = [f"[{repo['id']}]", f"name={repo['id']}", f"baseurl={repo['baseurl']}", f"gpgcheck={int(gpgcheck)}"]
    return lines + ([f"gpgkey={repo['gpgkey']}"] if "gpgkey" in repo else [])


class Apk(PackageManager):
    name = "org.imgfront.apk"
    schema: ClassVar[dict[str, Any]] = _schema(LINE)  # repository URLs, added to /etc/apk/repositories
    caches = ("apk",)

    def compile(self, options: Options, ctx: CompileContext) -> StageOutput:
        repos = options.get("repositories", [])
        statements = [_write(repos, "/etc/apk/repositories", append=True)] if repos else []
        statements.append(f"apk add --cache-dir {CACHE_ROOT}/apk --update-cache {self.packages(options)}")
        return StageOutput((run(statements, mounts=self.mounts(ctx)),))
