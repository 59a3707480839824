"""Read a stream of chunks ahead in a thread, so that its producer and its consumer work at once."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import cast

_END = object()


def read_ahead(chunks: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """Yield what `chunks` yields, pulled by a thread up to `depth` chunks ahead of the consumer.

    Without it, an export streamed into an import waits for each chunk to be sent before it reads the next. An
    error in `chunks` is raised here, at the point the consumer reaches it. A consumer that stops early (closes
    this generator) stops the thread at its next chunk, which then closes `chunks` itself.
    """
    ahead: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pull() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    break
        except BaseException as e:  # handed to the consumer, who raises it
            offer(e)
            return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        offer(_END)

    reader = threading.Thread(target=pull, name="read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)
    finally:
        stop.set()
        reader.join(timeout=5)
