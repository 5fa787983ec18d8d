"""Nearest neighbours of one image in an embedding space, by cosine similarity.

numpy, not torch: the app asks on its GUI thread at every click, and a torch op there would wait for torch's
threads while a worker keeps them busy.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

NEIGHBOURS = 8


class CosineNeighbours:
    """One space's embeddings, l2-normalized once, answering "which images are closest to this one"."""

    def __init__(self, embedding: np.ndarray) -> None:
        x = np.asarray(embedding, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"embeddings must be (images, dimensions), got shape {x.shape}")
        self.unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def __len__(self) -> int:
        return len(self.unit)

    def of(self, index: int, k: int = NEIGHBOURS) -> np.ndarray:
        """The ``k`` images most similar to image ``index`` (itself excluded), closest first."""
        if not 0 <= index < len(self.unit):
            raise IndexError(f"image {index} is not among the {len(self.unit)} images")
        sims = self.unit @ self.unit[index]
        sims[index] = -np.inf
        k = min(k, len(sims) - 1)
        top = np.argpartition(-sims, k - 1)[:k] if k > 0 else np.zeros(0, dtype=np.int64)
        return top[np.argsort(-sims[top])]


class MapNeighbours:
    """The same question on a 2-D map (a moment of training keeps its map, not its embedding): by distance."""

    def __init__(self, coords: np.ndarray) -> None:
        self.tree = cKDTree(np.asarray(coords, dtype=np.float64))

    def __len__(self) -> int:
        return self.tree.n

    def of(self, index: int, k: int = NEIGHBOURS) -> np.ndarray:
        if not 0 <= index < self.tree.n:
            raise IndexError(f"image {index} is not among the {self.tree.n} images")
        k = min(k, self.tree.n - 1)
        _, near = self.tree.query(self.tree.data[index], k=k + 1)
        near = np.atleast_1d(near)
        return near[near != index][:k]


def same_label(labels: np.ndarray, index: int, near: np.ndarray) -> int:
    """How many of ``near`` share image ``index``'s label."""
    return int((labels[near] == labels[index]).sum())
