"""`imgfront diff`: why two images or lists differ, from local storage, a registry, or an OCI layout or archive."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from imgfront.errors import ImgfrontError
from imgfront.oci.sources import REF_HELP
from imgfront.option_values import BOOL_WORDS
from imgfront.options import AUTHFILE_HELP, TLS_VERIFY_HELP, parse_tls_verify

BARE_VALUES = {"tls_verify": ("true", BOOL_WORDS)}  # cli/main.py's allow_bare
diff_app = typer.Typer(add_completion=False)


@diff_app.command("diff")
def diff(
    first: Annotated[str, typer.Argument(metavar="REF1", help=REF_HELP)],
    second: Annotated[str, typer.Argument(metavar="REF2", help="The same forms as REF1.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as one JSON document.")] = False,
    max_files: Annotated[
        int, typer.Option("--max-files", min=0, help="At most this many file lines per layer; 0 shows all.")
    ] = 20,
    tls_verify: Annotated[
        str | None,
        typer.Option("--tls-verify", metavar="BOOL", help=TLS_VERIFY_HELP),
    ] = None,
    authfile: Annotated[Path | None, typer.Option("--authfile", help=AUTHFILE_HELP)] = None,
) -> None:
    """Explain why two images or lists differ: platform, manifest, config field, layer and file; exit 1 if they do.

    Each REF is NAME or containers-storage:NAME (local podman storage), docker://REGISTRY/REPO[:TAG|@DIGEST],
    oci:DIR[:REF] (or oci-layout:), or oci-archive:FILE[:REF]. Exit 0 when they are identical, 1 when they
    differ, 2 when either cannot be read.
    """
    from imgfront.oci.diff import DiffError, compare
    from imgfront.oci.sources import SourceOptions, Sources

    options = SourceOptions(parse_tls_verify(tls_verify), authfile)
    try:
        with contextlib.ExitStack() as stack:
            sources = Sources(options, stack)
            report = compare(sources.open(first), sources.open(second))
    except DiffError:
        raise
    except ImgfrontError as e:  # exit 1 means "they differ", so nothing that failed may exit 1
        raise DiffError(e.message, e.hint) from e
    except OSError as e:
        raise DiffError(f"cannot read an image: {e}") from e
    except Exception as e:  # a stream broken half-way (urllib3, zlib): still not "they differ"
        raise DiffError(f"cannot compare: {type(e).__name__}: {e}", hint="--debug shows the traceback") from e
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines(max_files)))
    raise typer.Exit(0 if report.identical else 1)
