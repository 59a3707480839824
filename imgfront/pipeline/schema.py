"""The pipeline file's JSON Schema, and schema errors reported by their path in the file."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from imgfront.errors import UsageError
from imgfront.pipeline.stages.base import OptionError

Where = tuple[str | int, ...]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_STAGE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "options": {"type": "object"},
        "checkpoint": {"type": "boolean"},
    },
}
_TREE = {
    "type": "object",
    "required": ["base", "stages"],
    "additionalProperties": False,
    "properties": {
        "base": {"type": "string", "minLength": 1, "pattern": "^[^\\s]+$"},
        "stages": {"type": "array", "items": _STAGE},
    },
}
_URL = {"type": "string", "pattern": "^(https?|file)://"}
DOCUMENT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "pipeline"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "name": {"type": "string", "pattern": "^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"},
        "platforms": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "sources": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "org.imgfront.urls": {
                    "type": "object",
                    "propertyNames": {"pattern": "^sha256:[0-9a-f]{64}$"},
                    "additionalProperties": {
                        "oneOf": [
                            _URL,
                            {
                                "type": "object",
                                "required": ["url"],
                                "additionalProperties": False,
                                "properties": {"url": _URL},
                            },
                        ]
                    },
                }
            },
        },
        "build": _TREE,
        "pipeline": _TREE,
        "output": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "options": {"type": "object"}},
        },
    },
}


def format_path(where: Iterable[str | int]) -> str:
    """`.pipeline.stages[1].options.packages`, with odd keys quoted: `.labels["org.example.a"]`."""
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += f'["{part}"]'
    return out if out.startswith(".") else "." + out


class PipelineError(UsageError):
    """An error in a pipeline file, named by the file and the path inside it."""

    def __init__(self, file: Path, where: Where | None, detail: str, hint: str | None = None) -> None:
        self.file, self.where, self.detail = file, where, detail
        place = f"{file}: {format_path(where)}" if where is not None else f"{file}"
        super().__init__(f"{place}: {detail}", hint)


@contextlib.contextmanager
def options_errors(file: Path, where: Where) -> Iterator[None]:
    """Turn a stage's OptionError into a PipelineError at the stage's options."""
    try:
        yield
    except OptionError as e:
        raise PipelineError(file, (*where, *e.path), e.message, e.hint) from None


def validate(instance: Any, schema: Mapping[str, Any], file: Path, where: Where = ()) -> None:
    """Raise the one most relevant schema error, with its full path."""
    error = best_match(Draft202012Validator(schema).iter_errors(instance))
    if error is not None:
        raise PipelineError(file, where + tuple(error.absolute_path), error.message, _hint(error.instance, error.path))


def _hint(value: object, path: Iterable[str | int]) -> str | None:
    if list(path)[-1:] == ["mode"] and isinstance(value, int):
        return 'quote modes, as in mode: "0755": YAML reads a bare 0755 as the number 493'
    return None
