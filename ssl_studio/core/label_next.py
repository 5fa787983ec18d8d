"""Label these next: a strategy's picks among a run's images, saved as a CSV of paths and a folder of links.

The pool is the run's training split (the held-out images stay unlabeled, so the curves keep measuring on them),
or every image of an unlabeled folder, where choosing what to label is the whole point. ``ssl-studio select`` and
the Compare page's "Label these next" call the same functions.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import link_or_copy, write_atomic
from .label_selection import select_images
from .pipeline import open_run
from .runs import RunFolder


@dataclass(frozen=True)
class Picks:
    indices: np.ndarray  # image numbers, in the order picked
    files: list[Path]  # their image files
    strategy: str
    space: str


def pool_of(run: RunFolder, n: int) -> tuple[np.ndarray, str]:
    """The images to choose from, and how to name them in a message: the training split, or every image."""
    split = run.held_out_split(n)
    if split is None:
        return np.arange(n, dtype=np.int64), "the folder"
    return split[0], "the training split"


def pick(embeddings: dict[str, np.ndarray], pool: np.ndarray, what: str, budget: int, strategy: str = "typical",
         space: str = "ssl", seed: int = 0) -> np.ndarray:
    """Image numbers ``strategy`` picks among ``pool`` in ``space``; a space the run lacks is refused, naming its
    spaces."""
    if space not in embeddings:
        raise ValueError(f"this run has no {space!r} space; it has {', '.join(map(repr, embeddings))}")
    return select_images(embeddings[space], pool, budget, strategy, seed, what)


def pick_from_run(path: str | Path, budget: int, strategy: str = "typical", space: str = "ssl") -> Picks:
    """``pick`` on a saved run folder (its stored embeddings, its own seed); the picks' files under its data
    folder."""
    loaded = open_run(path)
    pool, what = pool_of(loaded.run, len(loaded.paths))
    indices = pick(loaded.embeddings, pool, what, budget, strategy, space, loaded.config.seed)
    return Picks(indices, [loaded.data_root / loaded.paths[i] for i in indices], strategy, space)


def write_csv(path: str | Path, files: list[Path]) -> Path:
    """rank,path: the picks in the order picked, one file each (written atomically)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["rank", "path"])
            writer.writerows((rank, str(file)) for rank, file in enumerate(files, 1))
    return write_atomic(path, write)


def link_folder(folder: str | Path, files: list[Path]) -> int:
    """A folder holding the picks, named by rank (0001_name.png, ...): hard links, copies where a link cannot be
    made (another file system). Returns how many were copied. A file already there is never replaced."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    targets = [folder / f"{rank:04d}_{file.name}" for rank, file in enumerate(files, 1)]
    there = [t.name for t in targets if t.exists()]
    if there:
        raise FileExistsError(f"{folder} already holds {there[0]}" + (f" and {len(there) - 1} more" if there[1:]
                                                                       else "") + ": choose another folder")
    return sum(not link_or_copy(file, target) for file, target in zip(files, targets))
