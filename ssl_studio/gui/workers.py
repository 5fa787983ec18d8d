"""Run a core generator in a superqt worker thread, deliver its events in throttled batches, stop and join it.

The core's long jobs are generators of events that honour a CancelToken (ARCHITECTURE.md, "Jobs and
cancellation"). A Job wraps one in a superqt GeneratorWorker and hands the GUI:
  * ``events(list)``: the events yielded since the last delivery, in order, at most every ``flush_ms`` (so a
    page redraws a curve or a progress bar ~10x/s however fast the core reports);
  * then exactly one of ``succeeded(return value)``, ``failed(exception)`` or ``cancelled()``; then ``ended()``.

Stopping goes through the cancel token only, never ``worker.quit()``: quitting would abandon the generator at
its current ``yield``, while the token lets it finish its step and write its last checkpoint before it returns.

A job's thread ends with its job, and torch work that must wait on the GUI thread (``in_own_thread``) runs on a
thread of its own: every thread that has run a parallel torch operation keeps a GNU OpenMP team for as long as it
lives, and while two teams exist on a machine with no more cores than their threads, OpenMP stops spinning between
parallel regions. A training step is hundreds of small ones: the app trained at 65-70 % of the command line's views/s
after one augmentation preview on the GUI thread (BENCHMARKS.md, "Training in the app").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, TypeVar

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from superqt.utils import GeneratorWorker

from ssl_studio.core.cancel import CancelToken, Cancelled

JOIN_TIMEOUT_S = 2.0
T = TypeVar("T")


class Job(QObject):
    events = Signal(list)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    ended = Signal()

    FLUSH_MS = 100
    # Every job that has started and not yet ended, so the window and the tests can stop them all.
    _live: ClassVar[set[Job]] = set()

    def __init__(self, make_generator: Callable[[CancelToken], Generator], parent: QObject | None = None,
                 *, flush_ms: int = FLUSH_MS) -> None:
        super().__init__(parent)
        self.token = CancelToken()
        self._make_generator = make_generator
        self._flush_s = flush_ms / 1000
        self._pending: list = []
        self._last_flush = 0.0
        self._flush_timer = QTimer(self, singleShot=True, interval=flush_ms)
        self._flush_timer.timeout.connect(self._flush)
        self._done = threading.Event()
        self._result = self._error = None
        self._worker: GeneratorWorker | None = None
        self._ended = False

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._ended

    def start(self) -> Job:
        # Built directly rather than via create_worker, which would re-raise worker errors on the GUI thread.
        worker = GeneratorWorker(self._run)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        Job._live.add(self)
        # Straight into the pool: superqt's worker.start() defers this by a 1 ms timer when an event loop runs,
        # and a window closing right after start() would then wait on a job that cannot begin until it returns.
        pool = QThreadPool.globalInstance()
        pool.setExpiryTimeout(0)  # an idle thread exits at once, its OpenMP team with it (see the module's notes)
        # A job's thread is no share of the CPUs but a wait on its generator: each live job gets one, so a long job
        # (the UMAP warm-up, paused while training runs) never keeps another queued behind it.
        pool.setMaxThreadCount(max(pool.maxThreadCount(), len(Job._live)))
        pool.start(worker)
        return self

    def cancel(self) -> None:
        self.token.cancel()

    def join(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Block until the generator has returned or raised; True if it did within ``timeout`` seconds."""
        return self._worker is None or self._done.wait(timeout)

    def _run(self):
        # Runs in the worker thread. ``_done`` is set however the generator ends, so join() never waits forever.
        try:
            self.token.raise_if_cancelled()  # stopped before the pool got to it: do not begin
            return (yield from self._make_generator(self.token))
        except Exception as exc:
            # Kept here rather than left to superqt, which takes any RuntimeError (torch's usual error) for a sign
            # that its worker was deleted and drops it with a warning: the job would then "succeed" with None.
            self._error = exc
            return None
        finally:
            self._done.set()

    def _on_yielded(self, event) -> None:
        self._pending.append(event)
        if self._flush_timer.isActive():
            return
        wait = self._last_flush + self._flush_s - time.monotonic()
        if wait <= 0:
            self._flush()
        else:
            self._flush_timer.start(int(wait * 1000) + 1)

    def _flush(self) -> None:
        self._flush_timer.stop()
        self._last_flush = time.monotonic()
        if self._pending:
            batch, self._pending = self._pending, []
            self.events.emit(batch)

    def _on_returned(self, value) -> None:
        self._result = value

    def _on_finished(self) -> None:
        self._flush()
        self._ended = True
        Job._live.discard(self)
        # The generator's closure holds its inputs (a dataset, a run): let them go with it, here on the GUI thread.
        self._make_generator = self._worker = None
        if isinstance(self._error, Cancelled) or (self._error is None and self.token.cancelled):
            self.cancelled.emit()
        elif self._error is not None:
            self.failed.emit(self._error)
        else:
            self.succeeded.emit(self._result)
        self.ended.emit()

    @classmethod
    def live_jobs(cls) -> list[Job]:
        return [job for job in cls._live if not job._ended]

    @classmethod
    def stop_all(cls, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Cancel every live job and wait for their threads; True when all have stopped within ``timeout``."""
        jobs = list(cls._live)
        for job in jobs:
            job.cancel()
        deadline = time.monotonic() + timeout
        stopped = all(job.join(max(0.0, deadline - time.monotonic())) for job in jobs)
        # The generator has returned; let the pool thread finish emitting its last signals and go idle too.
        remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
        stopped = QThreadPool.globalInstance().waitForDone(max(remaining_ms, 100)) and stopped
        if stopped:
            cls._live.difference_update(jobs)
        return stopped


def in_own_thread(fn: Callable[..., T], *args) -> T:
    """fn(*args) on a thread that ends with it, the caller waiting: for torch work the GUI thread needs at once (a
    few milliseconds), which on the GUI thread itself would leave that thread an OpenMP team for good."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-once") as one:  # its exit joins the thread
        return one.submit(fn, *args).result()
