"""The commands that talk to a registry: `imgfront login`, `imgfront logout` and `imgfront manifest create`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from imgfront.errors import UsageError
from imgfront.modes import PushMode
from imgfront.option_values import BOOL_WORDS
from imgfront.options import AUTHFILE_HELP, TLS_VERIFY_HELP, parse_tls_verify

TLS_VERIFY = typer.Option("--tls-verify", metavar="BOOL", help=TLS_VERIFY_HELP)
AUTHFILE = typer.Option("--authfile", help=AUTHFILE_HELP)

BARE_VALUES = {"tls_verify": ("true", BOOL_WORDS)}  # cli/main.py's allow_bare
login_app = typer.Typer(add_completion=False)
logout_app = typer.Typer(add_completion=False)
manifest_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Manifest lists (image indexes) in a registry."
)


@login_app.command("login")
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

    from imgfront.model import Credentials
    from imgfront.oci.auth import find_credentials, normalize_registry, read_password, store_credentials
    from imgfront.oci.client import RegistryClient, RegistryError

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


@logout_app.command("logout")
def logout(
    registry: Annotated[str | None, typer.Argument(help="The registry to forget.")] = None,
    all_registries: Annotated[bool, typer.Option("-a", "--all", help="Forget every registry.")] = False,
    authfile: Annotated[Path | None, AUTHFILE] = None,
) -> None:
    """Remove a registry's credentials from the auth file, as podman logout does."""
    from imgfront.oci.auth import remove_credentials

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
    from imgfront.oci.push import PushOptions, create_index
    from imgfront.run.metadata import metadata, write_metadata

    pushed = create_index(
        [name, *(tag or [])], sources, PushOptions(PushMode.HERE, parse_tls_verify(tls_verify), authfile)
    )
    if metadata_file is not None:
        write_metadata(metadata_file, metadata([p.name for p in pushed], (), None, outputs=(), pushed=pushed))
    print(pushed[0].digest)
