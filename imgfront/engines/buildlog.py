"""A build's log as an engine streams it: whole lines out of the pieces, steps reported, a tail kept for errors.

Both adapters read their engine's stream through a `BuildLog`: the podman adapter through `PodmanLog` (buildah's
`STEP 1/3: ...`, the final image id, the cache hits) and the Docker one through its own subclass (the legacy
builder's `Step 1/3 : ...` and the containers it ran). A subclass says what a line means in `take`; the base class
does the rest the same way for every engine.
"""

from __future__ import annotations

import re
from collections import deque

from imgfront.engines.base import BuildEvents
from imgfront.errors import LOG_TAIL


class BuildLog:
    """Lines of one platform's build: `feed` pieces as they come, `flush` at the end; `tail` is the last lines."""

    step = re.compile(r"^STEP (\d+)/(\d+): (.*)$")  # buildah's; the Docker subclass gives its own
    # The warning about build arguments no ARG declares; imgfront sets its automatic ones on every build.
    unconsumed = re.compile(r"one or more build args were not consumed: \[(.*)\]")

    def __init__(self, events: BuildEvents, automatic_args: frozenset[str] = frozenset()) -> None:
        self.events = events
        self.automatic_args = automatic_args
        self.tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._pending = ""

    def feed(self, text: str) -> None:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(line)

    def flush(self) -> None:
        pending, self._pending = self._pending, ""
        self._line(pending)

    def take(self, line: str) -> bool:
        """What the line means to the adapter, noted on the log; False to leave it out of the log shown."""
        return True

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip() or self._own_args_warning(line) or not self.take(line):
            return
        step = self.step.match(line)
        if step:
            self.events.step(int(step[1]), int(step[2]), step[3])
        self.tail.append(line)
        self.events.log(line)

    def _own_args_warning(self, line: str) -> bool:
        match = self.unconsumed.search(line)
        return match is not None and set(match[1].split()) <= self.automatic_args


class PodmanLog(BuildLog):
    """buildah's log: its last line is the image id (kept, not shown); `--> Using cache ID` marks a cache hit."""

    _image_id = re.compile(r"^[0-9a-f]{64}$")
    _cache_hit = re.compile(r"^--> Using cache ([0-9a-f]{64})$")

    def __init__(self, events: BuildEvents, automatic_args: frozenset[str] = frozenset()) -> None:
        super().__init__(events, automatic_args)
        self.image_id: str | None = None
        self.cached: set[str] = set()  # images the log says came from the cache: not this build's
        # buildah logs COMMIT before it commits the last stage's image. A last stage of FROM alone commits
        # nothing: its image is the base's, which a build must never take for its own.
        self.committed = False

    def take(self, line: str) -> bool:
        text = line.strip()
        if self._image_id.match(text):
            self.image_id = text
            return False
        if text == "COMMIT" or text.startswith("COMMIT "):
            self.committed = True
        hit = self._cache_hit.match(text)
        if hit:
            self.cached.add(hit[1])
        return True
