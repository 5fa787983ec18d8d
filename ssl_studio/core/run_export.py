"""A run folder exported for the tools people already use: TensorBoard's Embedding Projector, FiftyOne, plain
CSV and NPY files, its network as ONNX with a model card (model_export), or a report anyone opens (html_report). ``ssl-studio export`` and the app's
File ▸ Export both drain ``export_run``.

Every space the run has embedded is exported (the built-in ones and any a person added), with each image's path,
its class (or, unlabeled, its k-means cluster) and its part of the evaluation split.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .cancel import CancelToken
from .coloring import Coloring
from .data import LoadProgress
from .export import write_embeddings
from .fiftyone_export import write_fiftyone
from .html_report import write_html_report
from .model_export import export_model
from .pipeline import LoadedRun, open_run
from .projector_export import write_projector
from .reopen import open_run_with_images
from .runs import RunError


class ExportFormat(NamedTuple):
    title: str
    opens: str  # how to open the export, OUT standing for its folder (the CLI's help, the app's message)


FORMATS = {
    "projector": ExportFormat("TensorBoard Projector", "tensorboard --logdir OUT, then its Projector tab"),
    "fiftyone": ExportFormat("FiftyOne", "python OUT/load_in_fiftyone.py (after pip install fiftyone)"),
    "csv": ExportFormat("CSV and NPY", "OUT/embedding_<space>.csv and .npy, one pair per space"),
    "onnx": ExportFormat("Model (ONNX)", "onnxruntime.InferenceSession('OUT/model.onnx'); OUT/MODEL_CARD.md says what "
                                       "it is and OUT/preprocessing.json how to feed it"),
    "html": ExportFormat("Report (HTML)", "OUT/report.html in any web browser (it needs no network)"),
}


@dataclass(frozen=True)
class ExportProgress:
    done: int
    total: int
    text: str


def export_run(run_dir: str | Path, fmt: str, out: str | Path, *, images: torch.Tensor | None = None,
               cancel: CancelToken | None = None) -> Generator[ExportProgress | LoadProgress, None, Path]:
    """Export the run in ``run_dir`` into the folder ``out`` as ``fmt`` (a key of FORMATS), yielding progress;
    returns ``out``. ``images`` (uint8, in the run's order) draw the projector's sprite sheet; without them they
    are read again from the run's data folder, and where it is gone the projector shows dots."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")
    cancel = cancel or CancelToken()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if fmt == "onnx":  # the network alone: no embeddings or maps needed
        yield ExportProgress(0, 1, "exporting the network")
        export_model(run_dir, out)
        yield ExportProgress(1, 1, "network exported")
        return out
    if fmt in ("projector", "html") and images is None:
        with_images = yield from open_run_with_images(run_dir, cancel)
        loaded, images = with_images.loaded, with_images.images
    else:
        loaded = open_run(run_dir)
    if fmt == "html":  # whatever the run has: the report says what is missing
        yield ExportProgress(0, 1, "writing the report")
        write_html_report(loaded, out, images)
        yield ExportProgress(1, 1, "report written")
        return out
    if not loaded.embeddings:
        raise RunError(f"the run {run_dir} has no embeddings yet: it was stopped before the comparison. Open it in "
                       "the app and let the maps finish, then export")
    embeddings = loaded.embeddings
    if fmt == "csv":
        for i, space in enumerate(write_embeddings(out, embeddings, loaded.paths, _groups(loaded), cancel=cancel)):
            yield ExportProgress(i + 1, len(embeddings), f"{space} written")
    elif fmt == "projector":
        for i, space in enumerate(write_projector(out, embeddings, loaded.paths, _groups(loaded), _splits(loaded),
                                                  images, cancel=cancel)):
            yield ExportProgress(i + 1, len(embeddings), f"{space} written")
    else:
        points = {space: _points(loaded, space) for space in embeddings}
        mapped = {space: x for space, x in embeddings.items() if points[space] is not None}
        if not mapped:
            raise RunError(f"the run {run_dir} has no maps yet: open it in the app and let them finish, then export")
        for copied in write_fiftyone(out, loaded.run.path.name, loaded.data_root, loaded.paths,
                                     loaded.labels is not None, mapped, {s: points[s] for s in mapped},
                                     cancel=cancel):
            yield ExportProgress(copied, len(loaded.paths), f"{copied:,} of {len(loaded.paths):,} images copied")
    return out


def _groups(loaded: LoadedRun) -> list[str]:
    """Each image's class, or its k-means cluster in an unlabeled run ("" when it has neither)."""
    if loaded.labels is not None:
        coloring = Coloring.by_class(loaded.labels, loaded.class_names)
    elif loaded.clusters is not None:
        coloring = Coloring.by_cluster(loaded.clusters)
    else:
        return [""] * len(loaded.paths)
    return [coloring.name(i) for i in range(len(loaded.paths))]


def _splits(loaded: LoadedRun) -> list[str]:
    """"train" or "test" (held out) per image; every image trains in a run without a split (unlabeled)."""
    split = loaded.run.read_split(len(loaded.paths))
    names = np.full(len(loaded.paths), "train", dtype=object)
    names[np.asarray(split.get("test", []), dtype=np.int64)] = "test"
    return names.tolist()


def _points(loaded: LoadedRun, space: str) -> np.ndarray | None:
    """The space's map: UMAP when the run has it, else PCA."""
    for kind in ("umap", "pca"):
        if (space, kind) in loaded.projections:
            return loaded.projections[(space, kind)]
    return None
