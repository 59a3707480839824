"""SLSA v1 provenance for one platform's image, as an in-toto Statement (https://slsa.dev/spec/v1.0/provenance).

The statement is made with the in-toto attestation library's types (`in_toto_attestation`), so its shape is
the specification's, and written as canonical JSON: the same facts give the same bytes.

What it holds (docs/attestations.md has the field-by-field table):

- the subject: the image manifest the statement is attached to, by its digest where it is attached (a
  registry's, a layout's or local storage's: podman's push compresses again, so each has its own);
- `buildDefinition`: the Containerfile (path and digest), the target, the platform, the build args (their
  names only in `min` mode; values matching a `--secret`'s are never written) and the secrets' ids; the
  resolved dependencies are the base images with their digests and the context with the digest of the tar
  every node was sent;
- `runDetails`: imgfront and its version as the builder, the node and its engine with its version, the run's
  id, and when it started and finished (left out in reproducible mode, where the statement must not change).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgfront.platforms import Platform

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:imgfront:buildtype:containerfile:v1"
BUILDER_ID = "urn:imgfront:builder"
MODES = ("min", "max")
REDACTED = "<redacted: the value of a --secret>"


@dataclass(frozen=True)
class Base:
    """An image a FROM names, and the digest it resolved to on the node (None where the engine cannot say)."""

    ref: str
    digest: str | None


@dataclass(frozen=True)
class BuildFacts:
    """What one platform's build was made of and where; everything the statement says but its subject."""

    platform: Platform
    containerfile: str  # its path inside the context
    containerfile_digest: str
    context_digest: str  # of the context tar every node was sent
    node: str
    engine: str  # the node's driver: podman or docker
    engine_version: str
    imgfront_version: str
    invocation: str  # this run's id
    build_args: Mapping[str, str] = field(default_factory=dict)
    secret_ids: tuple[str, ...] = ()
    target: str | None = None
    bases: tuple[Base, ...] = ()
    named_contexts: tuple[str, ...] = ()  # --build-context names
    started: datetime.datetime | None = None
    finished: datetime.datetime | None = None
    source_date_epoch: int | None = None
    mode: str = "max"


def _digest_map(digest: str) -> dict[str, str]:
    algorithm, _, value = digest.partition(":")
    return {algorithm: value}


def _build_args(facts: BuildFacts, secrets: Sequence[str]) -> dict[str, str] | list[str]:
    if facts.mode == "min":
        return sorted(facts.build_args)
    return {name: REDACTED if value in secrets else value for name, value in sorted(facts.build_args.items())}


def _predicate(facts: BuildFacts, secrets: Sequence[str]) -> Any:
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor

    external: dict[str, Any] = {
        "platform": str(facts.platform),
        "containerfile": facts.containerfile,
        "buildArgs": _build_args(facts, secrets),
    }
    if facts.target:
        external["target"] = facts.target
    if facts.secret_ids:
        external["secrets"] = sorted(facts.secret_ids)  # the ids a RUN mounts; never the values
    if facts.named_contexts:
        external["buildContexts"] = sorted(facts.named_contexts)
    internal: dict[str, Any] = {"engine": facts.engine, "engineVersion": facts.engine_version, "node": facts.node}
    if facts.source_date_epoch is not None:
        internal["sourceDateEpoch"] = facts.source_date_epoch
    dependencies = [
        ResourceDescriptor(name="context", digest=_digest_map(facts.context_digest)).pb,
        ResourceDescriptor(name=facts.containerfile, digest=_digest_map(facts.containerfile_digest)).pb,
    ]
    for base in facts.bases:
        digest = _digest_map(base.digest) if base.digest else None
        dependencies.append(ResourceDescriptor(uri=f"docker://{base.ref}", digest=digest).pb)

    provenance = provenance_pb2.Provenance()
    definition = provenance.build_definition
    definition.build_type = BUILD_TYPE
    definition.external_parameters.update(external)
    definition.internal_parameters.update(internal)
    definition.resolved_dependencies.extend(dependencies)
    run = provenance.run_details
    run.builder.id = BUILDER_ID
    run.builder.version["imgfront"] = facts.imgfront_version
    run.builder.version[facts.engine] = facts.engine_version
    run.metadata.invocation_id = facts.invocation
    if facts.source_date_epoch is None:
        for stamp, when in ((run.metadata.started_on, facts.started), (run.metadata.finished_on, facts.finished)):
            if when is not None:
                stamp.FromDatetime(when.astimezone(datetime.UTC))
    return json_format.MessageToDict(provenance)


def provenance_statement(facts: BuildFacts, subject: str, subject_digest: str, secrets: Sequence[str] = ()) -> bytes:
    """The in-toto Statement of `facts` about the manifest `subject_digest` (named `subject`), canonical JSON.

    `secrets` are the build's secret values: a build arg holding one is written as redacted.
    """
    from google.protobuf import json_format
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    if facts.mode not in MODES:
        raise ValueError(f"provenance mode {facts.mode!r}")
    statement = Statement(
        [ResourceDescriptor(name=subject, digest=_digest_map(subject_digest)).pb],
        PREDICATE_TYPE,
        _predicate(facts, secrets),
    )
    statement.validate()
    data = json_format.MessageToDict(statement.pb)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
