"""The build log both adapters read their engine's stream through (engines/buildlog.py)."""

from __future__ import annotations

from conftest import Recorder

from imgfront.engines.buildlog import PodmanLog

IMAGE = "ab" * 32
CACHED = "cd" * 32


def test_podman_log_keeps_the_image_id_and_cache_hits_and_drops_its_own_noise() -> None:
    events = Recorder()
    log = PodmanLog(events, frozenset({"TARGETARCH"}))
    for piece in (
        "STEP 1/2: FROM scratch\nSTEP 2/2: COPY a /a\n--> Using ",  # a line split across two messages
        f"cache {CACHED}\n",
        'time=x level=warning msg="one or more build args were not consumed: [TARGETARCH]"\n',
        'level=warning msg="one or more build args were not consumed: [MINE]"\n',
        f"COMMIT\n{IMAGE}\n",
    ):
        log.feed(piece)
    log.flush()
    assert events.steps == [(1, 2, "FROM scratch"), (2, 2, "COPY a /a")]
    assert events.lines == [
        "STEP 1/2: FROM scratch",
        "STEP 2/2: COPY a /a",
        f"--> Using cache {CACHED}",
        'level=warning msg="one or more build args were not consumed: [MINE]"',
        "COMMIT",
    ]
    assert log.image_id == IMAGE
    assert log.cached == {CACHED}
    assert list(log.tail) == events.lines


def test_the_tail_is_the_last_lines_only() -> None:
    log = PodmanLog(Recorder())
    log.feed("".join(f"line {n}\n" for n in range(100)))
    assert list(log.tail)[-1] == "line 99"
    assert len(log.tail) < 100


def test_podman_log_knows_whether_the_last_stage_was_committed() -> None:
    for lines, committed in (
        (["STEP 1/2: FROM base", "STEP 2/2: RUN true", "COMMIT", "--> 1234"], True),
        (["STEP 1/1: FROM base", "COMMIT localhost/app:1"], True),
        (["STEP 1/1: FROM stage-amd64"], False),  # a last stage of FROM alone: the base's image, not made
        (["RUN echo COMMIT"], False),
    ):
        log = PodmanLog(Recorder())
        for line in lines:
            log.take(line + "\n")
        assert log.committed is committed, lines
