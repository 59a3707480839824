"""The SLSA v1 provenance statement: its shape, what it says of the build, and what it never says."""

from __future__ import annotations

import datetime
import json

from imgfront.images.provenance import PREDICATE_TYPE, REDACTED, Base, BuildFacts, provenance_statement
from imgfront.platforms import Platform

DIGEST = "sha256:" + "d" * 64
WHEN = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)


def facts(**changes: object) -> BuildFacts:
    values: dict[str, object] = {
        "platform": Platform.parse("linux/arm64"),
        "containerfile": "Containerfile",
        "containerfile_digest": "sha256:" + "a" * 64,
        "context_digest": "sha256:" + "b" * 64,
        "node": "local",
        "engine": "podman",
        "engine_version": "4.3.1",
        "imgfront_version": "0.1.0",
        "invocation": "run-1",
        "build_args": {"VERSION": "1.2", "TOKEN": "hunter2"},
        "secret_ids": ("index",),
        "bases": (Base("docker.io/library/busybox:1", "sha256:" + "c" * 64),),
        "started": WHEN,
        "finished": WHEN + datetime.timedelta(seconds=5),
    }
    values.update(changes)
    return BuildFacts(**values)  # type: ignore[arg-type]


def statement(f: BuildFacts, secrets: tuple[str, ...] = ("hunter2",)) -> dict[str, object]:
    data = provenance_statement(f, "localhost/app:1", DIGEST, secrets)
    return json.loads(data)  # type: ignore[no-any-return]


def test_the_statement_names_its_subject_the_builder_the_node_and_the_inputs() -> None:
    s = statement(facts())
    assert s["_type"] == "https://in-toto.io/Statement/v1" and s["predicateType"] == PREDICATE_TYPE
    assert s["subject"] == [{"name": "localhost/app:1", "digest": {"sha256": "d" * 64}}]
    definition = s["predicate"]["buildDefinition"]  # type: ignore[index]
    assert definition["externalParameters"]["platform"] == "linux/arm64"
    assert definition["externalParameters"]["buildArgs"]["VERSION"] == "1.2"
    assert definition["internalParameters"] == {"engine": "podman", "engineVersion": "4.3.1", "node": "local"}
    dependencies = definition["resolvedDependencies"]
    assert {"name": "context", "digest": {"sha256": "b" * 64}} in dependencies
    assert {"name": "Containerfile", "digest": {"sha256": "a" * 64}} in dependencies
    assert {"uri": "docker://docker.io/library/busybox:1", "digest": {"sha256": "c" * 64}} in dependencies
    run = s["predicate"]["runDetails"]  # type: ignore[index]
    assert run["builder"]["version"] == {"imgfront": "0.1.0", "podman": "4.3.1"}
    assert run["metadata"]["startedOn"] == "2026-12-02T12:00:00Z"


def test_no_secret_value_is_written_and_min_mode_names_the_build_args_only() -> None:
    data = provenance_statement(facts(), "localhost/app:1", DIGEST, ("hunter2",))
    assert b"hunter2" not in data and REDACTED.encode() in data
    assert statement(facts())["predicate"]["buildDefinition"]["externalParameters"]["secrets"] == ["index"]  # type: ignore[index]
    minimal = statement(facts(mode="min"))["predicate"]["buildDefinition"]["externalParameters"]  # type: ignore[index]
    assert minimal["buildArgs"] == ["TOKEN", "VERSION"]


def test_reproducible_mode_gives_the_same_bytes_whenever_it_runs() -> None:
    first = facts(source_date_epoch=1_700_000_000)
    later = facts(source_date_epoch=1_700_000_000, started=WHEN + datetime.timedelta(days=30), finished=None)
    one = provenance_statement(first, "localhost/app:1", DIGEST)
    assert one == provenance_statement(later, "localhost/app:1", DIGEST)
    assert b"startedOn" not in one and b'"sourceDateEpoch":1700000000' in one


def test_a_base_the_engine_cannot_resolve_is_named_without_a_digest() -> None:
    s = statement(facts(bases=(Base("localhost/base:1", None),)))
    assert {"uri": "docker://localhost/base:1"} in s["predicate"]["buildDefinition"]["resolvedDependencies"]  # type: ignore[index]
