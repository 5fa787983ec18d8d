"""The thread choice, on a simulated machine: step times and load are injected, so every decision is exact."""

import pytest
import torch

from ssl_studio.core import threads
from ssl_studio.core.threads import ThreadTuner, free_cores


@pytest.fixture(autouse=True)
def unpinned(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the suite's pin (tests/conftest.py): here tuners adapt


class Machine:
    """A clock that a step advances by ``cost(threads, now)`` seconds, and the thread count a tuner sets."""

    def __init__(self, cost, load=0.0, threads=4):
        self.cost, self.load, self.threads, self.now = cost, load, threads, 0.0
        self.sets = []

    def set_threads(self, n):
        self.threads = n
        self.sets.append(n)

    def tuner(self, ceiling=4, **kw):
        kw = {"warmup_steps": 2, "rounds": 3, "hold_s": 10.0, "hold_trials": 10, **kw}
        return ThreadTuner(ceiling, clock=lambda: self.now, load=lambda: self.load, own=lambda: 0.0,
                           get_threads=lambda: self.threads, set_threads=self.set_threads, **kw)

    def steps(self, tuner, n):
        counts = []
        for _ in range(n):
            self.now += self.cost(self.threads, self.now)
            counts.append(self.threads)
            tuner.step_done()
        return counts


def quiet(n, now):
    return 1.0 / n  # scales perfectly


def busy(n, now):
    return 1.0 if n == 1 else 5.0  # threads in lockstep wait for the one sharing a core


@pytest.mark.parametrize(("cores", "load", "own", "free"), [
    (2, 0.0, 0, 2), (2, 1.0, 0, 1), (2, 3.7, 0, 1), (8, 2.4, 0, 6), (8, 6.0, 4, 6), (4, None, 0, 4), (4, 0.0, 9, 4),
])
def test_free_cores_are_the_cores_less_other_programs_load(cores, load, own, free):
    assert free_cores(cores, load, own) == free


def test_omp_num_threads_pins_the_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    machine = Machine(busy, load=0.0, threads=2)
    pinned = ThreadTuner(clock=lambda: machine.now, load=lambda: 0.0, own=lambda: 0.0, get_threads=lambda: 2,
                         set_threads=machine.set_threads)
    assert machine.steps(pinned, 20) == [3] * 20 and not pinned.adapt
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert threads.pinned_threads() is None


def test_it_starts_on_the_free_cores_and_times_each_candidate_in_turn():
    machine = Machine(quiet, load=2.0)
    tuner = machine.tuner()
    assert tuner.threads == 2 and tuner.candidates() == [1, 2, 4]

    counts = machine.steps(tuner, 2 + 9 + 1)

    # two warm-up steps at the first guess, then three rounds of 1, 2, 4 threads, then the fastest
    assert counts == [2, 2] + [1, 2, 4] * 3 + [4]
    assert tuner.decisions == [(4, {1: 1.0, 2: 0.5, 4: 0.25})]


def test_on_a_busy_machine_it_keeps_one_thread_and_holds_it():
    machine = Machine(busy)
    tuner = machine.tuner(ceiling=2)
    counts = machine.steps(tuner, 2 + 6 + 40)

    assert tuner.decisions[0] == (1, {1: 1.0, 2: 5.0})
    # the trial took 18 s, so the next one comes 180 s later, not after hold_s: trials stay a tenth of the time
    assert counts[8:] == [1] * 40 and len(tuner.decisions) == 1


def test_it_tries_again_when_steps_drift_from_what_the_trial_measured():
    # quiet for the first 30 s, then busy; the hold (1000 s) would never end on its own
    machine = Machine(lambda n, now: quiet(n, now) if now < 30 else busy(n, now))
    tuner = machine.tuner(ceiling=2, hold_s=1000.0)
    counts = machine.steps(tuner, 70)

    # 2 warm-up steps (1 s), a trial (4.5 s), then 0.5 s steps at 2 threads until 30 s: 49 of them
    assert counts[:57] == [2, 2] + [1, 2] * 3 + [2] * 49
    # two 5 s steps put the median of the last three at 10x the trial's 0.5 s: a new trial, which keeps 1 thread
    assert counts[57:] == [2, 2] + [1, 2] * 3 + [1] * 5
    assert tuner.decisions == [(2, {1: 1.0, 2: 0.5}), (1, {1: 1.0, 2: 5.0})]


def test_one_core_never_changes_the_count():
    machine = Machine(busy, threads=1)
    tuner = machine.tuner(ceiling=1)
    assert machine.steps(tuner, 30) == [1] * 30
    assert machine.sets == [] and tuner.decisions == []


def test_loops_of_one_process_share_the_cores_and_restore_gives_them_back():
    machine = Machine(quiet, threads=2)
    first = machine.tuner(ceiling=4)
    assert first.threads == 4
    second = machine.tuner(ceiling=4)
    assert second.candidates() == [1]  # the first loop holds all four

    first.restore()
    assert machine.sets[-1] == 2  # the count found when the first loop began
    assert second.candidates() == [1, 4]
    second.restore()


def test_a_dropped_tuner_holds_no_share():
    machine = Machine(quiet)
    machine.tuner(ceiling=4)  # never restored, not kept
    assert machine.tuner(ceiling=4).candidates() == [1, 4]


def test_a_loop_that_does_not_adapt_keeps_the_count_and_holds_no_share():
    machine = Machine(busy, threads=3)
    fixed = machine.tuner(ceiling=4, adapt=False)
    assert machine.steps(fixed, 20) == [3] * 20 and machine.sets == []
    assert machine.tuner(ceiling=4).candidates() == [1, 4]


def test_own_load_is_this_process_cpu_seconds_per_second_over_about_a_minute(monkeypatch):
    monkeypatch.setattr(threads, "_own_samples", threads.deque())
    samples = iter([(0, 0), (30, 24), (70, 64), (100, 88)])
    wall = cpu = 0.0

    def clock():
        nonlocal wall, cpu
        wall, cpu = next(samples)
        return wall

    rates = [threads.own_load(clock, lambda: cpu) for _ in range(4)]
    # no history yet; 24 s of CPU in 30 s; 64 in 70; then from the sample at 30 s, the latest a minute old
    assert rates == [0.0, 0.8, 64 / 70, (88 - 24) / (100 - 30)]


def test_training_leaves_the_thread_count_as_it_found_it():
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.methods import build_method
    from ssl_studio.core.train import train

    before = torch.get_num_threads()
    found = threads.usable_cores() + 1  # more than the tuner ever picks, so it must change it and set it back
    torch.set_num_threads(found)
    try:
        config = TrainConfig(epochs=2, batch_size=8, device="cpu")
        method = build_method("simclr", "small-cnn", params=config.params, view_size=config.view_size)
        images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        counts = []  # at every step (events may all come after the loop: 4 steps can take less than a report's wait)
        after_step = method.after_step
        method.after_step = lambda progress: counts.append(torch.get_num_threads()) or after_step(progress)
        for _ in train(method, images, None, config):
            pass
        assert len(counts) == 4 and max(counts) <= threads.usable_cores()  # while it trained
        assert torch.get_num_threads() == found
    finally:
        torch.set_num_threads(before)
