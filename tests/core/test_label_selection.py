"""Which images to label: each strategy on points whose answer can be worked out by hand."""

import numpy as np
import pytest

from ssl_studio.core.label_selection import (STRATEGIES, check_budget, k_center_greedy, select, select_images,
                                             typical, typicality)


def plus(center, arms, step=0.1):
    """A blob on the unit sphere: ``center`` (a unit vector) and, for each arm length, four points around it."""
    center = np.asarray(center, dtype=float)
    others = [np.roll(center, 1), np.roll(center, 2)]  # two axes orthogonal to a basis vector
    points = [center] + [center + sign * r * step * axis for r in range(1, arms + 1) for axis in others
                         for sign in (1, -1)]
    return np.array([p / np.linalg.norm(p) for p in points])


def three_blobs():
    """A lone point C (row 0), blob B (5 points, its centre row 1) and blob A (9, its centre row 6), each around
    its own axis."""
    return np.vstack([[[0, 0, 1]], plus([0, 1, 0], arms=1), plus([1, 0, 0], arms=2)]).astype(np.float32)


def test_typicality_is_one_over_the_mean_distance_to_the_nearest_neighbours():
    x = np.array([[0.0], [1.0], [2.0], [10.0]])
    # k = 2: row 0 -> 1 and 2 (mean 1.5); row 1 -> 0 and 2 (1); row 2 -> 1 and 0 (1.5); row 3 -> 2 and 1 (8.5).
    assert np.allclose(typicality(x, k=2), [1 / 1.5, 1, 1 / 1.5, 1 / 8.5])


def test_typicality_in_a_cluster_smaller_than_k_uses_every_other_point():
    x = np.array([[0.0], [1.0], [3.0]])
    # k = 20 > 2 others: row 0 -> (1 + 3) / 2, row 1 -> (1 + 2) / 2, row 2 -> (3 + 2) / 2.
    assert np.allclose(typicality(x), [1 / 2, 1 / 1.5, 1 / 2.5])
    assert np.array_equal(typicality(np.array([[5.0, 5.0]])), [1.0])  # alone: still pickable


def test_typical_takes_the_centre_of_each_cluster_largest_first():
    x = three_blobs()
    for seed in range(6):  # whatever numbers k-means gives the clusters
        assert typical(x, 3, seed=seed).tolist() == [6, 1, 0]
    assert select(x, 3, "typical").tolist() == [6, 1, 0]  # l2-normalizing leaves unit vectors as they are


def test_typical_fills_the_budget_when_there_are_fewer_distinct_points_than_clusters():
    x = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]])
    picks = typical(x, 3)
    assert len(picks) == 3 and len(set(picks.tolist())) == 3
    assert 3 in picks  # the lone point is a cluster of its own


def test_k_center_greedy_takes_the_farthest_point_each_time():
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    # From 0: 10 is farthest; then 3 (3 from 0) beats 2 (2); then 1 and 2 are both 1 away: the first of them.
    assert k_center_greedy(x, 4, first=0).tolist() == [0, 4, 3, 1]
    assert k_center_greedy(np.zeros((3, 2)), 3).tolist() == [0, 1, 2]  # duplicates: never the same row twice


def test_coverage_reaches_every_blob_before_a_second_point_of_any():
    x = three_blobs()
    blob = np.array([2] + [1] * 5 + [0] * 9)
    for seed in range(5):
        assert sorted(blob[select(x, 3, "coverage", seed=seed)]) == [0, 1, 2]


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_is_seeded_and_picks_distinct_rows(strategy):
    x = np.random.default_rng(0).normal(size=(200, 8))
    picks = select(x, 12, strategy, seed=3)
    assert len(picks) == 12 and len(set(picks.tolist())) == 12 and picks.min() >= 0 and picks.max() < 200
    assert np.array_equal(picks, select(x, 12, strategy, seed=3))
    assert not np.array_equal(picks, select(x, 12, strategy, seed=4))


def test_select_images_answers_image_numbers_of_the_pool():
    x = np.vstack([np.full((5, 3), 7.0), three_blobs()])  # rows 0-4 are not in the pool
    pool = np.arange(5, 20)
    assert select_images(x, pool, 3).tolist() == [11, 6, 5]


@pytest.mark.parametrize("budget, message", [
    (0, "a budget of 0 images selects nothing: give at least 1"),
    (-3, "a budget of -3 images selects nothing: give at least 1"),
    (16, "a budget of 16 images is more than the 15 images of the training split"),
    (2.5, "the budget must be a whole number of images, got 2.5"),
    (True, "the budget must be a whole number of images, got True"),
])
def test_a_budget_outside_the_pool_is_refused(budget, message):
    with pytest.raises(ValueError) as info:
        select(three_blobs(), budget)
    assert str(info.value) == message


def test_an_unknown_strategy_or_a_flat_array_is_refused():
    with pytest.raises(ValueError, match="unknown selection strategy 'best': choose one of random, typical, coverage"):
        select(three_blobs(), 2, "best")
    with pytest.raises(ValueError, match=r"embeddings must be \(images, dimensions\)"):
        select(np.zeros(10), 2)
    check_budget(15, 15)  # the whole pool is a budget
