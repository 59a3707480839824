"""What both engine adapters need of their HTTP streams: version numbers, waking a blocked reader, and what a
broken build stream means."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Sequence
from typing import Any

import requests
import urllib3.exceptions

from imgfront.engines.base import Cancellation
from imgfront.errors import Cancelled, NodeLost, PlatformBuildError


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


def timed_out(error: BaseException, seconds: float) -> str:
    """ "did not answer within N s" when the error (or one it came from) is a timeout, else ""."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, (TimeoutError, requests.Timeout, urllib3.exceptions.TimeoutError)):
            return f"did not answer within {seconds:g} s"
        cause = cause.__cause__ or cause.__context__
    return f"did not answer within {seconds:g} s" if "timed out" in str(error) else ""


def stream_broken(
    error: BaseException, cancel: Cancellation, where: str, tail: Sequence[str], idle_timeout: float | None
) -> PlatformBuildError:
    """What a build stream that broke off means: our own cancel, a node silent past --idle-timeout, or a lost node."""
    if cancel.cancelled:
        return Cancelled(f"{where}: cancelled", tuple(tail))
    if idle_timeout is not None and timed_out(error, idle_timeout):
        return NodeLost(f"{where}: no word from the build for {idle_timeout:.0f} s", tuple(tail))
    return NodeLost(f"{where}: lost the connection to the build: {error}", tuple(tail))
