"""A lasso's points (even-odd rule, any polygon) and the seeded sample of a selection the page shows."""

import numpy as np

from ssl_studio.core.selection import inside_polygon, sample


def test_a_concave_lasso_holds_exactly_the_points_inside_it():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 3, size=(5000, 2))
    # An L: the unit square [0, 2] x [0, 2] without its top-right quarter.
    l_shape = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], dtype=float)
    x, y = points[:, 0], points[:, 1]
    expected = (x > 0) & (x < 2) & (y > 0) & (y < 2) & ~((x > 1) & (y > 1))
    assert np.array_equal(inside_polygon(points, l_shape), expected)
    assert np.array_equal(inside_polygon(points, l_shape[::-1]), expected)  # either way round


def test_a_lasso_of_fewer_than_three_points_holds_nothing():
    points = np.zeros((4, 2))
    assert not inside_polygon(points, np.array([[-1.0, -1.0], [1.0, 1.0]])).any()
    assert inside_polygon(np.zeros((0, 2)), np.array([[0, 0], [1, 0], [0, 1]])).shape == (0,)


def test_a_large_selection_is_sampled_with_a_seed():
    chosen = np.arange(10, 5000, 3)
    shown = sample(chosen, 200)
    assert len(shown) == 200 and np.isin(shown, chosen).all() and len(set(shown)) == 200
    assert np.array_equal(shown, np.sort(shown)) and np.array_equal(shown, sample(chosen, 200))
    assert not np.array_equal(shown, sample(chosen, 200, seed=1))
    assert np.array_equal(sample([7, 3, 5], 200), [3, 5, 7])  # few: all of them
