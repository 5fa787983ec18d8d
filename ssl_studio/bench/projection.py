"""Projection: UMAP cold (a fresh process, empty numba cache: a first launch) and warm (after warm_up_umap), PCA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs

from ssl_studio.core.project import pca_2d, umap_2d, warm_up_umap

from .common import Table, source_root

# Run in a fresh interpreter: times `import umap` and the first fit, which JIT-compiles into an empty cache.
_COLD = """
import json, sys, time
import numpy as np
x = np.load(sys.argv[1], allow_pickle=False)
start = time.perf_counter()
import umap
imported = time.perf_counter()
from ssl_studio.core.project import umap_2d
umap_2d(x)
print(json.dumps({"import": imported - start, "first_fit": time.perf_counter() - imported}))
"""


def embeddings_like(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Ten Gaussian clusters: closer to a trained embedding's neighbour graph than uniform noise."""
    x, _ = make_blobs(n_samples=n, n_features=dim, centers=10, cluster_std=4.0, random_state=seed)
    return x.astype(np.float32)


def cold_umap(x: np.ndarray) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.npy"
        np.save(data, x)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"), "PYTHONPATH": source_root()}
        done = subprocess.run([sys.executable, "-c", _COLD, str(data)], env=env, capture_output=True, text=True,
                              check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {**figures, "total": figures["import"] + figures["first_fit"]}


def measure_projection(table: Table, n: int, dim: int, cold: bool = True) -> dict:
    x = embeddings_like(n, dim)
    shape = f"{n} x {dim}"
    figures: dict = {"points": n, "dim": dim}

    start = time.perf_counter()
    pca_2d(x)
    figures["pca_seconds"] = time.perf_counter() - start
    table.row(f"PCA {shape}", figures["pca_seconds"], "s")

    if cold:
        figures["cold"] = cold_umap(x)
        table.row(f"UMAP cold {shape} (new process, empty JIT cache)", figures["cold"]["total"], "s",
                  f"import umap {figures['cold']['import']:.1f} s + first fit {figures['cold']['first_fit']:.1f} s")

    start = time.perf_counter()
    warm_up_umap()
    figures["warm_up_seconds"] = time.perf_counter() - start
    table.row("core.project.warm_up_umap (in process)", figures["warm_up_seconds"], "s",
              "import + JIT, or load from numba's cache")
    for name in ("warm", "warm_again"):
        start = time.perf_counter()
        umap_2d(x)
        figures[name] = time.perf_counter() - start
    table.row(f"UMAP warm {shape} (first fit after warm-up)", figures["warm"], "s",
              f"then {figures['warm_again']:.2f} s for another fit")
    return figures
