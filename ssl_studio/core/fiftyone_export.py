"""A run as a folder FiftyOne loads: the images, each space's embeddings and 2-D points, and a script.

The images are copied as a class-folder tree (FiftyOne's ImageClassificationDirectoryTree; a flat folder for an
unlabeled run); embeddings/<space>.npy and points/<space>.npy hold one row per image in the order of paths.txt;
load_in_fiftyone.py builds the dataset and adds one visualization (brain key) per space with
``fiftyone.brain.compute_visualization(..., method="manual")``, matching rows to samples by file path.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .atomic import write_atomic, write_bytes_atomic
from .cancel import CancelToken

SCRIPT = '''"""Load this SSL Studio export into FiftyOne: python load_in_fiftyone.py (needs: pip install fiftyone)."""
import json
from pathlib import Path

import fiftyone as fo
import fiftyone.brain as fob
import numpy as np

here = Path(__file__).resolve().parent
info = json.loads((here / "export.json").read_text())
kind = fo.types.ImageClassificationDirectoryTree if info["labeled"] else fo.types.ImageDirectory
dataset = fo.Dataset.from_dir(dataset_dir=str(here / "images"), dataset_type=kind, name=info["name"],
                              overwrite=True)
row = {str((here / "images" / p).resolve()): i for i, p in enumerate((here / "paths.txt").read_text(
    encoding="utf-8", errors="surrogateescape").splitlines())}
order = [row[str(Path(path).resolve())] for path in dataset.values("filepath")]
for space in info["spaces"]:
    embeddings = np.load(here / "embeddings" / f"{space}.npy", allow_pickle=False)[order]
    points = np.load(here / "points" / f"{space}.npy", allow_pickle=False)[order]
    fob.compute_visualization(dataset, embeddings=embeddings, points=points, method="manual", brain_key=space)
session = fo.launch_app(dataset)
session.wait()
'''


def _npy(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(x), allow_pickle=False)
    return buffer.getvalue()


def _copy_image(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # no second copy of the user's images where the file system allows it
    except OSError:
        shutil.copy2(source, target)


def write_fiftyone(folder: str | Path, name: str, data_root: str | Path, paths: list[str], labeled: bool,
                   embeddings: dict[str, np.ndarray], points: dict[str, np.ndarray], *,
                   cancel: CancelToken | None = None) -> Iterator[int]:
    """Write the export, yielding the number of images copied so far; missing images are an error naming one."""
    cancel = cancel or CancelToken()
    folder, data_root = Path(folder), Path(data_root)
    images = (folder / "images").resolve()
    outside = [p for p in paths if not (images / p).resolve().is_relative_to(images)]
    if outside:  # an edited dataset.json must not make the export write anywhere else
        raise ValueError(f"the run lists image paths that leave the data folder, for example {outside[0]}")
    missing = [p for p in paths if not (data_root / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the run's images are no longer in {data_root}, for example "
                                f"{missing[0]}")
    for space in embeddings:
        write_bytes_atomic(folder / "embeddings" / f"{space}.npy", _npy(embeddings[space]))
        write_bytes_atomic(folder / "points" / f"{space}.npy", _npy(points[space]))
    for i, path in enumerate(paths):
        if i % 256 == 0:
            cancel.raise_if_cancelled()
            yield i
        target = folder / "images" / path
        if not target.exists():
            _copy_image(data_root / path, target)
    write_bytes_atomic(folder / "paths.txt", ("\n".join(paths) + "\n").encode("utf-8", "surrogateescape"))
    write_bytes_atomic(folder / "export.json", json.dumps(
        {"name": name, "labeled": labeled, "spaces": list(embeddings)}, indent=2).encode())
    write_atomic(folder / "load_in_fiftyone.py", lambda tmp: tmp.write_text(SCRIPT, encoding="utf-8"))
    yield len(paths)
