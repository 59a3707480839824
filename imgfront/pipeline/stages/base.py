"""What a stage type is: a name, a schema for its options, and how it compiles into Containerfile lines."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from imgfront.platforms import Platform

Options = Mapping[str, Any]
PREFIX = "org.imgfront."


@dataclass(frozen=True)
class ContextFile:
    """A file of the generated build context: inline bytes, or a host file copied as it is."""

    mode: int = 0o644
    data: bytes = b""
    origin: Path | None = None


@dataclass(frozen=True)
class ContextDir:
    mode: int = 0o755


ContextEntry = ContextFile | ContextDir


@dataclass(frozen=True)
class StageOutput:
    """Containerfile lines, and the context entries they refer to (keyed by POSIX path in the context)."""

    lines: tuple[str, ...]
    files: Mapping[str, ContextEntry] = field(default_factory=dict)


class OptionError(Exception):
    """Options that are wrong at `path` (inside the options); the loader prefixes where the stage is."""

    def __init__(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class CheckContext:
    """What a stage may refer to, known when the file is loaded."""

    folder: Path  # the pipeline file's folder
    pipelines: frozenset[str]  # pipelines this stage may copy from
    sources: frozenset[str]  # checksums the file's sources provide


@dataclass(frozen=True)
class CompileContext:
    stage_id: str
    folder: Path
    sources_dir: Path  # the content-addressed cache (`<dir>/sha256/<hex>`)
    platform: Platform | None = None

    @property
    def prefix(self) -> str:
        """The folder of the generated context that belongs to this stage alone."""
        return f"stages/{self.stage_id[:12]}"

    def source_file(self, checksum: str) -> Path:
        return self.sources_dir / "sha256" / checksum.removeprefix("sha256:")


class StageType(abc.ABC):
    """One kind of stage. Subclasses set `name` and `schema` and write `compile`; the rest is optional."""

    name: ClassVar[str]  # full name, e.g. org.imgfront.apt
    schema: ClassVar[Mapping[str, Any]]  # JSON Schema (Draft 2020-12) of the options

    @property
    def short_name(self) -> str:
        return self.name.removeprefix(PREFIX)

    def check(self, options: Options, ctx: CheckContext) -> None:
        """Checks the schema cannot express; raise OptionError."""
        return None

    def sources(self, options: Options) -> tuple[str, ...]:
        """Checksums of the sources this stage places."""
        return ()

    def reads_from(self, options: Options) -> frozenset[str]:
        """Names of other pipelines this stage copies from."""
        return frozenset()

    def inputs(self, options: Options, folder: Path) -> Mapping[str, Any]:
        """Host content that enters the stage id (what `copy` reads from the pipeline's folder)."""
        return {}

    @abc.abstractmethod
    def compile(self, options: Options, ctx: CompileContext) -> StageOutput: ...


# Schema pieces the stage types share.
MODE: dict[str, Any] = {"type": "string", "pattern": "^[0-7]{3,4}$"}
OWNER: dict[str, Any] = {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$"}
ABSOLUTE_PATH: dict[str, Any] = {"type": "string", "pattern": "^/[^\n\r]*$"}
SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}
ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"


def scalar_text(value: object) -> str:
    """A scalar option as text: 8080 stays 8080, true becomes true (as JSON writes it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
