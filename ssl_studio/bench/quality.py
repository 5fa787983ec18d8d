"""Quality per time: held-out kNN top-1 after N seconds of SSL with each method's defaults, beside the baselines.

Each budget is its own run: the learning-rate schedule follows the fraction of the budget used, so the first 30 s of
a 120 s run is not what a user who asks for 30 s gets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import load_folder
from ssl_studio.core.embed import embed, pixel_features
from ssl_studio.core.evaluate import knn_top1, split_indices
from ssl_studio.core.methods import build_method, default_recipe, method_names
from ssl_studio.core.models import build_backbone

from .common import Table
from .training import train_to_end


def measure_quality(table: Table, folders: dict[str, Path], budgets: tuple[float, ...], cache_dir: Path,
                    config: TrainConfig | None = None, methods=None) -> dict:
    """``methods``: the self-supervised methods to train (default: all), each with its own default settings."""
    config = config or TrainConfig()
    results = {}
    for name, folder in folders.items():
        data = load_folder(folder, config.resolution, cache_dir=cache_dir)
        labels = data.labels.numpy()
        train_idx, test_idx = split_indices(labels, seed=config.seed)

        def knn(x: np.ndarray) -> float:
            return knn_top1(x[train_idx], labels[train_idx], x[test_idx], labels[test_idx])

        torch.manual_seed(config.seed)  # the same initial weights each SSL run below starts from
        figures = {"images": len(data), "classes": len(data.class_names), "pixels": knn(pixel_features(data.images)),
                   "untrained": knn(embed(build_backbone(config.backbone), data.images)), "ssl": {}}
        table.row(f"{name}: raw pixels", f"{figures['pixels']:.1%}", "kNN top-1",
                  f"{len(data)} images, {len(data.class_names)} classes, {len(test_idx)} held out")
        table.row(f"{name}: untrained {config.backbone}", f"{figures['untrained']:.1%}", "kNN top-1")
        for method_name in methods or method_names(self_supervised=True):
            figures["ssl"][method_name] = {}
            for budget in budgets:
                run = config.replace(method=method_name, time_budget=budget)
                torch.manual_seed(run.seed)
                method = build_method(run.method, run.backbone, default_recipe(run.method), params=run.params,
                                      view_size=run.view_size)
                done = train_to_end(method, data.images[torch.from_numpy(train_idx)], None, run)
                top1 = knn(embed(method.backbone, data.images))
                figures["ssl"][method_name][f"{budget:g}"] = {"knn_top1": top1, "steps": done.steps,
                                                              "seconds": done.seconds}
                table.row(f"{name}: {run.method} {budget:g} s", f"{top1:.1%}", "kNN top-1", f"{done.steps} steps")
        results[name] = figures
    return results
