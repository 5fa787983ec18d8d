"""Map colors: classes, k-means clusters computed once by the pipeline (stored in the run and read back), the
split and each space's kNN mistakes; the order and opacity points are drawn with."""

import shutil

import numpy as np
import pytest

from ssl_studio.core.coloring import (MAX_CLUSTERS, OPACITY, Coloring, cluster_ids, crowding, draw_order,
                                     knn_mistakes)
from ssl_studio.core.evaluate import kmeans_labels
from ssl_studio.core.events import ClustersReady, ProjectionReady
from ssl_studio.core.pipeline import open_run
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.runs import CLUSTERS, RunError


def blobs(n_per=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0, 0, 10], [10, 0, 0, 0], [0, 10, 0, 0]], dtype=np.float32)
    return np.concatenate([c + rng.normal(scale=0.1, size=(n_per, 4)) for c in centers]).astype(np.float32)


def test_clusters_come_from_the_ssl_space_or_else_the_pixels():
    ssl, pixels = blobs(seed=0), blobs(seed=1)[::-1].copy()
    ids = cluster_ids({"ssl": ssl, "pixels": pixels}, seed=3)
    assert ids.dtype == np.int64 and ids.shape == (30,)
    assert np.array_equal(ids, kmeans_labels(ssl, n_clusters=MAX_CLUSTERS, seed=3))
    assert np.array_equal(cluster_ids({"pixels": pixels, "untrained": ssl}, seed=3),
                          kmeans_labels(pixels, n_clusters=MAX_CLUSTERS, seed=3))
    assert cluster_ids({"ssl": ssl[:3]}, seed=0).max() <= 2  # never more clusters than images
    with pytest.raises(ValueError, match="SSL or the raw-pixel space"):
        cluster_ids({"untrained": ssl}, seed=0)


def test_a_coloring_names_counts_and_summarizes_its_groups():
    by_cluster = Coloring.by_cluster([2, 0, 2, 2, 1, 0])
    assert by_cluster.names == ["cluster 1", "cluster 2", "cluster 3"]
    assert by_cluster.name(0) == "cluster 3"
    assert by_cluster.counts().tolist() == [2, 1, 3]
    assert by_cluster.counts([0, 1, 2]).tolist() == [1, 0, 2]
    assert by_cluster.most_common([0, 1, 2, 3]) == [(2, 3), (0, 1)]  # empty groups left out
    assert by_cluster.most_common([], n=4) == []
    by_class = Coloring.by_class(np.array([1, 0, 1]), ["cat", "dog"])
    assert [by_class.name(i) for i in range(3)] == ["dog", "cat", "dog"]
    assert by_class.counts().tolist() == [1, 2]
    groups = Coloring.by_cluster(np.arange(6) % 6).most_common(np.arange(6), n=4)
    assert len(groups) == 4 and all(count == 1 for _, count in groups)


def test_compare_computes_the_clusters_once_stores_them_and_colors_by_them(finished_runs):
    runs, events = finished_runs
    ready = [e for e in events["unlabeled"] if isinstance(e, ClustersReady)]
    assert len(ready) == 1
    order = events["unlabeled"].index(ready[0])
    assert order < next(i for i, e in enumerate(events["unlabeled"]) if isinstance(e, ProjectionReady))
    run = runs["unlabeled"][1]
    stored = np.load(run / CLUSTERS, allow_pickle=False)
    assert np.array_equal(stored, ready[0].ids) and len(stored) == 24
    embeddings = {s: np.load(run / "embeddings" / f"{s}.npy") for s in ("ssl", "pixels")}
    assert np.array_equal(stored, cluster_ids(embeddings, seed=0))
    assert np.array_equal(open_run(run).clusters, stored)
    # A labeled run is colored by its classes: no clusters.
    assert not any(isinstance(e, ClustersReady) for e in events["labeled"])
    assert not (runs["labeled"][1] / CLUSTERS).exists() and open_run(runs["labeled"][1]).clusters is None


def test_a_run_made_before_clusters_were_stored_gets_the_same_colors(finished_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_runs[0]["unlabeled"][1], run)
    stored = np.load(run / CLUSTERS)
    (run / CLUSTERS).unlink()
    assert np.array_equal(open_run(run).clusters, stored)
    assert not (run / CLUSTERS).exists()  # opening writes nothing


class Payload:
    def __reduce__(self):
        return print, ("unpickled",)


@pytest.mark.parametrize("bad", {
    "too short": np.zeros(23, np.int64),
    "out of range": np.full(24, MAX_CLUSTERS, np.int64),
    "negative": np.full(24, -1, np.int64),
    "floats": np.zeros(24, np.float32),
    "two-dimensional": np.zeros((24, 1), np.int64),
    "objects": np.array([Payload()] * 24, dtype=object),
}.items(), ids=lambda item: item[0])
def test_a_tampered_clusters_file_is_refused(finished_runs, tmp_path, bad):
    run = tmp_path / "run"
    shutil.copytree(finished_runs[0]["unlabeled"][1], run)
    np.save(run / CLUSTERS, bad[1], allow_pickle=True)
    with pytest.raises(RunError, match=CLUSTERS.replace(".", r"\.")):
        open_run(run)


def test_points_are_drawn_in_one_seeded_order_mixing_the_classes():
    labels = np.repeat(np.arange(8), 500)  # stored class after class, as a folder scan lists them
    order = draw_order(len(labels))
    assert sorted(order) == list(range(len(labels)))
    assert np.array_equal(order, draw_order(len(labels)))  # every map of these images draws them alike
    assert not np.array_equal(order, draw_order(len(labels), seed=1))
    last = labels[order[-500:]]  # what is painted over the rest: every class, not the last one
    assert np.bincount(last, minlength=8).min() > 30
    raised = labels == 3
    on_top = draw_order(len(labels), raised=raised)
    assert set(on_top[-500:]) == set(np.flatnonzero(raised))
    assert np.array_equal(on_top[:-500], order[~raised[order]])  # the others keep their order


def test_crowded_points_are_drawn_see_through():
    rng = np.random.default_rng(0)
    crowd = rng.normal(scale=0.01, size=(2000, 2))
    alone = np.array([[-50.0, -50.0], [50.0, 50.0], [50.0, -50.0]])
    levels = crowding(np.concatenate([crowd, alone]))
    assert levels.dtype == np.int64 and levels.min() >= 0 and levels.max() == len(OPACITY) - 1
    assert (levels[:2000] == len(OPACITY) - 1).all()  # a pile of points: the faintest
    assert (levels[2000:] == 0).all()  # points on their own stay opaque
    assert OPACITY[0] == 1.0 and list(OPACITY) == sorted(OPACITY, reverse=True)
    assert (crowding(np.array([[0.0, 0.0], [np.nan, 1.0]])) == 0).all()
    assert crowding(np.zeros((0, 2))).shape == (0,)


def test_the_split_coloring_names_train_and_held_out():
    coloring = Coloring.by_split(6, [1, 4])
    assert coloring.ids.tolist() == [0, 1, 0, 0, 1, 0]
    assert coloring.names == ["train", "held out"] and coloring.counts().tolist() == [4, 2]
    assert coloring.color(1) != coloring.color(0)
    assert Coloring.by_class([0, 1], ["a", "b"]).color(1) == "#ff7f0e"  # classes keep the palette


def test_the_knn_mistakes_are_those_the_score_counts(finished_runs):
    run = RunFolder.open(finished_runs[0]["labeled"][1])
    loaded = open_run(run.path)
    metrics = loaded.metrics["embeddings"]
    train, test = run.held_out_split(len(loaded.paths))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(loaded.paths)
    found = dict(knn_mistakes(loaded.embeddings, loaded.labels, train, test))
    assert set(found) == set(loaded.embeddings)
    for space, coloring in found.items():
        counts = coloring.counts()
        assert counts[0] == len(train) and counts[1] + counts[2] == len(test)
        assert counts[2] == round((1 - metrics[space]["knn_top1"]) * len(test)), space
        assert coloring.raised == (2,) and (coloring.ids[train] == 0).all()
        wrong = np.flatnonzero(coloring.ids == 2)
        assert set(coloring.draw_order()[len(loaded.paths) - len(wrong):]) == set(wrong)  # drawn on top
    assert any(c.counts()[2] for c in found.values())  # some space gets some wrong, so the counts were checked
    assert RunFolder.open(finished_runs[0]["unlabeled"][1]).held_out_split(24) is None


def test_a_kNN_mistake_is_a_held_out_image_voted_into_another_class():
    x = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [1, 0.05], [0.05, 1]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 1, 1])  # image 4 sits among class 0 but is labeled 1: a mistake
    coloring = Coloring.by_knn_mistakes(x, labels, [0, 1, 2, 3], [4, 5])
    assert coloring.ids.tolist() == [0, 0, 0, 0, 2, 1]
    assert coloring.name(4) == "held out, kNN wrong"
