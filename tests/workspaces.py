"""Workspaces of tiny run folders for the workspace and Runs page tests (tests/ is on sys.path: its conftest.py)."""

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.runs import RunFolder


def make_run(workspace, name, *, seed=0, lr=2e-3, knn=None, linear=None, transfer=None, epochs=None,
             data="/data/shapes", method="simclr"):
    """A run folder written through the run-folder owner: settings, and metrics when ``knn`` is given."""
    run = RunFolder.create(workspace / name)
    config = TrainConfig(method=method, seed=seed, lr=lr, epochs=epochs, time_budget=None if epochs else 30.0)
    run.write_settings(data, 32, config, Recipe(), "test")
    if knn is not None:
        run.write_metrics({"embeddings": {"ssl": {"knn_top1": knn, "linear_top1": linear},
                                          "pixels": {"knn_top1": 0.3, "linear_top1": 0.25}},
                           "train": {"ssl": {"seconds": 30.5, "steps": 40, "views_per_second": 812.3,
                                             "finished": True}}})
    if transfer is not None:
        points = [{"fraction": f, "labels": n, "top1": t, "std": 0.0}
                  for f, n, t in ((0.01, 2, transfer), (0.1, 20, 0.9))]
        run.write_transfer({"probe": {"ssl": {"linear": points}}, "finetune": {}})
    return run
