"""Sweeps: expansion, checks before anything runs, the queue file and its lock, shared baselines, failures and
resume (core/sweep.py)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_studio.core import pipeline
from ssl_studio.core.cancel import Cancelled, CancelToken
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.events import TrainEvent
from ssl_studio.core.pipeline import open_run
from ssl_studio.core.samples import make_shapes
from ssl_studio.core.sweep import (QUEUE, Queue, RunEnded, RunStarted, Sweep, SweepError, SweepFinished, estimate,
                                   expand, parse_vary, run_queue)
from ssl_studio.core.workspace import SUMMARY

TINY = TrainConfig(epochs=1, time_budget=None, batch_size=16, resolution=16, device="cpu")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("sweep") / "shapes", per_class=4, size=20, seed=2)


def tiny_sweep(data, methods=("simclr",), seeds=1, vary=(), config=TINY):
    return Sweep(Path(data), config, methods, vary, seeds, transfer=None, use_umap=False)


def test_expansion_is_methods_by_values_by_seeds_named_after_what_varies():
    methods = ("simclr", "moco")
    sweep = tiny_sweep("/data", methods, seeds=2, vary=(parse_vary("temperature=0.2,0.5", methods),
                                                        parse_vary("lr=0.001,0.01", methods)))
    runs = expand(sweep)
    assert len(runs) == 2 * 2 * 2 * 2
    assert runs[0].name == "simclr-temperature0.2-lr0.001-seed0"
    assert runs[-1].name == "moco-temperature0.5-lr0.01-seed1"
    assert len({run.name for run in runs}) == 16
    last = runs[-1]
    assert (last.config.method, last.config.params.temperature, last.config.lr, last.config.seed) == \
        ("moco", 0.5, 0.01, 1)
    # The baselines depend on the seed and the lr (the supervised baseline's settings), not on the method or its
    # temperature: 2 seeds x 2 learning rates.
    assert len({run.baselines for run in runs}) == 4
    assert estimate(runs, sweep, labeled=True).baseline_trainings == 4


def test_a_recipe_setting_and_the_budget_vary_too():
    sweep = tiny_sweep("/data", ("simclr",), vary=(parse_vary("crop_scale=0.2:1,0.5:1", ("simclr",)),
                                                  parse_vary("time_budget=30,60", ("simclr",))))
    runs = expand(sweep)
    assert [r.recipe.crop_scale for r in runs] == [(0.2, 1.0), (0.2, 1.0), (0.5, 1.0), (0.5, 1.0)]
    assert [(r.config.time_budget, r.config.epochs) for r in runs] == [(30, None), (60, None)] * 2
    assert runs[0].name == "simclr-crop_scale0.2_1-time_budget30-seed0"


def test_the_estimate_counts_runs_baselines_and_budget_seconds():
    sweep = tiny_sweep("/data", ("simclr", "byol", "vicreg"), seeds=3, config=TINY.replace(epochs=None,
                                                                                       time_budget=30))
    found = estimate(expand(sweep), sweep, labeled=True)
    assert (found.runs, found.ssl_trainings, found.baseline_trainings) == (9, 9, 3)
    assert found.seconds == 9 * 30 + 3 * 30
    assert "9 run(s)" in found.text() and "3 supervised baseline(s)" in found.text() and "6 min" in found.text()
    assert estimate(expand(sweep), sweep, labeled=False).seconds == 9 * 30
    epochs = tiny_sweep("/data", ("simclr",))
    assert estimate(expand(epochs), epochs).seconds is None


@pytest.mark.parametrize("vary, methods, words", [
    ("lr=0.01,5", ("simclr",), "learning rate (lr) must be at most 1 (got 5)"),
    ("batch_size=1", ("simclr",), "batch size must be at least 2"),
    ("temperature=0.2", ("simclr", "byol"), "params.temperature is not a setting of byol"),
    ("flip_p=1.5", ("simclr",), "flip probability (flip_p) must be at most 1"),
    ("colour=1", ("simclr",), "unknown setting 'colour'"),
    ("seed=1,2", ("simclr",), "give a number of seeds instead"),
    ("lr=fast", ("simclr",), "lr=fast: not a number"),
    ("lr", ("simclr",), "write SETTING=v1,v2"),
])
def test_a_bad_setting_is_refused_before_anything_runs_naming_it(vary, methods, words, tmp_path):
    with pytest.raises(SweepError, match=None) as caught:
        expand(tiny_sweep(tmp_path, methods, vary=(parse_vary(vary, methods),)))
    assert words in str(caught.value)
    assert not (tmp_path / QUEUE).exists()


def test_unknown_methods_and_a_method_setting_of_none_are_refused():
    with pytest.raises(SweepError, match="unknown method 'simclrr'"):
        expand(tiny_sweep("/d", ("simclrr",)))
    with pytest.raises(SweepError, match="'temperature' belongs to none of byol"):
        expand(Sweep(Path("/d"), TINY, ("byol",), params={"temperature": 0.3}))


# --- the queue ---------------------------------------------------------------------------------------------------


def queued(workspace, data, methods=("simclr",), seeds=1):
    sweep = tiny_sweep(data, methods, seeds)
    return Queue(workspace).add(sweep, expand(sweep))


TAKER = """
import json, sys
from ssl_studio.core.sweep import Queue
queue, names = Queue(sys.argv[1]), []
while (job := queue.take()) is not None:
    names.append(job.name)
print(json.dumps(names))
"""


def test_two_processes_never_take_the_same_job(tmp_path):
    jobs = queued(tmp_path, tmp_path, methods=("simclr", "byol", "moco", "vicreg", "barlow"), seeds=8)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    takers = [subprocess.Popen([sys.executable, "-c", TAKER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
              for _ in range(2)]
    taken = [json.loads(p.communicate(timeout=120)[0]) for p in takers]
    assert sorted(taken[0] + taken[1]) == sorted(j.name for j in jobs)  # every job once, none twice
    assert all(j.state == "running" for j in Queue(tmp_path).jobs())


def test_a_job_held_by_a_dead_process_goes_back_to_the_queue(tmp_path):
    queued(tmp_path, tmp_path, seeds=2)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    data = json.loads((tmp_path / QUEUE).read_text())
    data["jobs"][0].update(state="running", pid=gone.pid, host=socket.gethostname(), started=None)
    data["jobs"][1].update(state="running", pid=os.getpid(), host=socket.gethostname(), started=None)
    (tmp_path / QUEUE).write_text(json.dumps(data))
    job = Queue(tmp_path).take()
    assert job.name == "simclr-seed0" and job.pid == os.getpid()
    assert Queue(tmp_path).take() is None  # the other one's process (this one) lives: it stays running


def test_a_new_sweep_waits_for_the_unfinished_one_and_a_damaged_queue_is_named(tmp_path):
    queued(tmp_path, tmp_path)
    with pytest.raises(SweepError, match="still has 1 unfinished run"):
        queued(tmp_path, tmp_path)
    (tmp_path / QUEUE).write_text('{"format": "ssl_studio.sweep/1", "jobs": [{"name": "../x"}]}')
    with pytest.raises(SweepError, match=f"{QUEUE} in .* is not valid"):
        Queue(tmp_path).take()


# --- running -----------------------------------------------------------------------------------------------------


def test_runs_of_one_seed_share_one_baseline_and_each_folder_stays_complete(shapes, tmp_path, monkeypatch, drain):
    trained = []
    real_train = pipeline.train

    def counting(method, images, labels, config, **kw):
        trained.append((config.method, config.seed))
        return real_train(method, images, labels, config, **kw)
    monkeypatch.setattr(pipeline, "train", counting)
    scored, real_score = [], pipeline._score_space
    monkeypatch.setattr(pipeline, "_score_space", lambda *args: scored.append(1) or real_score(*args))
    jobs = queued(tmp_path, shapes, methods=("simclr", "byol", "vicreg"), seeds=2)
    events, finished = drain(run_queue(tmp_path))
    assert sorted(trained) == sorted([(m, s) for m in ("simclr", "byol", "vicreg") for s in (0, 1)]
                                     + [("supervised", 0), ("supervised", 1)])
    assert [e.state for e in events if isinstance(e, RunEnded)] == ["finished"] * 6
    for job in jobs:
        run = open_run(tmp_path / job.name)  # complete and openable on its own
        assert set(run.metrics["embeddings"]) == {"ssl", "supervised", "untrained", "pixels"}
    a, b = (tmp_path / "simclr-seed1", tmp_path / "vicreg-seed1")
    assert (a / "supervised.safetensors").samefile(b / "supervised.safetensors")
    assert (a / "embeddings" / "pixels.npy").samefile(b / "embeddings" / "pixels.npy")
    assert (a / "projections" / "untrained_pca.npy").samefile(b / "projections" / "untrained_pca.npy")
    assert len(scored) == 2 * (4 + 1 + 1)  # per seed: every space of the first run, then each other run's SSL
    scores = [json.loads((folder / "metrics.json").read_text())["embeddings"] for folder in (a, b)]
    assert scores[0]["pixels"] == scores[1]["pixels"]
    assert not (a / "embeddings" / "ssl.npy").samefile(b / "embeddings" / "ssl.npy")
    assert isinstance(finished, SweepFinished)
    groups = json.loads((tmp_path / SUMMARY).read_text())["groups"]
    assert sorted(len(g["runs"]) for g in groups) == [2, 2, 2]


def test_a_failing_run_is_marked_failed_with_its_reason_and_the_next_runs(shapes, tmp_path, drain):
    queued(tmp_path, shapes, seeds=2)
    data = json.loads((tmp_path / QUEUE).read_text())
    data["jobs"][0]["data"] = str(tmp_path / "gone")
    (tmp_path / QUEUE).write_text(json.dumps(data))
    events, _ = drain(run_queue(tmp_path))
    ended = [e for e in events if isinstance(e, RunEnded)]
    assert [(e.name, e.state) for e in ended] == [("simclr-seed0", "failed"), ("simclr-seed1", "finished")]
    jobs = Queue(tmp_path).jobs()
    assert jobs[0].state == "failed" and "gone" in jobs[0].reason
    assert jobs[1].state == "finished" and jobs[1].reason is None


def test_cancel_stops_the_current_run_at_its_checkpoint_and_resume_continues(shapes, tmp_path):
    queued(tmp_path, shapes, methods=("simclr", "byol"))
    cancel = CancelToken()
    events = []
    with pytest.raises(Cancelled):
        for event in run_queue(tmp_path, cancel=cancel):
            events.append(event)
            if isinstance(event, TrainEvent):
                cancel.cancel()
    assert [j.state for j in Queue(tmp_path).jobs()] == ["queued", "queued"]
    assert (tmp_path / "simclr-seed0" / "ssl.safetensors").exists()  # its checkpoint
    assert not (tmp_path / "byol-seed0").exists()  # the rest untouched
    again = list(run_queue(tmp_path))
    started = [e for e in again if isinstance(e, RunStarted)]
    assert [(e.name, e.resumed) for e in started] == [("simclr-seed0", True), ("byol-seed0", False)]
    assert [j.state for j in Queue(tmp_path).jobs()] == ["finished", "finished"]
