"""A run folder on disk: everything one experiment produced, written atomically, read back with validation.

Layout (the GUI and the command line write and read the same one):
    config.json            data settings, training settings, augmentation recipe, versions
    dataset.json           image paths (relative to the data root), labels, class names, skipped files
    split.json             held-out evaluation split (indices into dataset.json)
    ssl.safetensors        SSL checkpoint (+ .json sidecar); supervised.safetensors when the folder has labels
    embeddings/<space>.npy projections/<space>_<pca|umap>.npy
    clusters.npy           an unlabeled folder's k-means cluster per image, which colors its maps
    metrics.json           accuracies and training figures; report.png: the maps side by side
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from .atomic import write_atomic, write_bytes_atomic, write_json_atomic

FORMAT = "ssl_studio.run/1"
CLUSTERS = "clusters.npy"


class RunError(Exception):
    """A run folder cannot be written or is not a valid SSL Studio run."""


class RunFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path) -> RunFolder:
        """Make (or reuse) a run folder, failing early with a clear message if it cannot be written."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunError(f"{path} exists and is not a folder")
        try:
            (path / "embeddings").mkdir(parents=True, exist_ok=True)
            (path / "projections").mkdir(exist_ok=True)
            write_bytes_atomic(path / ".write-test", b"")
            (path / ".write-test").unlink()
        except OSError as exc:
            raise RunError(f"cannot write the run folder {path}: {exc.strerror or exc}") from exc
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"{path} is not a folder")
        config = run.read_json("config.json")
        if config.get("format") != FORMAT:
            raise RunError(f"{path} is not an SSL Studio run (config.json has no {FORMAT} format tag)")
        return run

    def checkpoint(self, which: str) -> Path:
        self._inside(f"{which}.safetensors")
        return self.path / f"{which}.safetensors"

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def write_json(self, name: str, obj) -> Path:
        return self._write(name, lambda: write_json_atomic(self.path / name, obj))

    def read_json(self, name: str) -> dict:
        target = self._inside(name)
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} has no {name}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{name} in {self.path} is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise RunError(f"{name} in {self.path} must hold a JSON object")
        return data

    def save_array(self, name: str, array: np.ndarray) -> Path:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return self._write(name, lambda: write_bytes_atomic(self.path / name, buffer.getvalue()))

    def load_array(self, name: str, rows: int | None = None, cols: int | None = None) -> np.ndarray:
        """Load an .npy without pickle and check its shape, so a tampered file is refused, not half-used."""
        array = self._load_npy(name)
        if array.ndim != 2 or array.dtype.kind != "f" or (rows is not None and array.shape[0] != rows) \
                or (cols is not None and array.shape[1] != cols) or not np.isfinite(array).all():
            raise RunError(f"{name} in {self.path} has shape {array.shape} and type {array.dtype}, expected "
                           f"finite floats of shape ({rows if rows is not None else 'N'}, "
                           f"{cols if cols is not None else 'D'})")
        return array

    def load_ids(self, name: str, rows: int, below: int) -> np.ndarray:
        """Load an .npy of one whole number per image, each in [0, below), without pickle (clusters.npy)."""
        array = self._load_npy(name)
        if array.ndim != 1 or array.dtype.kind not in "iu" or len(array) != rows \
                or (rows and not (0 <= array.min() and array.max() < below)):
            raise RunError(f"{name} in {self.path} has shape {array.shape} and type {array.dtype}, expected "
                           f"{rows} whole numbers from 0 to {below - 1}")
        return array.astype(np.int64)

    def _load_npy(self, name: str) -> np.ndarray:
        target = self._inside(name)
        try:
            return np.load(target, allow_pickle=False)
        except FileNotFoundError:
            raise RunError(f"{self.path} has no {name}") from None
        except (OSError, ValueError) as exc:
            raise RunError(f"{name} in {self.path} is not a valid array file ({exc})") from exc

    def embedding_name(self, space: str) -> str:
        return f"embeddings/{space}.npy"

    def projection_name(self, space: str, kind: str) -> str:
        return f"projections/{space}_{kind}.npy"

    def write_with(self, name: str, write) -> Path:
        """Write a file through ``write(tmp_path)`` atomically (used for report.png)."""
        return self._write(name, lambda: write_atomic(self.path / name, write))

    def _inside(self, name: str) -> Path:
        target = (self.path / name).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise RunError(f"{name} points outside the run folder {self.path}")
        return target

    def _write(self, name: str, write) -> Path:
        # A tampered folder may link a subfolder elsewhere: writing through the link would change files outside.
        self._inside(name)
        try:
            return write()
        except OSError as exc:
            raise RunError(f"cannot write to the run folder {self.path}: {exc.strerror or exc}"
                           + (" (disk full)" if getattr(exc, "errno", None) == 28 else "")) from exc


def is_run_folder(path: str | Path) -> bool:
    return Path(path, "config.json").is_file() and os.access(Path(path, "config.json"), os.R_OK)
