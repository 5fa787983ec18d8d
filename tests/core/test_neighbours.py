"""Nearest neighbours by cosine similarity, as the Compare page shows them."""

import numpy as np
import pytest

from ssl_studio.core.neighbours import NEIGHBOURS, CosineNeighbours, MapNeighbours, same_label


def brute_force(x, index, k):
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit[index]
    sims[index] = -np.inf
    return np.argsort(-sims, kind="stable")[:k], sims


def test_the_closest_images_come_first_and_the_image_itself_is_left_out():
    x = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    neighbours = CosineNeighbours(x)
    for index in (0, 17, 199):
        near = neighbours.of(index)
        expected, sims = brute_force(x, index, NEIGHBOURS)
        assert len(near) == NEIGHBOURS and index not in near
        assert np.allclose(sims[near], sims[expected])  # the same similarities (ties in any order)
        assert np.all(np.diff(sims[near]) <= 1e-6)  # closest first


def test_scale_does_not_matter_and_zero_rows_do_not_break_it():
    x = np.array([[1, 0], [10, 0.1], [0, 1], [0, 0], [-1, 0]], dtype=np.float32)
    near = CosineNeighbours(x).of(0, k=4)
    assert near[0] == 1 and near[-1] == 4
    assert len(CosineNeighbours(x).of(3, k=2)) == 2  # a zero embedding has neighbours too, without NaN trouble


def test_k_is_capped_by_the_images_there_are():
    x = np.eye(3, dtype=np.float32)
    assert sorted(CosineNeighbours(x).of(0, k=10)) == [1, 2]
    assert len(CosineNeighbours(x[:1]).of(0)) == 0


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="images, dimensions"):
        CosineNeighbours(np.zeros(5))
    with pytest.raises(IndexError, match="not among the 3 images"):
        CosineNeighbours(np.eye(3)).of(3)


def test_same_label_counts_the_neighbours_of_the_same_class():
    labels = np.array([0, 0, 1, 0, 1])
    assert same_label(labels, 0, np.array([1, 2, 3])) == 2
    assert same_label(labels, 2, np.array([4])) == 1


def test_map_neighbours_are_the_nearest_points_of_the_map():
    line = np.array([[0, 0], [1, 0], [3, 0], [7, 0], [15, 0]], dtype=float)
    assert list(MapNeighbours(line).of(2, k=2)) == [1, 0]  # 2 and 3 away; image 3 is 4 away
    assert sorted(MapNeighbours(line).of(4, k=10)) == [0, 1, 2, 3]
    twins = np.array([[0, 0], [0, 0], [5, 0]], dtype=float)
    assert list(MapNeighbours(twins).of(0, k=1)) == [1] and list(MapNeighbours(twins).of(1, k=1)) == [0]
    with pytest.raises(IndexError, match="not among the 3 images"):
        MapNeighbours(twins).of(3)
