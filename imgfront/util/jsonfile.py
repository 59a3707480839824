"""JSON files: one reader (a missing file reads as {}), one atomic writer, schema problems named by their place."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imgfront.util.files import write_atomically


class JSONFileError(Exception):
    """A JSON file that cannot be read, is not JSON, or does not hold what it should.

    `str()` is one line naming the file; `reason` is the cause alone, for callers that name the file their way.
    """

    def __init__(self, message: str, reason: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.hint = hint


def schema_problem(document: Any, schema: Mapping[str, Any]) -> str | None:
    """The most relevant place the document breaks the schema, as `.key[0]: message`, or None when it fits."""
    from jsonschema import Draft202012Validator  # here: most runs read no file with a schema
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(document))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where or 'the whole file'}: {error.message}"


def read_json_object(
    path: Path, schema: Mapping[str, Any] | None = None, empty_is_missing: bool = False
) -> dict[str, Any]:
    """A file holding one JSON object; {} when there is no file (or, with empty_is_missing, an empty one).

    Raises JSONFileError when it cannot be read, is not JSON, breaks `schema`, or is not an object.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        reason = e.strerror or str(e)
        raise JSONFileError(f"cannot read {path}: {reason}", reason) from None
    if empty_is_missing and not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as e:
        raise JSONFileError(f"{path} is not JSON: {e}", str(e), hint="correct or remove it") from None
    if schema is not None and (problem := schema_problem(document, schema)):
        raise JSONFileError(f"{path}: {problem}", problem, hint="correct or remove it")
    if not isinstance(document, dict):
        reason = "it is not a JSON object"
        raise JSONFileError(f"{path}: {reason}", reason, hint="correct or remove it")
    return document


def write_json(path: Path, data: Any, indent: int | None = 2, sort_keys: bool = False, mode: int | None = None) -> None:
    """Replace the file whole and atomically with `data` as JSON and a newline (mode as write_atomically's)."""
    write_atomically(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n", mode=mode)
