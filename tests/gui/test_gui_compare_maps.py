"""The Compare page's maps on a real run: one mixed draw order in every map, Color by (class, k-means, split, kNN
mistakes), a legend that hides, shows and isolates classes in every map, the lasso, and the selection grid."""

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from ssl_studio.core.coloring import OPACITY, cluster_ids, crowding, draw_order
from ssl_studio.core.selection import inside_polygon, sample
from ssl_studio.gui.colors import point_brush
from ssl_studio.gui.compare import inspector
from ssl_studio.gui.compare.legend import COLOR_BY

SPACES = ("ssl", "supervised", "untrained", "pixels")


def choose(compare, qtbot, key: str) -> None:
    """Pick ``key`` in the Color by box, and wait for whatever it computes."""
    compare.legend.color_by.setCurrentIndex(list(COLOR_BY).index(key))
    job = compare.color_by.job
    if job is not None and job.running:
        with qtbot.waitSignal(job.ended, timeout=30_000):
            pass


def drawn_visible(m) -> np.ndarray:
    """Per image, whether the map draws it in color."""
    visible = np.zeros(len(m.coords), dtype=bool)
    visible[m.order] = m.points.data["visible"]
    return visible


def test_every_map_draws_the_classes_mixed_in_one_order(window, drive, tiny_run):
    compare = drive.open_run(window, tiny_run)
    labels = compare.linked.labels
    n = len(labels)
    assert list(labels) == sorted(labels)  # the folder lists its images class after class
    for space in SPACES:
        m = compare.maps[space]
        assert np.array_equal(m.order, draw_order(n))  # the same order in every map
        np.testing.assert_array_equal(m.points.data["x"], m.coords[m.order, 0])
        level = crowding(m.coords)
        expected = [point_brush(m.coloring.color(int(labels[i])), OPACITY[level[i]]) for i in m.order]
        assert all(a is b for a, b in zip(m.points.data["brush"], expected))
    last_third = labels[draw_order(n)[-n // 3:]]
    assert len(set(last_third)) == 3  # drawn over the rest: all three classes, not the folder's last


def test_clicking_the_legend_hides_a_class_everywhere_and_a_double_click_shows_it_alone(window, drive, qtbot,
                                                                                         tiny_run):
    compare = drive.open_run(window, tiny_run)
    legend, labels = compare.legend, compare.linked.labels
    assert [b.text() for b in legend.buttons] == [f"{name} (12)" for name in compare.linked.class_names]
    with qtbot.waitSignal(legend.hiddenChanged):
        qtbot.mouseClick(legend.buttons[1], Qt.MouseButton.LeftButton)
    for space in SPACES:
        assert np.array_equal(drawn_visible(compare.maps[space]), labels != 1), space
    assert not legend.buttons[1].isChecked() and legend.show_all.isVisible()
    with qtbot.waitSignal(legend.hiddenChanged):
        qtbot.mouseDClick(legend.buttons[2], Qt.MouseButton.LeftButton)
    for space in SPACES:
        assert np.array_equal(drawn_visible(compare.maps[space]), labels == 2), space
    assert [b.isChecked() for b in legend.buttons] == [False, False, True]
    # Selecting the whole map takes only what is drawn.
    m = compare.maps["ssl"]
    with qtbot.waitSignal(m.selected):
        m.view_box.rectSelected.emit(m.view_box.viewRect())
    assert np.array_equal(compare.linked.selection, np.flatnonzero(labels == 2))
    qtbot.mouseClick(legend.show_all, Qt.MouseButton.LeftButton)
    compare.selection_bar.clear_button.click()
    for space in SPACES:
        assert drawn_visible(compare.maps[space]).all()
    assert not legend.show_all.isVisible()


def test_color_by_split_mistakes_and_clusters(window, drive, qtbot, tiny_run):
    compare = drive.open_run(window, tiny_run)
    split = json.loads((tiny_run / "split.json").read_text())
    metrics = json.loads((tiny_run / "metrics.json").read_text())["embeddings"]
    test = np.array(split["test"])
    choose(compare, qtbot, "split")
    for space in SPACES:
        ids = compare.maps[space].coloring.ids
        assert np.array_equal(np.flatnonzero(ids == 1), test)
    assert [b.text() for b in compare.legend.buttons] == [f"train ({len(split['train'])})",
                                                          f"held out ({len(test)})"]
    choose(compare, qtbot, "mistakes")
    wrong_anywhere = 0
    for space in SPACES:
        m = compare.maps[space]
        counts = m.coloring.counts()
        wrong = counts[2]
        assert counts[1] + wrong == len(test) and wrong == round((1 - metrics[space]["knn_top1"]) * len(test))
        assert f"{wrong} wrong" in m.title.text()
        assert set(m.order[len(m.order) - wrong:]) == set(np.flatnonzero(m.coloring.ids == 2))  # on top
        # Every mistake and nothing else is drawn in the mistakes' red (at whatever opacity its crowding gives).
        red = m.coloring.color(2).lower()
        drawn_red = {int(i) for i, b in zip(m.order, m.points.data["brush"]) if b.color().name() == red}
        assert drawn_red == set(np.flatnonzero(m.coloring.ids == 2).tolist()) and len(drawn_red) == wrong
        wrong_anywhere += wrong
    assert wrong_anywhere > 0
    assert [b.text() for b in compare.legend.buttons] == ["train", "held out, kNN right", "held out, kNN wrong"]
    with qtbot.waitSignal(compare.legend.hiddenChanged):  # only the mistakes, in every map
        qtbot.mouseDClick(compare.legend.buttons[2], Qt.MouseButton.LeftButton)
    for space in SPACES:
        m = compare.maps[space]
        assert np.array_equal(drawn_visible(m), m.coloring.ids == 2)
    choose(compare, qtbot, "cluster")  # a labeled run's clusters are computed when asked for
    expected = cluster_ids(compare.embeddings, seed=0)
    for space in SPACES:
        assert np.array_equal(compare.maps[space].coloring.ids, expected)
        assert "wrong" not in compare.maps[space].title.text()
        assert drawn_visible(compare.maps[space]).all()  # new groups: none hidden
    assert compare.legend.buttons[0].text().startswith("cluster 1")
    choose(compare, qtbot, "class")
    assert all(np.array_equal(compare.maps[s].coloring.ids, compare.linked.labels) for s in SPACES)


def test_the_lasso_selects_in_every_map_and_the_grid_counts_each_class(window, drive, qtbot, tiny_run,
                                                                       monkeypatch):
    monkeypatch.setattr(inspector, "SELECTION_SHOWN", 10)
    compare = drive.open_run(window, tiny_run)
    compare.lasso_button.click()
    assert all(m.view_box.tool == "lasso" for m in compare.maps.values())
    m = compare.maps["pixels"]
    center, radius = m.coords.mean(axis=0), np.abs(m.coords - m.coords.mean(axis=0)).max() * 0.7
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    polygon = center + radius * np.c_[np.cos(angles), np.sin(angles)]
    expected = np.flatnonzero(inside_polygon(m.coords, polygon))
    assert 10 < len(expected) < len(m.coords)
    with qtbot.waitSignal(m.selected):
        m.view_box.lassoSelected.emit(polygon)
    for space in SPACES:
        assert np.array_equal(compare.maps[space].selection_indices(), expected)
    bar = compare.selection_bar
    rows = [bar.model.dataset_index(r) for r in range(bar.model.rowCount())]
    assert rows == list(sample(expected, 10))  # a seeded sample of the selection
    text = bar.label.text()
    assert f"{len(expected)} image(s)" in text and "10 of them" in text
    counts = np.bincount(compare.linked.labels[expected], minlength=3)
    for name, count in zip(compare.linked.class_names, counts):
        assert (f"{name} <b>{count}</b>" in text) == bool(count)
    compare.pan_button.click()
    assert all(m.view_box.tool == "pan" for m in compare.maps.values())


@pytest.mark.parametrize("key", ["split", "mistakes", "class"])
def test_an_unlabeled_run_offers_only_clusters(window, drive, tiny_run, key):
    compare = drive.open_run(window, tiny_run)
    compare.color_by.reset(None, None)  # what a folder without classes gets
    item = compare.legend.color_by.model().item(list(COLOR_BY).index(key))
    assert not item.isEnabled() and compare.legend.choice() == "cluster"
