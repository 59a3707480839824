"""The command line: parses, hands a plain value to the layers below, and turns errors into one line."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, NamedTuple

import click
import typer
from typer.core import TyperGroup

from imgfront import __version__
from imgfront.errors import ImgfrontError, Interrupted, signal_of
from imgfront.util import rundir, signals


class Entry(NamedTuple):
    target: str  # "module:attribute", a typer.Typer
    short: str  # the short help in the root's listing
    group: bool = False  # a group of subcommands, even when it has only one


# Each command lives in its own module, imported only when it runs (or its own --help is asked for): so
# `imgfront --version` and `imgfront --help` load neither the build options nor any engine. The short help is
# the first line of each command's docstring; tests/unit/test_cli_lazy.py checks that the two agree.
COMMANDS: dict[str, Entry] = {
    "build": Entry(
        "imgfront.cli.build:app",
        "Build CONTEXT, or the pipeline -p names, once per platform in parallel; merge the results into -t's list.",
    ),
    "compile": Entry(
        "imgfront.cli.pipelines:compile_app",
        "Compile a pipeline into a Containerfile and its context, which plain `podman build DIR` builds.",
    ),
    "inspect": Entry(
        "imgfront.cli.pipelines:inspect_app", "Print the pipeline as JSON with the base digests and every id filled in."
    ),
    "login": Entry(
        "imgfront.cli.registry:login_app",
        "Check credentials against REGISTRY and store them in the auth file, as podman login does.",
    ),
    "logout": Entry(
        "imgfront.cli.registry:logout_app", "Remove a registry's credentials from the auth file, as podman logout does."
    ),
    "doctor": Entry(
        "imgfront.cli.doctor:doctor_app",
        "Check the engine, its API, storage, emulation and mode; one line a check, with a hint for each failure.",
    ),
    "emulation": Entry(
        "imgfront.cli.emulation:emulation_app", "qemu-user-static emulation through binfmt_misc.", group=True
    ),
    "manifest": Entry(
        "imgfront.cli.registry:manifest_app", "Manifest lists (image indexes) in a registry.", group=True
    ),
    "diff": Entry(
        "imgfront.cli.diff:diff_app",
        "Explain why two images or lists differ: platform, manifest, config field, layer and file; exit 1 if they do.",
    ),
    "sbom": Entry(
        "imgfront.cli.attest:sbom_app",
        "Print the SPDX SBOM of each platform's image in REF; exit 1 if a platform has none.",
    ),
    "provenance": Entry(
        "imgfront.cli.attest:provenance_app",
        "Print the SLSA provenance of each platform's image in REF; exit 1 if a platform has none.",
    ),
    "farm": Entry("imgfront.cli.farm:farm_app", "Named farms of podman nodes, shared with podman farm.", group=True),
}


def load_command(name: str) -> click.Command:
    """The click command for one of COMMANDS, its module imported now."""
    entry = COMMANDS[name]
    module, _, attribute = entry.target.partition(":")
    loaded = importlib.import_module(module)
    commands = getattr(loaded, attribute)
    command = typer.main.get_group(commands) if entry.group else typer.main.get_command(commands)
    command.name = name
    allow_bare(command, getattr(loaded, "BARE_VALUES", {}))
    return command


def allow_bare(command: click.Command, values: Mapping[str, tuple[str, Sequence[str]]]) -> None:
    """Let each option named in `values` (by parameter name) be given bare (`--pull`, `--sbom`), meaning its value.

    `values[name]` is (the bare option's value, the words it takes as a value after a space). Given bare, the
    option takes the next word only when it is one of those words, so `--sbom .` builds `.`, and `--pull always`
    still reads as podman users write it; `--opt=VALUE` always works. (typer 0.19 drops click's `flag_value`.)
    """
    bare = {
        opt: (value, frozenset(w.lower() for w in words))
        for param in command.params
        if isinstance(param, click.Option) and param.name in values
        for opt in param.opts
        for value, words in [values[param.name]]
    }
    if bare:
        parse = command.parse_args

        def parse_args(ctx: click.Context, args: list[str]) -> list[str]:
            return parse(ctx, given_bare(args, bare))

        command.parse_args = parse_args  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        allow_bare(sub, values)


def given_bare(args: Sequence[str], bare: Mapping[str, tuple[str, frozenset[str]]]) -> list[str]:
    """ARGS with each bare option that is not followed by one of its words written `--opt=VALUE`."""
    result: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return result + list(args[i:])
        if arg in bare:
            value, words = bare[arg]
            following = args[i + 1] if i + 1 < len(args) else None
            if following is None or following.lower() not in words:
                arg = f"{arg}={value}"
        result.append(arg)
    return result


class LazyCommands(TyperGroup):
    """The root group: lists COMMANDS from the table, and imports one only to run it or show its own help."""

    listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        if self.listing:  # the root's help needs only the name and the short help
            short = COMMANDS[cmd_name].short
            return click.Command(cmd_name, help=short, short_help=short)
        return load_command(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    cls=LazyCommands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Build container images for several platforms at once, merged into one manifest list.",
)


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


def _traceback() -> None:
    import traceback  # only with --debug: it is slow to import

    traceback.print_exc()


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
            _traceback()
        _say(e.message, e.hint)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort) as e:
        if debug:
            _traceback()
        interrupted = Interrupted("interrupted", signum=signal_of(e))
        _say(interrupted.message)
        sys.exit(interrupted.exit_code)
    except Exception as e:
        if debug:
            _traceback()
        _say(f"unexpected error: {e}", hint=None if debug else "run again with --debug to see the traceback")
        sys.exit(1)
    finally:
        with signals.deferred(raise_after=False):  # the exit code is decided; the folder must go
            rundir.close_current()
