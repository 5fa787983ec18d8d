"""Marks a person puts on a run's images (exclude, or relabel as another class) and what they make of the folder.

Marks are kept in the order made, each naming one or more image paths (as dataset.json lists them), so that undo
takes back the last one whole; a path marked again takes its latest mark. They are saved in the run folder (runs.py,
curation.json), exported as a CSV and as a new class-folder tree of links, and a run can train on the curated set
(``ssl-studio run --curation``, the app's "Train again without them"). The person's data folder is only ever read.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import link_or_copy, write_atomic
from .data import ImageDataset

EXCLUDE, RELABEL = "exclude", "relabel"
ACTIONS = (EXCLUDE, RELABEL)
_NAMED = 5  # paths a message names before "and N more"


class CurationError(ValueError):
    """Marks that cannot be applied (or a file of them that cannot be read); the message is meant for the user."""


@dataclass(frozen=True)
class Mark:
    action: str  # EXCLUDE or RELABEL
    paths: tuple[str, ...]
    label: str | None = None  # the new class of a RELABEL

    def to_dict(self) -> dict:
        return {"action": self.action, "paths": list(self.paths), "label": self.label}


def _named(items: list[str]) -> str:
    more = len(items) - _NAMED
    return ", ".join(items[:_NAMED]) + (f" and {more} more" if more > 0 else "")


def check_mark(data) -> Mark:
    """A mark read from JSON, or CurationError saying what is wrong with it."""
    if not isinstance(data, dict) or data.get("action") not in ACTIONS:
        raise CurationError(f"a mark must be an object whose action is {' or '.join(ACTIONS)}: {data!r}"[:300])
    paths, label = data.get("paths"), data.get("label")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise CurationError(f"a mark must name one or more image paths: {data!r}"[:300])
    if (data["action"] == RELABEL) != isinstance(label, str) or label == "":
        raise CurationError(f"a relabel mark needs its new class (label), an exclude mark none: {data!r}"[:300])
    return Mark(data["action"], tuple(paths), label)


class Curation:
    """The marks on one run's images, oldest first."""

    def __init__(self, marks: list[Mark] | None = None, source: str | Path | None = None) -> None:
        self.marks: list[Mark] = list(marks or [])
        self.source = str(source) if source is not None else None  # the file the marks were read from

    def mark(self, action: str, paths, label: str | None = None) -> Mark:
        mark = check_mark({"action": action, "paths": list(paths), "label": label})
        self.marks.append(mark)
        return mark

    def undo(self) -> Mark | None:
        """Take back the last mark; None when there is none."""
        return self.marks.pop() if self.marks else None

    def effective(self) -> dict[str, Mark]:
        """Each marked path's latest mark, in the order paths were first marked."""
        latest: dict[str, Mark] = {}
        for mark in self.marks:
            for path in mark.paths:
                latest[path] = mark
        return latest

    def counts(self) -> tuple[int, int]:
        """(images excluded, images relabelled)."""
        actions = [m.action for m in self.effective().values()]
        return actions.count(EXCLUDE), actions.count(RELABEL)

    def to_json(self) -> dict:
        return {"marks": [m.to_dict() for m in self.marks]}

    @classmethod
    def from_json(cls, data) -> Curation:
        if not isinstance(data, dict) or not isinstance(data.get("marks"), list):
            raise CurationError("curation marks must be an object with a list of marks")
        return cls([check_mark(m) for m in data["marks"]])

    def after(self, earlier: Curation | None) -> Curation:
        """These marks made after ``earlier``'s (a curated run's own curation, marked again), from this file."""
        return Curation([*(earlier.marks if earlier else ()), *self.marks], self.source)

    @classmethod
    def recorded(cls, data: dict | None) -> Curation | None:
        """The curation a run's config.json records (Settings.curation), or None for a run on the whole folder."""
        return None if data is None else cls(cls.from_json(data).marks, data.get("file"))

    @classmethod
    def read(cls, path: str | Path) -> Curation:
        """A curation file (a run's curation.json, or a copy of it), checked."""
        try:
            return cls(cls.from_json(json.loads(Path(path).read_text(encoding="utf-8"))).marks, Path(path).resolve())
        except FileNotFoundError:
            raise CurationError(f"there is no curation file {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CurationError(f"{path} is not a readable curation file ({exc})") from exc
        except CurationError as exc:
            raise CurationError(f"{path}: {exc}") from None

    # --- applied to images --------------------------------------------------------------------------------------
    def check(self, paths: list[str], class_names: list[str]) -> None:
        """Refuse marks on images that are not among ``paths`` (the folder changed since), naming them, and a new
        class that is not one of ``class_names``, naming those there are."""
        latest = self.effective()
        known = set(paths)
        missing = [p for p in latest if p not in known]
        if missing:
            raise CurationError(f"{len(missing)} marked image(s) are no longer in the data folder: "
                                f"{_named(missing)}. Undo their marks, or put the files back")
        wanted = sorted({m.label for m in latest.values() if m.action == RELABEL})
        if wanted and not class_names:
            raise CurationError("this folder has no classes (no class subfolders): images cannot be relabelled")
        unknown = [c for c in wanted if c not in class_names]
        if unknown:
            raise CurationError(f"there is no class {_named(unknown)}; the classes are {', '.join(class_names)}")

    def apply(self, paths: list[str], labels: np.ndarray | None,
              class_names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """The images kept (their row numbers, in order) and their labels after the fixes (None: unlabeled)."""
        self.check(paths, class_names)
        latest = self.effective()
        index = {c: k for k, c in enumerate(class_names)}
        excluded = {p for p, mark in latest.items() if mark.action == EXCLUDE}
        rows = np.array([i for i, p in enumerate(paths) if p not in excluded], dtype=np.int64)
        if labels is None:
            return rows, None
        fixed = np.asarray(labels, dtype=np.int64).copy()
        for i, p in enumerate(paths):
            if p in latest and latest[p].action == RELABEL:
                fixed[i] = index[latest[p].label]
        return rows, fixed[rows]

    def curated_list(self, paths: list[str], labels: np.ndarray | None,
                     class_names: list[str]) -> list[tuple[str, str | None]]:
        """(path, class name after the fixes, None for an unlabeled folder) of each image kept."""
        rows, fixed = self.apply(paths, labels, class_names)
        return [(paths[r], class_names[int(c)] if fixed is not None else None)
                for r, c in zip(rows, fixed if fixed is not None else rows)]


def curate(dataset: ImageDataset, curation: Curation) -> ImageDataset:
    """The folder's images with the marks applied: excluded images left out, relabelled ones in their new class (a
    curated set is curated again from its whole folder, so marks apply to the folder as read)."""
    dataset = dataset.folder if dataset.folder is not None else dataset
    labels = dataset.labels.numpy() if dataset.labeled else None
    rows, fixed = curation.apply(dataset.paths, labels, dataset.class_names)
    return dataset.subset(rows, fixed)


def write_csv(path: str | Path, curation: Curation) -> Path:
    """path,action,new_label: each marked image's latest mark, in the order first marked (written atomically)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "action", "new_label"])
            writer.writerows((p, m.action, m.label or "") for p, m in curation.effective().items())
    return write_atomic(path, write)


def _targets(curated: list[tuple[str, str | None]]) -> list[str]:
    """Where each image goes in the tree: under its (new) class folder, keeping what its path has below the class;
    a relabelled image whose name is taken there keeps its old class in its name (dog/x.png, dog/x_from_cat.png)."""
    targets, used = [], set()
    for path, label in curated:
        old, _, rest = path.rpartition("/") if label is None else path.partition("/")
        target = path if label is None else f"{label}/{rest}"
        if target in used:
            stem, dot, ext = target.rpartition(".")
            target = f"{stem}_from_{old.split('/')[0]}{dot}{ext}" if dot else f"{target}_from_{old}"
        used.add(target)
        targets.append(target)
    return targets


def link_tree(folder: str | Path, root: str | Path, curated: list[tuple[str, str | None]]) -> int:
    """A new class-folder tree under ``folder`` of the curated images of the data folder ``root``: hard links,
    copies where a link cannot be made. Returns how many were copied. Nothing is written when a source file is
    gone (they are named) or a target is already there."""
    folder, root = Path(folder), Path(root)
    gone = [p for p, _ in curated if not (root / p).is_file()]
    if gone:
        raise CurationError(f"{len(gone)} image(s) are no longer in the data folder {root}: {_named(gone)}")
    targets = [folder / t for t in _targets(curated)]
    there = [str(t.relative_to(folder)) for t in targets if t.exists() or t.is_symlink()]
    if there:
        raise FileExistsError(f"{folder} already holds {_named(there)}: choose another folder")
    return sum(not link_or_copy(root / p, t) for (p, _), t in zip(curated, targets))
