"""The UMAP child process: one long-lived process that imports umap-learn, JIT-compiles it and fits the maps.

numba's compiler holds Python's GIL for up to a second at a time, which froze the app's window, and a fit in a
child can be stopped (the process is killed) where a fit in a thread cannot. What a fit computes is core.project's;
this module only runs it elsewhere: ``UMAP`` is the app's one process, started by its first task.

That process must never outlive the app, however the app ends (SIGKILL included): on Linux the kernel kills it
when its parent goes (PR_SET_PDEATHSIG), elsewhere a thread in it waits for the parent and exits. Once it is gone,
multiprocessing's resource tracker sees the last holder of its pipe close and exits too.

A task reports through a queue the process is started with, and its last message there is an end marker: its
result comes by the executor's own pipe, so only the marker says that every report it sent has been read. A task's
result is handed over only after its marker, so a map's last progress report always comes before the map.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Generator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .cancel import Cancelled, CancelToken, drain
from .project import (APPROXIMATE_FROM, MIN_UMAP_POINTS, UmapProgress, as_matrix, fit_umap, pca_2d,
                      set_numba_cache_dir, warm_up_fits)

_END = "end"  # a task's last message on the report queue
_WAIT_S = 0.1  # how often a waiting task looks at its cancel token
_JOIN_S = 5.0
# A Ctrl-C in a terminal reaches the whole process group; the app decides what it means, not its UMAP process.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class _Child:
    executor: ProcessPoolExecutor  # of one process
    reader: threading.Thread  # started the process, reads its reports and lasts as long as it
    closed: threading.Event  # set once the process is stopped: ends the reader

    def processes(self) -> list:
        return list(self.executor._processes.values())

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes())


class UmapProcess:
    """The child process that fits UMAP maps: started by its first task, paused while training runs, stopped on
    cancel or when the app quits (the next task starts a new one). Several threads may wait on it at once (the
    app's warm-up and a map); each gets its own task's reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._inboxes: dict[int, queue.SimpleQueue] = {}  # task -> its reports, as they are read
        self._task_ids = itertools.count()
        self._paused = False

    @property
    def pid(self) -> int | None:
        """The process's id, None when there is none."""
        child = self._child
        processes = child.processes() if child is not None else []
        return processes[0].pid if processes else None

    def start(self) -> int:
        """Start the process if it is not running and have it answer (a task starts it too); its id."""
        return drain(self.run(os.getpid))

    def warm_up(self, points: int = 0, cancel: CancelToken | None = None) -> Generator[UmapProgress, None, None]:
        """Import umap-learn and JIT-compile what a map of that many points runs, so that map is fast.

        Maps under APPROXIMATE_FROM points need a few seconds of it; larger ones also NN-descent, which numba
        compiles in about 18 s on 2 cores (it cannot be cached), so the app asks for that once a folder that large
        is open.
        """
        yield from self.run(warm_up_fits, points >= APPROXIMATE_FROM, report, cancel=cancel)

    def fit(self, x, seed: int | None = None, n_neighbors: int = 15, min_dist: float = 0.1, *,
            cancel: CancelToken | None = None, label: str = "") -> Generator[UmapProgress, None, np.ndarray]:
        """UMAP to float32 (N, 2), yielding UmapProgress events meanwhile; fewer than 4 points fall back to PCA.

        seed=None (the default) runs on all cores. A fixed seed makes umap-learn single-threaded: measured on 2
        idle cores, 2.7 s -> 5.1 s at 5k x 128 and 5.2 s -> 9.6 s at 10k x 256 (on cores busy with other work the
        order flips: numba's threads wait on each other). Maps are saved with the run, so reproducing a run reads
        them back rather than recomputing; pass an int only where bitwise-identical maps are worth twice the wait.
        """
        x = as_matrix(x)
        if len(x) < MIN_UMAP_POINTS:
            return pca_2d(x, seed=seed or 0)
        return (yield from self.run(fit_umap, label, x, seed, n_neighbors, min_dist, report, cancel=cancel))

    def run(self, fn, *args, cancel: CancelToken | None = None) -> Generator[UmapProgress, None, object]:
        """fn(*args) in the process, yielding the reports it sends meanwhile (``report`` there); its result, once
        its end marker has come. Cancelling stops the process."""
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            if self._child is None:
                self._child = self._start()
            child, task = self._child, next(self._task_ids)
            self._inboxes[task] = inbox
            future = child.executor.submit(_run_task, task, fn, *args)
        try:
            while True:
                if cancel is not None and cancel.cancelled:
                    self.stop()
                    raise Cancelled()
                try:
                    message = inbox.get(timeout=_WAIT_S)
                except queue.Empty:
                    if future.done():
                        future.result()  # raises if the task failed or its process died before its end
                        if not child.alive():
                            raise BrokenExecutor("the UMAP process ended before its task's last reports") from None
                    if self._child is not child:
                        raise BrokenExecutor("the UMAP process was stopped before its task ended") from None
                    continue
                if message == _END:
                    return future.result()  # the function's own error, if it raised
                yield message
        finally:
            with self._lock:
                self._inboxes.pop(task, None)

    def pause(self, paused: bool) -> None:
        """Freeze (or thaw) the process, so its warm-up or fit never takes a core from a training step.

        The app pauses it while it trains: on 2 cores the warm-up's compiler otherwise halves training's views/s. A
        fit in progress simply waits. POSIX only (SIGSTOP/SIGCONT); elsewhere the process keeps its lower priority.
        """
        if not hasattr(signal, "SIGSTOP"):
            return
        with self._lock:
            self._paused = paused  # a process started meanwhile (training began before the warm-up) starts paused
            processes = self._child.processes() if self._child is not None else []
        _signal_all(processes, signal.SIGSTOP if paused else signal.SIGCONT)

    def stop(self) -> None:
        """Kill the process (and any task it is running); the next task starts a new one."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        # ProcessPoolExecutor can only wait for a running task; killing its process is the one way to stop a fit.
        processes = child.processes()
        for process in processes:
            process.kill()
        child.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(_JOIN_S)  # gone for certain before the app's own exit
        # And the pool's manager thread done with it: if the interpreter exits while that thread is still closing
        # its wake-up pipe, Python 3.11's own exit hook writes to the closed pipe (a "Bad file descriptor" traceback).
        manager = getattr(child.executor, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(_JOIN_S)
        child.closed.set()
        child.reader.join(_JOIN_S)

    def _start(self) -> _Child:
        """A new process, started (under the lock) from a thread that lasts as long as it and reads its reports.

        PR_SET_PDEATHSIG fires when the *thread* that started the child ends, not the process: started from the
        warm-up's thread or a job's, the process would be killed as soon as that thread finished. That thread also
        blocks SIGINT and SIGTERM, as the child then does from its first instruction until it ignores SIGINT
        (multiprocessing's resource tracker is started the same way).
        """
        set_numba_cache_dir()  # numba reads it at its import, in the child, which inherits it
        # spawn, not fork: forking a process that holds torch's and Qt's threads is unsafe.
        context = multiprocessing.get_context("spawn")
        reports = context.Queue()
        executor = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_started,
                                       initargs=(os.getpid(), reports))
        started, closed = threading.Event(), threading.Event()
        failure: list[BaseException] = []

        def start_then_read() -> None:
            if hasattr(signal, "pthread_sigmask"):
                signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                executor.submit(os.getpid)  # starts the process, here
            except BaseException as exc:  # handed to the caller, who reports it as a failed map
                failure.append(exc)
                return
            finally:
                started.set()
            self._read(reports, closed)

        reader = threading.Thread(target=start_then_read, name="umap-process-parent", daemon=True)
        reader.start()
        started.wait()
        if failure:
            raise failure[0]
        child = _Child(executor, reader, closed)
        if self._paused:
            _signal_all(child.processes(), signal.SIGSTOP)
        return child

    def _read(self, reports, closed: threading.Event) -> None:
        """Hand each report to its task's inbox until the process is stopped; those of a task given up on are
        dropped. Polled, not ended by a message: a process killed while it wrote would hold the queue's write lock."""
        while not closed.is_set():
            try:
                owner, message = reports.get(timeout=_WAIT_S)
            except queue.Empty:
                continue
            with self._lock:
                inbox = self._inboxes.get(owner)
            if inbox is not None:
                inbox.put(message)


UMAP = UmapProcess()


def _signal_all(processes, signum: int) -> None:
    for process in processes:
        try:
            os.kill(process.pid, signum)
        except (ProcessLookupError, TypeError):  # gone, or not started yet (no pid)
            pass


# In the child: the queue reports go to (set by the process's initializer), and the task running.
_child_reports = None
_child_task = -1


def report(message: UmapProgress) -> None:
    """In the process: send ``message`` to the task that is waiting on the one running."""
    if _child_reports is not None:
        _child_reports.put((_child_task, message))


def _started(parent_pid: int, reports) -> None:
    """Runs first in the process."""
    global _child_reports
    _child_reports = reports
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _die_with_parent(parent_pid)
    # umap-learn's progress bars (tqdm, even disabled) take a multiprocessing lock, which the resource tracker
    # reports as leaked when this process is killed (how a fit is stopped, and how the app quits): one thread lock.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    # The warm-up compiles in the background while the user trains: the window and the training come first.
    if hasattr(os, "nice"):
        os.nice(10)


def _run_task(task: int, fn, *args):
    global _child_task
    _child_task = task
    try:
        return fn(*args)
    finally:
        _child_reports.put((task, _END))


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the parent died before the request: no one will send the signal
                os._exit(1)
            return
    # Elsewhere (or if prctl failed): wait for the parent's end, which multiprocessing can see on every system.
    parent = multiprocessing.parent_process()
    threading.Thread(target=lambda: (parent.join(), os._exit(1)), name="watch-parent", daemon=True).start()
