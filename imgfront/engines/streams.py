"""What both engine adapters need of their HTTP streams: version numbers, and waking a blocked reader."""

from __future__ import annotations

import contextlib
import re
import socket
from typing import Any


def parse_version(text: str) -> tuple[int, ...]:
    """The first three numbers of a version string: "4.3.1" -> (4, 3, 1), "5.0.0-dev" -> (5, 0, 0)."""
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def shut_down(response: Any) -> None:
    """Wake the reader blocked on a build stream: shut its socket down, which also ends the build server-side.

    Not response.close() when the socket is there: closing it under the reader's feet breaks http.client;
    the reader closes it.
    """
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    else:
        response.close()
