"""Export each space's embedding for other tools: NPY (the array) and CSV (path, label, values), written atomically."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .cancel import CancelToken


def save_npy(path: str | Path, x: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, x, allow_pickle=False)


def save_csv(path: str | Path, x: np.ndarray, paths: list[str], names: list[str]) -> None:
    """One row per image: its path, its label (or cluster; "" when none), then its embedding's values."""
    if not len(x) == len(paths) == len(names):
        raise ValueError(f"{len(x)} embeddings, {len(paths)} paths and {len(names)} labels do not match")
    # surrogateescape writes a file name that is not valid UTF-8 back as its original bytes.
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"] + [f"e{j}" for j in range(x.shape[1])])
        for i in range(len(x)):
            writer.writerow([paths[i], names[i], *(f"{v:.6g}" for v in x[i])])


def write_embeddings(folder: str | Path, embeddings: dict[str, np.ndarray], paths: list[str], names: list[str], *,
                     cancel: CancelToken | None = None) -> Iterator[str]:
    """Write embedding_<space>.npy and .csv for each space into ``folder``, yielding each space when it is written;
    returns the files written."""
    cancel = cancel or CancelToken()
    folder = Path(folder)
    written = []
    for space, x in embeddings.items():
        cancel.raise_if_cancelled()
        written.append(write_atomic(folder / f"embedding_{space}.npy", lambda tmp, x=x: save_npy(tmp, x)))
        written.append(write_atomic(folder / f"embedding_{space}.csv",
                                    lambda tmp, x=x: save_csv(tmp, x, paths, names)))
        yield space
    return written
