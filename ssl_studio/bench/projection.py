"""Projection: PCA, and UMAP on a first launch (cold) and once warmed up as the app does it (warm).

UMAP runs in fresh interpreters, so nothing this process imported or compiled helps it. *Cold*: an empty numba
cache, `import umap`, then the first fit, which JIT-compiles. *Warm*: a second process, with the numba cache the
first one left (the app's second launch): `import umap`, core.umap_process.UMAP.warm_up (what the app runs in the
background at start, for a map of that size), then the fit, which is fast only if the warm-up compiled everything
a real map needs.
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
from ssl_studio.core.cancel import drain
from ssl_studio.core.umap_process import UMAP
if sys.argv[2] == "warm":
    drain(UMAP.warm_up(points=len(x)))
    lap("warm_up")
drain(UMAP.fit(x))
lap("fit")
print(json.dumps(times))
"""


def embeddings_like(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Ten Gaussian clusters: closer to a trained embedding's neighbour graph than uniform noise."""
    x, _ = make_blobs(n_samples=n, n_features=dim, centers=10, cluster_std=4.0, random_state=seed)
    return x.astype(np.float32)


def umap_in_fresh_processes(x: np.ndarray) -> dict:
    """Seconds of each step of the cold process, then of the warm one."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.npy"
        np.save(data, x)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba"), "PYTHONPATH": source_root()}
        for mode in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", _CHILD, str(data), mode], env=env, capture_output=True,
                                  text=True)
            if done.returncode:
                raise RuntimeError(f"the {mode} UMAP process failed (exit {done.returncode}): "
                                   f"{done.stderr.strip()[-2000:]}")
            figures[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure_projection(table: Table, n: int, dim: int) -> dict:
    x = embeddings_like(n, dim)
    shape = f"{n} x {dim}"
    start = time.perf_counter()
    pca_2d(x)
    pca = time.perf_counter() - start
    table.row(f"PCA {shape}", pca, "s")

    umap = umap_in_fresh_processes(x)
    cold, warm = umap["cold"], umap["warm"]
    table.row(f"UMAP cold {shape} (new process, empty JIT cache)", cold["import"] + cold["fit"], "s",
              f"import umap {cold['import']:.1f} s + first fit {cold['fit']:.1f} s")
    table.row("core.umap_process UMAP.warm_up (second launch)", warm["warm_up"], "s",
              f"after import umap {warm['import']:.1f} s; numba's cache kept")
    table.row(f"UMAP warm {shape} (first fit after the warm-up)", warm["fit"], "s")
    return {"points": n, "dim": dim, "pca_seconds": pca, "umap": umap}
