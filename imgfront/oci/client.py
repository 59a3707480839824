"""A small client of the OCI distribution API: what login, the list push and `manifest create` need.

Engines push images; this only checks logins, reads manifests and writes image indexes. Authentication
follows the registry's challenge (Basic, or a Bearer token per repository scope). Without TLS
verification, https is tried without checking the certificate and then plain http, as podman does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import tomllib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import requests
import tenacity
import urllib3

from imgfront.errors import ImgfrontError
from imgfront.oci.references import Reference

if TYPE_CHECKING:
    from imgfront.model import Credentials

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
TIMEOUT = (15.0, 120.0)
REGISTRIES_CONF = (Path("/etc/containers/registries.conf"), Path("/etc/containers/registries.conf.d"))

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_BASIC = "*basic*"  # where a Basic challenge's answer is kept: it is the same for every scope


class RegistryError(ImgfrontError):
    """A registry refused or failed a request; exit 1."""


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str
    size: int
    body: bytes

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass(frozen=True)
class PutManifest:
    digest: str  # as the registry names it
    subject: str | None  # the OCI-Subject header: the registry indexed the manifest's subject itself


def insecure_registries(paths: tuple[Path, Path] = REGISTRIES_CONF) -> list[str]:
    """Locations registries.conf marks `insecure = true` (version 2 format), as podman honours them."""
    conf, folder = paths
    files = [conf, *sorted(folder.glob("*.conf"))] if folder.is_dir() else [conf]
    found = []
    for path in files:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for entry in data.get("registry", []):
            if isinstance(entry, dict) and entry.get("insecure") and entry.get("location"):
                found.append(str(entry["location"]))
    return found


def verifies_tls(host: str, tls_verify: bool | None) -> bool:
    """--tls-verify as given; unset, a registry registries.conf marks insecure is not verified."""
    if tls_verify is not None:
        return tls_verify
    return not any(host == loc or host.startswith(loc.rstrip("/") + "/") for loc in insecure_registries())


def _error_text(response: requests.Response) -> str:
    """The registry's own words: its `errors` list, else the status line."""
    try:
        errors = response.json().get("errors") or []
        texts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        texts = []
    return "; ".join(t for t in texts if t) or f"HTTP {response.status_code} {response.reason}"


def _retryable(error: BaseException) -> bool:
    """Dropped connections, timeouts and 5xx answers are tried again; a certificate problem is not."""
    if isinstance(error, requests.exceptions.SSLError):
        return False
    return isinstance(error, requests.ConnectionError | requests.Timeout | _ServerError)


class _ServerError(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(_error_text(response))
        self.response = response


class RegistryClient:
    """One registry host, as one set of credentials sees it."""

    def __init__(self, host: str, credentials: Credentials | None = None, tls_verify: bool | None = None) -> None:
        self.host = host
        self.credentials = credentials
        self.verify = verifies_tls(host, tls_verify)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "imgfront"
        self._base: str | None = None
        self._authorization: dict[str, str] = {}  # scope -> Authorization header
        if not self.verify:
            # Asked for: one warning per request from urllib3 would bury the output.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------------

    def _scheme_base(self) -> str:
        if self._base is None:
            self._base = f"https://{self.host}"
            if not self.verify:
                try:
                    self.session.get(f"{self._base}/v2/", verify=False, timeout=TIMEOUT)
                except requests.ConnectionError:  # no TLS there (an SSLError is one too), or no https port
                    self._base = f"http://{self.host}"
        return self._base

    def _token(self, challenge: str, scope: str) -> str:
        kind, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE.findall(rest))
        creds = self.credentials
        if kind.lower() == "basic":
            if creds is None:
                raise RegistryError(f"{self.host}: authentication required", hint=self._login_hint())
            return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        realm = params.get("realm")
        if kind.lower() != "bearer" or not realm:
            raise RegistryError(f"{self.host}: unsupported authentication challenge {kind!r}")
        query: dict[str, str | list[str]] = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope.split()  # one scope= per repository, as the token spec has them
        try:
            if creds is not None and creds.identity_token:
                form = {**query, "grant_type": "refresh_token", "refresh_token": creds.identity_token}
                response = self.session.post(
                    realm, data={**form, "client_id": "imgfront"}, timeout=TIMEOUT, verify=self.verify
                )
            else:
                auth = (creds.username, creds.password) if creds is not None else None
                response = self.session.get(realm, params=query, auth=auth, timeout=TIMEOUT, verify=self.verify)
        except requests.RequestException as e:
            raise RegistryError(f"{self.host}: could not get a token from {realm}: {type(e).__name__}") from None
        if response.status_code in (401, 403):
            raise RegistryError(f"{self.host}: the credentials were refused", hint=self._login_hint())
        if response.status_code >= 400:
            raise RegistryError(f"{self.host}: the token service refused: {_error_text(response)}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{self.host}: the token service gave no token")
        return f"Bearer {token}"

    def _login_hint(self) -> str:
        return f"log in with: imgfront login {self.host}"

    @tenacity.retry(
        retry=tenacity.retry_if_exception(_retryable),
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(multiplier=0.5, max=4),
        reraise=True,
    )
    def _send(self, method: str, path: str, scope: str, **kwargs: Any) -> requests.Response:
        url = f"{self._scheme_base()}{path}"
        headers = dict(kwargs.pop("headers", {}))
        known = self._authorization.get(scope) or self._authorization.get(_BASIC)
        if known:
            headers["Authorization"] = known
        response = self.session.request(method, url, headers=headers, verify=self.verify, timeout=TIMEOUT, **kwargs)
        if response.status_code == 401 and "Authorization" not in headers:
            challenge = response.headers.get("WWW-Authenticate", "")
            authorization = self._token(challenge, scope)
            # Basic credentials hold for every repository; a token only for its scope.
            self._authorization[_BASIC if authorization.startswith("Basic ") else scope] = authorization
            headers["Authorization"] = authorization
            response = self.session.request(method, url, headers=headers, verify=self.verify, timeout=TIMEOUT, **kwargs)
        if response.status_code >= 500:
            raise _ServerError(response)
        return response

    def request(self, method: str, path: str, scope: str = "", **kwargs: Any) -> requests.Response:
        """A request with authentication; connection failures and 5xx answers are retried, then one error."""
        try:
            response = self._send(method, path, scope, **kwargs)
        except _ServerError as e:
            raise RegistryError(f"{self.host}: the registry failed: {e}") from None
        except requests.exceptions.SSLError:
            raise RegistryError(
                f"{self.host}: no trusted TLS connection (the registry may have no TLS, or an unknown certificate)",
                hint="for a registry without valid TLS, pass --tls-verify=false",
            ) from None
        except requests.RequestException as e:
            raise RegistryError(f"{self.host}: cannot reach the registry ({type(e).__name__})") from None
        if response.status_code == 401:
            raise RegistryError(f"{self.host}: the credentials were refused", hint=self._login_hint())
        return response

    # -- the API ----------------------------------------------------------------------------------

    def check_login(self) -> None:
        """Raise RegistryError unless the credentials are accepted."""
        response = self.request("GET", "/v2/")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}: {_error_text(response)}")

    def manifest(self, repository: str, reference: str, *, push: bool = False) -> Manifest:
        """A manifest or index by tag or digest, checked against its digest when asked by digest."""
        found = self._manifest(repository, reference, push)
        if isinstance(found, Manifest):
            return found
        raise RegistryError(f"{self.host}/{repository}: {reference} not found ({_error_text(found)})")

    def find_manifest(self, repository: str, reference: str, *, push: bool = False) -> Manifest | None:
        """A manifest or index as `manifest` reads it, or None when the registry has nothing under that name."""
        found = self._manifest(repository, reference, push)
        return found if isinstance(found, Manifest) else None

    def _manifest(self, repository: str, reference: str, push: bool) -> Manifest | requests.Response:
        """The manifest, or the registry's 404 answer."""
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}", scope, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return response
        if response.status_code == 403:
            raise RegistryError(f"{self.host}/{repository}: reading refused ({_error_text(response)})")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}/{repository}:{reference}: {_error_text(response)}")
        body = response.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"{self.host}/{repository}: the manifest for {reference} has digest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0] or json.loads(body).get("mediaType", "")
        return Manifest(media_type, digest, len(body), body)

    def blob_json(self, repository: str, digest: str) -> dict[str, Any]:
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}/{repository}: blob {digest}: {_error_text(response)}")
        data: dict[str, Any] = response.json()
        return data

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[IO[bytes]]:
        """A blob as a stream, read as it arrives (layers are never held whole)."""
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull", stream=True)
        try:
            if response.status_code != 200:
                raise RegistryError(f"{self.host}/{repository}: blob {digest}: {_error_text(response)}")
            yield cast(IO[bytes], response.raw)  # urllib3 response: read(n) gives the bytes as sent
        finally:
            response.close()

    def mount_blob(self, repository: str, digest: str, source: str) -> None:
        """Make a blob of `source` (same registry) part of `repository` without moving its bytes."""
        scope = f"repository:{repository}:pull,push repository:{source}:pull"
        head = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope)
        if head.status_code == 200:
            return
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scope, params={"mount": digest, "from": source}
        )
        if response.status_code != 201:
            raise RegistryError(
                f"{self.host}/{repository}: could not mount {digest} from {source}: {_error_text(response)}"
            )

    def upload_blob(self, repository: str, digest: str, path: Path) -> None:
        """Put a blob into `repository` from a file, in one monolithic upload, unless it is there already."""
        scope = f"repository:{repository}:pull,push"
        if self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope).status_code == 200:
            return
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope)
        location = started.headers.get("Location", "")
        if started.status_code != 202 or not location:
            raise RegistryError(f"{self.host}/{repository}: could not start an upload: {_error_text(started)}")
        # Location may be absolute or a path; its query (the upload's state) stays, and the digest is added.
        parts = urllib.parse.urlsplit(location)
        query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), ("digest", digest)])
        with path.open("rb") as body:
            done = self.request(
                "PUT",
                f"{parts.path}?{query}",
                scope,
                data=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
            )
        if done.status_code != 201:
            raise RegistryError(f"{self.host}/{repository}: uploading {digest} failed: {_error_text(done)}")

    def blob_exists(self, repository: str, digest: str) -> bool:
        scope = f"repository:{repository}:pull"
        return self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope).status_code == 200

    def read_blob(self, repository: str, digest: str) -> bytes:
        """A small blob whole, checked against its digest."""
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}/{repository}: blob {digest}: {_error_text(response)}")
        if digest != "sha256:" + hashlib.sha256(response.content).hexdigest():
            raise RegistryError(f"{self.host}/{repository}: blob {digest} does not match its digest")
        return response.content

    def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> dict[str, Any] | None:
        """The OCI 1.1 referrers list of a manifest; None when the registry has no referrers API.

        Registries without it answer 404 (distribution 2.8: the route is unknown) or something that is no index.
        """
        params = {"artifactType": artifact_type} if artifact_type else None
        scope = f"repository:{repository}:pull"
        response = self.request(
            "GET", f"/v2/{repository}/referrers/{digest}", scope, params=params, headers={"Accept": OCI_INDEX}
        )
        if response.status_code != 200:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        if (
            not isinstance(data, dict)
            or data.get("mediaType") != OCI_INDEX
            or not isinstance(data.get("manifests"), list)
        ):
            return None
        return data

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; return the digest the registry gives it."""
        return self.put_manifest_response(repository, reference, body, media_type).digest

    def put_manifest_response(self, repository: str, reference: str, body: bytes, media_type: str) -> PutManifest:
        """put_manifest, with the `OCI-Subject` header a registry with the referrers API answers a subject with."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            f"repository:{repository}:pull,push",
            data=body,
            headers={"Content-Type": media_type},
        )
        where = f"{self.host}/{repository}:{reference}" if ":" not in reference else f"{self.host}/{repository}"
        if response.status_code == 404:
            raise RegistryError(f"{where}: the repository does not exist ({_error_text(response)})")
        if response.status_code == 403:
            raise RegistryError(f"{where}: the push was refused ({_error_text(response)})")
        if response.status_code not in (200, 201):
            raise RegistryError(f"{where}: the push was refused ({_error_text(response)})")
        digest = response.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        return PutManifest(digest, response.headers.get("OCI-Subject"))


def open_registry(reference: Reference, tls_verify: bool | None, authfile: Path | None) -> RegistryClient:
    """A client for the registry of `reference`, with the credentials the auth files hold for it."""
    from imgfront.oci.auth import find_credentials  # here: auth loads the Docker SDK's parser, which a client need not

    return RegistryClient(reference.domain, find_credentials(reference.repository, authfile), tls_verify)


_CAUSE_HINTS = (
    ("unauthorized", "check the credentials: imgfront login {host}"),
    ("authentication required", "check the credentials: imgfront login {host}"),
    ("server gave http response to https client", "the registry has no TLS: pass --tls-verify=false"),
    ("x509", "the registry's certificate is not trusted: pass --tls-verify=false to skip the check"),
    ("name unknown", "the repository does not exist: create it in the registry first"),
    ("denied", "the registry refused the push: check the account's rights to this repository"),
    ("read-only", "the registry is read-only"),
    ("unsupported", "the registry refused the push: it may be read-only"),
    ("connection refused", "is the registry running, and is the address right?"),
)


def push_failure(destination: str, node: str, cause: str, secrets: tuple[str, ...] = ()) -> RegistryError:
    """One line for a push an engine could not make, with the fix its cause suggests."""
    cause = " ".join(redact(cause, secrets).split())
    return RegistryError(f"pushing {destination} from {node} failed: {cause}", hint=cause_hint(cause, destination))


def cause_hint(cause: str, destination: str) -> str | None:
    """The fix a registry's refusal suggests, for a reference in that registry."""
    host = destination.split("/", 1)[0]
    return next((h.format(host=host) for key, h in _CAUSE_HINTS if key in cause.lower()), None)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Blank out each secret, so that no engine's message can carry a password into imgfront's output."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
