"""Where new images land on a run's maps, which of the run's images they are nearest, and the class the kNN gives.

PCA places them exactly: the run's PCA is refitted on its own embeddings (the same seeded fit that drew the map) and
applied to the new ones. UMAP is not kept (never pickled to disk): a new image goes to the similarity-weighted mean
of the map positions of its nearest run images. Nothing is written to the run: its scores stay what they were.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from .cancel import CancelToken
from .data import LoadProgress, Skipped, iter_load
from .evaluate import knn_predict
from .neighbours import NEIGHBOURS
from .new_images import embed_images
from .pipeline import LoadedRun
from .runs import RunError
from .spaces import SPACES

PLACE_NEIGHBOURS = 15  # run images a new one's UMAP position is averaged from (UMAP's own default neighbourhood)


@dataclass(frozen=True)
class Placement:
    """New images in one space of a run."""

    space: str
    coords: dict[str, np.ndarray]  # map kind ("pca", "umap") -> float32 (M, 2), for each map the run has
    nearest: np.ndarray  # (M, NEIGHBOURS) the run's images closest to each new one, closest first
    predicted: np.ndarray | None  # (M,) class index the kNN gives each (None: the run has no labels)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pca_place(run_x: np.ndarray, new_x: np.ndarray, seed: int) -> np.ndarray:
    """The run's PCA map (project.pca_2d's fit) applied to new rows."""
    out = np.zeros((len(new_x), 2), dtype=np.float32)
    n_components = min(2, len(run_x) - 1, run_x.shape[1])
    if n_components > 0:
        pca = PCA(n_components=n_components, random_state=seed).fit(np.asarray(run_x, dtype=np.float32))
        out[:, :n_components] = pca.transform(np.asarray(new_x, dtype=np.float32))
    return out


def neighbour_place(run_x: np.ndarray, run_coords: np.ndarray, new_x: np.ndarray,
                    k: int = PLACE_NEIGHBOURS) -> np.ndarray:
    """Each new row at the mean of its ``k`` most similar run rows' map positions, weighted by (positive) cosine
    similarity; a row similar to none of them gets their plain mean."""
    sims = unit(new_x) @ unit(run_x).T
    k = min(k, len(run_x))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.clip(np.take_along_axis(sims, top, axis=1), 0, None) + 1e-6
    return ((weights[..., None] * run_coords[top]).sum(1) / weights.sum(1, keepdims=True)).astype(np.float32)


def place(loaded: LoadedRun, space: str, new_x: np.ndarray) -> Placement:
    """New images' embeddings in ``space`` (as new_images.embed_images gives them) placed on the run's maps."""
    if space not in loaded.embeddings:
        raise ValueError(f"the run {loaded.run.path} has no {space} embeddings to place new images among")
    run_x = loaded.embeddings[space]
    new_x = np.asarray(new_x, dtype=np.float32)
    if new_x.ndim != 2 or new_x.shape[1] != run_x.shape[1]:
        raise ValueError(f"new {space} embeddings must have {run_x.shape[1]} columns, not shape {new_x.shape}")
    coords = {}
    for (name, kind), mapped in loaded.projections.items():
        if name == space:
            coords[kind] = pca_place(run_x, new_x, loaded.config.seed) if kind == "pca" \
                else neighbour_place(run_x, mapped, new_x)
    sims = unit(new_x) @ unit(run_x).T
    k = min(NEIGHBOURS, len(run_x))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    nearest = np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1), axis=1)
    predicted = None
    if loaded.labels is not None:
        split = loaded.run.held_out_split(len(loaded.paths))
        voters = split[0] if split is not None else np.arange(len(loaded.paths))  # as the run's kNN score votes
        predicted = knn_predict(run_x[voters], loaded.labels[voters], new_x)
    return Placement(space, coords, nearest, predicted)


@dataclass(frozen=True)
class AddedImages:
    """A folder's images placed on every map of a run that a network (or the pixels) can embed them for."""

    folder: Path
    paths: list[str]  # relative to the folder, the rows of each placement
    skipped: list[Skipped]
    placements: dict[str, Placement]


def place_folder(loaded: LoadedRun, folder: str | Path, device: str = "auto",
                 cancel: CancelToken | None = None) -> Generator[LoadProgress, None, AddedImages]:
    """Embed ``folder`` in each built-in space the run has a map of, and place it there (loading progress first)."""
    spaces = [s for s in SPACES if s in loaded.embeddings and any(name == s for name, _ in loaded.projections)]
    if not spaces:
        raise RunError(f"the run {loaded.run.path} has no maps yet to place images on")
    dataset = yield from iter_load(folder, loaded.config.resolution, cancel=cancel)
    placements = {}
    for space in spaces:
        if cancel is not None:
            cancel.raise_if_cancelled()
        placements[space] = place(loaded, space, embed_images(loaded, dataset.images, space, device))
    return AddedImages(dataset.root, dataset.paths, dataset.skipped, placements)
