"""The engine seam: a registry read lazily, one connect() with its timeouts, and no raw SDK error out of an adapter.

`MockEngine` is a loopback unix-socket HTTP server standing in for a podman service or a Docker engine that
goes bad: it answers the probe as a real one would, then, as the test says, answers every other request with
a 500, or closes the connection without a word, or (for the connect timeout) accepts and never answers.
"""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from imgfront.engines import connected
from imgfront.engines.base import BuildRequest, Cancellation, ImageBuilder, ListInfo, ListInstance, SilentEvents
from imgfront.engines.registry import EngineSettings
from imgfront.errors import EngineError, PlatformBuildError
from imgfront.nodes.connections import Connection
from imgfront.oci.client import RegistryError
from imgfront.platforms import Platform
from imgfront.run.context import pack

AMD64 = Platform.parse("linux/amd64")
DOCKER_20 = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "Components": [{"Name": "Engine"}]}
DOCKER_INFO = {"Architecture": "x86_64", "OSType": "linux", "Driver": "overlay2"}


class MockEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        self.mode = "ok"  # then "500" or "close"
        super().__init__(str(path), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: MockEngine
    protocol_version = "HTTP/1.1"

    def _probe_answer(self) -> bool:
        path = self.path.split("?")[0]
        if path.endswith("/_ping") and self.server.mode == "ok":
            self._send(200, b"OK", {"Libpod-Api-Version": "4.3.1", "Server": "Libpod/4.3.1 (linux)"})
        elif path.endswith("/version") and self.server.mode == "ok":
            self._send(200, json.dumps(DOCKER_20).encode(), {"Api-Version": "1.41"})
        elif path.endswith("/info") and self.server.mode == "ok":
            self._send(200, json.dumps(DOCKER_INFO).encode(), {})
        else:
            return False
        return True

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self._probe_answer():
            return
        if self.server.mode == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(500, json.dumps({"message": "mock engine: broken", "cause": "broken"}).encode(), {})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"


@pytest.fixture
def mock_engine(tmp_path: Path) -> Iterator[MockEngine]:
    server = MockEngine(tmp_path / "engine.sock")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _calls(node: ImageBuilder, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """Every public method of the interface, with arguments that make it ask the engine."""
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Containerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    request = BuildRequest(pack(context, context / "Containerfile", tmp_path), AMD64)
    made = ListInfo("localhost/imgfront-tmp-x:list", "0" * 64, "", "", 0, ())
    instance = ListInstance("1" * 64, AMD64)
    return {
        "status": node.status,
        "info": node.info,
        "build": lambda: node.build(request, SilentEvents(), Cancellation()),
        "inspect_image": lambda: node.inspect_image("localhost/x:1"),
        "export_image": lambda: list(node.export_image("1" * 64)),
        "import_image": lambda: node.import_image(iter([b"not a tar"])),
        "remove_image": lambda: node.remove_image("localhost/x:1"),
        "prune": node.prune,
        "inspect_list": lambda: node.inspect_list("localhost/x:1"),
        "create_list": lambda: node.create_list([instance]),
        "name_list": lambda: node.name_list(made, ["localhost/x:1"]),
        "drop_list": lambda: node.drop_list(made),
        "commit_list": lambda: node.commit_list(["localhost/x:1"], [instance]),
        "resolve_base": lambda: node.resolve_base("localhost/base:1", AMD64),
        "tag_image": lambda: node.tag_image("1" * 64, "localhost/x:2"),
        "list_images": lambda: node.list_images("localhost/x:1"),
        "push_list": lambda: node.push_list("localhost/x:1", "127.0.0.1:1/x:1", None, False),
        "push_image": lambda: node.push_image("1" * 64, AMD64, "127.0.0.1:1/x:1", None, False),
    }


# Methods that ask nothing of this engine (Docker holds no lists), or that say what is left instead of failing.
ASK_NOTHING = {"docker": {"inspect_list", "drop_list"}}


@pytest.mark.parametrize("mode", ["500", "close"])
@pytest.mark.parametrize("prefix", ["", "docker+"], ids=["podman", "docker"])
def test_every_adapter_method_turns_a_failing_engine_into_one_imgfront_error(
    mock_engine: MockEngine, prefix: str, mode: str, tmp_path: Path
) -> None:
    with connected(Connection("bad", f"{prefix}unix://{mock_engine.server_address}"), local=False) as node:
        mock_engine.mode = mode
        raw: dict[str, str] = {}
        quiet: list[str] = []
        for name, call in _calls(node, tmp_path).items():
            try:
                call()
            # PlatformBuildError: NodeLost, or a refused build; RegistryError: a push, with its hint
            except (EngineError, PlatformBuildError, RegistryError) as e:
                assert str(e.message).startswith(("bad", "linux/amd64@bad", "pushing ")), e.message
            except Exception as e:  # what the test is looking for
                raw[name] = f"{type(e).__module__}.{type(e).__name__}: {e}"
            else:
                quiet.append(name)
        assert raw == {}
        assert set(quiet) <= ASK_NOTHING.get(node.driver, set()) | {"clean_cancelled"}
        assert isinstance(node.clean_cancelled(), tuple)


class SilentEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Accepts, reads the request and never answers; gives up after `patience` seconds by closing."""

    daemon_threads = True
    patience = 6.0

    def __init__(self, path: Path) -> None:
        self.stop = threading.Event()
        super().__init__(str(path), socketserver.BaseRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.stop.wait(self.patience)


@pytest.mark.parametrize("prefix", ["", "docker+"], ids=["podman", "docker"])
def test_connect_timeout_reaches_the_probe(prefix: str, tmp_path: Path) -> None:
    """With --connect-timeout 1 the probe gives up on a silent engine itself, before the engine's own patience
    (6 s) runs out and it hangs up; with the old fixed 10 s the error would be the hang-up's instead."""
    server = SilentEngine(tmp_path / "silent.sock")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with pytest.raises(EngineError) as info:
            connected(Connection("mute", f"{prefix}unix://{server.server_address}"), EngineSettings(1.0)).__enter__()
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
    assert "did not answer within 1 s" in info.value.message


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["build", "--help"]])
def test_start_up_loads_no_engine_sdk(args: list[str]) -> None:
    """`imgfront --version` and `--help` import neither podman-py nor the Docker SDK; nor does the plan."""
    code = (
        "import sys\n"
        "import imgfront.run.plan\n"
        "from imgfront.cli.main import main\n"
        f"sys.argv = ['imgfront', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', sorted(m for m in ('podman', 'docker', 'requests') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "LOADED []" in result.stdout, result.stdout + result.stderr
