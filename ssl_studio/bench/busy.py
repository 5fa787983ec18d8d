"""Training beside another program: SSL views/s with one CPU-bound process of another program running, against
the same training with nothing added, alternating in one run.

Each figure comes from a fresh process, as a person would start it: ``ssl-studio run`` (the command line) and a
window that opens the folder and trains (the app, when it can run here). A row's ratio is the median over rounds
of busy views/s over the quiet views/s measured just before: on 2 cores a fair share is 0.5. The command line also
runs with OMP_NUM_THREADS pinned to every core, as torch did before the thread count adapted (core/threads.py).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.threads import usable_cores

from . import ui
from .common import Table

# Another program, CPU-bound: a bare interpreter in a loop (no torch, no threads of its own).
OTHER_PROGRAM = "while True: pass"


@contextmanager
def another_program(busy: bool) -> Iterator[subprocess.Popen | None]:
    """One CPU-bound process of another program runs while the block does, when ``busy``."""
    if not busy:
        yield None
        return
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROGRAM])
    try:
        yield other
    finally:
        other.kill()
        other.wait()


def alternate(contestants: dict[str, Callable[[Path], float]], rounds: int, work: Path
              ) -> dict[str, dict[str, list[float]]]:
    """views/s of each contestant (given a fresh folder under ``work``), quiet then beside another program,
    contestant after contestant, ``rounds`` times."""
    figures = {name: {"quiet": [], "busy": []} for name in contestants}
    for r in range(rounds):
        for i, (name, views_per_second) in enumerate(contestants.items()):
            for state in ("quiet", "busy"):
                with another_program(state == "busy"):
                    figures[name][state].append(views_per_second(work / f"{r}-{i}-{state}"))
    return figures


def busy_over_quiet(figures: dict[str, list[float]]) -> float:
    """The median over rounds of busy views/s over the quiet views/s of the same round."""
    return statistics.median(b / q for q, b in zip(figures["quiet"], figures["busy"]))


def measure_busy(table: Table, folder: Path, seconds: float, rounds: int) -> dict:
    config = TrainConfig(time_budget=seconds).to_dict()
    with tempfile.TemporaryDirectory(prefix="ssl-studio-busy-") as tmp:
        work = Path(tmp)
        env = ui.probe_environment(work)
        env.pop("OMP_NUM_THREADS", None)  # the thread count adapts unless pinned
        pinned = {**env, "OMP_NUM_THREADS": str(usable_cores())}
        contestants = {
            "command line": lambda out: ui.command_line_views_per_second(folder, config, env, out),
            "command line, pinned (before)":
                lambda out: ui.command_line_views_per_second(folder, config, pinned, out),
        }
        app_unavailable = ui.unavailable()
        if app_unavailable is None:
            contestants["app"] = lambda out: ui.probe_process(
                "training", folder, seconds, 20 * seconds + 120, out / "training.json", str(out), env,
            )["in_app_views_per_second"]
        figures = alternate(contestants, rounds, work)
    results = {name: {**f, "busy_over_quiet": busy_over_quiet(f)} for name, f in figures.items()}
    for name, f in results.items():
        pairs = ", ".join(f"{q:,.0f}/{b:,.0f}" for q, b in zip(f["quiet"], f["busy"]))
        table.row(f"{name}: busy / quiet", f["busy_over_quiet"], "x",
                  f"views/s quiet/busy {pairs}; {seconds:g} s each; goal >= 0.4 (fair share 0.5 on 2 cores)")
    if app_unavailable:
        table.row("app: busy / quiet", "skipped", "", app_unavailable)
    return results
