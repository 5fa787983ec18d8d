"""A finished run from Python (a notebook, a script): its figures, and new images embedded with its networks.

    import ssl_studio
    run = ssl_studio.open_run("runs/shapes")
    run.metrics["embeddings"]["ssl"]["knn_top1"]
    x = run.embed(["a.png", "b.png"], space="ssl")      # float32 (2, D)
    folder = run.embed_folder("new_photos")             # .paths, .features, .skipped

`ssl-studio embed` goes through the same calls.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .core.cancel import drain
from .core.new_images import Embedded, embed_files, embed_folder, embed_images
from .core.pipeline import LoadedRun
from .core.pipeline import open_run as _open


class Run:
    """A run folder, read and checked once (``pipeline.open_run``)."""

    def __init__(self, loaded: LoadedRun) -> None:
        self._loaded = loaded

    @property
    def path(self) -> Path:
        return self._loaded.run.path

    @property
    def loaded(self) -> LoadedRun:
        """Everything the run folder holds, as the app reads it."""
        return self._loaded

    @property
    def paths(self) -> list[str]:
        """The run's own images, relative to its data folder, in the order of every per-image array."""
        return list(self._loaded.paths)

    @property
    def resolution(self) -> int:
        return self._loaded.config.resolution

    @property
    def metrics(self) -> dict:
        """metrics.json: kNN and linear-probe accuracy per space, the training figures ({} before the maps)."""
        return copy.deepcopy(self._loaded.metrics)

    @property
    def transfer(self) -> dict:
        """transfer.json: accuracy against the number of labels ({} when the run has no transfer stage)."""
        return copy.deepcopy(self._loaded.transfer)

    def embeddings(self, space: str = "ssl") -> np.ndarray:
        """The run's own embeddings/<space>.npy."""
        if space not in self._loaded.embeddings:
            raise KeyError(f"the run {self.path} has no {space} embeddings (it has: "
                           f"{', '.join(self._loaded.embeddings) or 'none yet'})")
        return self._loaded.embeddings[space]

    def embed(self, images_or_paths: Sequence[str | os.PathLike] | np.ndarray | torch.Tensor,
              space: str = "ssl", device: str = "auto") -> np.ndarray:
        """float32 (N, D), one row per image: image files (decoded as the run decoded its folder), or uint8
        images (N, 3, R, R) at the run's resolution."""
        if isinstance(images_or_paths, (np.ndarray, torch.Tensor)):
            return embed_images(self._loaded, images_or_paths, space, device)
        if isinstance(images_or_paths, (str, os.PathLike)):
            images_or_paths = [images_or_paths]
        return embed_files(self._loaded, list(images_or_paths), space, device)

    def embed_folder(self, folder: str | os.PathLike, space: str = "ssl", device: str = "auto") -> Embedded:
        """Every usable image of a folder (.paths, .features, .classes, and .skipped with reasons)."""
        return drain(embed_folder(self._loaded, folder, space, device))

    def __repr__(self) -> str:
        return f"<ssl_studio Run {str(self.path)!r}: {len(self._loaded.paths)} images, " \
               f"{self._loaded.config.method} on {self._loaded.config.backbone}>"


def open_run(path: str | os.PathLike) -> Run:
    """A run folder made by `ssl-studio run` or the app; a folder that is not one is refused with the reason."""
    return Run(_open(path))
