"""Projection: PCA, and UMAP from a first launch (cold) to a warmed-up process (warm).

UMAP runs in a fresh interpreter with an empty numba cache, so nothing this process imported or compiled helps it:
it times `import umap`, the first fit (which JIT-compiles), core.project.warm_up_umap, then one more fit: what
the app's maps cost once its background warm-up is done.
"""

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

from ssl_studio.core.project import pca_2d

from .common import Table, source_root

_CHILD = """
import json, sys, time
import numpy as np
x = np.load(sys.argv[1], allow_pickle=False)
times, last = {}, time.perf_counter()
def lap(name):
    global last
    now = time.perf_counter()
    times[name], last = now - last, now
import umap
lap("import")
from ssl_studio.core.project import umap_2d, warm_up_umap
umap_2d(x)
lap("first_fit")
warm_up_umap()
lap("warm_up")
umap_2d(x)
lap("warm")
print(json.dumps(times))
"""


def embeddings_like(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Ten Gaussian clusters: closer to a trained embedding's neighbour graph than uniform noise."""
    x, _ = make_blobs(n_samples=n, n_features=dim, centers=10, cluster_std=4.0, random_state=seed)
    return x.astype(np.float32)


def umap_in_fresh_process(x: np.ndarray) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.npy"
        np.save(data, x)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"), "PYTHONPATH": source_root()}
        done = subprocess.run([sys.executable, "-c", _CHILD, str(data)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the UMAP child process failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return {**times, "cold": times["import"] + times["first_fit"]}


def measure_projection(table: Table, n: int, dim: int) -> dict:
    x = embeddings_like(n, dim)
    shape = f"{n} x {dim}"
    start = time.perf_counter()
    pca_2d(x)
    pca = time.perf_counter() - start
    table.row(f"PCA {shape}", pca, "s")

    umap = umap_in_fresh_process(x)
    table.row(f"UMAP cold {shape} (new process, empty JIT cache)", umap["cold"], "s",
              f"import umap {umap['import']:.1f} s + first fit {umap['first_fit']:.1f} s")
    table.row("then core.project.warm_up_umap", umap["warm_up"], "s", "what JIT the first fit left to it")
    table.row(f"UMAP warm {shape} (fit after the warm-up)", umap["warm"], "s")
    return {"points": n, "dim": dim, "pca_seconds": pca, "umap": umap}
