"""`imgfront emulation`: qemu-user-static handlers in binfmt_misc."""

from __future__ import annotations

from typing import Annotated

import typer

from imgfront.errors import ImgfrontError
from imgfront.platforms import parse_platforms

emulation_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="qemu-user-static emulation through binfmt_misc."
)


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
