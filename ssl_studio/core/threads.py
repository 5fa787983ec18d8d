"""A fair share of a busy machine: how many torch threads a long loop uses, chosen from the free cores and
adapted while it runs.

Torch's threads work in lockstep: every parallel region waits for its slowest thread, so when another program
holds a core, the thread that shares it makes all the others wait (a 2-core training step beside one busy process
ran at 8-20 % of its quiet speed). The free cores give the first guess; then, every so often, a few steps are
timed at each candidate count in alternation and the loop keeps the fastest, until its steps drift away from what
the trial measured. Loops running at once in one process (the app's jobs) share the cores instead of each taking
them all.

OMP_NUM_THREADS, when set, is a person's (or torchrun's) choice and is kept as it is. It is also the way to runs
that repeat bit for bit: a count that changes mid-run changes the order of floating-point sums.

``torch.set_num_threads`` applies to the thread that calls it (OpenMP keeps the count per thread), which is the
loop's own: a tuner is made, stepped and restored in one thread.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

import torch

# A step more than this much slower (or faster) than the trial measured means the machine changed: try again.
DRIFT = 1.5


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pinned_threads() -> int | None:
    """OMP_NUM_THREADS when it names a count: loops then keep it instead of adapting."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return None


def load_average() -> float | None:
    """Runnable processes over the last minute (this one's included); None where the system does not say."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


_own_samples: deque[tuple[float, float]] = deque()  # (wall clock, this process's CPU seconds)


def own_load(clock: Callable[[], float] = time.monotonic, cpu: Callable[[], float] = time.process_time) -> float:
    """Cores this process kept busy lately: its part of the load average (which averages about a minute), as its
    CPU seconds per second since the latest sample a minute old (or the first, when none is)."""
    now, used = clock(), cpu()
    while len(_own_samples) > 1 and now - _own_samples[1][0] >= 60:
        _own_samples.popleft()
    _own_samples.append((now, used))
    then, used_then = _own_samples[0]
    return (used - used_then) / (now - then) if now > then else 0.0


own_load()  # the first sample: the process's start


def free_cores(cores: int, load: float | None, own: float = 0.0) -> int:
    """Cores not taken by other programs: ``cores`` less the load average without this process's ``own`` part.

    At least 1, at most ``cores``; with no load figure, all of them.
    """
    if load is None:
        return cores
    others = max(0.0, load - own)
    return max(1, min(cores, round(cores - others)))


# The threads each live tuner of this process runs at; one dropped without restore() leaves with its loop.
_held: weakref.WeakKeyDictionary[ThreadTuner, int] = weakref.WeakKeyDictionary()
_held_lock = threading.Lock()


class ThreadTuner:
    """Call ``step_done()`` after every step of a loop (steps of equal work) and ``restore()`` when it ends.

    After ``warmup_steps`` (first steps allocate and are slow), a trial runs ``rounds`` steps at each candidate
    count, in turn, and keeps the count of the lowest median step time. It holds that count for ``hold_s`` seconds
    or ``hold_trials`` times the trial's length, whichever is longer (so trials cost a small share of the time),
    or until the median of the last ``rounds`` steps drifts by ``DRIFT`` from the trial's figure.

    The candidates are 1, the free cores and the ceiling (the usable cores), less the threads other live tuners of
    this process hold. With ``adapt=False`` it leaves the count alone; with OMP_NUM_THREADS set it runs at that
    count. As a context manager it restores on leaving. ``clock``, ``load``, ``own`` and the thread setters are
    injectable for tests.
    """

    def __init__(self, ceiling: int | None = None, *, warmup_steps: int = 2, rounds: int = 3,
                 hold_s: float = 10.0, hold_trials: int = 10, clock: Callable[[], float] = time.perf_counter,
                 load: Callable[[], float | None] = load_average, own: Callable[[], float] = own_load,
                 adapt: bool = True,
                 get_threads: Callable[[], int] = torch.get_num_threads,
                 set_threads: Callable[[int], None] = torch.set_num_threads) -> None:
        self.ceiling = ceiling or usable_cores()
        self.rounds, self.hold_s, self.hold_trials = rounds, hold_s, hold_trials
        self._clock, self._load, self._own, self._set = clock, load, own, set_threads
        self._before = get_threads()
        self._warmup_left = warmup_steps
        self._schedule: list[int] = []  # counts still to time in the running trial
        self._samples: dict[int, list[float]] = {}
        self._trial_start = 0.0
        self._hold_until = float("inf")
        self._reference: float | None = None  # the chosen count's median step time in the last trial
        self._recent: deque[float] = deque(maxlen=rounds)
        self.decisions: list[tuple[int, dict[int, float]]] = []  # (threads kept, median step time per count)
        self.threads = self._before
        pinned = pinned_threads() if adapt else None
        self.adapt = adapt and pinned is None
        if adapt:  # a loop on a GPU holds no share of the cores
            self._use(pinned or free_cores(self._cores(), self._load(), self._own()))
        self._last = clock()

    @classmethod
    def for_device(cls, device: torch.device | str, **kw) -> ThreadTuner:
        """A tuner for a loop on ``device``: on a GPU the host's threads barely matter, and they stay as they are."""
        return cls(adapt=torch.device(device).type == "cpu", **kw)

    def __enter__(self) -> ThreadTuner:
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def candidates(self) -> list[int]:
        """The counts a trial times, fewest first."""
        cores = self._cores()
        return sorted({1, free_cores(cores, self._load(), self._own()), cores})

    def _cores(self) -> int:
        """The ceiling less the threads the process's other loops hold."""
        with _held_lock:
            others = sum(n for tuner, n in _held.items() if tuner is not self)
        return max(1, self.ceiling - others)

    def step_done(self) -> None:
        if not self.adapt:
            return
        now = self._clock()
        seconds, self._last = now - self._last, now
        if self._warmup_left:
            self._warmup_left -= 1
            if not self._warmup_left:
                self._start_trial(now)
        elif self._schedule or self._samples:
            self._samples.setdefault(self.threads, []).append(seconds)
            if self._schedule:
                self._use(self._schedule.pop(0))
            else:
                self._decide(now)
        else:
            self._recent.append(seconds)
            drifted = (len(self._recent) == self._recent.maxlen and self._reference is not None
                       and not 1 / DRIFT <= statistics.median(self._recent) / self._reference <= DRIFT)
            if now >= self._hold_until or drifted:
                self._start_trial(now)

    def restore(self) -> None:
        """Give the cores back: the thread count the loop found, and no share held in this process."""
        with _held_lock:
            _held.pop(self, None)
        if self.threads != self._before:
            self._set(self._before)
            self.threads = self._before

    def _start_trial(self, now: float) -> None:
        counts = self.candidates()
        if len(counts) == 1:  # nothing to compare, and the last trial's figure was for another count
            self._use(counts[0])
            self._reference = None
            self._hold(now, 0.0)
            return
        self._schedule = [n for _ in range(self.rounds) for n in counts]
        self._samples = {}
        self._trial_start = now
        self._use(self._schedule.pop(0))

    def _decide(self, now: float) -> None:
        medians = {n: statistics.median(times) for n, times in self._samples.items()}
        best = min(medians, key=lambda n: (medians[n], n))
        self.decisions.append((best, medians))
        self._samples = {}
        self._reference = medians[best]
        self._use(best)
        self._hold(now, now - self._trial_start)

    def _hold(self, now: float, trial_seconds: float) -> None:
        self._hold_until = now + max(self.hold_s, self.hold_trials * trial_seconds)
        self._recent.clear()

    def _use(self, threads: int) -> None:
        if threads != self.threads:
            self._set(threads)
            self.threads = threads
        with _held_lock:
            _held[self] = threads
