"""Which images to label next: a budget of N images chosen from an embedding space, without looking at labels.

Every strategy works on one space's embeddings of the pool (a labeled run's training split, or every image of an
unlabeled folder), l2-normalized first so distances are the cosine geometry the kNN and the neighbours use:

* random: a seeded draw, label-free (the transfer curves' per-class draw already uses the labels);
* typical: TypiClust (Hacohen, Dekel and Weinshall, ICML 2022): k-means into N clusters, from each the most typical
  image, typicality = 1 / mean distance to its 20 nearest neighbours within its cluster. Few labels pay most when
  each one is a dense, representative image of a different region;
* coverage: k-center greedy (Sener and Savarese, ICLR 2018): each pick is the image farthest from those already
  picked, so every image has a picked one near it; it favours outliers, and so helps at larger budgets.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

STRATEGIES = {  # name: how it picks, as "picked by ..." reads
    "random": "a random draw, label-free",
    "typical": "typicality (TypiClust: the most typical image of each of N clusters)",
    "coverage": "coverage (k-center greedy: each pick the image farthest from those picked)",
}
TYPICALITY_NEIGHBOURS = 20
_CHUNK_ELEMENTS = 1 << 24  # distances per block: 64 MB of float32


def check_budget(budget, pool: int, what: str = "the training split") -> None:
    """Raise ValueError saying why unless ``budget`` is a whole number of images from 1 to ``pool``."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise ValueError(f"the budget must be a whole number of images, got {budget!r}")
    if budget < 1:
        raise ValueError(f"a budget of {budget} images selects nothing: give at least 1")
    if budget > pool:
        raise ValueError(f"a budget of {budget} images is more than the {pool} images of {what}")


def select(x, budget: int, strategy: str = "typical", seed=0, what: str = "the training split") -> np.ndarray:
    """Row numbers of ``x`` (pool images, embedding dimensions), ``budget`` of them, in the order picked.

    ``seed``: an int or a sequence of ints (as numpy's generators take): the same seed picks the same images.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (images, dimensions), got shape {x.shape}")
    check_budget(budget, len(x), what)
    rng = np.random.default_rng(seed)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if strategy == "random":
        return rng.choice(len(x), size=budget, replace=False).astype(np.int64)
    if strategy == "typical":
        return typical(unit, budget, int(rng.integers(2**31)))
    return k_center_greedy(unit, budget, int(rng.integers(len(x))))


def select_images(embedding, pool, budget: int, strategy: str = "typical", seed=0,
                  what: str = "the training split") -> np.ndarray:
    """Image numbers (into ``embedding``'s rows) among ``pool``, in the order ``strategy`` picked them."""
    pool = np.asarray(pool, dtype=np.int64)
    return pool[select(np.asarray(embedding)[pool], budget, strategy, seed, what)]


def typicality(x, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """1 / mean Euclidean distance of each row to its ``k`` nearest other rows (fewer when there are fewer).

    A lone row has no neighbours: its typicality is 1 (any cluster of one is picked from anyway). Duplicates, at
    distance 0, are infinitely typical.
    """
    x = np.asarray(x, dtype=np.float32)
    k = min(k, len(x) - 1)
    if k < 1:
        return np.ones(len(x))
    mean = np.empty(len(x))
    rows = max(1, _CHUNK_ELEMENTS // len(x))  # one big cluster (a budget of 1) must not need an N x N matrix
    for start in range(0, len(x), rows):
        distances = _distances(x[start:start + rows], x)
        distances[np.arange(len(distances)), np.arange(start, start + len(distances))] = np.inf
        mean[start:start + rows] = np.partition(distances, k - 1, axis=1)[:, :k].mean(axis=1)
    with np.errstate(divide="ignore"):
        return 1.0 / mean


def typical(x, budget: int, seed: int = 0) -> np.ndarray:
    """TypiClust: k-means into ``budget`` clusters; the most typical row of each, largest cluster first.

    When k-means leaves fewer clusters than the budget (fewer distinct rows), the rest of the budget takes each
    cluster's next most typical row in turn.
    """
    x = np.asarray(x, dtype=np.float32)
    # One thread: on a busy 2-core machine two OpenMP threads made this k-means 6x slower (as for the linear probe).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than clusters: fine, see above
        clusters = KMeans(n_clusters=budget, n_init=1, random_state=seed).fit_predict(x)
    ids, sizes = np.unique(clusters, return_counts=True)
    ranked = []  # each cluster's rows, most typical first; the largest cluster first (ties: lower id)
    for c in ids[np.lexsort((ids, -sizes))]:
        members = np.flatnonzero(clusters == c)
        ranked.append(members[np.argsort(-typicality(x[members]), kind="stable")])
    picks = [members[r] for r in range(max(map(len, ranked))) for members in ranked if r < len(members)]
    return np.asarray(picks[:budget], dtype=np.int64)


def k_center_greedy(x, budget: int, first: int = 0) -> np.ndarray:
    """Row ``first``, then each time the row farthest (Euclidean) from every row picked so far."""
    x = np.asarray(x, dtype=np.float32)
    squared = (x * x).sum(1)

    def distance_to(pick: int) -> np.ndarray:  # one matrix-vector product per pick
        return np.sqrt(np.maximum(squared + squared[pick] - 2 * (x @ x[pick]), 0))

    picks = [first]
    nearest = distance_to(first)
    for _ in range(budget - 1):
        nearest[picks[-1]] = -1.0  # a duplicate of a pick is at 0 too: never pick a row twice
        picks.append(int(nearest.argmax()))
        nearest = np.minimum(nearest, distance_to(picks[-1]))
    return np.asarray(picks, dtype=np.int64)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and of ``b``, through one matrix product. numpy, not torch:
    on the many small clusters of a large budget torch's per-call threading cost three times the CPU time."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1) - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0))
