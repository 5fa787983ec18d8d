"""What the core raises on bad input, bad settings or a failing disk, each with a message written for the user,
told apart from bugs in one place for the command line, the app and a sweep's failed runs alike."""

from __future__ import annotations


class UserError(Exception):
    """The base of the core's own errors (DataError, RunError, ...): the message says what is wrong and what to do."""


# Anything else is a bug: its type is named beside its message (and the app reports its traceback).
EXPECTED_ERRORS = (UserError, ValueError, OSError)


def error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EXPECTED_ERRORS) else f"{type(exc).__name__}: {exc}"
