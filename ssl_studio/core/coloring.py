"""What the maps are colored by, and how their points are drawn so that none of them hides the others.

A map can be colored by class, by k-means cluster (an unlabeled folder's only colors: computed once by the
pipeline's color stage, on the SSL space or raw pixels without one, and stored in the run folder as clusters.npy,
so report.png, the app's maps and a reopened run agree), by the evaluation's train / held-out split, by each
space's kNN mistakes (the held-out images that space's kNN, the one its score counts, gets wrong), or by what each
space's audit flags (near-duplicates, outliers, likely wrong labels).

Every map draws its points in one seeded random order, the same in every map, never class after class (the class
drawn last would paint over the others wherever they overlap), and a point is drawn more transparent the more
points share its spot (``crowding``), so that a region where classes mix shows all their colors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .cancel import CancelToken
from .evaluate import kmeans_labels, knn_predict

MAX_CLUSTERS = 8
# What an audit flags (audit.json's lists), as the maps and the Audit view name them.
AUDIT_KINDS = {"duplicates": "Near-duplicates", "outliers": "Outliers", "mislabeled": "Likely wrong labels"}

# matplotlib's tab10 (saturated enough for small dots on white, familiar from papers), then the
# dark and middle tones of tab20b, whose hues stay apart from tab10's; beyond 20 colors repeat.
# report.png and the app take their colors from here, so a class has the same color everywhere.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b", "#ce6dbd",
]  # fmt: skip

# A point's opacity, alone (first) to in the most crowded spot (last); crowding() picks one per point.
OPACITY = (1.0, 0.7, 0.5, 0.35, 0.25)
_CROWD_STEPS = (2, 5, 12, 30)  # points sharing a spot, up to which each opacity is used
_CROWD_CELLS = 120  # spots across the map's longer side: about a point's width in a map 600 pixels wide


def cluster_ids(spaces: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """k-means cluster ids (int64, one per image) on the SSL space, or on raw pixels when there is none."""
    x = spaces.get("ssl", spaces.get("pixels"))
    if x is None:
        raise ValueError("k-means colors need the SSL or the raw-pixel space")
    return kmeans_labels(x, n_clusters=min(MAX_CLUSTERS, len(x)), seed=seed)


@dataclass(frozen=True, eq=False)
class Coloring:
    ids: np.ndarray  # int64, the group of each image
    names: list[str]  # the name of each group
    colors: tuple[str, ...] = ()  # each group's color ("#rrggbb"); none given: PALETTE's
    raised: tuple[int, ...] = ()  # groups drawn over all the others (the kNN's mistakes)

    @classmethod
    def by_class(cls, labels, class_names: list[str]) -> Coloring:
        return cls(np.asarray(labels, dtype=np.int64), list(class_names))

    @classmethod
    def by_cluster(cls, ids) -> Coloring:
        ids = np.asarray(ids, dtype=np.int64)
        return cls(ids, [f"cluster {k + 1}" for k in range(int(ids.max()) + 1 if len(ids) else 0)])

    @classmethod
    def by_split(cls, n: int, test_idx) -> Coloring:
        """Which images the evaluation fits on (train) and which it scores (held out)."""
        ids = np.zeros(n, dtype=np.int64)
        ids[np.asarray(test_idx, dtype=np.int64)] = 1
        return cls(ids, ["train", "held out"], ("#9fb4cc", "#ff7f0e"))

    @classmethod
    def by_knn_mistakes(cls, x, labels, train_idx, test_idx) -> Coloring:
        """The held-out images this space's kNN (cosine, k=20, as its score) gets right and wrong, over the
        train images it votes with; the wrong ones are drawn on top."""
        x, labels = np.asarray(x, dtype=np.float32), np.asarray(labels).ravel()
        train_idx, test_idx = np.asarray(train_idx, dtype=np.int64), np.asarray(test_idx, dtype=np.int64)
        predicted = knn_predict(x[train_idx], labels[train_idx], x[test_idx])
        ids = np.zeros(len(x), dtype=np.int64)
        ids[test_idx] = np.where(predicted == labels[test_idx], 1, 2)
        return cls.of_mistakes(ids)

    @classmethod
    def of_mistakes(cls, ids) -> Coloring:
        """The groups of by_knn_mistakes (0 train, 1 held out and right, 2 held out and wrong) for these ids."""
        return cls(np.asarray(ids, dtype=np.int64), ["train", "held out, kNN right", "held out, kNN wrong"],
                   ("#d3d7de", "#6f9fd0", "#d62728"), raised=(2,))

    @classmethod
    def by_audit(cls, found: dict, paths: list[str], kind: str) -> Coloring:
        """The images one space's audit (a space of audit.json) flags as ``kind`` (a key of AUDIT_KINDS), drawn on
        top; a duplicate pair across the train / held-out split (a leak) in a colour of its own."""
        index = {p: i for i, p in enumerate(paths)}
        ids = np.zeros(len(paths), dtype=np.int64)
        if kind == "duplicates":
            ids[[index[p] for pair in found.get("duplicates", ()) for p in pair]] = 1
            ids[[index[p] for pair in found.get("leaks", ()) for p in pair]] = 2
            return cls(ids, ["not flagged", "near-duplicate", "near-duplicate across the split"],
                       ("#d3d7de", "#9467bd", "#d62728"), raised=(1, 2))
        ids[[index[p] for p in found.get(kind, ())]] = 1
        return cls(ids, ["not flagged", AUDIT_KINDS[kind].lower()], ("#d3d7de", "#d62728"), raised=(1,))

    def color(self, k: int) -> str:
        return self.colors[k] if self.colors else PALETTE[k % len(PALETTE)]

    def name(self, index: int) -> str:
        return self.names[int(self.ids[index])]

    def counts(self, indices=None) -> np.ndarray:
        """Images per group, among ``indices`` (all images when None)."""
        ids = self.ids if indices is None else self.ids[np.asarray(indices, dtype=np.int64)]
        return np.bincount(ids, minlength=len(self.names))

    def most_common(self, indices, n: int | None = None) -> list[tuple[int, int]]:
        """The groups ``indices`` belong to (the ``n`` largest; None: all), as (group, count), largest first."""
        counts = self.counts(indices)
        return [(int(k), int(counts[k])) for k in np.argsort(-counts, kind="stable")[:n] if counts[k]]

    def draw_order(self, seed: int = 0) -> np.ndarray:
        """draw_order of these images, the raised groups' points last."""
        return draw_order(len(self.ids), seed, np.isin(self.ids, self.raised) if self.raised else None)


def knn_mistakes(embeddings: dict[str, np.ndarray], labels, train_idx, test_idx,
                 cancel: CancelToken | None = None) -> Iterator[tuple[str, Coloring]]:
    """Each space's Coloring.by_knn_mistakes, as (space, coloring), one space at a time (a large folder's
    held-out rows against its train rows take seconds per space)."""
    for space, x in embeddings.items():
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield space, Coloring.by_knn_mistakes(x, labels, train_idx, test_idx)


def draw_order(n: int, seed: int = 0, raised: np.ndarray | None = None) -> np.ndarray:
    """The order to draw n points in: one seeded permutation, so that no class is always painted over the others
    and every map of the same images draws them alike; points where ``raised`` holds come last, in that order."""
    order = np.random.default_rng(seed).permutation(n)
    if raised is not None:
        on_top = np.asarray(raised, dtype=bool)[order]
        order = np.concatenate([order[~on_top], order[on_top]])
    return order


def crowding(coords: np.ndarray) -> np.ndarray:
    """Per point, an index into OPACITY: how many points share its spot of the map (a cell of a grid
    _CROWD_CELLS wide over the points' extent), so that crowded points are drawn see-through."""
    coords = np.asarray(coords, dtype=np.float64)
    levels = np.zeros(len(coords), dtype=np.int64)
    finite = np.all(np.isfinite(coords), axis=1)
    if not finite.any():
        return levels
    points = coords[finite]
    lo = points.min(axis=0)
    span = float((points.max(axis=0) - lo).max()) or 1.0
    cells = np.minimum((points - lo) / span * _CROWD_CELLS, _CROWD_CELLS - 1).astype(np.int64)
    key = cells[:, 0] * _CROWD_CELLS + cells[:, 1]
    counts = np.bincount(key, minlength=_CROWD_CELLS * _CROWD_CELLS)[key]
    levels[finite] = np.searchsorted(_CROWD_STEPS, counts)
    return levels
