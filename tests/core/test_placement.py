"""New images on a run's maps (core.placement): PCA by the run's own fit, UMAP by neighbours' positions."""

import numpy as np

from ssl_studio.core.pipeline import open_run
from ssl_studio.core.placement import neighbour_place, place


def test_the_runs_own_images_land_where_its_pca_map_has_them_and_its_knn_score_holds(finished_runs):
    _, run_dir = finished_runs[0]["labeled"]
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    loaded = open_run(run_dir)
    x = loaded.embeddings["ssl"]
    placed = place(loaded, "ssl", x)
    np.testing.assert_allclose(placed.coords["pca"], loaded.projections[("ssl", "pca")], atol=1e-4)
    assert (placed.nearest[:, 0] == np.arange(len(x))).all()  # each image's nearest is itself
    _, test = loaded.run.held_out_split(len(x))
    right = (placed.predicted[test] == loaded.labels[test]).mean()
    assert right == loaded.metrics["embeddings"]["ssl"]["knn_top1"]  # the same vote as the run's kNN score
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before  # nothing written to the run


def test_a_new_point_sits_at_its_neighbours_positions_weighted_by_similarity():
    run_x = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    run_coords = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    # cosine to the three: 1, 0, 0.7071; the two nearest are rows 0 and 2
    placed = neighbour_place(run_x, run_coords, np.array([[2, 0]], dtype=np.float32), k=2)
    np.testing.assert_allclose(placed, [[0, 10 * 0.70711 / 1.70711]], atol=1e-4)
