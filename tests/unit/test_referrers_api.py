"""Referrers through the OCI 1.1 API, against MockReferrersRegistry.

It is a mock: the docker-registry here (distribution 2.8) has no referrers API, and none that has one can be
installed on this machine. It is a loopback HTTP server in this process, without authentication, that keeps
blobs and manifests in memory, answers a manifest with a subject with `OCI-Subject`, and lists referrers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from tiny_image import tiny_image

from imgfront.images.artifacts import PROVENANCE_TYPE, SBOM_TYPE, Attestation, add_artifact
from imgfront.images.blobs import OCI_INDEX, BlobStore
from imgfront.oci.client import RegistryClient
from imgfront.oci.referrers import fetch_document, find_referrers, push_artifacts


class MockReferrersRegistry(BaseHTTPRequestHandler):
    blobs: ClassVar[dict[str, bytes]] = {}
    manifests: ClassVar[dict[str, tuple[str, bytes]]] = {}  # digest or tag -> (media type, body)
    requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _parts(self) -> tuple[list[str], dict[str, list[str]]]:
        url = urlsplit(self.path)
        type(self).requests.append(f"{self.command} {url.path}")
        return url.path.split("/"), parse_qs(url.query)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts, query = self._parts()
        kind, ref = parts[-2], parts[-1]
        if kind == "blobs" and ref in self.blobs:
            self._send(200, self.blobs[ref])
        elif kind == "manifests" and ref in self.manifests:
            media_type, body = self.manifests[ref]
            self._send(200, body, {"Content-Type": media_type})
        elif kind == "referrers":
            entries = []
            for key, (media_type, body) in self.manifests.items():
                data = json.loads(body)
                if key.startswith("sha256:") and (data.get("subject") or {}).get("digest") == ref:
                    entry = {"mediaType": media_type, "digest": key, "size": len(body)}
                    entries.append({**entry, "artifactType": data.get("artifactType"), **_annotations(data)})
            wanted = query.get("artifactType")
            if wanted:
                entries = [e for e in entries if e["artifactType"] in wanted]
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
            self._send(200, body, {"Content-Type": OCI_INDEX})
        else:
            self._send(404, b'{"errors":[{"code":"NOT_FOUND"}]}')

    def do_POST(self) -> None:
        self._parts()
        self._send(202, headers={"Location": "/v2/upload/1?state=x"})

    def do_PUT(self) -> None:
        parts, query = self._parts()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if parts[-2] == "manifests":
            self.manifests[parts[-1]] = self.manifests[digest] = (self.headers["Content-Type"], body)
            subject = (json.loads(body).get("subject") or {}).get("digest")
            headers = {"Docker-Content-Digest": digest, **({"OCI-Subject": subject} if subject else {})}
            self._send(201, headers=headers)
        else:
            assert query["digest"] == [digest]
            self.blobs[digest] = body
            self._send(201)


def _annotations(data: dict[str, Any]) -> dict[str, Any]:
    return {"annotations": data["annotations"]} if data.get("annotations") else {}


@pytest.fixture
def mock_registry() -> Iterator[str]:
    MockReferrersRegistry.blobs, MockReferrersRegistry.manifests, MockReferrersRegistry.requests = {}, {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), MockReferrersRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_registry_with_the_referrers_api_gets_no_referrers_tag(mock_registry: str, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    image = tiny_image(store, "linux/amd64")
    sbom = add_artifact(store, image, Attestation("sbom", SBOM_TYPE, b'{"spdx":1}'))
    provenance = add_artifact(store, image, Attestation("provenance", PROVENANCE_TYPE, b'{"p":1}'))
    with RegistryClient(mock_registry, tls_verify=False) as client:
        for digest in store.json(image.digest)["layers"][0]["digest"], store.json(image.digest)["config"]["digest"]:
            client.upload_blob("app", digest, store.path(digest))
        client.put_manifest("app", image.digest, store.read(image.digest), image.media_type)
        assert push_artifacts(client, "app", store, [sbom, provenance]) == [sbom.digest, provenance.digest]
        tag = "sha256-" + image.digest.partition(":")[2]
        assert tag not in MockReferrersRegistry.manifests
        found = find_referrers(client, "app", image.digest)
        assert {e["digest"] for e in found} == {sbom.digest, provenance.digest}
        [only] = find_referrers(client, "app", image.digest, SBOM_TYPE)
        assert only["digest"] == sbom.digest
        assert fetch_document(client, "app", only["digest"]) == b'{"spdx":1}'
    assert f"GET /v2/app/manifests/{tag}" not in MockReferrersRegistry.requests
