"""The server's version gates what imgfront asks of it.

An old podman cannot be installed beside 4.3 here, so `MockOldPodman` stands in for one: a unix-socket
HTTP server that answers /_ping and /version as podman 4.2 would, and nothing else.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from imgfront.engines import connected
from imgfront.engines.streams import parse_version
from imgfront.errors import EngineError
from imgfront.nodes.connections import Connection


class _Handler(BaseHTTPRequestHandler):
    version_answer = "4.2.0"

    def do_GET(self) -> None:
        if self.path.endswith("/_ping"):
            self.send_response(200)
            self.send_header("Libpod-Api-Version", self.version_answer)
            self.send_header("Server", f"Libpod/{self.version_answer} (linux)")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
        elif self.path.endswith("/version"):
            body = json.dumps(
                {
                    "Version": self.version_answer,
                    "Components": [
                        {
                            "Name": "Podman Engine",
                            "Version": self.version_answer,
                            "Details": {"APIVersion": self.version_answer},
                        }
                    ],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"


class MockOldPodman(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def old_podman(tmp_path: Path) -> Iterator[Path]:
    sock = tmp_path / "old.sock"
    server = MockOldPodman(str(sock), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sock
    server.shutdown()
    server.server_close()


def test_server_older_than_43_is_refused_clearly(old_podman: Path) -> None:
    with pytest.raises(EngineError) as info:
        connected(Connection("old", f"unix://{old_podman}")).__enter__()
    assert "podman 4.2.0" in info.value.message
    assert "too old; imgfront needs podman 4.3 or newer" in info.value.message


def test_nothing_listening_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        connected(Connection("gone", f"unix://{tmp_path}/none.sock")).__enter__()
    assert "no podman service answers" in info.value.message


@pytest.mark.parametrize(("text", "expected"), [("4.3.1", (4, 3, 1)), ("5.0.0-dev", (5, 0, 0)), ("4.9", (4, 9))])
def test_parse_version(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected
