"""Job: a core generator in a superqt worker, with batched events, outcomes, cancel and stop-and-join."""

import threading
from pathlib import Path

import pytest

from ssl_studio.gui.workers import Job, in_own_thread


def test_events_arrive_in_order_then_the_return_value(qtbot):
    def work(token):
        for i in range(50):
            yield i
        return "done"

    job = Job(work)
    received = []
    job.events.connect(received.extend)
    with qtbot.waitSignal(job.succeeded) as outcome, qtbot.waitSignal(job.ended):
        job.start()
    assert received == list(range(50))
    assert outcome.args == ["done"]
    assert not job.running


def test_a_job_starts_while_the_pool_s_threads_are_held_by_other_jobs(qtbot):
    from PySide6.QtCore import QThreadPool

    release = threading.Event()

    def holding(token):
        release.wait()
        yield

    holders = [Job(holding).start() for _ in range(QThreadPool.globalInstance().maxThreadCount())]
    try:
        with qtbot.waitSignal(Job(lambda token: iter(())).start().succeeded):
            pass
    finally:
        release.set()
    qtbot.waitUntil(lambda: not any(job.running for job in holders))


def test_an_exception_is_reported_not_raised(qtbot):
    def work(token):
        yield 1
        raise ValueError("bad setting")

    job = Job(work)
    with qtbot.waitSignal(job.failed) as failed:
        job.start()
    assert isinstance(failed.args[0], ValueError)
    assert str(failed.args[0]) == "bad setting"


def test_a_runtime_error_fails_the_job(qtbot):
    # torch's usual error; superqt alone would take it for a deleted worker and drop it with a warning.
    def work(token):
        yield 1
        raise RuntimeError("shapes do not match")

    job = Job(work)
    outcomes = []
    job.succeeded.connect(lambda value: outcomes.append("succeeded"))
    with qtbot.waitSignal(job.failed) as failed, qtbot.waitSignal(job.ended):
        job.start()
    assert isinstance(failed.args[0], RuntimeError)
    assert outcomes == []


def test_cancel_stops_a_generator_that_honours_the_token(qtbot):
    started = threading.Event()

    def work(token):
        while True:
            started.set()
            token.raise_if_cancelled()
            yield None

    job = Job(work).start()
    assert started.wait(5)
    with qtbot.waitSignal(job.cancelled):
        job.cancel()


def test_a_generator_that_ends_itself_on_cancel_counts_as_cancelled(qtbot):
    def work(token):
        while not token.cancelled:
            yield 1
        return "partial"

    job = Job(work)
    with qtbot.waitSignal(job.events):
        job.start()
    with qtbot.waitSignal(job.cancelled):
        job.cancel()


def test_stop_all_cancels_and_joins_every_live_job(qtbot):
    gate = threading.Event()

    def work(token):
        gate.set()
        while True:
            token.raise_if_cancelled()
            yield

    jobs = [Job(work).start() for _ in range(2)]
    assert gate.wait(5)
    assert Job.stop_all(2.0)
    assert all(job.token.cancelled for job in jobs)
    assert not Job.live_jobs()
    # The outcome signals still arrive once the event loop runs again.
    qtbot.waitUntil(lambda: all(not job.running for job in jobs))



def test_in_own_thread_runs_on_a_thread_that_ends_with_it():
    ran_on = []
    assert in_own_thread(lambda a, b: ran_on.append(threading.current_thread()) or a + b, 2, 3) == 5
    assert ran_on[0] is not threading.current_thread() and not ran_on[0].is_alive()
    with pytest.raises(ValueError, match="bad"):
        in_own_thread(lambda: int("bad"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process's threads from /proc")
def test_a_jobs_thread_ends_with_its_job(qtbot):
    """A thread that ran torch keeps an OpenMP team while it lives (gui/workers.py): it must not outlive its job."""
    native_ids = []

    def work(token):
        native_ids.append(threading.get_native_id())
        yield 1

    job = Job(work)
    with qtbot.waitSignal(job.ended):
        job.start()
    qtbot.waitUntil(lambda: not Path(f"/proc/self/task/{native_ids[0]}").exists())
