"""The runs table: a workspace of small finished runs listed (core/workspace.list_runs) and summarized with its
seed groups (summarize, which also writes summary.json), then shown by the Runs page (offscreen; what it does on the
GUI thread), the fastest of a few rounds (common.fastest_rounds).

Each run folder holds what a finished run's table row reads (settings and metrics, written by the run-folder owner);
its arrays are never read, so they are left out.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.workspace import list_runs, summarize, summary_of

from .common import Table, fastest_rounds, source_root

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
    page = _page_seconds(folder, rounds)
    if page is not None:
        seconds["page"] = page
        table.row(f"Runs page shows {n_runs} listed runs (GUI thread)", page, "s",
                  "table, filters, seed-group charts; the listing itself runs in a job")
    return {"runs": n_runs, "seconds": seconds}


def _page_seconds(folder: Path, rounds: int) -> float | None:
    """What the Runs page spends on the GUI thread to show the listed workspace, measured in a fresh process
    (offscreen, as bench/ui.py does) so this one never holds a QApplication; None when there is no Qt to measure."""
    if importlib.util.find_spec("PySide6") is None:
        return None
    done = subprocess.run([sys.executable, "-m", "ssl_studio.bench.workspace", str(folder), str(rounds)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": source_root()})
    if done.returncode != 0:
        raise RuntimeError(f"the Runs page measurement failed: {done.stderr[-2000:]}")
    return float(done.stdout.split()[-1])


def _show_in_page(folder: Path, rounds: int) -> float:
    from PySide6.QtWidgets import QApplication

    from ssl_studio.gui.runs_page import RunsPage
    from ssl_studio.gui.workers import Job

    app = QApplication([])
    rows = list_runs(folder)
    summary = summary_of(rows)
    page = RunsPage()
    page.opened_workspace = folder  # never the user's runs folder
    page.resize(1130, 700)
    page.show()

    def show() -> None:
        page.show_runs(folder, rows, summary)
        app.processEvents()

    try:
        return fastest_rounds({"page": show}, rounds)["page"]
    finally:
        page.close()
        Job.stop_all()


if __name__ == "__main__":
    print(_show_in_page(Path(sys.argv[1]), int(sys.argv[2])))
