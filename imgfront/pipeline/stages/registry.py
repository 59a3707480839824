"""The one table of stage types: imgfront's own, plus those installed under the `imgfront.stages` entry points."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable
from importlib import metadata

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from imgfront.errors import ImgfrontError, UsageError
from imgfront.pipeline.stages.base import PREFIX, StageType
from imgfront.pipeline.stages.config import Config
from imgfront.pipeline.stages.copy import Copy
from imgfront.pipeline.stages.env import Env
from imgfront.pipeline.stages.files import Files
from imgfront.pipeline.stages.labels import Labels
from imgfront.pipeline.stages.packages import Apk, Apt, Dnf
from imgfront.pipeline.stages.remove import Remove
from imgfront.pipeline.stages.run import Run
from imgfront.pipeline.stages.source import Source
from imgfront.pipeline.stages.users import Users

ENTRY_POINT_GROUP = "imgfront.stages"
BUILTIN: tuple[type[StageType], ...] = (Run, Copy, Files, Source, Env, Labels, Config, Users, Apt, Dnf, Apk, Remove)


class UnknownStageType(UsageError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = sorted(known)
        close = difflib.get_close_matches(name, names, n=1) or difflib.get_close_matches(
            name.removeprefix(PREFIX), names, n=1
        )
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown stage type {name!r}{guess}; known types: {', '.join(names)}")


class StageRegistry:
    """Stage types by full name; `<type>` is short for `org.imgfront.<type>`."""

    def __init__(self, types: Iterable[StageType]) -> None:
        self.types: dict[str, StageType] = {}
        for t in types:
            if t.name in self.types:
                raise ImgfrontError(f"two stage types are named {t.name!r}")
            Draft202012Validator.check_schema(t.schema)
            self.types[t.name] = t

    def get(self, name: str) -> StageType:
        found = self.types.get(name) or self.types.get(PREFIX + name)
        if found is None:
            raise UnknownStageType(name, self.names)
        return found

    @property
    def names(self) -> list[str]:
        """Short names for imgfront's own types, full names for the others."""
        return sorted(n.removeprefix(PREFIX) if n.startswith(PREFIX) else n for n in self.types)


def _plugin(entry: metadata.EntryPoint) -> StageType:
    try:
        loaded = entry.load()
        stage = loaded() if isinstance(loaded, type) else loaded
    except Exception as e:
        raise ImgfrontError(f"stage type plugin {entry.value!r} failed to load: {e}") from e
    if not isinstance(stage, StageType):
        raise ImgfrontError(f"stage type plugin {entry.value!r} is not a StageType")
    return stage


def load_registry(
    entry_points: Callable[[], Iterable[metadata.EntryPoint]] = lambda: metadata.entry_points(group=ENTRY_POINT_GROUP),
) -> StageRegistry:
    stages: list[StageType] = [t() for t in BUILTIN]
    stages += [_plugin(e) for e in sorted(entry_points(), key=lambda e: e.name)]
    try:
        return StageRegistry(stages)
    except SchemaError as e:
        raise ImgfrontError(f"a stage type's schema is not valid JSON Schema: {e.message}") from e


@functools.cache
def default_registry() -> StageRegistry:
    return load_registry()
