"""A saved run opened together with its images, read again from its data folder when that still holds them.

A run folder keeps embeddings and maps but not the images; the app shows thumbnails, so it reads the data folder
again and lines its images up with the run's paths. A folder that has changed since still gives the thumbnails of
the files it has kept, but is not offered as the run's data.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from .cancel import CancelToken
from .curation import CurationError
from .data import DataError, ImageDataset, LoadProgress, iter_load
from .pipeline import LoadedRun, as_trained, open_run


@dataclass
class RunWithImages:
    loaded: LoadedRun
    dataset: ImageDataset | None  # the data folder, when it holds exactly the run's images
    images: torch.Tensor | None  # uint8 (N, 3, H, W) in the order of loaded.paths, when every one was found


def align_images(dataset: ImageDataset, paths: list[str]) -> torch.Tensor | None:
    """The dataset's images in the order of ``paths``; None when any of them is not in the dataset."""
    if dataset.paths == paths:
        return dataset.images  # the mapped cache itself, not a copy of a large folder
    where = {p: i for i, p in enumerate(dataset.paths)}
    found = np.array([where.get(p, -1) for p in paths], dtype=np.int64)
    return dataset.images[torch.from_numpy(found)] if (found >= 0).all() else None


def open_run_with_images(path, cancel: CancelToken | None = None) -> Generator[LoadProgress, None, RunWithImages]:
    """open_run, then its images from its data folder (yielding the loading progress)."""
    loaded = open_run(path)
    dataset = images = None
    if loaded.data_root.is_dir():
        try:
            dataset = yield from iter_load(loaded.data_root, loaded.config.resolution, cancel=cancel)
        except DataError:
            dataset = None
    if dataset is not None:
        try:
            dataset = as_trained(dataset, loaded.run.read_settings())
        except CurationError:  # a marked file is gone: the thumbnails of the others still show
            pass
    if dataset is not None:
        images = align_images(dataset, loaded.paths)
        if dataset.paths != loaded.paths:
            dataset = None
    return RunWithImages(loaded, dataset, images)
