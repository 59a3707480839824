"""Errors a user can cause or meet, each carrying its exit code and a hint."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any


class ImgfrontError(Exception):
    """An error shown to the user as one line, without a traceback unless --debug is given."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ImgfrontError):
    """Bad input: an option, a platform, a reference or a file that does not validate."""

    exit_code = 2


class EngineError(ImgfrontError):
    """The engine could not be reached, or refused what was asked of it."""


class BuildFailed(ImgfrontError):
    """One or more platforms failed to build."""


class Interrupted(ImgfrontError):
    """Ctrl-C, SIGTERM or SIGHUP: everything started has been cancelled; exits as shells report the signal."""

    def __init__(self, message: str, hint: str | None = None, signum: int = signal.SIGINT) -> None:
        super().__init__(message, hint)
        self.signum = signum

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + self.signum


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C's KeyboardInterrupt would be, so that one path cleans up after all."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(interrupt: BaseException) -> int:
    """The signal behind an interrupt: SIGINT for Ctrl-C's KeyboardInterrupt."""
    return int(getattr(interrupt, "signum", signal.SIGINT))


class BuildInterrupted(KeyboardInterrupt):
    """An interrupt that arrived while platforms were building; carries each one's outcome so far."""

    def __init__(self, outcomes: Sequence[Any], signum: int = signal.SIGINT) -> None:
        super().__init__("interrupted")
        self.outcomes = tuple(outcomes)
        self.signum = signum


LOG_TAIL = 20  # the lines of a failed build's log an error carries and the user is shown


class PlatformBuildError(ImgfrontError):
    """One platform's build failed on its node; carries the tail of its log."""

    def __init__(self, message: str, log_tail: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail


class Cancelled(PlatformBuildError):
    """A platform's build was cancelled: by an interrupt, or because another platform failed."""


class NodeLost(PlatformBuildError):
    """The node stopped answering during a build; another node may take the platform over."""
