import numpy as np
import pytest
import torch

from ssl_studio.core import evaluate
from ssl_studio.core.evaluate import evaluate_space, kmeans_labels, knn_top1, linear_probe_top1, split_indices


def blobs(n_per_class, n_classes, dim=8, spread=0.1, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.eye(n_classes, dim) * 10
    y = np.repeat(np.arange(n_classes), n_per_class)
    return (centers[y] + rng.normal(scale=spread, size=(len(y), dim))).astype(np.float32), y


# --- split -------------------------------------------------------------------------------------------


def test_split_is_stratified_disjoint_complete_and_sorted():
    labels = np.array([0] * 100 + [1] * 50)
    train, test = split_indices(labels)
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 150
    assert np.bincount(labels[test]).tolist() == [20, 10]


def test_split_is_deterministic_per_seed():
    labels = np.repeat(np.arange(3), 20)
    a, b = split_indices(labels, seed=3), split_indices(labels, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(split_indices(labels, seed=4)[1], a[1])


def test_split_keeps_singleton_classes_in_train():
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 2])  # tensors from the dataset work as they are
    train, test = split_indices(labels)
    assert {5, 6} <= set(train.tolist())
    assert len(test) == 1 and labels[test].tolist() == [0]


def test_split_with_fewer_test_slots_than_classes_keeps_every_class_in_train():
    labels = np.repeat(np.arange(5), 2)  # 20% of 10 is 2 held-out images for 5 classes
    train, test = split_indices(labels)
    assert len(test) == 2 and len(set(labels[test].tolist())) == 2
    assert sorted(set(labels[train].tolist())) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("labels", [[0], [0, 1, 2], []])
def test_split_refuses_datasets_too_small_to_hold_out(labels):
    with pytest.raises(ValueError, match="cannot hold out"):
        split_indices(np.array(labels, dtype=np.int64))


def test_split_refuses_a_bad_fraction():
    with pytest.raises(ValueError, match="train_fraction"):
        split_indices([0, 0, 1, 1], train_fraction=1.0)


# --- kNN ---------------------------------------------------------------------------------------------


def test_knn_is_perfect_on_separated_clusters_with_any_label_values():
    x, y = blobs(20, 3)
    y = np.array([7, 42, -1])[y]
    train, test = split_indices(y)
    assert knn_top1(x[train], y[train], x[test], y[test]) == 1.0


def test_knn_weighted_vote_beats_majority_when_the_nearest_is_much_closer():
    # One class-0 neighbour at similarity 1.0; two class-1 neighbours at similarity 0.5.
    train_x = np.array([[1.0, 0.0], [0.5, np.sqrt(0.75)], [0.5, -np.sqrt(0.75)]])
    train_y = np.array([0, 1, 1])
    test_x, test_y = np.array([[2.0, 0.0]]), np.array([0])  # cosine: the scale does not matter
    # exp(1/0.07) > 2 exp(0.5/0.07): the close neighbour wins.
    assert knn_top1(train_x, train_y, test_x, test_y, k=3, temperature=0.07) == 1.0
    # A hot temperature makes the weights nearly equal: a majority vote, which class 1 wins.
    assert knn_top1(train_x, train_y, test_x, test_y, k=3, temperature=100.0) == 0.0
    # k=1 only looks at the nearest.
    assert knn_top1(train_x, train_y, test_x, test_y, k=1, temperature=100.0) == 1.0


def test_knn_k_larger_than_train_and_extreme_temperature_are_fine():
    train_x, train_y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
    test_x, test_y = np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([0, 1])
    assert knn_top1(train_x, train_y, test_x, test_y, k=20, temperature=1e-4) == 1.0


def test_knn_in_chunks_matches_one_pass(monkeypatch):
    x, y = blobs(30, 4, spread=8.0, seed=1)  # overlapping: some answers are wrong
    train, test = split_indices(y)
    whole = knn_top1(x[train], y[train], x[test], y[test])
    monkeypatch.setattr(evaluate, "_KNN_CHUNK_ELEMENTS", len(train) * 3)
    assert knn_top1(x[train], y[train], x[test], y[test]) == whole
    assert 0.0 < whole < 1.0


def test_knn_refuses_empty_sets():
    with pytest.raises(ValueError, match="kNN needs at least one train and one held-out sample"):
        knn_top1(np.zeros((0, 2)), [], np.ones((1, 2)), [0])


# --- linear probe ------------------------------------------------------------------------------------


def test_linear_probe_is_perfect_on_separated_clusters_and_deterministic():
    x, y = blobs(20, 3)
    train, test = split_indices(y)
    assert linear_probe_top1(x[train], y[train], x[test], y[test]) == 1.0
    x, y = blobs(30, 3, spread=8.0, seed=2)
    train, test = split_indices(y)
    a = linear_probe_top1(x[train], y[train], x[test], y[test], seed=1)
    assert a == linear_probe_top1(x[train], y[train], x[test], y[test], seed=1)


def test_linear_probe_with_one_class_in_train_predicts_it():
    train_x, train_y = np.zeros((4, 3)), np.array([2, 2, 2, 2])
    test_x, test_y = np.zeros((4, 3)), np.array([2, 2, 2, 5])
    assert linear_probe_top1(train_x, train_y, test_x, test_y) == 0.75


def test_evaluate_space_reports_both_numbers():
    x, y = blobs(20, 3)
    train, test = split_indices(y)
    assert evaluate_space(x, y, train, test) == {"knn_top1": 1.0, "linear_top1": 1.0}
    scores = evaluate_space(np.random.default_rng(0).normal(size=(60, 4)), y, train, test)
    assert set(scores) == {"knn_top1", "linear_top1"} and all(0.0 <= v <= 1.0 for v in scores.values())


# --- k-means -----------------------------------------------------------------------------------------


def test_kmeans_finds_separated_clusters_deterministically():
    x, y = blobs(15, 3)
    clusters = kmeans_labels(x, 3, seed=0)
    assert clusters.dtype == np.int64 and clusters.shape == (45,)
    # The same partition up to renaming: each true class maps to exactly one cluster id.
    assert len({(a, b) for a, b in zip(y, clusters)}) == 3 and len(set(clusters)) == 3
    np.testing.assert_array_equal(clusters, kmeans_labels(x, 3, seed=0))


def test_kmeans_with_more_clusters_than_points():
    assert len(set(kmeans_labels(np.eye(3), 8).tolist())) == 3
    with pytest.raises(ValueError, match="k-means needs at least one point"):
        kmeans_labels(np.zeros((0, 2)), 2)
