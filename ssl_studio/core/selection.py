"""What a selection on the maps holds: the points inside a lasso, and the sample of them the Compare page shows."""

from __future__ import annotations

import numpy as np


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which of the (N, 2) points lie inside the closed (M, 2) polygon (even-odd rule: a lasso that crosses itself
    leaves out what it wraps twice). Vectorized over the points, one pass per edge."""
    points, polygon = np.asarray(points, dtype=np.float64), np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(len(points), dtype=bool)
    if len(polygon) < 3 or len(points) == 0:
        return inside
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    near = np.flatnonzero(np.all((points >= lo) & (points <= hi), axis=1))  # only these can be inside
    x, y = points[near, 0], points[near, 1]
    crossings = np.zeros(len(near), dtype=bool)
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if y1 == y2:
            continue  # a horizontal edge crosses no horizontal ray
        spans = (y1 > y) != (y2 > y)
        crossings ^= spans & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    inside[near] = crossings
    return inside


def sample(indices, limit: int, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``indices``, a seeded random choice when there are more, in ascending order."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) <= limit:
        return np.sort(indices)
    return np.sort(np.random.default_rng(seed).choice(indices, size=limit, replace=False))
