"""One `imgfront build` as the command line gave it, resolved: every rule between options that needs no engine.

Above the build in the layers: it makes the BuildOptions, loads a pipeline, and names the push; the options table
(imgfront/options.py) says what each option is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgfront.errors import UsageError
from imgfront.modes import ProgressMode, PushMode
from imgfront.options import BUILD_OPTIONS, OPTIONS_BY_DEST, parse_epoch
from imgfront.run.build import BuildOptions

if TYPE_CHECKING:
    from imgfront.pipeline import Pipeline  # loaded only for -p: a Containerfile build needs no stage types


@dataclass(frozen=True)
class Invocation:
    """One `imgfront build` as resolved: the build's options and how to run it (nodes, progress, engine)."""

    options: BuildOptions
    pipeline: Pipeline | None
    checkpoints: tuple[str, ...]
    progress: ProgressMode
    engine: str
    nodes: tuple[str, ...]
    farm: str | None
    local_node: bool
    identity: Path | None
    connect_timeout: float
    idle_timeout: float | None


def resolve(given: Mapping[str, Any]) -> Invocation:
    """Every rule between options that needs no engine, in one place; raises UsageError before anything runs."""
    from imgfront.oci.push import PushOptions
    from imgfront.oci.references import parse_reference
    from imgfront.outputs.types import wants_image
    from imgfront.platforms import host_platform
    from imgfront.run.context import context_folder

    values = {o.dest: given.get(o.dest, o.default) for o in BUILD_OPTIONS}
    parsed = {o.dest: o.parse(values[o.dest]) if o.parse else values[o.dest] for o in BUILD_OPTIONS}
    context, file, target = values["context"], values["file"], values["target"]
    platforms, tags = parsed["platform"], list(values["tag"] or [])
    pipeline = None
    if values["pipeline_file"] is not None:
        from imgfront.pipeline import load
        from imgfront.pipeline.build import default_tag

        if parsed["secret"]:
            raise UsageError(
                "-p cannot take --secret", hint="a pipeline's stages mount no secrets; it is for Containerfiles"
            )
        for value, name in ((context, "a build context"), (file, "-f/--file"), (target, "--target")):
            if value is not None:
                raise UsageError(
                    f"-p/--pipeline cannot be combined with {name}",
                    hint="the pipeline compiles its own; to build part of it, imgfront compile it and use podman build",
                )
        pipeline = load(values["pipeline_file"])
        platforms = platforms or pipeline.platforms
        tags = tags or [t for t in (default_tag(pipeline),) if t]
        if values["build_context"]:
            raise UsageError("-p cannot be combined with --build-context", hint="a pipeline's sources name its files")
    elif values["checkpoint"]:
        raise UsageError("--checkpoint needs a pipeline", hint="name the pipeline file with -p")
    if values["file"] is not None and str(values["file"]) == "-":
        from imgfront.run.context import containerfile_from_stdin

        parsed["file"] = containerfile_from_stdin()
    outputs = parsed["output"]
    if values["load"] and not any(s.type == "image" for s in outputs):
        from imgfront.outputs.types import OutputSpec

        outputs = (*outputs, OutputSpec("image"))
    if pipeline is not None and (len(outputs) > 1 or not wants_image(outputs)):
        raise UsageError("-p builds into local storage only; --output with a file is for Containerfiles")
    push, from_nodes, by_digest = values["push"], values["push_from_nodes"], values["push_by_digest"]
    if (from_nodes or by_digest) and not (push or by_digest):
        raise UsageError("--push-from-nodes needs --push")
    if from_nodes and by_digest:
        raise UsageError("--push-from-nodes and --push-by-digest cannot both be given", hint="by digest, nodes push")
    pushing = None
    if push or by_digest:
        mode = PushMode.DIGEST if by_digest else PushMode.NODES if from_nodes else PushMode.HERE
        pushing = PushOptions(mode, parsed["tls_verify"], values["authfile"])
        if pipeline is not None and mode != PushMode.HERE:
            raise UsageError("-p builds on the local engine: push a pipeline with --push alone")
    epoch = _epoch(parsed["source_date_epoch"], values["reproducible"], context, pipeline is not None)
    if epoch is not None and pushing is not None and pushing.mode != PushMode.HERE:
        name = "--push-by-digest" if pushing.mode == PushMode.DIGEST else "--push-from-nodes"
        raise UsageError(
            f"{name} cannot push reproducible images: each node would push its own engine's, not the normalised ones",
            hint="push from here (--push alone): imgfront pushes the normalised images itself",
        )
    caching = bool(parsed["cache_from"] or parsed["cache_to"])
    if not (pushing or caching) and (values["tls_verify"] is not None or values["authfile"] is not None):
        raise UsageError("--tls-verify and --authfile are for --push, --cache-from and --cache-to")
    fields_given = {
        o.field_name: parsed[o.dest]
        for o in BUILD_OPTIONS
        if o.field_name and o.field_name not in _RESOLVED_HERE and not o.setting
    }
    settings = {o.dest: parsed[o.dest] for o in BUILD_OPTIONS if o.setting and parsed[o.dest] is not None}
    _check_settings(settings)
    options = BuildOptions(
        **fields_given,
        context=context_folder(context) if context is not None else Path("."),
        platforms=platforms or (host_platform(),),
        tags=tuple(str(parse_reference(t)) for t in tags),
        outputs=outputs,
        push=pushing,
        cache_tls_verify=parsed["tls_verify"] if caching else None,
        cache_authfile=values["authfile"] if caching else None,
        settings=settings,
        source_date_epoch=epoch,
    )
    if pipeline is not None and (values["node"] or values["farm"] or not values["local_node"]):
        raise UsageError("-p builds on the local engine; --node, --farm and --no-local are for Containerfiles")
    if pipeline is not None and values["engine"] != "podman":
        raise UsageError("-p builds on local podman: checkpoints and base images live in its storage")
    return Invocation(
        options=options,
        pipeline=pipeline,
        checkpoints=tuple(values["checkpoint"] or ()),
        progress=ProgressMode(values["progress"]),
        engine=values["engine"],
        nodes=tuple(values["node"] or ()),
        farm=values["farm"],
        local_node=values["local_node"],
        identity=values["identity"],
        connect_timeout=values["connect_timeout"],
        idle_timeout=values["idle_timeout"],
    )


# fields resolve() fills itself
_RESOLVED_HERE = frozenset({"context", "platforms", "tags", "outputs", "push", "source_date_epoch"})


def _epoch(given: int | None, reproducible: bool, context: str | None, pipeline: bool) -> int | None:
    """Reproducible mode's epoch: --source-date-epoch, else --reproducible's commit time, else SOURCE_DATE_EPOCH."""
    if given is not None and reproducible:
        raise UsageError("--source-date-epoch and --reproducible both give the epoch", hint="give one of them")
    if given is not None:
        return given
    if reproducible:
        if pipeline:
            raise UsageError("--reproducible needs a context folder; with -p give --source-date-epoch N")
        from imgfront.run.context import commit_epoch

        return commit_epoch(context if context is not None else ".")
    return parse_epoch(
        os.environ.get("SOURCE_DATE_EPOCH") or None, "SOURCE_DATE_EPOCH"
    )  # fields resolve() fills itself


def _check_settings(settings: Mapping[str, Any]) -> None:
    """The rules podman build has between its settings options, so that every engine gets a build podman takes."""

    def given(*dests: str) -> str:
        return ", ".join(OPTIONS_BY_DEST[d].name for d in dests if d in settings)

    if "squash" in settings and ("layers" in settings or "squash_all" in settings):
        raise UsageError(
            f"--squash cannot be combined with {given('layers', 'squash_all')}",
            hint="--squash already builds without layers; --squash-all squashes the base too",
        )
    dns = given("dns", "dns_search", "dns_option", "add_host")
    if settings.get("network") == "none" and dns:
        raise UsageError(
            f"{dns} cannot be used with --network none",
            hint="podman writes no resolv.conf or /etc/hosts for a RUN step without a network",
        )
    if settings.get("isolation") == "chroot" and settings.get("network", "host") != "host":
        raise UsageError(
            "--isolation chroot runs RUN steps in the node's network: --network must be host",
            hint="drop --network, or use --isolation oci",
        )
