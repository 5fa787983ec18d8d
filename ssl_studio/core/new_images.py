"""New images embedded with a finished run, decoded as the run decoded its own folder (resolution, centre crop,
channel order) and passed through the very code that computed the run's spaces (spaces.BUILT_IN): the run's own
folder gives back its embeddings/<space>.npy row for row.

A space a person imported has no model in the run folder, so new images cannot be embedded in it.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import write_atomic
from .cancel import CancelToken
from .config import resolve_device
from .data import LoadProgress, Skipped, iter_load
from .decode import decode_chunk
from .export import save_csv, save_npy
from .pipeline import LoadedRun
from .runs import RunError
from .spaces import BUILT_IN, SpaceInputs, run_spaces


@dataclass(frozen=True)
class Embedded:
    """A folder embedded with a run: one row per usable image."""

    space: str
    folder: Path
    paths: list[str]  # relative to the folder, in the order of the rows
    features: np.ndarray  # float32 (len(paths), D)
    classes: list[str]  # each image's class subfolder ("" in a flat folder)
    skipped: list[Skipped]


def embed_images(loaded: LoadedRun, images: torch.Tensor | np.ndarray, space: str = "ssl",
                 device: str = "auto") -> np.ndarray:
    """float32 (N, D): uint8 images (N, 3, R, R) at the run's resolution, embedded in one of the run's spaces."""
    images = torch.as_tensor(images)
    size = loaded.config.resolution
    if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(f"images must be uint8 of shape (N, 3, {size}, {size}) (the run's resolution, RGB, "
                         f"channels first), not {images.dtype} of shape {tuple(images.shape)}")
    features = _space(loaded, space).compute(SpaceInputs(images, loaded.run, loaded.config, resolve_device(device)))
    if features is None:  # a trained space whose checkpoint is missing
        raise RunError(f"the run {loaded.run.path} has no trained {space} network: "
                       f"{loaded.run.checkpoint(space).name} is missing (was the run stopped before training?)")
    return features


def embed_files(loaded: LoadedRun, files: Sequence[str | Path], space: str = "ssl",
                device: str = "auto") -> np.ndarray:
    """float32 (len(files), D); a file that cannot be decoded is refused, naming it and why."""
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("no image files given")
    sizes = []
    for f in files:
        if not f.is_file():
            raise ValueError(f"{f} is not a file")
        sizes.append(f.stat().st_size)
    images, reasons = decode_chunk(files, sizes, loaded.config.resolution)
    bad = [(f, why) for f, why in zip(files, reasons) if why is not None]
    if bad:
        raise ValueError(f"{bad[0][0]} cannot be used: {bad[0][1]}"
                         + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    return embed_images(loaded, torch.from_numpy(images), space, device)


def embed_folder(loaded: LoadedRun, folder: str | Path, space: str = "ssl", device: str = "auto",
                 cancel: CancelToken | None = None) -> Generator[LoadProgress, None, Embedded]:
    """Every usable image of ``folder`` (as `ssl-studio inspect` lists them), yielding the loading progress."""
    _space(loaded, space)  # an unknown or imported space is refused before a folder is decoded
    dataset = yield from iter_load(folder, loaded.config.resolution, cancel=cancel)
    features = embed_images(loaded, dataset.images, space, device)
    classes = [dataset.class_names[k] for k in dataset.labels.tolist()] if dataset.labeled else [""] * len(dataset)
    return Embedded(space, dataset.root, dataset.paths, features, classes, dataset.skipped)


def write_embedded(embedded: Embedded, out: str | Path) -> tuple[Path, Path]:
    """OUT.npy and, beside it, OUT.csv (path and class of each row: what File > Add embedding space reads)."""
    out = Path(out)
    if out.suffix != ".npy":
        raise ValueError(f"{out} must end in .npy")
    if out.is_dir():
        raise ValueError(f"{out} is a folder")
    rows = out.with_suffix(".csv")
    write_atomic(rows, lambda tmp: save_csv(tmp, embedded.features[:, :0], embedded.paths, embedded.classes))
    try:
        write_atomic(out, lambda tmp: save_npy(tmp, embedded.features))
    except BaseException:
        rows.unlink(missing_ok=True)  # no list of paths without its array
        raise
    return out, rows


def _space(loaded: LoadedRun, space: str):
    built = {s.name: s for s in BUILT_IN}
    if space in built:
        return built[space]
    if space in {s.name for s in run_spaces(loaded.run)}:
        raise ValueError(f"the space '{space}' was imported into the run: its model is not in the run folder, so "
                         "new images cannot be embedded in it")
    raise ValueError(f"unknown space '{space}' (choose from {', '.join(built)})")
