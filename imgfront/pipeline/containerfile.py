"""Writing Containerfile instructions with every value quoted the way podman build reads it back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

DEFAULT_SHELL = ("/bin/sh", "-c")
CONTINUE = " \\\n    "


def json_array(items: Iterable[str]) -> str:
    return json.dumps(list(items))


def quote(value: str) -> str:
    """A double-quoted ENV/LABEL word; `$` is escaped because the builder expands variables there."""
    if "\n" in value or "\r" in value:
        raise ValueError("a Containerfile value cannot hold a line break")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def assignments(pairs: Mapping[str, str], *, quote_keys: bool) -> str:
    """`K="v" ...`, sorted so that the same mapping always reads the same."""
    return " ".join(f"{quote(k) if quote_keys else k}={quote(v)}" for k, v in sorted(pairs.items()))


def _plain(statement: str) -> bool:
    """Whether a command can stand in the shell form without the builder reading it differently."""
    s = statement.strip().replace(CONTINUE.strip(" "), " ")  # a line continuation reads the same to sh
    return bool(s) and "\n" not in s and "\r" not in s and not s.endswith("\\") and s[0] not in "-["


def run(statements: str | Sequence[str], *, mounts: Sequence[str] = (), shell: Sequence[str] | None = None) -> str:
    """A RUN instruction: the readable shell form where it is safe, the JSON exec form otherwise.

    Several statements run as `a && b`, so the first failure stops the step.
    """
    parts = [statements] if isinstance(statements, str) else list(statements)
    flags = "".join(f"{m}{CONTINUE}" for m in mounts)  # one mount a line
    if shell is None and all(_plain(p) for p in parts):
        return f"RUN {flags}" + (" &&" + CONTINUE).join(p.strip() for p in parts)
    return f"RUN {flags}{json_array([*(shell or DEFAULT_SHELL), ' && '.join(parts)])}"


def cache_mount(target: str, cache_id: str) -> str:
    """A cache mount shared between builds; apt, dnf and apk lock their caches themselves.

    Not `sharing=locked`: podman 4.3's service never releases that lock, so the next build on the same
    service to run the step would wait forever.
    """
    return f"--mount=type=cache,id={cache_id},target={target},sharing=shared"


def copy(
    src: str,
    dest: str,
    *,
    stage: str | None = None,
    chmod: str | None = None,
    chown: str | None = None,
    instruction: str = "COPY",
) -> str:
    """COPY (or ADD) in the JSON form, so that spaces in paths need no care."""
    flags = [f"--from={stage}"] if stage else []
    flags += [f"--chown={chown}"] if chown else []
    flags += [f"--chmod={chmod}"] if chmod else []
    return " ".join([instruction, *flags, json_array([src, dest])])
