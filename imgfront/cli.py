"""The command line: parses, hands a plain value to the layers below, and turns errors into one line."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from imgfront import __version__
from imgfront.errors import EngineError, ImgfrontError, Interrupted, UsageError, signal_of
from imgfront.farm_cli import farm_app
from imgfront.modes import PushMode
from imgfront.options import AUTHFILE_HELP, TLS_VERIFY_HELP, parse_tls_verify, with_build_options
from imgfront.platforms import Platform, parse_platforms
from imgfront.util import rundir, signals

if TYPE_CHECKING:
    from imgfront.engines.base import ImageBuilder
    from imgfront.pipeline import Pipeline

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Build container images for several platforms at once, merged into one manifest list.",
)
emulation_app = typer.Typer(no_args_is_help=True, help="qemu-user-static emulation through binfmt_misc.")
manifest_app = typer.Typer(no_args_is_help=True, help="Manifest lists (image indexes) in a registry.")
app.add_typer(emulation_app, name="emulation")
app.add_typer(manifest_app, name="manifest")
app.add_typer(farm_app, name="farm")


def _version(value: bool) -> None:
    if value:
        print(f"imgfront {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and engine details.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """imgfront: multi-platform builds on podman."""


TLS_VERIFY = typer.Option("--tls-verify", is_flag=False, flag_value="true", metavar="BOOL", help=TLS_VERIFY_HELP)
AUTHFILE = typer.Option("--authfile", help=AUTHFILE_HELP)


@app.command()
@with_build_options
def build(**given: Any) -> None:
    """Build CONTEXT, or the pipeline -p names, once per platform in parallel; merge the results into -t's list."""
    from imgfront.build import Build, unbuildable_hint
    from imgfront.engines import open_engine
    from imgfront.engines.registry import EngineSettings
    from imgfront.invocation import resolve
    from imgfront.plan import UnbuildablePlatforms
    from imgfront.progress import make_progress

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
    from imgfront.nodes import node_infos, open_nodes, select_nodes, unique_names

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


@app.command("compile")
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


@app.command("inspect")
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


@app.command()
def login(
    registry: Annotated[str, typer.Argument(help="The registry, e.g. registry.example or 127.0.0.1:5000.")],
    username: Annotated[str | None, typer.Option("-u", "--username", help="The user name.")] = None,
    password: Annotated[
        str | None, typer.Option("-p", "--password", help="The password; --password-stdin keeps it out of ps.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    tls_verify: Annotated[str | None, TLS_VERIFY] = None,
    authfile: Annotated[Path | None, AUTHFILE] = None,
) -> None:
    """Check credentials against REGISTRY and store them in the auth file, as podman login does.

    Without -u and a password, stored credentials that still work are kept; on a terminal, imgfront asks.
    """
    import getpass

    from imgfront.auth import find_credentials, normalize_registry, read_password, store_credentials
    from imgfront.model import Credentials
    from imgfront.registry import RegistryClient, RegistryError

    host = normalize_registry(registry).split("/", 1)[0]
    verify = parse_tls_verify(tls_verify)
    if not username and password is None and not password_stdin:
        stored = find_credentials(normalize_registry(registry), authfile)
        if stored is not None:
            with RegistryClient(host, stored, verify) as client, contextlib.suppress(RegistryError):
                client.check_login()
                print(f"Authenticating with existing credentials for {registry}\nAlready logged in to {registry}")
                return
    interactive = sys.stdin.isatty()
    if not username and interactive:
        username = input("Username: ").strip()
    if not username:
        raise UsageError("no user name given", hint="pass it with -u USER")
    if password is None and not password_stdin and interactive:
        password = getpass.getpass("Password: ")
    credentials = Credentials(username, read_password(password, password_stdin))
    with RegistryClient(host, credentials, verify) as client:
        client.check_login()
    store_credentials(registry, credentials, authfile)
    print("Login Succeeded!")


@app.command()
def logout(
    registry: Annotated[str | None, typer.Argument(help="The registry to forget.")] = None,
    all_registries: Annotated[bool, typer.Option("-a", "--all", help="Forget every registry.")] = False,
    authfile: Annotated[Path | None, AUTHFILE] = None,
) -> None:
    """Remove a registry's credentials from the auth file, as podman logout does."""
    from imgfront.auth import remove_credentials

    if bool(registry) == all_registries:
        raise UsageError("name one registry, or give --all")
    removed = remove_credentials(None if all_registries else registry, authfile)
    if all_registries:
        print(f"Removed login credentials for {len(removed)} registries")
    else:
        print(f"Removed login credentials for {registry}")


@manifest_app.command("create")
def manifest_create(
    name: Annotated[str, typer.Argument(help="Where to write the index: registry/repository:tag.")],
    sources: Annotated[
        list[str],
        typer.Option(
            "--from",
            help="An image already pushed, REPOSITORY@sha256:... (or :tag); an index gives its instances. Repeatable.",
        ),
    ],
    tag: Annotated[list[str] | None, typer.Option("-t", "--tag", help="Another name for the same index.")] = None,
    tls_verify: Annotated[str | None, TLS_VERIFY] = None,
    authfile: Annotated[Path | None, AUTHFILE] = None,
    metadata_file: Annotated[Path | None, typer.Option("--metadata-file", help="Write the index's metadata.")] = None,
) -> None:
    """Write an image index to the registry from images pushed before (a CI matrix's per-platform digests).

    Every source must be in the registry of NAME; one in another repository is mounted there first.
    Prints the index's digest.
    """
    from imgfront.metadata import metadata, write_metadata
    from imgfront.push import PushOptions, create_index

    pushed = create_index(
        [name, *(tag or [])], sources, PushOptions(PushMode.HERE, parse_tls_verify(tls_verify), authfile)
    )
    if metadata_file is not None:
        write_metadata(metadata_file, metadata([p.name for p in pushed], (), None, outputs=(), pushed=pushed))
    print(pushed[0].digest)


@emulation_app.command("status")
def emulation_status() -> None:
    """List registered binfmt_misc handlers and the platforms they give."""
    from rich.console import Console
    from rich.table import Table

    from imgfront.emulation import binfmt, qemu

    if not binfmt.is_mounted():
        raise ImgfrontError("binfmt_misc is not mounted", hint="run: imgfront emulation install (as root)")
    rows = qemu.status()
    if not rows:
        print("no binfmt_misc handlers are registered; run: imgfront emulation install")
        return
    table = Table(box=None, header_style="bold")
    for column in ("handler", "platform", "flags", "interpreter", "usable in containers"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        usable = "native" if row.native else ("yes" if row.usable_in_containers else f"no: {row.problem}")
        table.add_row(row.handler.name, str(row.platform or "-"), row.handler.flags, row.handler.interpreter, usable)
    Console(width=200).print(table)


@emulation_app.command("install")
def emulation_install(
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Platforms to register; default: every one qemu-user-static provides."),
    ] = None,
) -> None:
    """Register qemu-user-static handlers (with the F flag) for foreign platforms. Needs root."""
    from imgfront.emulation import qemu

    platforms = parse_platforms(platform or []) or qemu.installable_platforms()
    for result in qemu.install(platforms):
        print(f"{result.platform}: {result.action.value} ({result.handler})")


@app.command()
def doctor() -> None:
    """Check the engine, its API, storage, emulation and mode; one line a check, with a hint for each failure."""
    from imgfront.doctor import run_doctor

    if not run_doctor():
        raise typer.Exit(1)


def _say(message: str, hint: str | None = None) -> None:
    print(f"imgfront: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    signals.install()
    try:
        # Without standalone mode, click returns a command's typer.Exit code instead of exiting with it.
        code = command.main(args, prog_name="imgfront", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:  # usage errors: unknown option, bad value, missing argument
        _say(
            e.format_message().splitlines()[0] if e.format_message() else str(e),
            hint="see 'imgfront --help'"
            if not isinstance(e, click.UsageError) or e.ctx is None
            else f"see '{e.ctx.command_path} --help'",
        )
        sys.exit(2)
    except ImgfrontError as e:
        if debug:
            traceback.print_exc()
        _say(e.message, e.hint)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort) as e:
        if debug:
            traceback.print_exc()
        interrupted = Interrupted("interrupted", signum=signal_of(e))
        _say(interrupted.message)
        sys.exit(interrupted.exit_code)
    except Exception as e:
        if debug:
            traceback.print_exc()
        _say(f"unexpected error: {e}", hint=None if debug else "run again with --debug to see the traceback")
        sys.exit(1)
    finally:
        with signals.deferred(raise_after=False):  # the exit code is decided; the folder must go
            rundir.close_current()
