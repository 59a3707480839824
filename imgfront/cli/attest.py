"""`imgfront sbom` and `imgfront provenance`: print the attestations an image carries, per platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgfront.oci.sources import REF_HELP
from imgfront.option_values import BOOL_WORDS
from imgfront.options import AUTHFILE_HELP, TLS_VERIFY_HELP, parse_tls_verify

sbom_app = typer.Typer(add_completion=False)
provenance_app = typer.Typer(add_completion=False)
BARE_VALUES = {"tls_verify": ("true", BOOL_WORDS)}  # cli/main.py's allow_bare

PLATFORM_HELP = "Only this platform's, os/arch[/variant]; repeat it or separate several with commas. Default: all."

Ref = Annotated[str, typer.Argument(metavar="REF", help=REF_HELP)]
Platforms = Annotated[list[str] | None, typer.Option("--platform", metavar="PLATFORM", help=PLATFORM_HELP)]
TlsVerify = Annotated[str | None, typer.Option("--tls-verify", metavar="BOOL", help=TLS_VERIFY_HELP)]
Authfile = Annotated[Path | None, typer.Option("--authfile", help=AUTHFILE_HELP)]


def _print(kind: str, ref: str, platforms: list[str] | None, tls_verify: str | None, authfile: Path | None) -> None:
    from imgfront.oci.attestations import show
    from imgfront.oci.sources import SourceOptions
    from imgfront.platforms import parse_platforms

    print(show(kind, ref, parse_platforms(platforms or ()), SourceOptions(parse_tls_verify(tls_verify), authfile)))


@sbom_app.command("sbom")
def sbom(ref: Ref, platform: Platforms = None, tls_verify: TlsVerify = None, authfile: Authfile = None) -> None:
    """Print the SPDX SBOM of each platform's image in REF; exit 1 if a platform has none.

    REF is NAME or containers-storage:NAME (local podman storage), docker://REGISTRY/REPO[:TAG|@DIGEST],
    oci:DIR[:REF] (or oci-layout:), or oci-archive:FILE[:REF]. One platform's document is printed as it is;
    several as one JSON object keyed by platform. Exit 0 when every platform has one, 1 when one has none
    (build with --sbom), 2 when REF cannot be read.
    """
    _print("sbom", ref, platform, tls_verify, authfile)


@provenance_app.command("provenance")
def provenance(ref: Ref, platform: Platforms = None, tls_verify: TlsVerify = None, authfile: Authfile = None) -> None:
    """Print the SLSA provenance of each platform's image in REF; exit 1 if a platform has none.

    REF is NAME or containers-storage:NAME (local podman storage), docker://REGISTRY/REPO[:TAG|@DIGEST],
    oci:DIR[:REF] (or oci-layout:), or oci-archive:FILE[:REF]. One platform's in-toto statement is printed as
    it is; several as one JSON object keyed by platform. Exit 0 when every platform has one, 1 when one has
    none (build with --provenance), 2 when REF cannot be read.
    """
    _print("provenance", ref, platform, tls_verify, authfile)
