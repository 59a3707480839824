"""Errors a user can cause or meet, each carrying its exit code and a hint."""

from __future__ import annotations


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
    """The user pressed Ctrl-C; everything started has been cancelled and cleaned up."""

    exit_code = 130


class PlatformBuildError(ImgfrontError):
    """One platform's build failed on its node; carries the tail of its log."""

    def __init__(self, message: str, log_tail: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail


class NodeLost(PlatformBuildError):
    """The node stopped answering during a build; another node may take the platform over."""
