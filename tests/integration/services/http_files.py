"""A plain HTTP file server on loopback (python -m http.server), for contexts fetched by URL; stopped by its PID."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from integration.services.common import free_port, stop, wait_for_port


@dataclass(frozen=True)
class FileServer:
    root: Path  # what it serves
    url: str  # http://127.0.0.1:PORT


@contextmanager
def run_file_server(root: Path, log: Path) -> Iterator[FileServer]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(proc, port, log, "the file server")
        yield FileServer(root, f"http://127.0.0.1:{port}")
    finally:
        stop(proc)
