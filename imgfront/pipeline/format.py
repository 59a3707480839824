"""Loading a pipeline file (YAML or JSON, version 1) into frozen values, with every error naming its place."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from imgfront.errors import UsageError
from imgfront.pipeline.model import (
    BUILD,
    IMAGE_OUTPUT,
    MAIN,
    Output,
    Pipeline,
    SourceItem,
    Sources,
    StageSpec,
    Tree,
    canonical_json,
)
from imgfront.pipeline.schema import DOCUMENT, PipelineError, Where, options_errors, validate
from imgfront.pipeline.stages import CheckContext, StageRegistry, UnknownStageType, default_registry
from imgfront.platforms import Platform, parse_platforms

OUTPUTS = (IMAGE_OUTPUT,)


def load(path: Path, registry: StageRegistry | None = None) -> Pipeline:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read pipeline file {path}: {e}") from e
    return parse(text, path, registry)


def parse(text: str, path: Path, registry: StageRegistry | None = None) -> Pipeline:
    """Parse the text of the pipeline file at `path` (whose folder `copy` reads from)."""
    document = _parse_json(text, path) if path.suffix == ".json" else _parse_yaml(text, path)
    if document is None:
        raise PipelineError(path, None, "the file is empty", hint="see docs/pipelines.md for the format")
    _check_plain(document, path, ())
    validate(document, DOCUMENT, path)
    return _build(document, path, registry or default_registry())


def _parse_yaml(text: str, path: Path) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}"
        problem = ": ".join(p for p in (e.context, e.problem) if p)
        raise UsageError(f"{where}: {problem}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: {e}") from None


def _parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}:{e.lineno}:{e.colno}: {e.msg}") from None


def _check_plain(value: Any, path: Path, where: Where) -> None:
    """Only what JSON can say: YAML also makes dates, non-string keys and infinities."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise PipelineError(path, where, f"key {key!r} is not a string; quote it")
            _check_plain(item, path, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, path, (*where, i))
    elif isinstance(value, float) and not math.isfinite(value):
        raise PipelineError(path, where, f"{value} is not a number JSON can hold")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise PipelineError(path, where, f"{value!r} is a YAML {type(value).__name__}; quote it to make it a string")


def _build(document: dict[str, Any], path: Path, registry: StageRegistry) -> Pipeline:
    urls = document.get("sources", {}).get("org.imgfront.urls", {})
    sources = Sources(tuple(SourceItem(c, u if isinstance(u, str) else u["url"]) for c, u in sorted(urls.items())))
    build = _tree(document, BUILD, path, registry, sources, frozenset()) if BUILD in document else None
    main = _tree(document, MAIN, path, registry, sources, frozenset([BUILD]) if build else frozenset())
    return Pipeline(
        path=path,
        version=document["version"],
        name=document.get("name"),
        platforms=_platforms(document.get("platforms", []), path),
        sources=sources,
        build=build,
        main=main,
        output=_output(document.get("output", {"name": IMAGE_OUTPUT}), path),
    )


def _platforms(values: list[str], path: Path) -> tuple[Platform, ...]:
    for i, value in enumerate(values):
        try:
            parse_platforms([value])
        except UsageError as e:
            raise PipelineError(path, ("platforms", i), e.message, e.hint) from None
    return parse_platforms(values)


def _output(value: dict[str, Any], path: Path) -> Output:
    name = value["name"] if "." in value["name"] else f"org.imgfront.{value['name']}"
    if name not in OUTPUTS:
        raise PipelineError(path, ("output", "name"), f"unknown output {value['name']!r}; known: {', '.join(OUTPUTS)}")
    return Output(name, canonical_json(value.get("options", {})))


def _tree(
    document: dict[str, Any], key: str, path: Path, registry: StageRegistry, sources: Sources, pipelines: frozenset[str]
) -> Tree:
    value = document[key]
    if value["base"] == BUILD:
        raise PipelineError(path, (key, "base"), f"{BUILD!r} names the build pipeline, not an image")
    check = CheckContext(folder=path.parent, pipelines=pipelines, sources=sources.checksums)
    stages = tuple(_stage(s, (key, "stages", i), path, registry, check) for i, s in enumerate(value["stages"]))
    return Tree(key, value["base"], stages)


def _stage(value: dict[str, Any], where: Where, path: Path, registry: StageRegistry, check: CheckContext) -> StageSpec:
    try:
        kind = registry.get(value["name"])
    except UnknownStageType as e:
        raise PipelineError(path, (*where, "name"), e.message) from None
    options = value.get("options", {})
    validate(options, kind.schema, path, (*where, "options"))
    with options_errors(path, (*where, "options")):
        kind.check(options, check)
    return StageSpec.make(kind, options, value.get("checkpoint", False))
