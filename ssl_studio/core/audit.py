"""What a space says is wrong with the images: near-duplicates, outliers and likely wrong labels.

Every rule works on cosine distances (1 - cosine similarity) between l2-normalized embeddings:

- *near-duplicates*: two images that are among each other's ``NEIGHBOURS`` nearest and whose distance is at most
  ``DUPLICATE_FRACTION`` of the median distance from an image to its nearest neighbour (far closer to each other than
  images usually are to anything). A pair with one image in the training split and one held out is a *leak*.
  At most a tenth of the images in pairs are listed: a space where everything is that close finds nothing useful.
- *outliers*: the distance from an image to the nearest centroid of a group (its class, or a k-means cluster of an
  unlabeled folder) over the typical distance of that group's members to it. Groups smaller than
  ``SMALL_GROUP`` of the median group size give no centroid, so a small far-away cluster of odd images that are each
  other's neighbours is still far from every centroid (a distance to the k-th neighbour misses such a group).
  Images more than ``OUTLIER_RATIO`` times the typical distance are listed.
- *likely wrong labels*: each image's ``NEIGHBOURS`` nearest, itself excluded (out of sample), vote for their labels,
  weighted by similarity; an image whose neighbours' top class is not its label is listed, ranked by how little
  weight its own label gets (self-confidence, the ranking cleanlab's find_label_issues uses by default; its pruning
  needs a noise matrix estimated from many classes, which a small folder's kNN votes do not support).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .neighbours import CosineNeighbours
from .pipeline import open_run

NEIGHBOURS = 10
DUPLICATE_FRACTION = 0.2
MAX_PAIR_SHARE = 0.1
SMALL_GROUP = 0.25
OUTLIER_RATIO = 3.0
_CHUNK = 1024  # rows of the similarity matrix at a time: 40 MB of it at 10k images, not 400


@dataclass(frozen=True)
class SpaceAudit:
    """One space's findings as image numbers, most suspicious first."""

    duplicates: list[tuple[int, int]]
    leaks: list[tuple[int, int]]
    outliers: list[int]
    mislabeled: list[int]
    suggested: dict[int, int] = field(default_factory=dict)  # image -> the label its neighbours give


def nearest(x: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each image's ``k`` nearest others (itself excluded), closest first, and their cosine distances."""
    unit = CosineNeighbours(x).unit
    n = len(unit)
    k = min(k, n - 1)
    index = np.empty((n, k), dtype=np.int64)
    distance = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        sims = unit[start:start + _CHUNK] @ unit.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(sims), 0), np.int64)
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        index[start:start + len(sims)] = top
        distance[start:start + len(sims)] = 1 - np.take_along_axis(sims, top, axis=1)
    return index, np.maximum(distance, 0)


def near_duplicates(index: np.ndarray, distance: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (a < b) far closer than images usually are to their nearest neighbour, closest first."""
    if distance.shape[1] == 0:
        return []
    threshold = max(DUPLICATE_FRACTION * float(np.median(distance[:, 0])), 1e-6)
    rows, cols = np.nonzero(distance <= threshold)
    pairs = {}
    for i, j, d in zip(rows, index[rows, cols], distance[rows, cols]):
        pairs[(min(i, j), max(i, j))] = float(d)
    ranked = sorted(pairs, key=lambda p: (pairs[p], p))
    return [(int(a), int(b)) for a, b in ranked[:max(1, int(MAX_PAIR_SHARE * len(index)))]]


def leaks(pairs: list[tuple[int, int]], held_out: np.ndarray | None) -> list[tuple[int, int]]:
    """The pairs with one image held out and the other not (the same picture scored against itself)."""
    if held_out is None:
        return []
    out = set(np.asarray(held_out).tolist())
    return [(a, b) for a, b in pairs if (a in out) != (b in out)]


def outliers(x: np.ndarray, groups: np.ndarray | None) -> list[int]:
    """Images far from every group's centroid, relative to how far that group's members sit; farthest first."""
    unit = CosineNeighbours(x).unit
    groups = np.zeros(len(unit), np.int64) if groups is None else np.asarray(groups)
    names, sizes = np.unique(groups, return_counts=True)
    kept = names[sizes >= SMALL_GROUP * np.median(sizes)]
    centroids = np.stack([unit[groups == g].mean(axis=0) for g in kept])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    distance = 1 - unit @ centroids.T  # images x kept groups
    spread = np.array([np.median(distance[groups == g, c]) for c, g in enumerate(kept)])
    ratio = (distance / np.maximum(spread, 1e-6)).min(axis=1)
    far = np.nonzero(ratio > OUTLIER_RATIO)[0]
    return far[np.argsort(-ratio[far], kind="stable")].tolist()


def label_suspects(index: np.ndarray, distance: np.ndarray, labels: np.ndarray,
                   n_classes: int) -> tuple[list[int], dict[int, int]]:
    """Images whose out-of-sample neighbours vote for another class, least support for their own label first, and
    the class the neighbours suggest for each."""
    labels = np.asarray(labels)
    weight = np.maximum(1 - distance, 0) + 1e-6  # similarity, so that nearer neighbours count more
    votes = np.zeros((len(labels), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(labels)), index.shape[1]), labels[index].ravel()), weight.ravel())
    votes /= votes.sum(axis=1, keepdims=True)
    suggested = votes.argmax(axis=1)
    confidence = votes[np.arange(len(labels)), labels]
    suspects = np.nonzero(suggested != labels)[0]
    ranked = suspects[np.lexsort((suspects, confidence[suspects]))]
    return ranked.tolist(), {int(i): int(suggested[i]) for i in ranked}


def audit_space(x: np.ndarray, labels: np.ndarray | None = None, n_classes: int = 0,
                groups: np.ndarray | None = None, held_out: np.ndarray | None = None) -> SpaceAudit:
    """Everything one space flags. ``labels`` (with ``n_classes`` >= 2) enable the label audit and are the groups
    outliers are measured against; otherwise ``groups`` (k-means clusters) are."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"an audit needs at least 2 images' embeddings (images x dimensions), got shape {x.shape}")
    index, distance = nearest(x)
    pairs = near_duplicates(index, distance)
    labeled = labels is not None and n_classes >= 2
    mislabeled, suggested = label_suspects(index, distance, labels, n_classes) if labeled else ([], {})
    return SpaceAudit(pairs, leaks(pairs, held_out), outliers(x, labels if labeled else groups), mislabeled,
                      suggested)


def no_label_audit(labels: np.ndarray | None, class_names: list[str]) -> str | None:
    """Why a run has no label audit, or None when it has one."""
    if labels is None:
        return "the folder has no labels (no class subfolders)"
    if len(class_names) < 2:
        return "the folder has a single class: there is no other label to suggest"
    return None


def as_json(audits: dict[str, SpaceAudit], paths: list[str], class_names: list[str],
            labels_missing: str | None) -> dict:
    """audit.json: each space's findings by image path (as dataset.json lists them), most suspicious first."""
    return {"spaces": {space: {"duplicates": [[paths[a], paths[b]] for a, b in found.duplicates],
                               "leaks": [[paths[a], paths[b]] for a, b in found.leaks],
                               "outliers": [paths[i] for i in found.outliers],
                               "mislabeled": [paths[i] for i in found.mislabeled],
                               "suggested": {paths[i]: class_names[c] for i, c in found.suggested.items()}}
                       for space, found in audits.items()},
            "no_label_audit": labels_missing}


def audit_run(path: str | Path, spaces: Collection[str] | None = None) -> dict:
    """Audit every space of the saved run in ``path`` (or those of ``spaces``), write its audit.json and return
    it. Unlabeled runs are measured against their k-means clusters."""
    loaded = open_run(path)
    n = len(loaded.paths)
    wanted = loaded.embeddings if spaces is None else {s: loaded.embeddings[s] for s in spaces
                                                       if s in loaded.embeddings}
    if spaces is not None and len(wanted) < len(spaces):
        missing = [s for s in spaces if s not in loaded.embeddings]
        raise ValueError(f"this run has no {', '.join(map(repr, missing))} space; it has "
                         f"{', '.join(map(repr, loaded.embeddings))}")
    split = loaded.run.held_out_split(n)
    held_out = split[1] if split is not None else None
    n_classes = len(loaded.class_names) if loaded.labels is not None else 0
    audits = {space: audit_space(x, loaded.labels, n_classes, loaded.clusters, held_out)
              for space, x in wanted.items()}
    result = as_json(audits, loaded.paths, loaded.class_names, no_label_audit(loaded.labels, loaded.class_names))
    loaded.run.write_audit(result)
    return result
