"""The registry client's token flow and retries, against MockTokenRegistry.

MockTokenRegistry is a mock: the docker-registry here offers Basic authentication only, and a token service
(as Docker Hub, ghcr.io and quay.io run) cannot be had on this machine. It is a loopback HTTP server in this
process, stopped when the test ends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from imgfront.model import Credentials
from imgfront.oci.client import OCI_INDEX, RegistryClient, RegistryError

INDEX = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()


class MockTokenRegistry(BaseHTTPRequestHandler):
    """A registry that wants Bearer tokens, and the token service that grants them for user/secret."""

    token_requests: ClassVar[list[dict[str, list[str]]]] = []
    failures_left: ClassVar[int] = 0

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        port = cast(ThreadingHTTPServer, self.server).server_port
        if url.path == "/token":
            query = parse_qs(url.query)
            type(self).token_requests.append(query)
            expected = "Basic " + base64.b64encode(b"user:secret").decode()
            if self.headers.get("Authorization") != expected:
                self._send(401)
                return
            self._send(200, json.dumps({"token": "tok:" + " ".join(sorted(query.get("scope", [])))}).encode())
            return
        if type(self).failures_left:
            type(self).failures_left -= 1
            self._send(503)
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer tok:"):
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="mock"'
            self._send(401, headers={"WWW-Authenticate": challenge})
            return
        if url.path == "/v2/team/app/manifests/1":
            self._send(200, INDEX, {"Content-Type": OCI_INDEX})
            return
        self._send(404, json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]}).encode())


@pytest.fixture
def mock_registry() -> Iterator[str]:
    MockTokenRegistry.token_requests = []
    MockTokenRegistry.failures_left = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), MockTokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_bearer_token_per_repository_scope(mock_registry: str) -> None:
    with RegistryClient(mock_registry, Credentials("user", "secret"), tls_verify=False) as registry:
        manifest = registry.manifest("team/app", "1")
        assert manifest.is_index and manifest.digest == "sha256:" + hashlib.sha256(INDEX).hexdigest()
        registry.manifest("team/app", "1")  # the token is reused for the same scope
    assert MockTokenRegistry.token_requests == [{"service": ["mock"], "scope": ["repository:team/app:pull"]}]


def test_wrong_password_and_missing_repository_are_one_clear_error(mock_registry: str) -> None:
    with (
        RegistryClient(mock_registry, Credentials("user", "wrong"), tls_verify=False) as registry,
        pytest.raises(RegistryError, match="credentials were refused") as refused,
    ):
        registry.check_login()
    assert "imgfront login" in (refused.value.hint or "")
    with (
        RegistryClient(mock_registry, Credentials("user", "secret"), tls_verify=False) as registry,
        pytest.raises(RegistryError, match=r"not found .*NAME_UNKNOWN"),
    ):
        registry.manifest("team/other", "1")


def test_server_errors_are_retried(mock_registry: str) -> None:
    MockTokenRegistry.failures_left = 2
    with RegistryClient(mock_registry, Credentials("user", "secret"), tls_verify=False) as registry:
        assert registry.manifest("team/app", "1").is_index
    assert MockTokenRegistry.failures_left == 0
