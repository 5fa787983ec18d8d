"""The runs table: a workspace of small finished runs listed (core/workspace.list_runs) and summarized with its
seed groups (summarize, which also writes summary.json), the fastest of a few rounds (common.fastest_rounds).

Each run folder holds what a finished run's table row reads (settings and metrics, written by the run-folder owner);
its arrays are never read, so they are left out.
"""

from __future__ import annotations

from pathlib import Path

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.workspace import list_runs, summarize

from .common import Table, fastest_rounds

GOAL_SECONDS = 1.0  # 500 runs listed, 2 cores
SEEDS = 5


def make_workspace(folder: Path, n_runs: int) -> Path:
    """``n_runs`` finished runs: groups of SEEDS seeds, each group its own learning rate."""
    recipe = Recipe()
    for i in range(n_runs):
        group, seed = divmod(i, SEEDS)
        run = RunFolder.create(folder / f"run-{i:04d}")
        run.write_settings(Path("/data/shapes"), 32, TrainConfig(seed=seed, lr=1e-3 * (group + 1)), recipe, "bench")
        run.write_metrics({"embeddings": {space: {"knn_top1": 0.5 + 0.001 * (i % 97), "linear_top1": 0.4}
                                          for space in ("ssl", "supervised", "untrained", "pixels")},
                           "train": {"ssl": {"seconds": 30.0, "steps": 50, "views_per_second": 800.0,
                                             "finished": True}}})
    return folder


def measure_workspace(table: Table, n_runs: int, work: Path, rounds: int = 3) -> dict:
    folder = make_workspace(work / "workspace", n_runs)
    seconds = fastest_rounds({"list": lambda: list_runs(folder), "summarize": lambda: summarize(folder)}, rounds)
    table.row(f"list {n_runs} runs", seconds["list"], "s", f"goal <= {GOAL_SECONDS:g} s")
    table.row(f"list and group {n_runs} runs, write summary.json", seconds["summarize"], "s",
              f"{-(-n_runs // SEEDS)} groups of {SEEDS} seeds")
    return {"runs": n_runs, "seconds": seconds}
