"""`imgfront compile` and `imgfront inspect`: a pipeline as a Containerfile, or as JSON with its ids."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imgfront.platforms import Platform

if TYPE_CHECKING:
    from imgfront.engines.base import ImageBuilder
    from imgfront.pipeline import Pipeline

compile_app = typer.Typer(add_completion=False)
inspect_app = typer.Typer(add_completion=False)


def _pipeline_engine(pipeline: Pipeline) -> contextlib.AbstractContextManager[ImageBuilder | None]:
    """The local engine, opened only when the pipeline has base images to resolve (scratch needs none)."""
    from imgfront.pipeline.build import base_images

    if not base_images(pipeline):
        return contextlib.nullcontext()
    from imgfront.engines import open_local

    return open_local()


def _one_platform(value: str | None, pipeline: Pipeline) -> Platform:
    from imgfront.pipeline.build import default_platform

    return Platform.parse(value) if value else default_platform(pipeline)


@compile_app.command("compile")
def compile_command(
    file: Annotated[Path, typer.Argument(help="The pipeline file.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The folder to write; default ./<name>-<platform>.")
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="One platform; default this host's, else the pipeline's first."),
    ] = None,
) -> None:
    """Compile a pipeline into a Containerfile and its context, which plain `podman build DIR` builds."""
    from imgfront.pipeline import load
    from imgfront.pipeline.build import compile_to, default_compile_dir

    pipeline = load(file)
    target = _one_platform(platform, pipeline)
    with _pipeline_engine(pipeline) as engine:
        compiled = compile_to(pipeline, engine, target, output or default_compile_dir(pipeline, target))
    print(compiled.directory)


@inspect_app.command("inspect")
def inspect_command(
    file: Annotated[Path, typer.Argument(help="The pipeline file.")],
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="The platform whose ids to show; default as for compile."),
    ] = None,
) -> None:
    """Print the pipeline as JSON with the base digests and every id filled in."""
    import json

    from imgfront.pipeline import inspect, load
    from imgfront.pipeline.build import resolve

    pipeline = load(file)
    target = _one_platform(platform, pipeline)
    with _pipeline_engine(pipeline) as engine:
        resolved = resolve(pipeline, engine, target)
    print(json.dumps(inspect(resolved), indent=2))
