"""read_ahead: a stream read in a thread yields the same chunks, raises the producer's error, and stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from imgfront.util.readahead import read_ahead


def test_every_chunk_arrives_in_order() -> None:
    chunks = [bytes([i]) * 1000 for i in range(50)]
    assert list(read_ahead(iter(chunks), depth=3)) == chunks


def test_the_producers_error_is_raised_where_the_consumer_reaches_it() -> None:
    def failing() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise OSError("the node went away")

    got: list[bytes] = []
    with pytest.raises(OSError, match="the node went away"):
        for chunk in read_ahead(failing()):
            got.append(chunk)
    assert got == [b"a", b"b"]


def test_a_consumer_that_stops_early_stops_the_reader_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x"
        finally:
            closed.set()

    stream = read_ahead(endless(), depth=2)
    assert next(stream) == b"x"
    stream.close()
    assert closed.wait(5)
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())
