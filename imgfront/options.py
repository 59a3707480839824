"""The options of `imgfront build`: one table, from which the CLI's options, their help and docs/build.md's table
are made, and the one place where options are checked against each other (`resolve`, `fit_engines`).

A row says what an option is (names, type, default, help), how its value is read, and what it becomes on each
engine: a build API parameter, imgfront's own work (`FRONTEND`), or nothing. Adding a build option is one row
here, a `BuildOptions` field, and one line in each engine adapter that supports it.

`python -m imgfront.options --markdown` prints the table that docs/build.md holds between its marker comments.
"""

from __future__ import annotations

import csv
import enum
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from imgfront.engines.build_params import CACHE_LISTS_SINCE, param_since, version_tuple
from imgfront.errors import UsageError
from imgfront.model import Secret
from imgfront.modes import LocalEngine, ProgressMode, PullPolicy, PushMode
from imgfront.option_values import (
    BOOL_WORDS,
    FORMATS,
    ISOLATIONS,
    NETWORKS,
    parse_add_hosts,
    parse_bool,
    parse_choice,
    parse_cpuset,
    parse_env,
    parse_flag,
    parse_memory_swap,
    parse_names,
    parse_security_opts,
    parse_size,
    parse_text,
    parse_ulimits,
    parse_volumes,
)
from imgfront.outputs.types import OUTPUT_TYPES, ImageOutput

if TYPE_CHECKING:
    from imgfront.engines.base import NodeInfo
    from imgfront.run.build import BuildOptions


class Unsupported(enum.Enum):
    """What an engine without an option does with it."""

    REFUSE = "refused"  # one line and exit 2, before any build
    DROP = "dropped"  # the build goes on without it, as the engine would


FRONTEND = "imgfront"  # carried out by imgfront itself, the same on every engine
SETTING = "settings"  # a row whose value goes to the engines as it is: BuildOptions.settings[dest], when given


@dataclass(frozen=True)
class Option:
    """One row of the table."""

    names: tuple[str, ...]  # flags, or the argument's metavar
    dest: str  # the parameter's name, and the `BuildOptions` field it fills unless `field` says otherwise
    annotation: Any  # the Python type typer reads the value as
    help: str
    default: Any = None
    doc: str = ""  # docs/build.md's meaning column, when it says more than the help
    doc_name: str = ""  # docs/build.md's option column, when it differs from the names and metavar
    metavar: str | None = None
    parse: Callable[[Any], Any] | None = None  # the value as it is used; raises UsageError
    podman: str | None = FRONTEND  # the libpod build API parameter it becomes; None: not supported
    docker: str | None = FRONTEND  # the Docker SDK `build()` keyword it becomes; None: not supported
    without: Unsupported = Unsupported.REFUSE  # on an engine that lacks it
    field: str | None = ""  # the BuildOptions field; "" means dest, None none (it shapes the run, not the build)
    # SETTING: one of BuildOptions.settings (dest -> parsed value; parse gives None when not asked), which each
    # adapter encodes by its own table (engines/podman.py's SETTING_PARAMS, engines/docker.py's SETTING_KEYWORDS)
    argument: bool = False
    flag_value: str | None = None  # given bare (--pull), it has this value; see cli/main.py's allow_bare
    bare_words: tuple[str, ...] = BOOL_WORDS  # the values it takes after a space when it may be given bare
    choices: type[enum.StrEnum] | None = None
    min: float | None = None

    @property
    def name(self) -> str:
        """The name messages use: the long flag."""
        return self.names[-1] if not self.argument else self.names[0]

    @property
    def setting(self) -> bool:
        return self.field == SETTING

    @property
    def field_name(self) -> str | None:
        return self.dest if self.field == "" else self.field

    @property
    def podman_since(self) -> tuple[int, int] | None:
        """The podman version whose build API first has this option's parameter, when it is newer than 4.3."""
        return param_since(self.podman) if self.podman not in (None, FRONTEND) else None

    def support(self, driver: str) -> str | None:
        """What the option becomes on this engine; an engine the table has no column for (a test fake) takes all."""
        return {"podman": self.podman, "docker": self.docker}.get(driver, FRONTEND)

    def typer_info(self) -> Any:
        if self.argument:
            return typer.Argument(help=self.help)
        extra: dict[str, Any] = {}
        if self.choices is not None:
            extra["click_type"] = click.Choice([str(c) for c in self.choices])
        if self.min is not None:
            extra["min"] = self.min
        return typer.Option(*self.names, help=self.help, metavar=self.metavar, **extra)

    def markdown_name(self) -> str:
        if self.doc_name:
            return self.doc_name
        if self.argument:
            return self.names[0]
        flags = ", ".join(self.names)
        return f"{flags} {self.metavar}" if self.metavar else flags


def _pairs(what: str) -> Callable[[list[str] | None], dict[str, str]]:
    def parse(items: list[str] | None) -> dict[str, str]:
        result: dict[str, str] = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            if not key or not sep:
                raise UsageError(f"invalid {what} {item!r}", hint="write it as KEY=VALUE")
            result[key] = value
        return result

    return parse


def parse_build_args(items: list[str] | None) -> dict[str, str]:
    """KEY=VALUE, or KEY alone to take its value from the environment (skipped when unset, as podman does)."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid build argument {item!r}", hint="write it as KEY=VALUE")
        if sep:
            result[key] = value
        elif key in os.environ:
            result[key] = os.environ[key]
    return result


parse_tls_verify = parse_bool("--tls-verify")


def parse_pull(value: str | None) -> PullPolicy:
    try:
        return PullPolicy(value or PullPolicy.MISSING)
    except ValueError:
        choices = [p.value for p in PullPolicy]
        raise UsageError(f"invalid pull policy {value!r}", hint=f"use {_choices_text(choices)}") from None


SECRET_FORMS = "id=ID,src=PATH or id=ID,env=VAR"
_SECRET_KEYS = ("id", "type", "src", "source", "env")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _secret_error(message: str) -> UsageError:
    # Never the item itself: a value pasted by mistake (--secret TOKEN) must not be printed.
    return UsageError(f"invalid --secret: {message}", hint=f"write it as {SECRET_FORMS} (buildx's type=file|env too)")


def secret_spec(item: str) -> tuple[str, str, str]:
    """(id, kind, where) of one --secret as buildx writes it: kind is "file" (where: the path) or "env" (the
    variable). `id` defaults to the file's name or the variable; `type=env` without `env=` reads the variable
    `src=` or else `id` names, as buildx does."""
    try:
        parts = next(csv.reader([item]), [])
    except csv.Error:
        raise _secret_error("its quoting does not parse") from None
    given: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise _secret_error("each part is KEY=VALUE, with KEY one of " + _choices_text(_SECRET_KEYS))
        if key not in _SECRET_KEYS:
            raise _secret_error(f"unknown key {key[:20]!r}; the keys are " + _choices_text(_SECRET_KEYS, "and"))
        key = "src" if key == "source" else key
        if key in given:
            raise _secret_error(f"{key}= is given twice")
        given[key] = value
    kind = given.get("type", "")
    if kind not in ("", "file", "env"):
        raise _secret_error(f"type={kind[:20]} is not a secret type; use type=file or type=env")
    if "src" in given and "env" in given:
        raise _secret_error("give src= (a file) or env= (a variable), not both")
    if kind == "file" and "env" in given:
        raise _secret_error("type=file takes src=PATH, not env=")
    if kind == "env" or "env" in given:
        where = given.get("env") or given.get("src") or given.get("id", "")
        kind = "env"
    else:
        where, kind = given.get("src", ""), "file"
    secret_id = given.get("id") or (os.path.basename(where.rstrip("/")) if kind == "file" else where)
    if not secret_id:
        raise _secret_error("no id (id=ID), and no src= or env= to take it from")
    if kind == "file" and not where:
        raise _secret_error(f"secret {secret_id} has no src=PATH or env=VAR")
    if not _SECRET_ID.match(secret_id) or secret_id in (".", ".."):
        raise _secret_error(f"id {secret_id[:40]!r} may hold only letters, digits, '_', '.' and '-'")
    return secret_id, kind, where


def read_secret(secret_id: str, kind: str, where: str) -> Secret:
    """The secret's bytes, read here on the client: a remote node's files and environment are not this host's."""
    if kind == "env":
        value = os.environb.get(os.fsencode(where)) if where else None
        if value is None:
            raise UsageError(
                f"--secret {secret_id}: the environment variable {where} is not set",
                hint=f"export {where}, or name another variable with env=",
            )
        return Secret(secret_id, value, f"env {where}")
    path = Path(where).expanduser()
    try:
        if not path.exists():
            raise UsageError(f"--secret {secret_id}: the file {where} does not exist")
        if not path.is_file():
            raise UsageError(f"--secret {secret_id}: {where} is not a regular file")
        return Secret(secret_id, path.read_bytes(), f"file {where}")
    except OSError as e:
        raise UsageError(f"--secret {secret_id}: cannot read {where}: {e.strerror or e}") from None


def parse_secrets(items: list[str] | None) -> tuple[Secret, ...]:
    """Each --secret, read now: a missing file or unset variable fails before any build."""
    secrets: dict[str, Secret] = {}
    for item in items or []:
        secret_id, kind, where = secret_spec(item)
        if secret_id in secrets:
            raise UsageError(f"--secret {secret_id} is given twice", hint="give each secret its own id")
        secrets[secret_id] = read_secret(secret_id, kind, where)
    return tuple(secrets.values())


def parse_epoch(value: str | None, name: str) -> int | None:
    """A SOURCE_DATE_EPOCH: a whole, non-negative number of seconds since 1970."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise UsageError(f"{name} must be a whole number of seconds since 1970 (e.g. 1700000000), not {value[:40]!r}")
    return int(text)


def parse_sbom(value: str | None) -> bool:
    """buildx's --sbom: bare or true makes one, false none; imgfront scans the image itself (no generator image)."""
    if value is None:
        return False
    if value.startswith("generator="):
        raise UsageError(
            "--sbom generator=IMAGE is BuildKit's scanner image: imgfront reads the image's package databases itself",
            hint="give --sbom alone",
        )
    return bool(parse_bool("--sbom")(value))


PROVENANCE_MODES = {"true": "min", "1": "min", "mode=min": "min", "mode=max": "max", "false": None, "0": None}


def parse_provenance(value: str | None) -> str | None:
    """buildx's --provenance: true and mode=min give the minimal statement, mode=max adds the build args' values;
    false or not given, none."""
    if value is None:
        return None
    text = value.strip().lower()
    if text not in PROVENANCE_MODES:
        raise UsageError(
            f"invalid --provenance value {value!r}", hint="use --provenance, --provenance=mode=max or =false"
        )
    return PROVENANCE_MODES[text]


def refuse_ssh(items: list[str] | None) -> None:
    if items:
        raise UsageError(
            "--ssh is not supported: podman's build API cannot forward an ssh agent or key, in any version",
            hint="give the step what it needs as a secret: --secret id=ID,src=PATH and RUN --mount=type=secret,id=ID",
        )


def _parse_platforms(values: list[str] | None) -> tuple[Any, ...]:
    from imgfront.platforms import parse_platforms

    return parse_platforms(values or [])


def _parse_build_contexts(values: list[str] | None) -> tuple[Any, ...]:
    from imgfront.run.context import parse_build_contexts

    return parse_build_contexts(values)


def _parse_outputs(values: list[str] | None) -> tuple[Any, ...]:
    from imgfront.outputs.types import parse_outputs

    return parse_outputs(values or [])


def _parse_caches(option: str, values: list[str] | None) -> tuple[str, ...]:
    from imgfront.oci.cache import parse_caches

    return parse_caches(option, values)


def _parse_cache_ttl(value: str | None) -> str | None:
    from imgfront.oci.cache import parse_cache_ttl

    return parse_cache_ttl(value)


def _output_help() -> str:
    files = "|".join(name for name in OUTPUT_TYPES if name != ImageOutput.name)
    return f"type={ImageOutput.name} (default), or type={files},dest=PATH; repeatable."


def _choices_text(choices: Iterable[str], last: str = "or") -> str:
    items = list(choices)
    return ", ".join(items[:-1]) + f" {last} " + items[-1] if len(items) > 1 else "".join(items)


TLS_VERIFY_HELP = (
    "Require HTTPS and a trusted certificate (default true); --tls-verify=false for a registry without TLS."
)
AUTHFILE_HELP = "The auth file; default REGISTRY_AUTH_FILE, then podman's and Docker's own."


def _setting(
    names: tuple[str, ...],
    dest: str,
    annotation: Any,
    help: str,
    parse: Callable[[Any], Any],
    *,
    podman: str,
    docker: str | None = None,
    metavar: str | None = None,
    **more: Any,
) -> Option:
    """A settings row: its value goes to every node's engine as it is, encoded by each adapter's table."""
    default = False if annotation is bool else None
    return Option(
        names,
        dest,
        annotation,
        help,
        default,
        parse=parse,
        podman=podman,
        docker=docker,
        field=SETTING,
        metavar=metavar,
        doc_name=more.pop("doc_name", f"{names[-1]} {metavar}" if metavar else ""),
        **more,
    )


_LIST, _TEXT = list[str] | None, str | None

# The settings of podman build's RUN steps and of the image it commits, each one API parameter (or two) on podman.
SETTINGS_OPTIONS: tuple[Option, ...] = (
    _setting(
        ("--network",),
        "network",
        _TEXT,
        "Network of RUN steps: none, host or private; default: the engine's (host on podman).",
        parse_choice("--network", NETWORKS),
        podman="networkmode, nsoptions",
        docker="network_mode",
        metavar="MODE",
        doc="the RUN steps' network: `none`, `host` or `private` (a network namespace of their own); "
        "default: the engine's, which is the node's host network on podman's API; see [Settings](#settings)",
    ),
    _setting(
        ("--add-host",),
        "add_host",
        _LIST,
        "HOST:IP for /etc/hosts in RUN steps; repeatable.",
        parse_add_hosts,
        podman="extrahosts",
        docker="extra_hosts",
        metavar="HOST:IP",
    ),
    _setting(
        ("--dns",),
        "dns",
        _LIST,
        "DNS server for RUN steps; repeatable.",
        parse_names("--dns"),
        podman="dnsservers",
        metavar="IP",
    ),
    _setting(
        ("--dns-search",),
        "dns_search",
        _LIST,
        "DNS search domain for RUN steps; repeatable.",
        parse_names("--dns-search"),
        podman="dnssearch",
        metavar="DOMAIN",
    ),
    _setting(
        ("--dns-option",),
        "dns_option",
        _LIST,
        "Option for resolv.conf in RUN steps, e.g. ndots:2; repeatable.",
        parse_names("--dns-option"),
        podman="dnsoptions",
        metavar="OPTION",
    ),
    _setting(
        ("--ulimit",),
        "ulimit",
        _LIST,
        "NAME=SOFT[:HARD] for RUN steps, e.g. nofile=1024:2048; repeatable.",
        parse_ulimits,
        podman="ulimits",
        metavar="NAME=SOFT[:HARD]",
    ),
    _setting(
        ("--shm-size",),
        "shm_size",
        _TEXT,
        "Size of /dev/shm in RUN steps, e.g. 64m.",
        parse_size("--shm-size"),
        podman="shmsize",
        docker="shmsize",
        metavar="SIZE",
    ),
    _setting(
        ("--memory",),
        "memory",
        _TEXT,
        "Memory limit of RUN steps, e.g. 512m.",
        parse_size("--memory"),
        podman="memory",
        docker="container_limits.memory",
        metavar="SIZE",
    ),
    _setting(
        ("--memory-swap",),
        "memory_swap",
        _TEXT,
        "Memory plus swap limit of RUN steps; -1 for unlimited swap.",
        parse_memory_swap,
        podman="memswap",
        docker="container_limits.memswap",
        metavar="SIZE",
    ),
    _setting(
        ("--cpu-shares",),
        "cpu_shares",
        int | None,
        "CPU shares (relative weight) of RUN steps.",
        lambda v: v,
        podman="cpushares",
        docker="container_limits.cpushares",
        metavar="N",
        min=1,
    ),
    _setting(
        ("--cpu-period",),
        "cpu_period",
        int | None,
        "CFS period of RUN steps, in microseconds.",
        lambda v: v,
        podman="cpuperiod",
        metavar="US",
        min=1,
    ),
    _setting(
        ("--cpu-quota",),
        "cpu_quota",
        int | None,
        "CFS quota of RUN steps, in microseconds per period.",
        lambda v: v,
        podman="cpuquota",
        metavar="US",
        min=1,
    ),
    _setting(
        ("--cpuset-cpus",),
        "cpuset_cpus",
        _TEXT,
        "CPUs RUN steps may use, e.g. 0-1,3.",
        parse_cpuset("--cpuset-cpus"),
        podman="cpusetcpus",
        docker="container_limits.cpusetcpus",
        metavar="LIST",
    ),
    _setting(
        ("--cpuset-mems",),
        "cpuset_mems",
        _TEXT,
        "Memory nodes RUN steps may use, e.g. 0.",
        parse_cpuset("--cpuset-mems"),
        podman="cpusetmems",
        metavar="LIST",
    ),
    _setting(
        ("--cgroup-parent",),
        "cgroup_parent",
        _TEXT,
        "The cgroup RUN steps are created under.",
        parse_text("--cgroup-parent"),
        podman="cgroupparent",
        metavar="PATH",
    ),
    _setting(
        ("--cap-add",),
        "cap_add",
        _LIST,
        "Give RUN steps this capability, e.g. CAP_NET_ADMIN; repeatable.",
        parse_names("--cap-add"),
        podman="addcaps",
        metavar="CAP",
    ),
    _setting(
        ("--cap-drop",),
        "cap_drop",
        _LIST,
        "Take this capability (or all) from RUN steps; repeatable.",
        parse_names("--cap-drop"),
        podman="dropcaps",
        metavar="CAP",
    ),
    _setting(
        ("--security-opt",),
        "security_opt",
        _LIST,
        "label=..., seccomp=PROFILE or apparmor=PROFILE; repeatable.",
        parse_security_opts,
        podman="labelopts, seccomp, apparmor",
        metavar="OPT",
        doc="`label=OPTION`, `seccomp=PROFILE.json` or `apparmor=PROFILE` for RUN steps; repeatable; a profile "
        "path is read on the node",
    ),
    _setting(
        ("--device",),
        "device",
        _LIST,
        "Give RUN steps a device of the node, HOST[:CONTAINER[:PERMS]]; repeatable.",
        parse_names("--device"),
        podman="devices",
        metavar="DEVICE",
        doc="a device of the node for RUN steps, `HOST[:CONTAINER[:PERMS]]`; repeatable",
    ),
    _setting(
        ("-v", "--volume"),
        "volume",
        _LIST,
        "Bind a folder of the node into RUN steps, /HOST:/CONTAINER[:OPTIONS]; repeatable.",
        parse_volumes,
        podman="volume",
        metavar="VOLUME",
        doc="a folder *of the node* bound into RUN steps, `/HOST:/CONTAINER[:OPTIONS]`; repeatable. podman's build "
        "API has it from 4.4: an older node refuses it before any build",
    ),
    _setting(
        ("--isolation",),
        "isolation",
        _TEXT,
        "How RUN steps are isolated: oci, chroot or rootless.",
        parse_choice("--isolation", ISOLATIONS),
        podman="isolation",
        metavar="TYPE",
    ),
    _setting(
        ("--env",),
        "env",
        _LIST,
        "K=V in the image's environment (K alone: from this environment); repeatable.",
        parse_env,
        podman="setenv",
        metavar="K=V",
    ),
    _setting(
        ("--unsetenv",),
        "unsetenv",
        _LIST,
        "Remove K from the image's environment; repeatable.",
        parse_names("--unsetenv"),
        podman="unsetenv",
        metavar="K",
    ),
    _setting(
        ("--squash",),
        "squash",
        bool,
        "Squash the layers this build makes into one (the base's stay).",
        parse_flag,
        podman="layers",
        docker="squash",
        doc="squash the layers this build adds into one on top of the base's; on Docker, the daemon must run "
        "with experimental features",
    ),
    _setting(
        ("--squash-all",),
        "squash_all",
        bool,
        "Squash the whole image, base included, into one layer.",
        parse_flag,
        podman="squash, layers",
    ),
    _setting(
        ("--layers",),
        "layers",
        _TEXT,
        "Cache each step's layer (default true); --layers=false (with =) for none.",
        parse_bool("--layers"),
        podman="layers",
        metavar="BOOL",
        flag_value="true",
        doc_name="--layers[=BOOL]",
    ),
    _setting(
        ("--format",),
        "format",
        _TEXT,
        "Image format: oci (default) or docker.",
        parse_choice("--format", FORMATS),
        podman="outputformat",
        metavar="oci|docker",
        doc="the instances' manifest and config media types: `oci` (default) or `docker`",
    ),
    _setting(
        ("--timestamp",),
        "timestamp",
        int | None,
        "Seconds since the epoch for the image's created time and history.",
        lambda v: v,
        podman="timestamp",
        metavar="SECONDS",
        min=0,
    ),
    _setting(
        ("--omit-history",),
        "omit_history",
        bool,
        "Leave the history out of the image's config.",
        parse_flag,
        podman="omithistory",
    ),
)

BUILD_OPTIONS: tuple[Option, ...] = (
    Option(
        ("CONTEXT",),
        "context",
        str | None,
        "The build context: a folder (default '.'), a git URL, or an http(s) URL of a tar or a Containerfile.",
        argument=True,
        doc="the build context: a folder (default `.`), a git URL (`URL.git#REF:DIR`, `github.com/...`), or an "
        "http(s) URL of a tar archive or a Containerfile; none with `-p`",
        podman=FRONTEND,
        docker=FRONTEND,
    ),
    Option(
        ("-f", "--file"),
        "file",
        Path | None,
        "The Containerfile; - reads it from standard input.",
        doc="the Containerfile; default `Containerfile`, then `Dockerfile`, in the context; `-` reads it from "
        "standard input",
        doc_name="-f, --file PATH",
        podman="dockerfile",
        docker="dockerfile",
    ),
    Option(
        ("--ignorefile",),
        "ignorefile",
        Path | None,
        "The ignore file to use instead of the context's .containerignore or .dockerignore.",
        doc_name="--ignorefile PATH",
    ),
    Option(
        ("-p", "--pipeline"),
        "pipeline_file",
        Path | None,
        "Build this pipeline file instead of a Containerfile.",
        doc_name="-p, --pipeline FILE",
        field=None,
        docker=None,
    ),
    Option(
        ("--checkpoint",),
        "checkpoint",
        list[str] | None,
        "With -p: keep this stage (id, type or *) as an image; repeatable.",
        doc_name="--checkpoint STAGE",
        field=None,
        docker=None,
    ),
    Option(
        ("-t", "--tag"),
        "tag",
        list[str] | None,
        "Name of the manifest list; repeatable.",
        doc="a name for the list; repeatable. Without `-t`, the images are left untagged and no list is made",
        doc_name="-t, --tag REF",
        field="tags",
    ),
    Option(
        ("--platform",),
        "platform",
        list[str] | None,
        "os/arch[/variant], comma-separated and repeatable; 'local' is this host.",
        doc="`os/arch[/variant]`, comma-separated, repeatable; `local` is this host",
        doc_name="--platform LIST",
        parse=_parse_platforms,
        field="platforms",
        podman="platform",
        docker="platform",
    ),
    Option(
        ("--build-arg",),
        "build_arg",
        list[str] | None,
        "KEY=VALUE for ARG.",
        doc="a build argument; `KEY` alone takes its value from the environment",
        doc_name="--build-arg K=V",
        parse=parse_build_args,
        field="build_args",
        podman="buildargs",
        docker="buildargs",
    ),
    Option(
        ("--target",),
        "target",
        str | None,
        "The stage to build.",
        doc="build up to this stage",
        doc_name="--target STAGE",
        podman="target",
        docker="target",
    ),
    Option(
        ("--build-context",),
        "build_context",
        list[str] | None,
        "NAME=DIR, NAME=docker-image://REF or NAME=https://URL: another context, for COPY --from=NAME; repeatable.",
        doc="another named context, which `COPY --from=NAME`, `RUN --mount=from=NAME` and `FROM NAME` see: a "
        "folder (sent to every node), `docker-image://REF`, or an http(s) URL the node fetches; repeatable",
        doc_name="--build-context NAME=SRC",
        parse=_parse_build_contexts,
        field="build_contexts",
        podman="additionalbuildcontexts",
        docker=None,
    ),
    Option(
        ("--no-cache",),
        "no_cache",
        bool,
        "Do not use cached layers.",
        default=False,
        podman="nocache",
        docker="nocache",
    ),
    Option(
        ("--pull",),
        "pull",
        str | None,
        f"Pull policy: always (the default of a bare --pull), {_choices_text(['missing', 'never', 'newer'])}.",
        doc="`always` (a bare `--pull`), `missing` (default), `never`, `newer`",
        doc_name="--pull[=POLICY]",
        parse=parse_pull,
        flag_value=PullPolicy.ALWAYS.value,
        bare_words=tuple(p.value for p in PullPolicy),
        podman="pullpolicy",
        docker="pull",
    ),
    Option(
        ("--label",),
        "label",
        list[str] | None,
        "KEY=VALUE image label.",
        doc="a label on every image",
        doc_name="--label K=V",
        parse=_pairs("label"),
        field="labels",
        podman="labels",
        docker="labels",
    ),
    Option(
        ("--annotation",),
        "annotation",
        list[str] | None,
        "KEY=VALUE annotation.",
        doc="an annotation in every image manifest",
        doc_name="--annotation K=V",
        parse=_pairs("annotation"),
        field="annotations",
        podman="annotations",
        docker=None,
        without=Unsupported.DROP,
    ),
    Option(
        ("--jobs",),
        "jobs",
        int | None,
        "Builds at once; default: all.",
        doc="builds at once; default: the number of platforms",
        doc_name="--jobs N",
        min=1,
    ),
    Option(
        ("-o", "--output"),
        "output",
        list[str] | None,
        _output_help(),
        doc="where the result goes; repeatable; default `type=image`. See [Outputs](#outputs)",
        doc_name="-o, --output type=T[,dest=PATH]",
        parse=_parse_outputs,
        field="outputs",
    ),
    Option(
        ("--load",),
        "load",
        bool,
        "Short for --output type=image, as in buildx.",
        default=False,
        doc="short for `--output type=image` (buildx's `--load`); may be given with other outputs",
        field=None,
    ),
    Option(
        ("--iidfile",),
        "iidfile",
        Path | None,
        "Write the list's id here.",
        doc="write `sha256:<id>` of the list (of the image, for one platform without `-t`)",
        doc_name="--iidfile PATH",
    ),
    Option(
        ("--metadata-file",),
        "metadata_file",
        Path | None,
        "Write build metadata.",
        doc="write the metadata file below",
        doc_name="--metadata-file PATH",
    ),
    Option(
        ("--progress",),
        "progress",
        str,
        "How to show progress.",
        default=ProgressMode.AUTO.value,
        doc=_choices_text(f"`{m}` ({m.help})" if m is ProgressMode.AUTO else f"`{m}`" for m in ProgressMode)
        + "; see [Progress](#progress)",
        doc_name="--progress MODE",
        choices=ProgressMode,
        field=None,
    ),
    Option(
        ("--keep-failed",),
        "keep_failed",
        bool,
        "Keep the images that did build when another platform fails.",
        default=False,
        doc="when a platform fails, keep the images of the platforms that did build",
    ),
    Option(
        ("--node",),
        "node",
        list[str] | None,
        "A node: a system connection, or unix://, ssh://, tcp:// (docker+...); repeatable.",
        doc="a node to build on: a system connection, or a `unix://`, `ssh://` or `tcp://` URI "
        "(`docker+` before it for Docker); repeatable",
        doc_name="--node NODE",
        field=None,
    ),
    Option(
        ("--farm",),
        "farm",
        str | None,
        "Build on the nodes of this farm.",
        doc_name="--farm NAME",
        field=None,
    ),
    Option(
        ("--local/--no-local",),
        "local_node",
        bool,
        "Whether the local engine builds too (the list is local).",
        default=True,
        doc_name="--local, --no-local",
        field=None,
    ),
    Option(
        ("--identity",),
        "identity",
        Path | None,
        "ssh key for ssh nodes given as URIs.",
        doc_name="--identity KEYFILE",
        field=None,
    ),
    Option(
        ("--cleanup",),
        "cleanup",
        bool,
        "Remove the built images from remote nodes once they are home.",
        default=False,
    ),
    Option(
        ("--connect-timeout",),
        "connect_timeout",
        float,
        "Seconds to reach a node.",
        default=15.0,
        doc_name="--connect-timeout SECONDS",
        min=1,
        field=None,
    ),
    Option(
        ("--idle-timeout",),
        "idle_timeout",
        float | None,
        "Seconds a build may stay silent before its node counts as lost.",
        doc_name="--idle-timeout SECONDS",
        min=1,
        field=None,
    ),
    Option(
        ("--push",),
        "push",
        bool,
        "Push the list and every instance to the registry of each -t.",
        default=False,
        doc="push the list and every instance to the registry of each `-t`; see [push.md](push.md)",
    ),
    Option(
        ("--push-from-nodes",),
        "push_from_nodes",
        bool,
        "With --push: each node pushes its own image; the list is written to the registry, not kept here.",
        default=False,
        doc="with `--push`: each node pushes its own image, and the index is written to the registry",
        field=None,
    ),
    Option(
        ("--push-by-digest",),
        "push_by_digest",
        bool,
        "Push each platform's image by digest only: no tag, no list (merge later: imgfront manifest create).",
        default=False,
        doc="push each platform's image by digest only (no tag, no list), for a CI matrix's merge",
        field=None,
    ),
    Option(
        ("--tls-verify",),
        "tls_verify",
        str | None,
        TLS_VERIFY_HELP,
        doc="for the push and the registry cache: `--tls-verify=false` for a registry without TLS",
        doc_name="--tls-verify[=BOOL]",
        metavar="BOOL",
        parse=parse_tls_verify,
        flag_value="true",
        field=None,
    ),
    Option(
        ("--authfile",),
        "authfile",
        Path | None,
        AUTHFILE_HELP,
        doc="for the push and the registry cache: the auth file to use",
        doc_name="--authfile PATH",
        field=None,
    ),
    Option(
        ("--engine",),
        "engine",
        str,
        "The local engine: podman, or Docker (DOCKER_HOST); Docker holds no list, so push or --output.",
        default="podman",
        doc="the local engine; Docker holds no list, so push or write a file output",
        doc_name="--engine podman|docker",
        choices=LocalEngine,
        field=None,
    ),
    # -- secrets (issue 13): these rows stay together --
    Option(
        ("--secret",),
        "secret",
        list[str] | None,
        f"A secret for RUN --mount=type=secret,id=ID: {SECRET_FORMS}; repeatable.",
        doc="a secret that `RUN --mount=type=secret,id=ID` reads at `/run/secrets/ID`, from a file or a variable "
        "on this host; never in an image, a log or a file imgfront writes. Repeatable; see [Secrets](#secrets)",
        doc_name="--secret id=ID,src=PATH|env=VAR",
        parse=parse_secrets,
        field="secrets",
        podman="secrets",
        docker=None,
    ),
    Option(
        ("--ssh",),
        "ssh",
        list[str] | None,
        "Not supported: podman's build API cannot forward ssh; use --secret.",
        doc="refused: podman's build API cannot forward an ssh agent or key in any version; use `--secret`",
        doc_name="--ssh ID[=SOCKET|KEY]",
        parse=refuse_ssh,
        field=None,
        podman=None,
        docker=None,
    ),
    # -- the registry build cache (docs/build.md, "Registry build cache") --
    Option(
        ("--cache-from",),
        "cache_from",
        list[str] | None,
        "Pull cached steps from this registry repository (REPO or type=registry,ref=REPO); repeatable.",
        doc="use the steps cached in this registry repository: `REPO` or `type=registry,ref=REPO`; repeatable "
        "(one on podman 4.3). See [Registry build cache](#registry-build-cache)",
        doc_name="--cache-from REPO",
        metavar="REPO",
        parse=lambda values: _parse_caches("--cache-from", values),
        podman="cachefrom",
        docker=None,  # the legacy builder's cache_from means local images, not a registry cache
    ),
    Option(
        ("--cache-to",),
        "cache_to",
        list[str] | None,
        "Push every built step to this registry repository (REPO or type=registry,ref=REPO[,mode=max]).",
        doc="push every step to this registry repository as a cache: `REPO` or `type=registry,ref=REPO`; "
        "repeatable (one on podman 4.3)",
        doc_name="--cache-to REPO",
        metavar="REPO",
        parse=lambda values: _parse_caches("--cache-to", values),
        podman="cacheto",
        docker=None,
    ),
    Option(
        ("--cache-ttl",),
        "cache_ttl",
        str | None,
        "Use only cached steps newer than this duration (e.g. 168h).",
        doc="use only cached steps made less than this long ago, a Go duration such as `168h`",
        doc_name="--cache-ttl DURATION",
        metavar="DURATION",
        parse=_parse_cache_ttl,
        podman="cachettl",
        docker=None,
    ),
    # -- reproducible images (issue 15; docs/reproducible.md): these rows stay together --
    Option(
        ("--source-date-epoch",),
        "source_date_epoch",
        str | None,
        "Reproducible mode: the same sources give the same digests, with times at most this (seconds since 1970).",
        doc="reproducible mode: every platform's image is normalised for this SOURCE_DATE_EPOCH (seconds since "
        "1970), so the same sources give the same digests on any engine; default: `SOURCE_DATE_EPOCH` from the "
        "environment. See [reproducible.md](reproducible.md)",
        doc_name="--source-date-epoch N",
        metavar="N",
        parse=lambda value: parse_epoch(value, "--source-date-epoch"),
    ),
    Option(
        ("--reproducible",),
        "reproducible",
        bool,
        "Reproducible mode, the epoch being the time of the context's latest git commit.",
        default=False,
        doc="reproducible mode with the epoch of the context's latest git commit (`git log -1 --format=%ct`); "
        "the context must be a folder in a git work tree",
        field=None,
    ),
    # -- attestations (issue 15; docs/attestations.md) --
    Option(
        ("--sbom",),
        "sbom",
        str | None,
        "Attach an SPDX 2.3 SBOM to each platform's image (--sbom=false: none).",
        default=None,
        doc="an SPDX 2.3 JSON SBOM per platform (packages from dpkg, apk, Python and rpm databases, every file's "
        "checksums), attached as an OCI 1.1 artifact to the image in the registry, the layout or local storage. "
        "See [attestations.md](attestations.md)",
        doc_name="--sbom[=BOOL]",
        metavar="BOOL",
        flag_value="true",
        parse=parse_sbom,
    ),
    Option(
        ("--provenance",),
        "provenance",
        str | None,
        "Attach a SLSA v1 provenance statement to each platform's image: true (mode=min), mode=max, false.",
        default=None,
        doc="a SLSA v1 provenance statement (in-toto) per platform, attached as `--sbom`'s is; `mode=max` also "
        "records the build args' values (never a secret's)",
        doc_name="--provenance[=mode=min|max]",
        metavar="MODE",
        flag_value="true",
        bare_words=tuple(PROVENANCE_MODES),
        parse=parse_provenance,
    ),
    *SETTINGS_OPTIONS,
)

OPTIONS_BY_DEST = {o.dest: o for o in BUILD_OPTIONS}


def with_build_options(function: Callable[..., None]) -> Callable[..., None]:
    """Give `function(**given)` one typer parameter per row, so that typer makes the options from the table."""
    parameters = [
        inspect.Parameter(
            o.dest,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=o.default,
            annotation=Annotated[o.annotation, o.typer_info()],
        )
        for o in BUILD_OPTIONS
    ]
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    return function


# -- what the table means for a run ------------------------------------------------------------------


def fit_engines(
    options: BuildOptions,
    local_driver: str,
    local_holds_lists: bool,
    nodes: Sequence[NodeInfo],
    note: Callable[[str], None],
) -> BuildOptions:
    """The rules that depend on the engines: the options as they will be carried out, or UsageError.

    A local engine that cannot hold a list (Docker) pushes from the nodes instead; an option an engine lacks,
    or that needs a newer podman than a node runs, is refused (or dropped, where the row says so).
    """
    o = options
    if o.push is not None and not o.tags:
        raise UsageError("--push needs -t", hint="name the image in its registry, e.g. -t registry.example/app:1")
    if (
        o.push is not None
        and o.push.mode == PushMode.HERE
        and not local_holds_lists
        and o.source_date_epoch is not None
    ):
        raise UsageError(
            f"the local {local_driver} engine cannot hold the list a reproducible --push is made from",
            hint="build with a local podman, or write the images to a file (--output type=oci-layout,dest=DIR)",
        )
    if o.push is not None and o.push.mode == PushMode.HERE and not local_holds_lists:
        note(
            f"the local {local_driver} engine cannot hold a list: each node pushes its own image "
            "and the list is written to the registry (as --push-from-nodes)"
        )
        o = replace(o, push=replace(o.push, mode=PushMode.NODES))
    if o.keeps_list and o.tags and not local_holds_lists:
        raise UsageError(
            f"the local {local_driver} engine cannot hold the manifest list -t names",
            hint="push it (--push) or write it to a file (--output type=oci-layout,dest=DIR)",
        )
    if o.iidfile and not (o.tags and o.keeps_list) and len(o.platforms) > 1:
        raise UsageError(
            "--iidfile needs -t and type=image when building more than one platform",
            hint="the list made from -t is what the id file names",
        )
    for row in given_rows(o):
        for node in nodes:
            check_support(row, node, note)
    for node in nodes:
        check_cache_lists(o, node)
    return o


def check_cache_lists(options: BuildOptions, node: NodeInfo) -> None:
    """Podman 4.3 takes one cache repository each way; 4.4 and later take several."""
    if node.driver != "podman" or version_tuple(node.server_version) >= CACHE_LISTS_SINCE:
        return
    for name, repos in (("--cache-from", options.cache_from), ("--cache-to", options.cache_to)):
        if len(repos) > 1:
            wanted = ".".join(map(str, CACHE_LISTS_SINCE))
            raise UsageError(
                f"{name} names {len(repos)} repositories; node {node.name} runs podman {node.server_version}, "
                "which takes one",
                hint=f"give {name} once, or build on podman {wanted} or newer",
            )


def given_rows(options: BuildOptions) -> list[Option]:
    """The rows whose BuildOptions field holds something other than its default: what this build asks of engines."""
    defaults = {f.name: f.default for f in fields(options)}
    given = []
    for row in BUILD_OPTIONS:
        name = row.field_name
        if row.setting:
            if row.dest in options.settings:
                given.append(row)
        elif name and name in defaults and getattr(options, name) not in (defaults[name], None, (), {}, False):
            given.append(row)
    return given


def check_support(row: Option, node: NodeInfo, note: Callable[[str], None]) -> None:
    """Refuse an option this node's engine lacks (unless the row drops it: then say so), or one its podman is too
    old for."""
    if row.support(node.driver) is None:
        if row.without is Unsupported.DROP:
            note(f"{row.name} is not supported on {node.driver} nodes: {node.name}'s images are built without it")
            return
        raise UsageError(
            f"{row.name} is not supported on {node.driver} nodes ({node.name})",
            hint=f"build on {'podman' if node.driver == 'docker' else 'Docker'} nodes, or drop {row.name}",
        )
    lacking = dict(node.lacks).get(row.dest)
    if lacking is not None:
        raise UsageError(
            f"{row.name} is not supported on {node.driver} node {node.name}: {lacking}", hint=f"or drop {row.name}"
        )
    since = row.podman_since if node.driver == "podman" else None
    if since is not None and version_tuple(node.server_version) < since:
        wanted = ".".join(map(str, since))
        raise UsageError(
            f"{row.name} needs podman {wanted} or newer; node {node.name} runs {node.server_version}",
            hint=f"upgrade that node, or drop {row.name}",
        )


# -- docs ----------------------------------------------------------------------------------------------


def _begin(block: str) -> str:
    return f"<!-- generated: {block} (python -m imgfront.options --write docs/build.md); do not edit -->"


def _end(block: str) -> str:
    return f"<!-- end: {block} -->"


def _engine_cell(row: Option, driver: str) -> str:
    param = row.support(driver)
    if param == FRONTEND:
        return FRONTEND
    if param is None:
        return "no (dropped)" if row.without is Unsupported.DROP else "no"
    since = row.podman_since if driver == "podman" else None
    return f"`{param}` ({'.'.join(map(str, since))}+)" if since else f"`{param}`"


def options_markdown() -> str:
    """docs/build.md's options table: each option, what it means, and what it becomes on each engine."""
    lines = ["| option | meaning | podman | Docker |", "| --- | --- | --- | --- |"]
    for row in BUILD_OPTIONS:
        meaning = row.doc or row.help.rstrip(".")
        meaning = meaning[0].lower() + meaning[1:] if meaning[1:2].islower() else meaning
        name = row.markdown_name().replace("|", "\\|")
        lines.append(f"| `{name}` | {meaning} | {_engine_cell(row, 'podman')} | {_engine_cell(row, 'docker')} |")
    return "\n".join(lines) + "\n"


def progress_markdown() -> str:
    """docs/build.md's list of progress modes."""
    return "".join(f"- **{mode}**: {mode.help}.\n" for mode in ProgressMode)


DOCS_BLOCKS: dict[str, Callable[[], str]] = {
    "options table": options_markdown,
    "progress modes": progress_markdown,
}


def docs_block(text: str, block: str) -> str:
    """What a document holds between a block's markers."""
    start, end = text.index(_begin(block)) + len(_begin(block)), text.index(_end(block))
    return text[start:end].strip("\n") + "\n"


def write_docs(path: Path) -> None:
    """Regenerate every block in the document, leaving the rest as it is."""
    text = path.read_text()
    for block, generate in DOCS_BLOCKS.items():
        start, end = text.index(_begin(block)) + len(_begin(block)), text.index(_end(block))
        text = text[:start] + "\n" + generate() + text[end:]
    path.write_text(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(options_markdown(), end="")
    elif sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        write_docs(Path(sys.argv[2]))
    else:
        print("usage: python -m imgfront.options --markdown | --write docs/build.md", file=sys.stderr)
        sys.exit(2)
