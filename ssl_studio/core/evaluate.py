"""The evaluation protocol (README, "How the numbers are made"): seeded stratified 80/20 split, kNN, linear probe."""

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .threads import ThreadTuner

# Test rows per kNN chunk scale with the train set so a chunk's similarity matrix stays near 64 MB
# (20k x 20k at once would be 1.6 GB).
_KNN_CHUNK_ELEMENTS = 1 << 24


def split_indices(labels, train_fraction: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split; returns sorted int64 (train_idx, test_idx).

    Each class gives floor(count * test_fraction) images to the held-out set and the remaining
    rounding is handed out by largest remainder, so class ratios match and the total is exact
    where possible. Every class keeps at least one image in train: a class with a single image
    goes to train only, since held out it could never be predicted right and would only lower
    the score. (sklearn's stratified splitters raise on such classes and whenever the held-out
    set is smaller than the number of classes, both common in small user folders.)
    """
    y = np.asarray(labels).ravel()
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if np.all(counts < 2):
        raise ValueError(
            f"cannot hold out images for evaluation: {len(y)} image(s) and no class has at least 2; "
            "add more images per class"
        )
    rng = np.random.default_rng(seed)
    # Rounding guards against 50 * (1 - 0.8) = 9.999999999999998.
    ideal = np.round(counts * (1.0 - train_fraction), 9)
    n_test = np.floor(ideal).astype(np.int64)
    target = max(1, int(np.floor(len(y) * (1.0 - train_fraction) + 0.5 + 1e-9)))
    can_take_more = n_test + 1 <= counts - 1
    # Largest fractional part first; seeded random order among equal remainders.
    order = np.lexsort((rng.random(len(classes)), -(ideal - n_test)))
    for c in order[can_take_more[order]][: max(0, target - int(n_test.sum()))]:
        n_test[c] += 1

    train, test = [], []
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        test.append(members[: n_test[c]])
        train.append(members[n_test[c] :])
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64)


def knn_top1(train_x, train_y, test_x, test_y, k: int = 20, temperature: float = 0.07) -> float:
    """Top-1 accuracy of a cosine kNN with votes weighted by exp(similarity / temperature).

    The weighted vote is the monitor of Wu et al. 2018 used across SimCLR/MoCo codebases: close
    neighbours count far more than the k-th one, so it is less sensitive to k than a plain majority.
    """
    predicted = knn_predict(train_x, train_y, test_x, k=k, temperature=temperature)
    return float(np.mean(predicted == np.asarray(test_y).ravel()))


def knn_predict(train_x, train_y, test_x, k: int = 20, temperature: float = 0.07) -> np.ndarray:
    """The class knn_top1's vote gives each held-out row (one of train_y's values)."""
    train_x, test_x = _as_tensor(train_x), _as_tensor(test_x)
    train_y = np.asarray(train_y).ravel()
    if len(train_x) == 0 or len(test_x) == 0:
        raise ValueError("kNN needs at least one train and one held-out sample")
    classes, train_codes = np.unique(train_y, return_inverse=True)
    train_codes = torch.from_numpy(train_codes.astype(np.int64))
    train_x, test_x = F.normalize(train_x, dim=1), F.normalize(test_x, dim=1)
    k = min(k, len(train_x))
    chunk = max(1, _KNN_CHUNK_ELEMENTS // len(train_x))
    predictions = []
    with ThreadTuner() as threads:
        for start in range(0, len(test_x), chunk):
            sims, neighbours = (test_x[start : start + chunk] @ train_x.T).topk(k, dim=1)
            # Subtracting the row maximum leaves the vote unchanged and keeps exp finite at any temperature.
            weights = torch.exp((sims - sims[:, :1]) / temperature)
            votes = torch.zeros(len(sims), len(classes)).scatter_add_(1, train_codes[neighbours], weights)
            predictions.append(votes.argmax(dim=1))
            threads.step_done()
    return classes[torch.cat(predictions).numpy()]


def linear_probe_top1(train_x, train_y, test_x, test_y, seed: int = 0) -> float:
    """Top-1 accuracy of a logistic regression on standardized frozen features."""
    train_y, test_y = np.asarray(train_y).ravel(), np.asarray(test_y).ravel()
    if len(train_y) == 0 or len(test_y) == 0:
        raise ValueError("the linear probe needs at least one train and one held-out sample")
    train_classes = np.unique(train_y)
    if len(train_classes) == 1:
        # LogisticRegression refuses a single class; the only sensible classifier predicts it.
        return float(np.mean(test_y == train_classes[0]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))
    # One BLAS thread: these products are small, and on a busy 2-core machine two BLAS threads made a fit 10-16x
    # slower for the same result (BENCHMARKS.md, "Transfer").
    with warnings.catch_warnings(), threadpool_limits(1):
        # On separable features lbfgs keeps growing the weights until max_iter; the predictions
        # (all we score) settled long before, so the warning would only alarm users.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(np.asarray(train_x, dtype=np.float32), train_y)
        return float(probe.score(np.asarray(test_x, dtype=np.float32), test_y))


def evaluate_space(x, labels, train_idx, test_idx) -> dict[str, float]:
    """Both protocol numbers for one embedding space, each in 0..1."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(labels).ravel()
    return {
        "knn_top1": knn_top1(x[train_idx], y[train_idx], x[test_idx], y[test_idx]),
        "linear_top1": linear_probe_top1(x[train_idx], y[train_idx], x[test_idx], y[test_idx]),
    }


def kmeans_labels(x, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means cluster ids (int64) to color an unlabeled folder's maps."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0 or n_clusters < 1:
        raise ValueError(f"k-means needs at least one point and one cluster (got {len(x)}, {n_clusters})")
    kmeans = KMeans(n_clusters=min(n_clusters, len(x)), n_init=4, random_state=seed)
    with warnings.catch_warnings():
        # Fewer distinct points than clusters is fine here: some colors simply go unused.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return kmeans.fit_predict(x).astype(np.int64)


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32))
