"""What the maps are colored by: each image's class, or, in an unlabeled folder, its k-means cluster.

The clusters are computed once, by the pipeline's color stage (k-means on the SSL space, raw pixels without one),
and stored in the run folder (clusters.npy), so report.png, the app's maps and a reopened run show the same colors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import kmeans_labels

MAX_CLUSTERS = 8


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

    @classmethod
    def by_class(cls, labels, class_names: list[str]) -> Coloring:
        return cls(np.asarray(labels, dtype=np.int64), list(class_names))

    @classmethod
    def by_cluster(cls, ids) -> Coloring:
        ids = np.asarray(ids, dtype=np.int64)
        return cls(ids, [f"cluster {k + 1}" for k in range(int(ids.max()) + 1 if len(ids) else 0)])

    def name(self, index: int) -> str:
        return self.names[int(self.ids[index])]

    def counts(self, indices=None) -> np.ndarray:
        """Images per group, among ``indices`` (all images when None)."""
        ids = self.ids if indices is None else self.ids[np.asarray(indices, dtype=np.int64)]
        return np.bincount(ids, minlength=len(self.names))

    def most_common(self, indices, n: int = 4) -> list[tuple[str, int]]:
        """The ``n`` groups most of ``indices`` belong to, as (name, count), largest first."""
        counts = self.counts(indices)
        return [(self.names[k], int(counts[k])) for k in np.argsort(-counts)[:n] if counts[k]]
