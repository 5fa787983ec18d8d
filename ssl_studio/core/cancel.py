"""A thread-safe cancel flag shared by a long job and whoever may stop it, and running a job's generator."""

import threading
from collections.abc import Generator


class Cancelled(Exception):
    """Raised inside a job when its token was cancelled."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def drain(job: Generator):
    """Run a generator of events to its end, ignoring the events; its return value."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value
