"""The run folder: everything one experiment produced, and the one module that knows its files.

``FILES`` lists every file a run folder can hold, by name (a pattern for the per-space and per-model ones) and what
it holds; the GUI and the command line write and read the same folder through ``RunFolder``'s typed readers and
writers, each written atomically and each read back checked (a run folder is untrusted input: a tampered file is
refused with a ``RunError`` naming it). No other module spells a file name of the folder
(tests/core/test_runs.py reads every string of the package). ``read_summary`` reads only the small files (settings and
metrics), no arrays, for a table of many runs; ``holds_run_files`` finds the folders to list.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_atomic, write_bytes_atomic, write_json_atomic
from .augment import Recipe
from .checkpoint import CheckpointError, load_checkpoint
from .config import TrainConfig
from .curation import Curation, CurationError
from .errors import UserError
from .label_selection import STRATEGIES
from .map_history import MapHistory, MapSnapshot
from .transfer import PROBES, STARTS

FORMAT = "ssl_studio.run/1"

CONFIG = "config.json"
DATASET = "dataset.json"
SPLIT = "split.json"
METRICS = "metrics.json"
TRANSFER = "transfer.json"
AUDIT = "audit.json"
NOTE = "note.txt"
CURATION = "curation.json"
IMPORTED = "spaces.json"
CLUSTERS = "clusters.npy"
MAP_HISTORY = "map_history.json"
MAP_HISTORY_COORDS = "map_history.npy"
REPORT = "report.png"
EMBEDDING = "embeddings/{space}.npy"
PROJECTION = "projections/{space}_{kind}.npy"
IMPORTED_EMBEDDING = "imported/{space}.npy"
CHECKPOINT = "{which}.safetensors"
FINETUNE = "finetune_{start}_{percent:g}pct"  # a fine-tuning run's checkpoint name (``which`` in CHECKPOINT)

FILES: dict[str, str] = {
    CONFIG: "the run's format tag and version, data folder and resolution, training settings, augmentation recipe, "
            "and the settings chosen from the folder with their reasons",
    DATASET: "image paths (relative to the data folder), labels, class names, skipped files and why",
    SPLIT: "the held-out evaluation split (image numbers), or the error saying why there is none",
    METRICS: "per space kNN and linear-probe accuracy; images, classes, skipped; each model's training figures",
    TRANSFER: "accuracy against the number of labels (probe curves per space, fine-tuning curves), or the error",
    AUDIT: "per space the near-duplicate pairs (and those across the split), outliers, likely wrong labels and the "
           "labels suggested, by image path, most suspicious first; or why there is no label audit",
    CURATION: "the marks put on the run's images, oldest first: exclude, or relabel as a class, each naming image "
              "paths",
    IMPORTED: "the spaces a person imported: name and title of each",
    NOTE: "a person's note on the run, plain UTF-8 text (the Runs page edits it)",
    CLUSTERS: "an unlabeled folder's k-means cluster per image, which colors its maps",
    MAP_HISTORY: "the map forming during SSL training: the subset's image numbers, each snapshot's step and kNN",
    MAP_HISTORY_COORDS: "the snapshots' 2-D coordinates, one block of the subset's rows per snapshot",
    REPORT: "the maps side by side, and the transfer curves under them once measured",
    EMBEDDING: "a space's embedding, one row per image",
    PROJECTION: "a space's map (kind: pca or umap), one 2-D point per image",
    IMPORTED_EMBEDDING: "an imported space's embedding, in the run's image order",
    CHECKPOINT: "a model's weights (ssl, supervised, fine-tuning runs), with its training metadata (+ .json sidecar)",
}

_SPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


class RunError(UserError):
    """A run folder cannot be written or is not a valid SSL Studio run."""


@dataclass(frozen=True)
class Settings:
    """config.json: what the run was made with."""

    config: TrainConfig
    recipe: Recipe
    data_root: Path
    curation: dict | None = None  # what a curated run trained on: {"file": the curation file, "marks": [...]}


@dataclass(frozen=True)
class DatasetIndex:
    """dataset.json: the run's images, in the order of every array's rows."""

    paths: list[str]
    labels: np.ndarray | None
    class_names: list[str]
    skipped: list[dict]


@dataclass(frozen=True)
class RunSummary:
    """What a table of runs shows: the settings and the metrics, read without any array."""

    path: Path
    settings: Settings
    metrics: dict
    made: float  # when the settings were written (seconds since the epoch)


def finetune_name(start: str, fraction: float) -> str:
    """finetune_ssl_1pct, finetune_scratch_10pct, ...: a fine-tuning run's checkpoint name."""
    return FINETUNE.format(start=start, percent=fraction * 100)


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
            for sub in (EMBEDDING, PROJECTION):
                (path / sub).parent.mkdir(parents=True, exist_ok=True)
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
        config = run.read_json(CONFIG)
        if config.get("format") != FORMAT:
            raise RunError(f"{path} is not an SSL Studio run ({CONFIG} has no {FORMAT} format tag)")
        return run

    # --- settings and images ------------------------------------------------------------------------------------
    def write_settings(self, data_root: Path, resolution: int, config: TrainConfig, recipe: Recipe,
                       version: str, defaults: dict | None = None, curation: Curation | None = None) -> Path:
        """config.json; ``defaults``: what was chosen from the folder and why (FolderDefaults.to_dict), when it
        was; ``curation`` (its file and its marks) when the run trains on a curated set."""
        data = {"root": str(data_root), "resolution": resolution}
        if curation is not None:
            data["curation"] = {"file": curation.source or "", **curation.to_json()}
        return self.write_json(CONFIG, {"format": FORMAT, "version": version, "data": data,
                                        "train": config.to_dict(), "recipe": recipe.to_dict(),
                                        **({"defaults": defaults} if defaults is not None else {})})

    def read_settings(self) -> Settings:
        stored = self.read_json(CONFIG)
        try:
            curation = stored["data"].get("curation")
            if curation is not None:
                Curation.from_json(curation)  # the marks, checked
                if not isinstance(curation.get("file"), str):
                    raise ValueError("its curation must name the file the marks came from")
            return Settings(TrainConfig.from_dict(stored["train"], saved_run=True), Recipe.from_dict(stored["recipe"]),
                            Path(stored["data"]["root"]), curation)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{CONFIG} in {self.path} is not valid: {exc}") from exc

    def write_dataset(self, paths: list[str], labels: np.ndarray | None, class_names: list[str],
                      skipped: Iterable[dict]) -> Path:
        return self.write_json(DATASET, {"paths": paths, "labels": labels.tolist() if labels is not None else None,
                                         "class_names": class_names, "skipped": list(skipped)})

    def read_dataset(self) -> DatasetIndex:
        """dataset.json, checked: paths, labels and class names that disagree would misplace every row."""
        stored = self.read_json(DATASET)
        paths, labels, class_names = stored.get("paths"), stored.get("labels"), stored.get("class_names")
        skipped = stored.get("skipped", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or \
                not isinstance(class_names, list) or not isinstance(skipped, list) or \
                (labels is not None and (not isinstance(labels, list) or len(labels) != len(paths) or not all(
                    _whole(v) and 0 <= v < len(class_names) for v in labels))):
            raise RunError(f"{DATASET} in {self.path} is not valid (paths, labels and class names disagree)")
        return DatasetIndex(paths, np.asarray(labels) if labels is not None else None, class_names, skipped)

    def write_split(self, split: dict) -> Path:
        return self.write_json(SPLIT, split)

    def read_split(self, n: int) -> dict:
        """split.json, checked: indices that are not whole numbers in range would crash training or scoring."""
        split = self.read_json(SPLIT)
        if "train" in split and not all(isinstance(part, list) and all(_whole(i) and 0 <= i < n for i in part)
                                        for part in (split["train"], split.get("test"))):
            raise RunError(f"{SPLIT} in {self.path} is not valid (train and test must list image numbers "
                           f"from 0 to {n - 1})")
        return split

    def held_out_split(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The evaluation split as (train, held-out) image numbers, or None when the run has none (an unlabeled
        folder, a single class): what the Compare page colors by split and by kNN mistakes."""
        split = self.read_split(n) if self.exists(SPLIT) else {}
        if "train" not in split:
            return None
        return np.asarray(split["train"], dtype=np.int64), np.asarray(split["test"], dtype=np.int64)

    # --- results ------------------------------------------------------------------------------------------------
    def write_metrics(self, metrics: dict) -> Path:
        return self.write_json(METRICS, metrics)

    def read_metrics(self) -> dict:
        """metrics.json, or {} before the comparison wrote it."""
        metrics = self.read_json(METRICS) if self.exists(METRICS) else {}
        if not isinstance(metrics.get("embeddings", {}), dict):
            raise RunError(f"{METRICS} in {self.path} is not valid (its embeddings must map each space to scores)")
        return metrics

    def write_transfer(self, transfer: dict) -> Path:
        return self.write_json(TRANSFER, transfer)

    def read_transfer(self, spaces: Collection[str]) -> dict:
        """transfer.json checked against the run's ``spaces``, or {} before the transfer stage wrote it."""
        if not self.exists(TRANSFER):
            return {}
        try:
            return check_transfer(self.read_json(TRANSFER), spaces)
        except ValueError as exc:
            raise RunError(f"{TRANSFER} in {self.path} is not valid: {exc}") from exc

    def write_audit(self, audit: dict) -> Path:
        return self.write_json(AUDIT, audit)

    def read_audit(self, paths: Collection[str]) -> dict | None:
        """audit.json checked against the run's image ``paths``, or None before an audit wrote it."""
        if not self.exists(AUDIT):
            return None
        try:
            return check_audit(self.read_json(AUDIT), set(paths))
        except ValueError as exc:
            raise RunError(f"{AUDIT} in {self.path} is not valid: {exc}") from exc

    def write_note(self, text: str) -> Path:
        return self._write(NOTE, lambda: write_bytes_atomic(self.path / NOTE, text.encode("utf-8")))

    def read_note(self) -> str:
        """The run's note, or "" when it has none."""
        if not self.exists(NOTE):
            return ""
        try:
            return self._inside(NOTE).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunError(f"{NOTE} in {self.path} cannot be read as text ({exc})") from exc

    def write_curation(self, curation: Curation) -> Path:
        return self.write_json(CURATION, curation.to_json())

    def read_curation(self) -> Curation:
        """curation.json, checked; no marks before any was made."""
        if not self.exists(CURATION):
            return Curation()
        try:
            return Curation(Curation.from_json(self.read_json(CURATION)).marks, self.path / CURATION)
        except CurationError as exc:
            raise RunError(f"{CURATION} in {self.path} is not valid: {exc}") from exc

    @property
    def curation_path(self) -> Path:
        return self.path / CURATION

    def write_report(self, write) -> Path:
        """report.png, drawn by ``write(tmp_path)`` and put in place atomically."""
        return self.write_with(REPORT, write)

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def transfer_path(self) -> Path:
        return self.path / TRANSFER

    # --- arrays -------------------------------------------------------------------------------------------------
    def embedding_name(self, space: str) -> str:
        return EMBEDDING.format(space=space)

    def projection_name(self, space: str, kind: str) -> str:
        return PROJECTION.format(space=space, kind=kind)

    def save_embedding(self, space: str, x: np.ndarray) -> Path:
        return self.save_array(self.embedding_name(space), x)

    def embeddings(self, spaces: Iterable[str], n: int) -> dict[str, np.ndarray]:
        """The stored embeddings of those ``spaces`` that have one, each checked to have ``n`` rows."""
        return {space: self.load_array(self.embedding_name(space), rows=n) for space in spaces
                if self.exists(self.embedding_name(space))}

    def save_projection(self, space: str, kind: str, coords: np.ndarray) -> Path:
        return self.save_array(self.projection_name(space, kind), coords)

    def projections(self, spaces: Iterable[str], kinds: Iterable[str], n: int) -> dict[tuple[str, str], np.ndarray]:
        """The stored maps, by (space, kind), each checked to be ``n`` points in 2-D."""
        return {(space, kind): self.load_array(self.projection_name(space, kind), rows=n, cols=2)
                for space in spaces for kind in kinds if self.exists(self.projection_name(space, kind))}

    def save_clusters(self, ids: np.ndarray) -> Path:
        return self.save_array(CLUSTERS, ids)

    def read_clusters(self, n: int, below: int) -> np.ndarray | None:
        """An unlabeled run's k-means cluster of each image, or None when it has none stored."""
        return self.load_ids(CLUSTERS, rows=n, below=below) if self.exists(CLUSTERS) else None

    # --- imported spaces ----------------------------------------------------------------------------------------
    def read_imported(self, reserved: Collection[str]) -> list[tuple[str, str]]:
        """(name, title) of each space a person imported; a name may not be one of ``reserved`` (built-in)."""
        if not self.exists(IMPORTED):
            return []
        entries = self.read_json(IMPORTED).get("imported")
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) and _SPACE_NAME.fullmatch(e["name"])
                and e["name"] not in reserved and isinstance(e.get("title"), str) for e in entries):
            raise RunError(f"{IMPORTED} in {self.path} is not valid (a list of imported spaces, each with a "
                           "lower-case name that is not a built-in space's, and a title)")
        return [(e["name"], e["title"]) for e in entries]

    def add_imported(self, name: str, title: str, x: np.ndarray, existing: list[tuple[str, str]]) -> None:
        """Store an imported space's embedding, then list it after ``existing`` (read_imported's)."""
        self.save_array(IMPORTED_EMBEDDING.format(space=name), x)
        self.write_json(IMPORTED, {"imported": [{"name": s, "title": t} for s, t in [*existing, (name, title)]]})

    def load_imported(self, name: str, n: int) -> np.ndarray:
        return self.load_array(IMPORTED_EMBEDDING.format(space=name), rows=n)

    # --- the map forming ----------------------------------------------------------------------------------------
    def write_map_history(self, history: MapHistory) -> None:
        if not history.snapshots:
            return
        self.save_array(MAP_HISTORY_COORDS, np.concatenate([s.coords for s in history.snapshots]))
        self.write_json(MAP_HISTORY, {"indices": history.indices.tolist(),
                                      "snapshots": [{"step": s.step, "seconds": round(s.seconds, 3), "knn": s.knn}
                                                    for s in history.snapshots]})

    def read_map_history(self, n_images: int) -> MapHistory | None:
        """The run's map history, checked against its images; None when the run has none."""
        if not self.exists(MAP_HISTORY):
            return None
        data = self.read_json(MAP_HISTORY)
        indices, points = data.get("indices"), data.get("snapshots")
        if not (isinstance(indices, list) and indices and all(_whole(i) and 0 <= i < n_images for i in indices)
                and isinstance(points, list) and points and all(
                isinstance(p, dict) and isinstance(p.get("step"), int) and isinstance(p.get("seconds"), (int, float))
                and (p.get("knn") is None or isinstance(p.get("knn"), (int, float))) for p in points)):
            raise RunError(f"{MAP_HISTORY} in {self.path} is not valid (image numbers from 0 to {n_images - 1} and "
                           "a list of snapshots with step, seconds and knn)")
        coords = self.load_array(MAP_HISTORY_COORDS, rows=len(indices) * len(points), cols=2)
        coords = coords.reshape(len(points), len(indices), 2)
        return MapHistory(np.asarray(indices), tuple(
            MapSnapshot(p["step"], float(p["seconds"]), c, p["knn"]) for p, c in zip(points, coords)))

    # --- checkpoints --------------------------------------------------------------------------------------------
    def checkpoint(self, which: str) -> Path:
        name = CHECKPOINT.format(which=which)
        self._inside(name)
        return self.path / name

    def checkpoint_meta(self, which: str) -> dict | None:
        """A model's training metadata (without its weights), or None when the run has no such checkpoint."""
        path = self.checkpoint(which)
        if not path.exists():
            return None
        try:
            return load_checkpoint(path, with_tensors=False)[1]
        except CheckpointError as exc:
            raise RunError(str(exc)) from exc

    def share_checkpoint(self, source: RunFolder, which: str) -> None:
        """Take ``source``'s ``which`` checkpoint (and its sidecar) as this run's own: a sweep's shared baseline."""
        name = CHECKPOINT.format(which=which)
        self._share(source, name)
        sidecar = Path(name).with_suffix(".json").name
        if source.exists(sidecar):
            self._share(source, sidecar)

    def share_embedding(self, source: RunFolder, space: str) -> None:
        self._share(source, self.embedding_name(space))

    def share_projection(self, source: RunFolder, space: str, kind: str) -> None:
        self._share(source, self.projection_name(space, kind))

    def _share(self, source: RunFolder, name: str) -> None:
        """A hard link to ``source``'s file (a copy where links fail), put in place atomically: each run folder
        stays complete on its own, and every later write replaces a file rather than changing it, so the two runs
        never change each other's."""
        original = source._inside(name)

        def link(tmp: Path) -> None:
            tmp.unlink()
            try:
                os.link(original, tmp)
            except OSError:
                shutil.copyfile(original, tmp)
        self._write(name, lambda: write_atomic(self.path / name, link))

    def loss_curve(self, which: str) -> list | None:
        """[[step, elapsed seconds, loss], ...] as the training loop recorded it, checked (the app plots it)."""
        meta = self.checkpoint_meta(which)
        if meta is None:
            return None
        history = meta.get("history", [])
        if not (isinstance(history, list) and all(isinstance(point, list) and len(point) == 3 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in point) for point in history)):
            raise RunError(f"{CHECKPOINT.format(which=which)} in {self.path} holds no valid loss curve")
        return history

    # --- generic, checked I/O -----------------------------------------------------------------------------------
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

    def write_with(self, name: str, write) -> Path:
        """Write a file through ``write(tmp_path)`` atomically."""
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
    return Path(path, CONFIG).is_file() and os.access(Path(path, CONFIG), os.R_OK)


def holds_run_files(path: str | Path) -> bool:
    """Whether ``path`` holds any of a run's own small files: a run folder, perhaps a damaged one."""
    return any(Path(path, name).is_file() for name in (CONFIG, DATASET, METRICS, SPLIT))


def read_summary(path: str | Path) -> RunSummary:
    """The settings and metrics of the run in ``path`` (two small JSON files, no arrays), checked like open_run,
    and when its settings were written."""
    run = RunFolder.open(path)
    return RunSummary(run.path, run.read_settings(), run.read_metrics(), (run.path / CONFIG).stat().st_mtime)


# --- audit.json -------------------------------------------------------------------------------------------------


def check_audit(data: dict, paths: set[str]) -> dict:
    """Raise ValueError saying what is wrong unless ``data`` is audit.json naming only images among ``paths``."""
    spaces, why = data.get("spaces"), data.get("no_label_audit")
    if not isinstance(spaces, dict) or not (why is None or isinstance(why, str)):
        raise ValueError("it needs a 'spaces' object, and no_label_audit must be text or null")
    for space, found in spaces.items():
        if not isinstance(found, dict):
            raise ValueError(f"space {space!r} must hold an object")
        pairs = [*found.get("duplicates", ()), *found.get("leaks", ())]
        singles = [*found.get("outliers", ()), *found.get("mislabeled", ())]
        suggested = found.get("suggested", {})
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs) or not isinstance(suggested, dict) \
                or not all(isinstance(v, str) for v in suggested.values()):
            raise ValueError(f"space {space!r}: duplicates and leaks must be pairs of paths, suggested a label "
                             "per path")
        unknown = [p for p in [*(q for pair in pairs for q in pair), *singles, *suggested] if p not in paths]
        if unknown:
            raise ValueError(f"space {space!r} names {unknown[0]!r}, which is not an image of the run"[:300])
    return data


# --- transfer.json ----------------------------------------------------------------------------------------------


def check_transfer(data: dict, spaces: Collection[str]) -> dict:
    """Raise ValueError saying what is wrong unless ``data`` is transfer.json as the stage writes it."""
    if "error" in data:
        if not isinstance(data["error"], str):
            raise ValueError("its error must be text")
        return data
    probe, tuned, titles = data.get("probe"), data.get("finetune"), data.get("titles", {})
    if not isinstance(probe, dict) or not isinstance(tuned, dict):
        raise ValueError("it needs a 'probe' and a 'finetune' object")
    if not isinstance(titles, dict) or not all(isinstance(t, str) for t in titles.values()):
        raise ValueError("its titles must map each space to a text")
    for space, curves in probe.items():
        if space not in spaces or not isinstance(curves, dict) or not set(curves) <= set(PROBES):
            raise ValueError(f"probe {space!r} is not a space with kNN and linear curves")
        for probe_name, points in curves.items():
            _check_points(points, "std", f"the {space} {probe_name} curve")
    for start, points in tuned.items():
        if start not in STARTS:
            raise ValueError(f"fine-tuning start {start!r} is not one of {', '.join(STARTS)}")
        _check_points(points, "seconds", f"the fine-tuning curve from {start}")
    selection = data.get("selection", {})
    if not isinstance(selection, dict) or (selection and data.get("selection_space") not in spaces):
        raise ValueError("its selection must be curves per strategy, in a space of the run (selection_space)")
    for strategy, curves in selection.items():
        if strategy not in STRATEGIES or not isinstance(curves, dict) or not set(curves) <= set(PROBES):
            raise ValueError(f"selection {strategy!r} is not a strategy ({', '.join(STRATEGIES)}) with kNN and "
                             "linear curves")
        for probe_name, points in curves.items():
            _check_points(points, "std", f"the {strategy} selection's {probe_name} curve")
    return data


def _check_points(points, extra: str, what: str) -> None:
    if not isinstance(points, list):
        raise ValueError(f"{what} must be a list of points")
    for p in points:
        ok = isinstance(p, dict) and all(_number(p.get(k)) for k in ("fraction", "top1", extra)) and \
            _whole(p.get("labels"))
        if not ok or not (0 < p["fraction"] <= 1 and 0 <= p["top1"] <= 1 and p["labels"] >= 1 and p[extra] >= 0):
            raise ValueError(f"{what} has a point that is not {{fraction in (0, 1], labels >= 1, top1 in [0, 1], "
                             f"{extra} >= 0}}: {p!r}"[:300])


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
