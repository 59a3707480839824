"""A real registry on loopback: Debian's docker-registry (distribution 2.8), htpasswd auth, no TLS.

RegistryServer is the test's registry *server*; imgfront's own client is imgfront.oci.client.RegistryClient.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration.services.common import SETUP_HINT, free_port, stop

REGISTRY_START_TIMEOUT = 20.0

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
auth:
  htpasswd:
    realm: imgfront-test
    path: {htpasswd}
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
"""
# What a registry client accepts; without the list types, a registry answers with one platform's image.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# Appended to REGISTRY_CONFIG, whose last section is storage.
REGISTRY_READONLY = """\
  maintenance:
    readonly:
      enabled: true
"""


@dataclass(frozen=True)
class RegistryServer:
    """A real registry on loopback, without TLS, that lets in one user."""

    url: str  # host:port, as image references name it
    user: str
    password: str
    pid: int
    root: Path  # its storage

    def _basic(self, password: str | None = None) -> str:
        import base64

        return base64.b64encode(f"{self.user}:{password or self.password}".encode()).decode()

    def write_auth_file(self, path: Path, password: str | None = None) -> Path:
        """An auth file as podman login writes it, for the user (with another password when given)."""
        path.write_text(json.dumps({"auths": {self.url: {"auth": self._basic(password)}}}))
        return path

    def manifest(self, repository: str, reference: str) -> tuple[int, str, dict[str, Any]]:
        """A manifest with every media type accepted: (status, Docker-Content-Digest, the JSON)."""
        status, headers, body = self.get(f"/v2/{repository}/manifests/{reference}")
        return status, headers.get("Docker-Content-Digest", ""), json.loads(body or b"{}")

    def get(self, url_path: str, auth: bool = True, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """GET url_path (e.g. "/v2/"), with the user's basic credentials unless auth is False."""
        host, _, port = self.url.rpartition(":")
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        if auth:
            headers["Authorization"] = f"Basic {self._basic()}"
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            conn.request("GET", url_path, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


@contextlib.contextmanager
def run_registry(base: Path, readonly: bool = False) -> Iterator[RegistryServer]:
    """Debian's docker-registry on 127.0.0.1 and a free port, htpasswd auth, storage under base; stopped by PID."""
    import secrets

    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        missing = "docker-registry (package docker-registry)" if binary is None else "htpasswd (package apache2-utils)"
        pytest.fail(f"{missing} is not installed: {SETUP_HINT}", pytrace=False)
    user, password = "imgfront", secrets.token_urlsafe(18)
    made = subprocess.run([htpasswd, "-Bbn", user, password], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"htpasswd failed: {made.stderr}", pytrace=False)
    (base / "htpasswd").write_text(made.stdout)
    port = free_port()
    config = base / "config.yml"
    config.write_text(
        REGISTRY_CONFIG.format(
            root=base / "storage", port=port, secret=secrets.token_hex(16), htpasswd=base / "htpasswd"
        )
        + (REGISTRY_READONLY if readonly else "")
    )
    log = base / "registry.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [binary, "serve", os.fspath(config)], stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = RegistryServer(url=f"127.0.0.1:{port}", user=user, password=password, pid=proc.pid, root=base / "storage")
    try:
        deadline = time.monotonic() + REGISTRY_START_TIMEOUT
        while True:
            try:
                if server.get("/v2/", auth=False, timeout=2.0)[0] == 401:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not start:\n{log.read_text()[-4000:]}", pytrace=False)
            time.sleep(0.05)
        yield server
    finally:
        stop(proc)
        shutil.rmtree(base, ignore_errors=True)
