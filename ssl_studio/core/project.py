"""2-D maps of embeddings: PCA at once, UMAP when it is ready.

umap-learn is imported lazily: ``import umap`` takes 10-15 s cold and its first fit JIT-compiles for tens of
seconds more (numba), so the app warms it up in the background at start and shows PCA maps meanwhile. What a fit
runs is here; it runs in the UMAP child process (core.umap_process), which sends its reports (``report``) back.
"""

import functools
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances

PROJECTIONS = ("pca", "umap")  # the kinds of 2-D map, in the order they are drawn
# UMAP needs a few neighbours per point to mean anything; on 3 points PCA shows all there is.
MIN_UMAP_POINTS = 4
# From this many points umap-learn finds neighbours approximately (NN-descent); below, exactly.
APPROXIMATE_FROM = 4096
_REPORT_EVERY_S = 0.5


@dataclass(frozen=True)
class UmapProgress:
    """How far a UMAP fit has come: stage "neighbours" (the nearest-neighbour graph and the initial layout, not
    counted) or "layout" (``done`` of ``total`` optimization epochs). ``label`` is the caller's name for the map."""

    label: str
    stage: str
    done: int = 0
    total: int = 0


Report = Callable[[UmapProgress], None]


def pca_2d(x, seed: int = 0) -> np.ndarray:
    """First two principal components as float32 (N, 2); zero columns pad what the data lacks."""
    x = as_matrix(x)
    out = np.zeros((len(x), 2), dtype=np.float32)
    # N points span at most N - 1 directions; asking PCA for more divides by zero.
    n_components = min(2, len(x) - 1, x.shape[1])
    if n_components > 0:
        out[:, :n_components] = PCA(n_components=n_components, random_state=seed).fit_transform(x)
    return out


class _EpochReports:
    """A file for umap-learn's tqdm bar: the bar is formatted as "done total", and each write becomes a report."""

    def __init__(self, label: str, report: Report) -> None:
        self.label, self.report = label, report

    def write(self, text: str) -> None:
        numbers = text.split()
        if len(numbers) == 2 and all(n.isdigit() for n in numbers):
            self.report(UmapProgress(self.label, "layout", int(numbers[0]), int(numbers[1])))

    def flush(self) -> None:
        pass


@functools.cache
def _import_umap():
    set_numba_cache_dir()
    import umap  # imports pynndescent too: their kernels must exist before caching is enabled
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    # Most of umap-learn's and pynndescent's kernels are compiled with cache=False, so every launch compiled
    # them again: 46 s of a second launch's 50 s warm-up on 2 cores, 13 s once cached. numba keys its cache on
    # the source file's stamp, so a library upgrade still recompiles. nn_descent itself cannot be cached
    # (numba says it uses dynamic globals) and says so at each compile.
    warnings.filterwarnings("ignore", message=".*Cannot cache compiled function", category=NumbaWarning)
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in ("umap", "pynndescent"):
            for obj in vars(module).values():
                if isinstance(obj, Dispatcher) and obj.py_func.__module__ == name:
                    obj.enable_caching()
    return umap


def fit_umap(label: str, x: np.ndarray, seed, n_neighbors: int, min_dist: float, report: Report) -> np.ndarray:
    """UMAP of ``x`` here, in this process, to float32 (N, 2); its progress goes to ``report``."""
    report(UmapProgress(label, "neighbours"))
    # umap-learn drives a tqdm bar over the layout's epochs (tqdm_kwds is its public hook for it).
    epochs = {"disable": False, "file": _EpochReports(label, report), "bar_format": "{n} {total}",
              "mininterval": _REPORT_EVERY_S}
    small = len(x) < APPROXIMATE_FROM
    # Exact neighbours for a small map, as umap-learn finds them, but from scikit-learn's distance matrix: umap-learn's
    # own calls a Python function per pair of points (5.8 M calls, 6 of a 2,400-point map's 7.5 s).
    reducer = _make_umap(len(x), seed, n_neighbors, min_dist, tqdm_kwds=epochs,
                         **({"metric": "precomputed"} if small else {}))
    with warnings.catch_warnings():
        # Clustered embeddings often give a disconnected kNN graph; UMAP copes and the map shows it.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        warnings.filterwarnings("ignore", message="using precomputed metric")  # no inverse_transform: not used
        return reducer.fit_transform(pairwise_distances(x) if small else x).astype(np.float32, copy=False)


def warm_up_fits(large: bool, report: Report) -> None:
    """JIT-compile here what a real map runs (``large``: NN-descent too) on a few generated points."""
    # The data is chosen to reach the code paths real maps take: six far-apart blobs (a disconnected
    # graph, whose components are placed apart), and 2 KB rows so that pynndescent's forest splits
    # breadth-first as it does past 1 MB of data. A large map's NN-descent is forced on these few points.
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=100.0, size=(6, 512))
    x = (centers[np.arange(1200) % 6] + rng.normal(size=(1200, 512))).astype(np.float32)
    fit_umap("warm-up", x, None, 15, 0.1, report)
    if large:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            _make_umap(len(x), None, 15, 0.1, force_approximation_algorithm=True).fit_transform(x)


def as_matrix(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected features of shape (N, D), got {x.shape}")
    return x


def _numba_cache_dir() -> Path:
    root = os.environ.get("SSL_STUDIO_CACHE_DIR") or platformdirs.user_cache_dir("ssl-studio")
    return Path(root) / "numba"


def set_numba_cache_dir() -> None:
    # numba reads NUMBA_CACHE_DIR once, at its own import (in the child, which inherits it); the
    # default (next to the installed sources) is often read-only, and then every launch compiles again.
    if "NUMBA_CACHE_DIR" not in os.environ:
        cache = _numba_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(cache)


def _make_umap(n_points: int, seed: int | None, n_neighbors: int, min_dist: float, **kw):
    return _import_umap().UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n_points - 1)),
        min_dist=min_dist,
        random_state=seed,
        # Saying n_jobs=1 ourselves when seeded avoids umap-learn's warning that it overrode it.
        n_jobs=1 if seed is not None else -1,
        **kw,
    )
