"""Run against run: one map turned onto another, and how much each image's neighbourhood agrees between them.

Two runs of the same folder (or one run at two moments of its training) place the same images in two maps whose
axes mean nothing: a cluster on the left in one may sit on the right, mirrored, in the other. Orthogonal
Procrustes on the images both maps hold turns, mirrors, scales and shifts the second onto the first, so the same
cluster sits in the same place. How much the runs agree is read in the embeddings, not in the maps: the share of
an image's 20 nearest neighbours (cosine, as everywhere in the app) that are the same in both; the images whose
neighbourhood changed most are listed first.

A moment of training (core/map_history.py) keeps a PCA map of a subset but not its embedding, so a moment's
neighbours are its map's (Euclidean, in 2-D).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes
from sklearn.neighbors import NearestNeighbors

from .cancel import CancelToken
from .coloring import Coloring
from .data import DataError, ImageDataset, LoadProgress, iter_load
from .neighbours import CosineNeighbours, MapNeighbours
from .reopen import align_images
from .runs import RunFolder

K = 20  # neighbours compared per image, as the kNN score counts them
MAP_KINDS = ("umap", "pca")  # the final map a run shows, the first it has

# Groups of the "neighbours kept" coloring: the share of the K neighbours both runs agree on, from moved
# (red, drawn on top) to kept (blue).
AGREEMENT_EDGES = (0.2, 0.4, 0.6, 0.8)
AGREEMENT_NAMES = ["under 20 % kept", "20–40 % kept", "40–60 % kept", "60–80 % kept", "80–100 % kept"]
AGREEMENT_COLORS = ("#c62828", "#ef6c00", "#b89b00", "#5c9bd1", "#1f4e99")


def align(moving: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``moving`` (N x 2, the same images as ``target``'s rows) turned, mirrored if that fits better, scaled and
    shifted onto ``target``: orthogonal Procrustes after centring both and scaling them to unit size."""
    moving, target = np.asarray(moving, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if moving.shape != target.shape or moving.ndim != 2:
        raise ValueError(f"maps to align must hold the same images: shapes {moving.shape} and {target.shape}")
    moving_c, target_c = moving - moving.mean(axis=0), target - target.mean(axis=0)
    size_m, size_t = np.linalg.norm(moving_c), np.linalg.norm(target_c)
    if size_m == 0 or size_t == 0:
        raise ValueError("a map whose points all sit on one spot cannot be aligned")
    rotation, _ = orthogonal_procrustes(moving_c / size_m, target_c / size_t)
    return moving_c / size_m @ rotation * size_t + target.mean(axis=0)


def nearest(x: np.ndarray, k: int = K, metric: str = "cosine") -> np.ndarray:
    """Each row's ``k`` nearest other rows (itself left out), closest first: (N, k) row numbers."""
    x = np.asarray(x, dtype=np.float32)
    if not 1 <= k < len(x):
        raise ValueError(f"{k} neighbours need more than {k} images; there are {len(x)}")
    return NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(x).kneighbors(
        return_distance=False)


def neighbour_agreement(a: np.ndarray, b: np.ndarray, k: int = K, metric_a: str = "cosine",
                        metric_b: str = "cosine") -> np.ndarray:
    """Per image (the rows of ``a`` and ``b`` are the same images), the share of its ``k`` nearest neighbours that
    are the same in both: 1 where the two agree on all of them, 0 where on none. Fewer images than k + 1: as
    many neighbours as there are other images."""
    if len(a) != len(b):
        raise ValueError(f"neighbours can only be compared on the same images: {len(a)} and {len(b)} rows")
    k = min(k, len(a) - 1)
    near_a, near_b = nearest(a, k, metric_a), nearest(b, k, metric_b)
    shared = (near_a[:, :, None] == near_b[:, None, :]).any(axis=2).sum(axis=1)
    return shared / k


def moved_most(agreement: np.ndarray, n: int | None = None) -> np.ndarray:
    """The images whose neighbourhood agrees least (ties in image order), the ``n`` first (None: all)."""
    return np.argsort(np.asarray(agreement), kind="stable")[:n]


def agreement_coloring(agreement: np.ndarray) -> Coloring:
    """The maps' "neighbours kept" colors: each image's agreement in one of five bands, the lowest two on top."""
    ids = np.searchsorted(AGREEMENT_EDGES, np.asarray(agreement, dtype=np.float64), side="right")
    return Coloring(ids.astype(np.int64), list(AGREEMENT_NAMES), AGREEMENT_COLORS, raised=(0, 1))


@dataclass(frozen=True, eq=False)
class MapSide:
    """One side of run against run: a run's self-supervised map at the end of training, or one moment of it."""

    run: Path
    title: str
    data_root: Path
    resolution: int  # as its images were decoded
    paths: list[str]
    labels: np.ndarray | None
    class_names: list[str]
    coords: np.ndarray  # (N, 2): the map
    features: np.ndarray  # (N, D): what its neighbours are found in
    metric: str  # how: "cosine" in an embedding, "euclidean" on a map
    moment: str = ""  # when in its training, for a snapshot of its map history

    def neighbours(self, rows: np.ndarray) -> CosineNeighbours | MapNeighbours:
        """What finds the nearest neighbours among these rows, as its agreement does."""
        x = self.features[rows]
        return CosineNeighbours(x) if self.metric == "cosine" else MapNeighbours(x)


def final_side(path: str | Path) -> MapSide:
    """A run's self-supervised embedding and its map (UMAP, else PCA), as it was at the end of training."""
    run = RunFolder.open(path)
    settings, stored = run.read_settings(), run.read_dataset()
    n = len(stored.paths)
    embedding = run.embeddings(["ssl"], n).get("ssl")
    maps = run.projections(["ssl"], MAP_KINDS, n)
    kind = next((kind for kind in MAP_KINDS if ("ssl", kind) in maps), None)
    if embedding is None or kind is None:
        raise ValueError(f"the run {run.path.name} has no self-supervised map yet (it was stopped before its maps "
                         "were computed)")
    title = f"{settings.config.method} · {run.path.name} ({kind.upper()})"
    return MapSide(run.path, title, settings.data_root, settings.config.resolution, stored.paths, stored.labels, stored.class_names,
                   maps[("ssl", kind)], embedding, "cosine")


def moment_sides(path: str | Path) -> list[MapSide]:
    """Each snapshot of a run's map history (its subset of images, PCA), in training order; [] when it has none."""
    run = RunFolder.open(path)
    settings, stored = run.read_settings(), run.read_dataset()
    history = run.read_map_history(len(stored.paths))
    if history is None:
        return []
    paths = [stored.paths[i] for i in history.indices]
    labels = None if stored.labels is None else stored.labels[history.indices]
    sides = []
    for s in history.snapshots:
        moment = f"{s.seconds:.0f} s (step {s.step:,})"
        sides.append(MapSide(run.path, f"{run.path.name} after {moment}", settings.data_root,
                             settings.config.resolution, paths, labels, stored.class_names, s.coords, s.coords,
                             "euclidean", moment))
    return sides


@dataclass(frozen=True, eq=False)
class Versus:
    """Two maps of the images both sides hold, in ``a``'s order: ``b``'s turned onto ``a``'s, and the agreement."""

    a: MapSide
    b: MapSide
    rows_a: np.ndarray  # each shared image's row in a
    rows_b: np.ndarray  # and in b
    coords_a: np.ndarray
    coords_b: np.ndarray  # aligned to coords_a
    agreement: np.ndarray  # share of the K neighbours kept, per shared image
    moved: np.ndarray  # shared images, lowest agreement first

    @property
    def paths(self) -> list[str]:
        return [self.a.paths[i] for i in self.rows_a]

    @property
    def labels(self) -> np.ndarray | None:
        return None if self.a.labels is None else self.a.labels[self.rows_a]


def versus(a: MapSide, b: MapSide, k: int = K) -> Versus:
    """Line ``b`` up with ``a`` on the images both hold and compare their neighbourhoods."""
    if Path(a.data_root).resolve() != Path(b.data_root).resolve():
        raise ValueError(f"{a.run.name} is of the data folder {a.data_root} and {b.run.name} of {b.data_root}: run "
                         "against run compares two runs of the same images. Pick two runs of one folder.")
    where_b = {p: i for i, p in enumerate(b.paths)}
    rows_a = np.array([i for i, p in enumerate(a.paths) if p in where_b], dtype=np.int64)
    rows_b = np.array([where_b[a.paths[i]] for i in rows_a], dtype=np.int64)
    if len(rows_a) < 3:
        raise ValueError(f"{a.run.name} and {b.run.name} share {len(rows_a)} image(s); aligning their maps needs "
                         "at least 3")
    coords_a = np.asarray(a.coords, dtype=np.float64)[rows_a]
    coords_b = align(np.asarray(b.coords, dtype=np.float64)[rows_b], coords_a)
    agreement = neighbour_agreement(a.features[rows_a], b.features[rows_b], k, a.metric, b.metric)
    return Versus(a, b, rows_a, rows_b, coords_a, coords_b, agreement, moved_most(agreement))


def shared_images(result: Versus, dataset: ImageDataset | None = None, cancel: CancelToken | None = None
                  ) -> Generator[LoadProgress, None, torch.Tensor | None]:
    """The pixels of the images both sides hold (for thumbnails), in their order: from ``dataset`` when it is their
    data folder, else read again from it (yielding the progress); None when it is gone or lacks one of them."""
    root = Path(result.a.data_root)
    if dataset is None or Path(dataset.root).resolve() != root.resolve():
        if not root.is_dir():
            return None
        try:
            dataset = yield from iter_load(root, result.a.resolution, cancel=cancel)
        except DataError:
            return None
    return align_images(dataset, result.paths)
