"""Transfer stage: what its settings add to `ssl-studio run`, timed on a labeled folder of generated shapes.

The run folder it works on is made by every other stage with one epoch of training (the stage's cost hardly depends
on how good the weights are); then the transfer stage runs alone, as `ssl-studio transfer RUN_DIR` runs it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import load_folder
from ssl_studio.core.events import StageStarted, TransferPoint
from ssl_studio.core.pipeline import run_pipeline, transfer
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.samples import SHAPES, make_shapes
from ssl_studio.core.transfer import TransferConfig

from .common import Table

GOAL_SECONDS = 120  # what the default settings may add to `ssl-studio run` for 10k images on 2 cores


def measure_transfer(table: Table, n_images: int, workdir: Path, settings: TransferConfig | None = None) -> dict:
    settings = settings or TransferConfig()
    folder = make_shapes(workdir / "transfer-images", per_class=math.ceil(n_images / len(SHAPES)), size=32)
    config = TrainConfig(epochs=1, time_budget=None, device="cpu")
    for _ in run_pipeline(folder, workdir / "transfer-run", config, use_umap=False, skip=("transfer",)):
        pass
    dataset = load_folder(folder, config.resolution, cache_dir=workdir / "transfer-cache")
    run = RunFolder.open(workdir / "transfer-run")

    start = time.perf_counter()
    probes_done = None
    finetunes: dict[str, dict] = {}
    for event in transfer(dataset, run, settings):
        if isinstance(event, StageStarted) and event.name.startswith("finetune_") and probes_done is None:
            probes_done = time.perf_counter() - start
        if isinstance(event, TransferPoint) and event.kind == "finetune":
            finetunes[f"{event.curve} {event.point['fraction']:.0%}"] = event.point
    total = time.perf_counter() - start
    probes_done = total if probes_done is None else probes_done

    unit, values = settings.budget()
    n, budget = len(dataset), ", ".join(f"{v:g}" for v in values) + f" {unit}"
    table.row(f"transfer stage, {n} images (default settings)", total, "s",
              f"goal <= {GOAL_SECONDS} s added to ssl-studio run at 10k images")
    table.row("  probe curves (4 spaces, 3 selections x kNN + linear)", probes_done, "s",
              f"{len(settings.fractions)} fractions, {settings.repeats} subsets up to 10 %")
    table.row(f"  fine-tuning ({len(finetunes)} runs of {budget})", total - probes_done, "s",
              "; ".join(f"{k}: {p['steps']} steps" for k, p in finetunes.items()))
    return {"images": n, "seconds": total, "probe_seconds": probes_done, "finetune_seconds": total - probes_done,
            "finetune_steps": {k: p["steps"] for k, p in finetunes.items()}, "settings": settings.to_dict()}
