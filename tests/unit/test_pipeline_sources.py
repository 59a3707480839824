"""The sources cache: verified downloads, nothing stored on a mismatch, no second fetch, retries."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from imgfront.errors import ImgfrontError, UsageError
from imgfront.pipeline import sources
from imgfront.pipeline.model import SourceItem, Sources


def checksum(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored(cache: Path) -> list[str]:
    folder = cache / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def tool(tmp_path: Path) -> tuple[str, str]:
    """A file:// source: (checksum, url)."""
    path = tmp_path / "tool.tar.gz"
    path.write_bytes(b"the tool")
    return checksum(b"the tool"), path.as_uri()


class Server:
    """A loopback HTTP server that answers each path with a scripted list of (status, body)."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, bytes]]] = {}
        self.requests: list[str] = []
        self.before_reply: Any = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.before_reply:
                    server.before_reply()
                replies = server.script.get(self.path, [(404, b"")])
                status, body = replies.pop(0) if len(replies) > 1 else replies[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()
    s.thread.join()


def test_a_file_url_is_fetched_into_the_cache_by_checksum(tmp_path: Path, tool: tuple[str, str]) -> None:
    digest, url = tool
    cache = tmp_path / "cache"
    found = sources.fetch(Sources((SourceItem(digest, url),)), [digest], cache)
    assert found == {digest: cache / "sha256" / digest.removeprefix("sha256:")}
    assert found[digest].read_bytes() == b"the tool"
    assert stored(cache) == [digest.removeprefix("sha256:")]  # no .unverified- file left behind


def test_a_checksum_mismatch_names_everything_and_stores_nothing(tmp_path: Path, tool: tuple[str, str]) -> None:
    _, url = tool
    wrong = "sha256:" + "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(ImgfrontError) as caught:
        sources.fetch(Sources((SourceItem(wrong, url),)), [wrong], cache)
    message = caught.value.message
    assert wrong in message and url in message and checksum(b"the tool") in message
    assert stored(cache) == []


def test_a_present_item_is_never_fetched_again(
    tmp_path: Path, tool: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    digest, url = tool
    calls: list[str] = []
    original = sources._download

    def counting(u: str, temp: Path) -> str:
        calls.append(u)
        return original(u, temp)

    monkeypatch.setattr(sources, "_download", counting)
    items = Sources((SourceItem(digest, url),))
    sources.fetch(items, [digest], tmp_path / "cache")
    sources.fetch(items, [digest], tmp_path / "cache")
    assert calls == [url]


def test_a_concurrent_winner_is_kept(tmp_path: Path, tool: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    digest, url = tool
    cache = tmp_path / "cache"
    target = cache / "sha256" / digest.removeprefix("sha256:")
    original = sources._download

    def racing(u: str, temp: Path) -> str:
        result = original(u, temp)
        target.write_bytes(b"the tool")  # another process finished first
        return result

    monkeypatch.setattr(sources, "_download", racing)
    found = sources.fetch(Sources((SourceItem(digest, url),)), [digest], cache)
    assert found[digest].read_bytes() == b"the tool"
    assert stored(cache) == [digest.removeprefix("sha256:")]


def test_http_retries_after_a_server_error(tmp_path: Path, server: Server) -> None:
    server.script["/tool"] = [(500, b"busy"), (200, b"over http")]
    digest = checksum(b"over http")
    found = sources.fetch(Sources((SourceItem(digest, server.url("/tool")),)), [digest], tmp_path / "c", wait=0)
    assert found[digest].read_bytes() == b"over http"
    assert server.requests == ["/tool", "/tool"]


def test_http_gives_up_after_its_attempts(tmp_path: Path, server: Server) -> None:
    server.script["/down"] = [(503, b"")]
    digest = checksum(b"x")
    with pytest.raises(ImgfrontError, match="HTTP 503") as caught:
        sources.fetch(Sources((SourceItem(digest, server.url("/down")),)), [digest], tmp_path / "c", attempts=3, wait=0)
    assert caught.value.hint == "gave up after 3 attempts"
    assert len(server.requests) == 3
    assert stored(tmp_path / "c") == []


def test_http_not_found_is_not_retried(tmp_path: Path, server: Server) -> None:
    digest = checksum(b"x")
    with pytest.raises(ImgfrontError, match="HTTP 404"):
        sources.fetch(Sources((SourceItem(digest, server.url("/missing")),)), [digest], tmp_path / "c", wait=0)
    assert server.requests == ["/missing"]


def test_a_mismatch_over_http_is_not_retried(tmp_path: Path, server: Server) -> None:
    server.script["/tool"] = [(200, b"tampered")]
    digest = checksum(b"original")
    with pytest.raises(ImgfrontError, match="does not match"):
        sources.fetch(Sources((SourceItem(digest, server.url("/tool")),)), [digest], tmp_path / "c", wait=0)
    assert server.requests == ["/tool"]


def test_several_items_are_fetched_together(tmp_path: Path, server: Server) -> None:
    bodies = [f"item {i}".encode() for i in range(5)]
    for i, body in enumerate(bodies):
        server.script[f"/{i}"] = [(200, body)]
    items = Sources(tuple(SourceItem(checksum(b), server.url(f"/{i}")) for i, b in enumerate(bodies)))
    found = sources.fetch(items, items.checksums, tmp_path / "c", jobs=3)
    assert {found[checksum(b)].read_bytes() for b in bodies} == set(bodies)
    assert sorted(server.requests) == [f"/{i}" for i in range(5)]


def test_the_winner_of_a_race_over_http_is_kept(tmp_path: Path, server: Server) -> None:
    body = b"raced"
    digest = checksum(body)
    target = tmp_path / "c" / "sha256" / digest.removeprefix("sha256:")
    server.script["/r"] = [(200, body)]
    server.before_reply = lambda: target.write_bytes(body)
    found = sources.fetch(Sources((SourceItem(digest, server.url("/r")),)), [digest], tmp_path / "c")
    assert found[digest] == target and stored(tmp_path / "c") == [target.name]


def test_a_needed_item_without_a_url_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no URL"):
        sources.fetch(Sources(), ["sha256:" + "1" * 64], tmp_path / "c")


def test_a_missing_file_url_is_an_error(tmp_path: Path) -> None:
    digest = checksum(b"x")
    with pytest.raises(ImgfrontError, match="cannot read file://"):
        sources.fetch(Sources((SourceItem(digest, (tmp_path / "gone").as_uri()),)), [digest], tmp_path / "c")
    assert stored(tmp_path / "c") == []


def test_the_cache_lives_under_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sources.default_cache_dir() == tmp_path / "imgfront" / "sources"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sources.default_cache_dir() == tmp_path / ".cache" / "imgfront" / "sources"
