"""A pipeline file as frozen values: trees of typed stages, the sources they use and the output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgfront.pipeline.stages.base import StageType
from imgfront.platforms import Platform

SCRATCH = "scratch"
BUILD = "build"  # the build pipeline, as `copy`'s `from` names it
MAIN = "pipeline"  # the main pipeline, named by its key in the file
IMAGE_OUTPUT = "org.imgfront.image"


def canonical_json(value: Any) -> str:
    """The one serialisation that ids hash and options are kept in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StageSpec:
    """One stage as written: its type, its options (kept as canonical JSON so the value stays frozen)."""

    kind: StageType = field(compare=False, repr=False)
    name: str
    options_json: str
    checkpoint: bool = False

    @classmethod
    def make(cls, kind: StageType, options: dict[str, Any], checkpoint: bool = False) -> StageSpec:
        return cls(kind, kind.name, canonical_json(options), checkpoint)

    @property
    def options(self) -> dict[str, Any]:
        """A fresh copy of the options, free to change."""
        value: dict[str, Any] = json.loads(self.options_json)
        return value


@dataclass(frozen=True)
class Tree:
    """An ordered list of stages applied to a base image: the build pipeline or the main one."""

    name: str
    base: str
    stages: tuple[StageSpec, ...]


@dataclass(frozen=True)
class SourceItem:
    checksum: str  # sha256:<64 hex>
    url: str


@dataclass(frozen=True)
class Sources:
    """Content-addressed files: the checksum names the content, the URL only says where to get it."""

    items: tuple[SourceItem, ...] = ()

    @property
    def checksums(self) -> frozenset[str]:
        return frozenset(i.checksum for i in self.items)

    def url(self, checksum: str) -> str:
        for item in self.items:
            if item.checksum == checksum:
                return item.url
        raise KeyError(checksum)


@dataclass(frozen=True)
class Output:
    name: str = IMAGE_OUTPUT
    options_json: str = "{}"

    @property
    def options(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.options_json)
        return value


@dataclass(frozen=True)
class Pipeline:
    path: Path
    version: int
    name: str | None
    platforms: tuple[Platform, ...]
    sources: Sources
    build: Tree | None
    main: Tree
    output: Output

    @property
    def folder(self) -> Path:
        """The only folder `copy` may read from."""
        return self.path.parent

    @property
    def trees(self) -> tuple[Tree, ...]:
        """The build pipeline (if any) first, as the Containerfile orders them."""
        return (self.build, self.main) if self.build else (self.main,)
