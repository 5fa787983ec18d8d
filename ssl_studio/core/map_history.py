"""The map forming while the network learns: snapshots of a fixed subset's embedding during SSL training.

Every few seconds the train stage embeds the same few hundred images with the backbone as it is then; each
snapshot is mapped to 2-D by PCA and turned (orthogonal Procrustes) to line up with the one before, so that a
slider through them shows points moving rather than the whole map flipping. A kNN score on the subset gives a
small curve beside it. The run folder stores it (core/runs.py: RunFolder.write_map_history, read_map_history).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes

from .embed import embed
from .evaluate import knn_top1

SUBSET = 400  # images: enough for a map; a snapshot (embedding, PCA, kNN) takes about 0.3 s on 2 CPU cores at 32 px
EVERY_S = 4.0


@dataclass(frozen=True)
class MapSnapshot:
    step: int
    seconds: float
    coords: np.ndarray  # (len(subset), 2), float32
    knn: float | None  # kNN top-1 of the subset's held-out images against its training ones


@dataclass(frozen=True)
class MapHistory:
    indices: np.ndarray  # the subset: image numbers in the run's dataset
    snapshots: tuple[MapSnapshot, ...]


def _pca_2d(x: torch.Tensor) -> np.ndarray:
    """The first two principal components (zero columns where the points span fewer), computed by torch, which lets
    go of the GIL meanwhile. Not project.pca_2d (scikit-learn's PCA): its SciPy SVD holds the GIL, and beside
    training on a busy 2-core machine one such SVD of 400 points held it for up to 3.9 s, the window frozen
    throughout. A snapshot's signs need not match anything: the next one is turned onto it."""
    out = np.zeros((len(x), 2), dtype=np.float32)
    k = min(2, len(x) - 1, x.shape[1])
    if k > 0:
        centred = x - x.mean(dim=0)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        out[:, :k] = (centred @ vh[:k].T).numpy()
    return out


def choose_subset(n: int, seed: int, size: int = SUBSET) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, size), replace=False))


class MapRecorder:
    """Takes the snapshots during one training (``due`` then ``take``) and writes them with ``save``."""

    def __init__(self, images: torch.Tensor, labels: np.ndarray | None, split: dict, seed: int,
                 device: torch.device, resumed: MapHistory | None = None, every_s: float = EVERY_S) -> None:
        """``resumed``: the history of the run being resumed, which this one continues."""
        self.indices = resumed.indices if resumed else choose_subset(len(images), seed)
        self.images = images[torch.from_numpy(self.indices)]
        self.device, self.every_s = device, every_s
        self.snapshots: list[MapSnapshot] = list(resumed.snapshots) if resumed else []
        self._last = self.snapshots[-1].seconds if self.snapshots else -every_s
        self._knn = None
        if labels is not None and "train" in split:
            held_out = np.isin(self.indices, split["test"])
            if held_out.any() and (~held_out).any():
                self._knn = (labels[self.indices], ~held_out, held_out)

    def due(self, seconds: float) -> bool:
        return seconds - self._last >= self.every_s

    def take(self, backbone: torch.nn.Module, step: int, seconds: float) -> MapSnapshot:
        self._last = seconds
        x = embed(backbone, self.images, batch_size=len(self.images), device=self.device)
        coords = _pca_2d(torch.from_numpy(x))
        coords /= max(1e-8, float(np.abs(coords).max()))
        if self.snapshots:  # turn and mirror onto the previous map, so the slider shows movement, not flips
            rotation, _ = orthogonal_procrustes(coords, self.snapshots[-1].coords)
            coords = coords @ rotation
        knn = None
        if self._knn is not None:
            y, fit, held = self._knn
            knn = knn_top1(x[fit], y[fit], x[held], y[held])
        snapshot = MapSnapshot(step, seconds, coords.astype(np.float32), knn)
        self.snapshots.append(snapshot)
        return snapshot

    @property
    def history(self) -> MapHistory:
        """The snapshots taken so far (with the resumed run's before them)."""
        return MapHistory(self.indices, tuple(self.snapshots))
