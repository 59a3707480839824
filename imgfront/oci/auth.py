"""Registry credentials where podman keeps them: the auth file's search order, reading, login and logout.

The files are those of containers-auth.json(5): `--authfile`, else REGISTRY_AUTH_FILE, else podman's
own (`$XDG_RUNTIME_DIR/containers/auth.json`, then `$XDG_CONFIG_HOME/containers/auth.json`), then
Docker's (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, and the legacy `~/.dockercfg`).
Parsing, the base64 `auth` field and credential helpers are the Docker SDK's (`docker.auth`).
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

from imgfront.errors import ImgfrontError, UsageError
from imgfront.model import Credentials
from imgfront.util.files import config_home
from imgfront.util.jsonfile import JSONFileError, read_json_object, write_json

DOCKER_HUB = "docker.io"


def explicit_auth_file(authfile: Path | None = None) -> Path | None:
    """--authfile, else REGISTRY_AUTH_FILE: when either is given, no other file is read or written."""
    if authfile is not None:
        return authfile
    env = os.environ.get("REGISTRY_AUTH_FILE")
    return Path(env) if env else None


def runtime_auth_file() -> Path:
    """podman's default auth file, the one `podman login` writes: per boot on Linux, per user on macOS."""
    if sys.platform == "darwin":
        return config_home() / "containers" / "auth.json"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.getuid()}/auth.json")


def auth_files(authfile: Path | None = None) -> list[Path]:
    """The files credentials are read from, first match wins."""
    explicit = explicit_auth_file(authfile)
    if explicit is not None:
        return [explicit]
    docker_config = os.environ.get("DOCKER_CONFIG")
    files = [
        runtime_auth_file(),
        config_home() / "containers" / "auth.json",
        Path(docker_config) / "config.json" if docker_config else Path.home() / ".docker" / "config.json",
        Path.home() / ".dockercfg",
    ]
    return list(dict.fromkeys(files))


def write_auth_file(authfile: Path | None = None) -> Path:
    """The file login and logout change."""
    return explicit_auth_file(authfile) or runtime_auth_file()


def normalize_registry(name: str) -> str:
    """As podman keys its auth file: no scheme, no trailing slash; Docker Hub's aliases are docker.io."""
    for scheme in ("https://", "http://"):
        if name.startswith(scheme):
            name = name[len(scheme) :]
    name = name.rstrip("/")
    if name.endswith("/v1") or name.endswith("/v2"):
        name = name[:-3]
    if name in ("index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB
    return name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return read_json_object(path, empty_is_missing=True)
    except JSONFileError as e:
        raise ImgfrontError(f"cannot read the auth file {path}: {e.reason}") from None


def _scopes(reference: str) -> list[str]:
    """The keys that may hold a reference's credentials, most specific first: reg/ns/repo, reg/ns, reg."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if len(last) == 2 and ":" in last[1]:
        name = f"{last[0]}/{last[1].split(':', 1)[0]}"
    parts = name.split("/")
    host = normalize_registry(parts[0])
    return [("/".join([host, *parts[1:i]])) for i in range(len(parts), 0, -1)]


def _from_entry(entry: dict[str, Any]) -> Credentials | None:
    entry = {k.lower(): v for k, v in entry.items() if v}
    if "identitytoken" in entry:
        return Credentials(username=str(entry.get("username", "")), identity_token=str(entry["identitytoken"]))
    if "username" in entry or "password" in entry:
        return Credentials(str(entry.get("username", "")), str(entry.get("password", "")))
    return None


def _lookup(path: Path, reference: str) -> Credentials | None:
    raw = _read_json(path)
    if not raw:
        return None
    import docker.auth  # here: a build that pushes nothing needs no Docker SDK
    import docker.errors

    try:
        config = docker.auth.load_config(config_dict=raw)  # a legacy ~/.dockercfg is the `auths` table alone
    except (docker.errors.DockerException, ValueError) as e:
        raise ImgfrontError(f"cannot read the auth file {path}: {e}") from None
    scopes = _scopes(reference)
    normalized = {normalize_registry(key): entry for key, entry in config.auths.items()}
    for scope in scopes:
        if scope in normalized and (found := _from_entry(normalized[scope])):
            return found
    host = scopes[-1]
    if config.cred_helpers.get(host) or config.creds_store:
        try:
            entry = config.resolve_authconfig("index.docker.io" if host == DOCKER_HUB else host)
        except docker.errors.DockerException as e:
            raise ImgfrontError(f"the credential helper for {host} failed: {e}") from None
        return _from_entry(entry) if entry else None
    return None


def find_credentials(reference: str, authfile: Path | None = None) -> Credentials | None:
    """The credentials for an image reference (or a registry), from the first auth file that has them."""
    for path in auth_files(authfile):
        found = _lookup(path, reference)
        if found is not None:
            return found
    return None


def store_credentials(registry: str, credentials: Credentials, authfile: Path | None = None) -> Path:
    """Write a login as podman does: base64 `user:password` under the registry's key, file mode 0600.

    A credential helper named for the registry in that file (credHelpers, credsStore) stores it instead.
    """
    path = write_auth_file(authfile)
    data = _read_json(path)
    key = normalize_registry(registry)
    helper = (data.get("credHelpers") or {}).get(key) or data.get("credsStore")
    if helper:
        import docker.credentials

        try:
            docker.credentials.Store(helper).store(key, credentials.username, credentials.password)
        except docker.credentials.StoreError as e:
            raise ImgfrontError(f"the credential helper {helper!r} could not store the login: {e}") from None
        return path
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    data.setdefault("auths", {})[key] = {"auth": token}
    _write_private(path, data)
    return path


def remove_credentials(registry: str | None, authfile: Path | None = None) -> list[str]:
    """Forget a registry's login, or every login (registry None); return the keys removed."""
    path = write_auth_file(authfile)
    data = _read_json(path)
    auths: dict[str, Any] = data.get("auths") or {}
    if registry is None:
        removed = list(auths)
    else:
        key = normalize_registry(registry)
        removed = [k for k in auths if normalize_registry(k) == key]
        if not removed:
            if explicit_auth_file(authfile) is None and find_credentials(key) is not None:
                raise ImgfrontError(
                    f"not logged in to {key} in {path}",
                    hint="the credentials come from another file, such as Docker's: use docker logout",
                )
            raise ImgfrontError(f"not logged in to {key}")
    for k in removed:
        del auths[k]
    if removed:
        data["auths"] = auths
        _write_private(path, data)
    return removed


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Only the user may read it, and the folders made for it: 0600 and 0700, as podman login makes them."""
    old = os.umask(0o077)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    finally:
        os.umask(old)
    write_json(path, data, indent=1, mode=0o600)


def read_password(value: str | None, stdin: bool, what: str = "--password") -> str:
    """The password from --password-stdin (one line, newline stripped) or the option; never echoed."""
    if stdin:
        if value is not None:
            raise UsageError(f"{what} and --password-stdin cannot both be given")
        return sys.stdin.readline().rstrip("\r\n")
    if value is None:
        raise UsageError("no password given", hint="pass it with --password-stdin (safer than --password)")
    return value
