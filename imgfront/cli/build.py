"""`imgfront build`: collect the options, resolve them, open the nodes and run the build."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import typer

from imgfront.errors import EngineError
from imgfront.options import BUILD_OPTIONS, with_build_options

app = typer.Typer(add_completion=False)
BARE_VALUES = {o.dest: (o.flag_value, o.bare_words) for o in BUILD_OPTIONS if o.flag_value is not None}  # allow_bare


@app.command("build")
@with_build_options
def build(**given: Any) -> None:
    """Build CONTEXT, or the pipeline -p names, once per platform in parallel; merge the results into -t's list."""
    from imgfront.engines import open_engine
    from imgfront.engines.registry import EngineSettings
    from imgfront.run.build import Build, unbuildable_hint
    from imgfront.run.invocation import resolve
    from imgfront.run.plan import UnbuildablePlatforms
    from imgfront.run.progress import make_progress

    run = resolve(given)
    options, pipeline, checkpoint, progress, engine = (
        run.options,
        run.pipeline,
        run.checkpoints,
        run.progress,
        run.engine,
    )
    node, farm, local_node, identity = run.nodes, run.farm, run.local_node, run.identity
    connect_timeout, idle_timeout = run.connect_timeout, run.idle_timeout
    from imgfront.nodes.specs import node_infos, open_nodes, select_nodes, unique_names

    # Node addresses are checked before anything connects, the local engine included.
    selected = (
        []
        if pipeline is not None
        else select_nodes(node or [], farm, os.fspath(identity) if identity else None, local=local_node)
    )
    settings = EngineSettings(connect_timeout=connect_timeout, idle_timeout=idle_timeout)
    with (
        open_engine(engine, settings=settings) as local,
        make_progress(progress) as shown,
        contextlib.ExitStack() as stack,
    ):
        try:
            if pipeline is not None:
                from imgfront.pipeline.build import PipelineBuild

                PipelineBuild(pipeline, options, local, shown, checkpoints=checkpoint or ()).run()
                return
            specs = [
                s
                for s in selected
                if s.connection.uri != local.connection.uri  # the local engine, found as a connection too
            ]
            named = unique_names(specs, taken=[local.name])
            remote = open_nodes(named, stack, shown.note, settings)
            builders = [local, *remote] if local_node else remote
            if not builders:
                raise EngineError("no node to build on", hint="check the nodes named, or drop --no-local")
            infos = node_infos(builders, options.platforms)
            prefs = {s.name: s.preference for s in named}
            Build(options, local, builders, shown, infos=infos, preferences=prefs).run()
        except UnbuildablePlatforms as e:
            raise unbuildable_hint(e) from None
