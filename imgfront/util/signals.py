"""SIGTERM and SIGHUP handled as Ctrl-C is, and a way to hold all three off while state must be put right."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from imgfront.errors import Signalled

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Signalled(signum)


def install() -> None:
    """SIGTERM (timeout, systemd, a CI runner's cancel) and SIGHUP (a closed terminal) raise Signalled."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise)


def _interrupt(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Signalled(signum)


@contextlib.contextmanager
def deferred(raise_after: bool = True) -> Iterator[None]:
    """Hold interrupts off until the block ends, then raise the first that came (unless told not to).

    Clean-up and the list's commit must finish: an interrupt in their middle would leave half the state behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda n, _f: pending.append(n)) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if pending and raise_after:
        raise _interrupt(pending[0])
