"""What a space says is wrong with the images: near-duplicates, outliers and likely wrong labels.

Every rule works on cosine distances (1 - cosine similarity) between l2-normalized embeddings:

- *near-duplicates*: a pair of images among each other's ``DUPLICATE_CANDIDATES`` nearest whose distance is at most
  ``DUPLICATE_RATIO`` of the geometric mean of the two images' distances to their ``DUPLICATE_CANDIDATES``-th
  nearest: closer to each other than to their own neighbourhood, whatever that neighbourhood's density, and an image
  with two copies of its own still has a third nearest that is no copy. Measured twice, in the space and in the
  space whitened (every direction scaled to how much the images vary along it), the pair's lower ratio counts.
  Most striking (lowest ratio) first, at most a tenth as many pairs as images. A pair with one image in the
  training split and one held out is a *leak*.
- *outliers*: the distance from an image to the nearest centroid of a group (its class, or a k-means cluster of an
  unlabeled folder) over the typical distance of that group's members to it; groups smaller than ``SMALL_GROUP`` of
  the median group size give no centroid. With labels, times how little the image's ``NEIGHBOURS`` agree on one
  label. A small group of odd images that are each other's neighbours sits close to one another, so a distance to
  the k-th neighbour misses it; it is still far from every class, and no class holds its neighbourhood. Ranked, the
  first tenth of the images listed.
- *likely wrong labels*: each image's ``NEIGHBOURS`` nearest, itself excluded (out of sample), vote for their labels,
  weighted by similarity; an image whose neighbours' top class is not its label is listed, ranked by how little
  weight its own label gets (self-confidence). cleanlab's find_label_issues on the same votes found fewer planted
  flips in the first twice-as-many (its pruning drops some; README, "Audit"), so the ranking is done here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from threadpoolctl import threadpool_limits

from .cancel import CancelToken
from .coloring import MAX_CLUSTERS
from .neighbours import CosineNeighbours
from .runs import RunFolder
from .spaces import run_spaces

NEIGHBOURS = 10
DUPLICATE_CANDIDATES = 3  # an image and two copies of it: each copy among its 3 nearest, the 3rd no copy
DUPLICATE_RATIO = 0.8
MAX_SHARE = 0.1  # each list names at most a tenth of the images (pairs for duplicates)
SMALL_GROUP = 0.25
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


def whitened(x: np.ndarray) -> np.ndarray:
    """``x`` centred and whitened, as image retrieval does before comparing by cosine: each principal direction
    scaled to unit spread by the Ledoit-Wolf covariance, whose shrinkage towards the average spread gives a folder
    with fewer images than dimensions one too, and damps the directions that hardly vary (noise) instead of
    magnifying them."""
    # No precision matrix: we never use it, and SciPy's pinvh for it held the GIL for 0.3 s on 2,400 images' 768 pixel
    # values, freezing the window while a run's audit stage worked in the background.
    cov = LedoitWolf(store_precision=False).fit(np.asarray(x, np.float64))
    values, vectors = np.linalg.eigh(cov.covariance_)
    scaled = (x - cov.location_) @ vectors / np.sqrt(np.maximum(values, 1e-12))  # all images alike: no spread
    return scaled.astype(np.float32)  # its neighbours in float32, as the space's own: half the time


def near_duplicates(*neighbourhoods: tuple[np.ndarray, np.ndarray]) -> list[tuple[int, int]]:
    """Pairs (a < b) far closer to each other than to the rest of their neighbourhood, most striking first, from
    one or more geometries' (index, distance) nearest lists; a pair scores its lowest ratio among them.

    A pair's score is its distance over the geometric mean of the two images' distances to their 3rd nearest
    (``DUPLICATE_CANDIDATES``; the last one in a folder of 3): relative to each image's own neighbourhood, not one
    global threshold, since a dense class packs distinct images closer than a sparse class packs copies. The 3rd,
    not the next: an image with two copies has the other copy as its next nearest, as close as the pair."""
    found = [_duplicate_scores(index, distance) for index, distance in neighbourhoods]
    pairs = np.concatenate([p for p, _ in found])
    score = np.concatenate([s for _, s in found])
    keep = score <= DUPLICATE_RATIO
    pairs, score = pairs[keep], score[keep]
    order = np.lexsort((pairs[:, 1], pairs[:, 0], score))
    _, first = np.unique(pairs[order], axis=0, return_index=True)  # a pair found twice: its lowest ratio, once
    ranked = order[np.sort(first)]
    return [(int(p), int(q)) for p, q in pairs[ranked[:max(1, int(MAX_SHARE * len(neighbourhoods[0][0])))]]]


def _duplicate_scores(index: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's pairs with its 3 nearest (a < b), and each pair's distance over its images' reach."""
    k = min(DUPLICATE_CANDIDATES, distance.shape[1])
    if k < 2:  # two images: no neighbourhood to be closer than
        return np.zeros((0, 2), np.int64), np.zeros(0)
    reach = distance[:, k - 1].astype(np.float64)
    a = np.repeat(np.arange(len(index)), k)
    b = index[:, :k].ravel()
    score = distance[:, :k].ravel() / np.maximum(np.sqrt(reach[a] * reach[b]), 1e-9)
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), score


def leaks(pairs: list[tuple[int, int]], held_out: np.ndarray | None) -> list[tuple[int, int]]:
    """The pairs with one image held out and the other not (the same picture scored against itself)."""
    if held_out is None:
        return []
    out = set(np.asarray(held_out).tolist())
    return [(a, b) for a, b in pairs if (a in out) != (b in out)]


def outliers(x: np.ndarray, groups: np.ndarray | None, neighbour_labels: np.ndarray | None = None) -> list[int]:
    """The most remote images, most remote first: the distance to the nearest group's centroid over that group's
    typical distance to it, and, with labels, times how little the image's neighbours agree on one label."""
    unit = CosineNeighbours(x).unit
    groups = np.zeros(len(unit), np.int64) if groups is None else np.asarray(groups)
    names, sizes = np.unique(groups, return_counts=True)
    kept = names[sizes >= SMALL_GROUP * np.median(sizes)]
    centroids = np.stack([unit[groups == g].mean(axis=0) for g in kept])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    distance = 1 - unit @ centroids.T  # images x kept groups
    spread = np.array([np.median(distance[groups == g, c]) for c, g in enumerate(kept)])
    score = (distance / np.maximum(spread, 1e-6)).min(axis=1)
    if neighbour_labels is not None and neighbour_labels.shape[1]:
        # An image of no class gets an arbitrary label, and so do the odd images it sits among: no label holds its
        # neighbourhood. 1/k keeps a remote image whose neighbours all agree in the ranking.
        k = neighbour_labels.shape[1]
        agreement = np.array([np.bincount(row).max() for row in neighbour_labels]) / k
        score = score * (1 + 1 / k - agreement)
    ranked = np.argsort(-score, kind="stable")
    return ranked[:max(1, int(MAX_SHARE * len(unit)))].tolist()


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
    # One BLAS thread: at load average 4 on 2 cores two threads took 11.5 s for 10k images, one 4.1 s.
    with threadpool_limits(1):
        index, distance = nearest(x)
        pairs = near_duplicates((index, distance), nearest(whitened(x), DUPLICATE_CANDIDATES))
    labeled = labels is not None and n_classes >= 2
    mislabeled, suggested = label_suspects(index, distance, labels, n_classes) if labeled else ([], {})
    odd = outliers(x, labels, np.asarray(labels)[index]) if labeled else outliers(x, groups)
    return SpaceAudit(pairs, leaks(pairs, held_out), odd, mislabeled, suggested)


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


def audit_spaces(embeddings: dict[str, np.ndarray], paths: list[str], labels: np.ndarray | None,
                 class_names: list[str], clusters: np.ndarray | None, held_out: np.ndarray | None,
                 cancel: CancelToken | None = None) -> dict:
    """audit.json for these spaces: labeled images are measured against their classes, unlabeled ones against
    their k-means ``clusters``."""
    n_classes = len(class_names) if labels is not None else 0
    audits = {}
    for space, x in embeddings.items():
        if cancel:
            cancel.raise_if_cancelled()
        audits[space] = audit_space(x, labels, n_classes, clusters, held_out)
    return as_json(audits, paths, class_names, no_label_audit(labels, class_names))


def audit_run(path: str | Path, spaces: Collection[str] | None = None) -> dict:
    """Audit every space of the saved run in ``path`` (or those of ``spaces``), write its audit.json and return
    it. An unlabeled run is measured against the k-means clusters its color stage stored (the whole folder as one
    group when it has none)."""
    run = RunFolder.open(path)
    stored = run.read_dataset()
    n = len(stored.paths)
    embeddings = run.embeddings([space.name for space in run_spaces(run)], n)
    if spaces is not None:
        if missing := [s for s in spaces if s not in embeddings]:
            raise ValueError(f"this run has no {', '.join(map(repr, missing))} space; it has "
                             f"{', '.join(map(repr, embeddings))}")
        embeddings = {s: x for s, x in embeddings.items() if s in spaces}
    split = run.held_out_split(n)
    result = audit_spaces(embeddings, stored.paths, stored.labels, stored.class_names,
                          run.read_clusters(n, below=MAX_CLUSTERS), split[1] if split is not None else None)
    run.write_audit(result)
    return result
