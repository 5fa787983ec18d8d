"""2-D maps of embeddings: PCA at once, UMAP when it is ready.

umap-learn is imported lazily: ``import umap`` takes 10-15 s cold and its first fit JIT-compiles
for tens of seconds more (numba), so the GUI calls ``warm_up_umap`` in the background at start
and shows PCA maps meanwhile. Both run in one long-lived child process: numba's compiler holds
Python's GIL for up to a second at a time, which froze the app's window, and a fit in a child can
be stopped (the process is killed) where a fit in a thread cannot.

That process must never outlive the app, however the app ends (SIGKILL included): on Linux the kernel kills it
when its parent goes (PR_SET_PDEATHSIG), elsewhere a thread in it waits for the parent and exits. Once it is gone,
multiprocessing's resource tracker sees the last holder of its pipe close and exits too. The process reports how
far a fit is through a queue it is started with; ``iter_umap_2d`` yields those reports.
"""

import ctypes
import functools
import itertools
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Generator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances

from .cancel import Cancelled, CancelToken, drain

PROJECTIONS = ("pca", "umap")  # the kinds of 2-D map, in the order they are drawn
# UMAP needs a few neighbours per point to mean anything; on 3 points PCA shows all there is.
_MIN_UMAP_POINTS = 4
# From this many points umap-learn finds neighbours approximately (NN-descent); below, exactly.
APPROXIMATE_FROM = 4096
_REPORT_EVERY_S = 0.5


@dataclass(frozen=True)
class UmapProgress:
    """How far a UMAP fit has come: stage "neighbours" (the nearest-neighbour graph and the initial layout, not
    counted) or "layout" (``done`` of ``total`` optimization epochs). ``label`` is the caller's name for the map."""

    label: str
    stage: str
    done: int = 0
    total: int = 0


def pca_2d(x, seed: int = 0) -> np.ndarray:
    """First two principal components as float32 (N, 2); zero columns pad what the data lacks."""
    x = _as_matrix(x)
    out = np.zeros((len(x), 2), dtype=np.float32)
    # N points span at most N - 1 directions; asking PCA for more divides by zero.
    n_components = min(2, len(x) - 1, x.shape[1])
    if n_components > 0:
        out[:, :n_components] = PCA(n_components=n_components, random_state=seed).fit_transform(x)
    return out


def iter_umap_2d(x, seed: int | None = None, n_neighbors: int = 15, min_dist: float = 0.1, *,
                 cancel: CancelToken | None = None, label: str = "") -> Generator[UmapProgress, None, np.ndarray]:
    """UMAP to float32 (N, 2), yielding UmapProgress events meanwhile; fewer than 4 points fall back to PCA.

    seed=None (the default) runs on all cores. A fixed seed makes umap-learn single-threaded:
    measured on 2 idle cores, 2.7 s -> 5.1 s at 5k x 128 and 5.2 s -> 9.6 s at 10k x 256 (on
    cores busy with other work the order flips: numba's threads wait on each other). Maps are
    saved with the run, so reproducing a run reads them back rather than recomputing; pass an
    int only where bitwise-identical maps are worth twice the wait.
    """
    x = _as_matrix(x)
    if len(x) < _MIN_UMAP_POINTS:
        return pca_2d(x, seed=seed or 0)
    return (yield from _iter_in_worker(_fit_umap, cancel, label, x, seed, n_neighbors, min_dist))


def umap_2d(x, seed: int | None = None, n_neighbors: int = 15, min_dist: float = 0.1, *,
            cancel: CancelToken | None = None) -> np.ndarray:
    """iter_umap_2d without the progress events."""
    return drain(iter_umap_2d(x, seed, n_neighbors, min_dist, cancel=cancel))


def warm_up_umap(cancel: CancelToken | None = None, points: int = 0) -> None:
    """Start the UMAP process and JIT-compile there what a map of that many points runs, so that map is fast.

    Maps under APPROXIMATE_FROM points need a few seconds of it; larger ones also NN-descent, which numba compiles
    in about 18 s on 2 cores (it cannot be cached), so the app asks for that once a folder that large is open.
    """
    _in_worker(_warm_up, cancel, points >= APPROXIMATE_FROM)


def stop_umap_worker() -> None:
    """Kill the UMAP process (and any fit it is running); the next map starts a new one."""
    global _worker, _worker_released
    with _worker_lock:
        worker, _worker = _worker, None
        released, _worker_released = _worker_released, None
    if worker is not None:
        # ProcessPoolExecutor can only wait for a running task; killing its process is the one way to stop a fit.
        processes = list(getattr(worker, "_processes", {}).values())
        for process in processes:
            process.kill()
        worker.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(_JOIN_S)  # gone for certain before the app's own exit
        # And the pool's manager thread done with it: if the interpreter exits while that thread is still closing
        # its wake-up pipe, Python 3.11's own exit hook writes to the closed pipe (a "Bad file descriptor" traceback).
        manager = getattr(worker, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(_JOIN_S)
        released.set()


def pause_umap_worker(paused: bool) -> None:
    """Freeze (or thaw) the UMAP process, so its warm-up or fit never takes a core from a training step.

    The app pauses it while it trains: on 2 cores the warm-up's compiler otherwise halves training's views/s. A
    fit in progress simply waits. POSIX only (SIGSTOP/SIGCONT); elsewhere the process keeps its lower priority.
    """
    global _paused
    if not hasattr(signal, "SIGSTOP"):
        return
    with _worker_lock:
        _paused = paused  # a process started meanwhile (training began before the warm-up) starts paused too
        processes = list(getattr(_worker, "_processes", {}).values()) if _worker is not None else []
    _signal_all(processes, signal.SIGSTOP if paused else signal.SIGCONT)


def _signal_all(processes, signum: int) -> None:
    for process in processes:
        try:
            os.kill(process.pid, signum)
        except (ProcessLookupError, TypeError):  # gone, or not started yet (no pid)
            pass


_worker: ProcessPoolExecutor | None = None
_worker_released: threading.Event | None = None  # set once _worker is stopped: ends the thread that started it
_worker_lock = threading.Lock()
_paused = False  # what pause_umap_worker last asked for
_reports: queue.Queue | None = None  # the running process's progress queue
_waiting: dict[int, list[UmapProgress]] = {}  # task -> its reports not yet yielded
_ended: set[int] = set()  # tasks whose end marker came: every report they sent has been read
_END = None  # a task's last message on the report queue
_LAST_REPORTS_S = 5.0  # how long a result waits for its task's end marker (the process may have been killed)
_task_ids = itertools.count()
_JOIN_S = 5.0
# A Ctrl-C in a terminal reaches the whole process group; the app decides what it means, not its UMAP process.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _in_worker(fn, cancel: CancelToken | None, *args):
    """fn(*args) in the UMAP process; its result."""
    return drain(_iter_in_worker(fn, cancel, *args))


def _iter_in_worker(fn, cancel: CancelToken | None, *args) -> Generator[UmapProgress, None, object]:
    """fn(*args) in the UMAP process, yielding the reports it sends meanwhile; its result."""
    global _worker, _worker_released, _reports
    with _worker_lock:
        if _worker is None:
            _worker, _worker_released, _reports = _start_worker()
        task = next(_task_ids)
        _waiting[task] = []
        future = _worker.submit(_run_task, task, fn, *args)
    try:
        while True:
            try:
                result = future.result(timeout=0.1)
            except FutureTimeout:
                if cancel is not None and cancel.cancelled:
                    stop_umap_worker()
                    raise Cancelled() from None
                yield from _reports_for(task)
                continue
            # The result comes through the executor's pipe, the reports through the queue: wait for the task's
            # end marker so that its last reports (a map's final epochs) are not left behind.
            deadline = time.monotonic() + _LAST_REPORTS_S
            while task not in _ended and time.monotonic() < deadline:
                yield from _reports_for(task)
                time.sleep(0.005)
            yield from _reports_for(task)
            return result
    finally:
        with _worker_lock:
            _waiting.pop(task, None)
            _ended.discard(task)


def _reports_for(task: int) -> list[UmapProgress]:
    """The child's reports for ``task``: read under the lock and handed to their own task, because several
    threads may wait on the process at once (the app's warm-up and a map)."""
    with _worker_lock:
        while _reports is not None:
            try:
                owner, report = _reports.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):  # empty, or the process was just stopped
                break
            if owner not in _waiting:  # reports of a task given up on are dropped
                continue
            if report is _END:
                _ended.add(owner)
            else:
                _waiting[owner].append(report)
        mine, _waiting[task] = _waiting[task], []
    return mine


def _start_worker() -> tuple[ProcessPoolExecutor, threading.Event, queue.Queue]:
    """A new UMAP process, the event that, once set, ends the thread the process was started from, and the queue
    its reports come through.

    PR_SET_PDEATHSIG fires when the *thread* that started the child ends, not the process: started from the
    warm-up thread or a pool thread, the worker would be killed as soon as that thread finished. So it is started
    from a thread of its own that lasts as long as the worker. That thread also blocks SIGINT and SIGTERM, as
    the child then does from its first instruction until it ignores SIGINT (multiprocessing's resource tracker
    is started the same way).
    """
    _set_numba_cache_dir()
    # spawn, not fork: forking a process that holds torch's and Qt's threads is unsafe.
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    executor = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_worker_started,
                                   initargs=(os.getpid(), reports))
    started, released = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def start_and_last() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            executor.submit(os.getpid)  # starts the process, here
        except BaseException as exc:  # handed to the caller, who reports it as a failed map
            failure.append(exc)
        started.set()
        released.wait()

    threading.Thread(target=start_and_last, name="umap-process-parent", daemon=True).start()
    started.wait()
    if failure:
        released.set()
        raise failure[0]
    if _paused:  # called under _worker_lock, as pause_umap_worker sets it
        _signal_all(executor._processes.values(), signal.SIGSTOP)
    return executor, released, reports


def _worker_started(parent_pid: int, reports) -> None:
    """Runs first in the UMAP process."""
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


# In the child: the queue reports go to (set by the process's initializer), and the task running.
_child_reports = None
_child_task = -1


def _run_task(task: int, fn, *args):
    global _child_task
    _child_task = task
    try:
        return fn(*args)
    finally:
        if _child_reports is not None:
            _child_reports.put((task, _END))


class _EpochReports:
    """A file for umap-learn's tqdm bar: the bar is formatted as "done total", and each write becomes a report."""

    def __init__(self, label: str) -> None:
        self.label = label

    def write(self, text: str) -> None:
        numbers = text.split()
        if len(numbers) == 2 and all(n.isdigit() for n in numbers):
            _report(UmapProgress(self.label, "layout", int(numbers[0]), int(numbers[1])))

    def flush(self) -> None:
        pass


def _report(report: UmapProgress) -> None:
    if _child_reports is not None:
        _child_reports.put((_child_task, report))


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


@functools.cache
def _import_umap():
    _set_numba_cache_dir()
    import umap  # imports pynndescent too: their kernels must exist before caching is enabled
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    # Most of umap-learn's and pynndescent's kernels are compiled with cache=False, so every launch compiled
    # them again: 46 s of a second launch's 50 s warm-up on 2 cores, 13 s once cached. numba keys its cache on
    # the source file's stamp, so a library upgrade still recompiles. nn_descent itself cannot be cached
    # (numba says it uses dynamic globals) and says so at each compile.
    warnings.filterwarnings("ignore", message=".*Cannot cache compiled function", category=NumbaWarning)
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in ("umap", "pynndescent"):
            for obj in vars(module).values():
                if isinstance(obj, Dispatcher) and obj.py_func.__module__ == name:
                    obj.enable_caching()
    return umap


def _fit_umap(label: str, x: np.ndarray, seed, n_neighbors: int, min_dist: float) -> np.ndarray:
    _report(UmapProgress(label, "neighbours"))
    # umap-learn drives a tqdm bar over the layout's epochs (tqdm_kwds is its public hook for it).
    epochs = {"disable": False, "file": _EpochReports(label), "bar_format": "{n} {total}",
              "mininterval": _REPORT_EVERY_S}
    small = len(x) < APPROXIMATE_FROM
    # Exact neighbours for a small map, as umap-learn finds them, but from scikit-learn's distance matrix: umap-learn's
    # own calls a Python function per pair of points (5.8 M calls, 6 of a 2,400-point map's 7.5 s).
    reducer = _make_umap(len(x), seed, n_neighbors, min_dist, tqdm_kwds=epochs,
                         **({"metric": "precomputed"} if small else {}))
    with warnings.catch_warnings():
        # Clustered embeddings often give a disconnected kNN graph; UMAP copes and the map shows it.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        warnings.filterwarnings("ignore", message="using precomputed metric")  # no inverse_transform: not used
        return reducer.fit_transform(pairwise_distances(x) if small else x).astype(np.float32, copy=False)


def _warm_up(large: bool) -> None:
    # The data is chosen to reach the code paths real maps take: six far-apart blobs (a disconnected
    # graph, whose components are placed apart), and 2 KB rows so that pynndescent's forest splits
    # breadth-first as it does past 1 MB of data. A large map's NN-descent is forced on these few points.
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=100.0, size=(6, 512))
    x = (centers[np.arange(1200) % 6] + rng.normal(size=(1200, 512))).astype(np.float32)
    _fit_umap("warm-up", x, None, 15, 0.1)
    if large:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            _make_umap(len(x), None, 15, 0.1, force_approximation_algorithm=True).fit_transform(x)


def _as_matrix(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected features of shape (N, D), got {x.shape}")
    return x


def _numba_cache_dir() -> Path:
    root = os.environ.get("SSL_STUDIO_CACHE_DIR") or platformdirs.user_cache_dir("ssl-studio")
    return Path(root) / "numba"


def _set_numba_cache_dir() -> None:
    # numba reads NUMBA_CACHE_DIR once, at its own import (in the child, which inherits it); the
    # default (next to the installed sources) is often read-only, and then every launch compiles again.
    if "NUMBA_CACHE_DIR" not in os.environ:
        cache = _numba_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(cache)


def _make_umap(n_points: int, seed: int | None, n_neighbors: int, min_dist: float, **kw):
    return _import_umap().UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n_points - 1)),
        min_dist=min_dist,
        random_state=seed,
        # Saying n_jobs=1 ourselves when seeded avoids umap-learn's warning that it overrode it.
        n_jobs=1 if seed is not None else -1,
        **kw,
    )
