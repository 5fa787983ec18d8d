import re
from pathlib import Path

import numpy as np
import pytest

from ssl_studio.core.alignment import (MapSide, agreement_coloring, align, final_side, moment_sides, moved_most,
                                       neighbour_agreement, versus)


def _turn(degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


@pytest.mark.parametrize("mirror", [False, True])
def test_a_turned_scaled_shifted_copy_aligns_back_exactly(mirror):
    target = np.random.default_rng(0).normal(size=(30, 2))
    moving = 3.5 * target @ _turn(70) + [10.0, -4.0]
    if mirror:
        moving[:, 0] *= -1
    np.testing.assert_allclose(align(moving, target), target, atol=1e-10)


def test_align_refuses_maps_of_different_images_and_a_map_on_one_spot():
    with pytest.raises(ValueError, match="same images"):
        align(np.zeros((4, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="one spot"):
        align(np.ones((4, 2)), np.arange(8.0).reshape(4, 2))


def test_a_run_agrees_with_itself_on_every_neighbour():
    x = np.random.default_rng(1).normal(size=(50, 8))
    np.testing.assert_array_equal(neighbour_agreement(x, x.copy()), np.ones(50))


def test_agreement_is_cosine_so_each_rows_length_does_not_matter():
    x = np.random.default_rng(2).normal(size=(40, 6))
    stretched = x * np.random.default_rng(3).uniform(0.1, 10, size=(40, 1))
    np.testing.assert_array_equal(neighbour_agreement(x, stretched), np.ones(40))
    assert neighbour_agreement(x, stretched, metric_a="euclidean", metric_b="euclidean").min() < 1


def test_agreement_of_a_hand_built_case():
    # Two groups on a line, {0, 1, 2} and {3, 4, 5}; in b images 2 and 3 trade places. With 2 neighbours:
    # a: 0 {1, 2}, 1 {0, 2}, 2 {1, 0}, 3 {4, 5}, 4 {3, 5}, 5 {4, 3}
    # b: 0 {1, 3}, 1 {0, 3}, 3 {1, 0}, 2 {4, 5}, 4 {2, 5}, 5 {4, 2}
    a = np.array([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [12, 0]], dtype=float)
    b = np.array([[0, 0], [1, 0], [10, 0], [2, 0], [11, 0], [12, 0]], dtype=float)
    agreement = neighbour_agreement(a, b, k=2, metric_a="euclidean", metric_b="euclidean")
    np.testing.assert_array_equal(agreement, [0.5, 0.5, 0, 0, 0.5, 0.5])
    np.testing.assert_array_equal(moved_most(agreement), [2, 3, 0, 1, 4, 5])
    np.testing.assert_array_equal(moved_most(agreement, 3), [2, 3, 0])


def test_few_images_compare_as_many_neighbours_as_there_are_others():
    a = np.array([[0, 0], [1, 0], [5, 0]], dtype=float)
    np.testing.assert_array_equal(neighbour_agreement(a, a, metric_a="euclidean", metric_b="euclidean"), np.ones(3))
    with pytest.raises(ValueError, match="same images"):
        neighbour_agreement(a, a[:2])


def test_agreement_colors_fall_in_five_bands_moved_on_top():
    coloring = agreement_coloring(np.array([0.0, 0.19, 0.2, 0.55, 0.8, 1.0]))
    np.testing.assert_array_equal(coloring.ids, [0, 0, 1, 2, 4, 4])
    assert coloring.names[0] == "under 20 % kept" and coloring.names[4] == "80–100 % kept"
    assert coloring.raised == (0, 1)


def _side(name, root, paths, coords, features=None):
    coords = np.asarray(coords, dtype=float)
    return MapSide(Path(name), name, Path(root), 32, list(paths), None, [], coords,
                   coords if features is None else features, "euclidean")


def test_versus_lines_up_the_shared_images_whatever_their_order(tmp_path):
    coords = np.random.default_rng(4).normal(size=(12, 2))
    paths = [f"{i}.png" for i in range(12)]
    a = _side("a", tmp_path, paths, coords)
    # b holds images 2..11 only, in reverse order, its map turned, mirrored, scaled and shifted.
    rows = np.arange(11, 1, -1)
    moved = 0.5 * coords[rows] @ _turn(-120) * [1, -1] + 3
    b = _side("b", tmp_path, [paths[i] for i in rows], moved)
    result = versus(a, b, k=3)
    np.testing.assert_array_equal(result.rows_a, np.arange(2, 12))
    np.testing.assert_array_equal(result.rows_b, np.arange(9, -1, -1))
    assert result.paths == paths[2:]
    np.testing.assert_allclose(result.coords_b, coords[2:], atol=1e-10)
    np.testing.assert_array_equal(result.agreement, np.ones(10))  # the same map, so the same neighbours


def test_versus_refuses_two_runs_of_different_data_folders(tmp_path):
    a = _side("a", tmp_path / "one", ["x.png", "y.png", "z.png"], np.eye(3)[:, :2])
    b = _side("b", tmp_path / "two", ["x.png", "y.png", "z.png"], np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="same images. Pick two runs of one folder"):
        versus(a, b)
    c = _side("c", tmp_path / "one", ["x.png", "q.png", "r.png"], np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="share 1 image"):
        versus(a, c)


def test_a_finished_run_against_itself_and_its_moments(finished_runs):
    runs, _ = finished_runs
    data, run = runs["labeled"]
    side = final_side(run)
    assert side.metric == "cosine" and side.features.shape[0] == len(side.paths) == side.coords.shape[0]
    result = versus(side, final_side(run))
    np.testing.assert_allclose(result.coords_b, result.coords_a, atol=1e-8)
    np.testing.assert_array_equal(result.agreement, np.ones(len(side.paths)))
    moments = moment_sides(run)
    assert moments and all(m.metric == "euclidean" and len(m.paths) == len(m.coords) for m in moments)
    assert set(moments[0].paths) <= set(side.paths)
    assert re.fullmatch(r"\d+ s \(step [\d,]+\)", moments[0].moment)  # when it was taken depends on the machine
    assert moments[0].title.endswith(" after " + moments[0].moment)
    other_data, other_run = runs["unlabeled"]
    with pytest.raises(ValueError, match="same images"):
        versus(side, final_side(other_run))


def test_the_shared_images_come_from_their_data_folder(finished_runs, drain):
    from ssl_studio.core.alignment import shared_images
    from ssl_studio.core.data import load_folder as load

    runs, _ = finished_runs
    data, run = runs["labeled"]
    side = final_side(run)
    result = versus(side, side)
    dataset = load(data, side.resolution)
    progress, images = drain(shared_images(result))  # read again from the folder
    assert progress and images.shape[0] == len(result.paths)
    where = {p: i for i, p in enumerate(dataset.paths)}
    np.testing.assert_array_equal(images.numpy(), dataset.images[[where[p] for p in result.paths]].numpy())
    progress, same = drain(shared_images(result, dataset))  # the session's open folder: nothing to read
    assert progress == [] and np.array_equal(same.numpy(), images.numpy())
    gone = MapSide(side.run, side.title, data.parent / "gone", side.resolution, side.paths, side.labels,
                   side.class_names, side.coords, side.features, side.metric)
    assert drain(shared_images(versus(gone, gone)))[1] is None
