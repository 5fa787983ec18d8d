"""Does a workspace's summary.json say what its run folders hold? `python -m ssl_studio.bench.sweep_check WORKSPACE`

For each group of summary.json and each metric it gives, the values are read again from the group's run folders
(each run's metrics and transfer readings, through core/runs.py) and their mean and sample standard deviation
computed again with numpy, apart from the statistics module core/workspace.py uses; every group's table row is
printed with the largest difference. Exit status 1 when a value, a mean or a std differs by more than TOLERANCE,
or when a finished run of the workspace is in no group.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ssl_studio.core.runs import RunFolder
from ssl_studio.core.spaces import run_spaces
from ssl_studio.core.workspace import METRICS, SUMMARY, TRANSFER_FRACTION, list_runs

TOLERANCE = 1e-12


def reading(run: RunFolder, metric: str) -> float | None:
    """A run's value of one of workspace.METRICS, as its own files hold it."""
    if metric == "transfer_1pct":
        points = run.read_transfer([s.name for s in run_spaces(run)]).get("probe", {}).get("ssl", {}).get("linear", [])
        return next((p["top1"] for p in points if abs(p["fraction"] - TRANSFER_FRACTION) < 1e-9), None)
    space, probe = metric.split("_")
    return run.read_metrics().get("embeddings", {}).get(space, {}).get(f"{probe}_top1")


def check(workspace: Path, out=sys.stdout) -> float:
    """The largest difference between summary.json and the run folders (inf for a run missing from the groups)."""
    summary = json.loads((workspace / SUMMARY).read_text(encoding="utf-8"))
    worst = 0.0
    grouped = set()
    for group in summary["groups"]:
        grouped |= set(group["runs"])
        runs = [RunFolder(workspace / name) for name in group["runs"]]
        cells = []
        for metric in METRICS:
            values = np.array([v for run in runs if (v := reading(run, metric)) is not None], dtype=np.float64)
            stored = group["metrics"].get(metric)
            if not len(values):
                worst = max(worst, 0.0 if stored is None else float("inf"))
                continue
            std = float(values.std(ddof=1)) if len(values) > 1 else None
            if stored is None or len(stored["values"]) != len(values) or (stored["std"] is None) != (std is None):
                worst = float("inf")
                cells.append(f"{metric}: summary {stored} against the folders' {values.tolist()}")
                continue
            worst = max(worst, float(np.abs(values - np.array(stored["values"])).max()),
                        abs(float(values.mean()) - stored["mean"]), abs((std or 0.0) - (stored["std"] or 0.0)))
            spread = f" ± {std * 100:.2f}" if std is not None else ""
            cells.append(f"{metric} {values.mean() * 100:.2f}{spread} % "
                         f"({', '.join(f'{v * 100:.1f}' for v in values)})")
        print(f"{', '.join(f'{k}={v}' for k, v in group['settings'].items()) or 'one group'} "
              f"[{', '.join(group['runs'])}]: {'; '.join(cells)}", file=out)
    missing = sorted(row.name for row in list_runs(workspace) if row.state == "finished" and row.name not in grouped)
    if missing:
        print(f"finished runs in no group: {', '.join(missing)}", file=out)
        worst = float("inf")
    print(f"largest difference between {SUMMARY} and the run folders: {worst:g}", file=out)
    return worst


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ssl_studio.bench.sweep_check WORKSPACE")
    sys.exit(0 if check(Path(sys.argv[1])) <= TOLERANCE else 1)
