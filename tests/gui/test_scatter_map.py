"""A map of many points: hover finds the nearest point through the KD-tree, and never redraws the points."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint

from ssl_studio.gui.colors import class_brush
from ssl_studio.gui.scatter_map import HOVER_RADIUS_PX, ScatterMap

N = 20_000


class CountingTree:
    """The map's KD-tree, counting the queries made of it."""

    def __init__(self, tree) -> None:
        self.tree, self.queries = tree, 0

    def query_ball_point(self, *args, **kwargs):
        self.queries += 1
        return self.tree.query_ball_point(*args, **kwargs)


@pytest.fixture
def painted(monkeypatch) -> list:
    """The scatter items painted, in order. Patched before any item exists: PySide looks a Python override up once."""
    items = []
    paint = pg.ScatterPlotItem.paint
    monkeypatch.setattr(pg.ScatterPlotItem, "paint", lambda item, *a: (items.append(item), paint(item, *a))[1])
    return items


@pytest.fixture
def big_map(qtbot, painted):
    m = ScatterMap("ssl")
    qtbot.addWidget(m)
    m.resize(640, 640)
    m.show()
    qtbot.waitExposed(m)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, N)
    m.set_points(rng.normal(scale=6, size=(10, 2))[labels] + rng.normal(size=(N, 2)),
                 [class_brush(int(k)) for k in labels])
    m.plot.viewport().repaint()
    return m


def nearest_on_screen(m, pos: QPoint) -> int:
    """The brute-force answer: every point mapped to viewport pixels, the closest to pos within the radius."""
    pixels = np.array([[p.x(), p.y()] for p in (m.plot.mapFromScene(m.scene_pos_of(i)) for i in range(N))])
    d2 = ((pixels - [pos.x(), pos.y()]) ** 2).sum(axis=1)
    best = int(np.argmin(d2))
    return best if d2[best] <= HOVER_RADIUS_PX ** 2 + 2 else -1  # + 2: Qt rounds the mapped points


def test_hover_answers_with_the_nearest_point_through_the_spatial_index(big_map, painted, qtbot, monkeypatch):
    m = big_map
    tree = CountingTree(m._tree)
    monkeypatch.setattr(m, "_tree", tree)
    assert m.points in painted  # the first draw
    painted.clear()
    rng = np.random.default_rng(1)
    for index in rng.integers(0, N, 5):
        pos = m.plot.mapFromScene(m.scene_pos_of(int(index)))
        expected = nearest_on_screen(m, pos)
        with qtbot.waitSignal(m.hovered, timeout=2000) as hovered:
            qtbot.mouseMove(m.plot.viewport(), pos)
        assert hovered.args[0] == expected >= 0
        m.show_hover(hovered.args[0])
        qtbot.waitUntil(lambda: m.hover in painted)
    assert tree.queries >= 5
    # The 20k points come from their pixmap cache: a hover redraws only the highlight.
    assert m.points not in painted and m.ghost not in painted


def test_selecting_shows_exactly_the_selected_points_over_a_grey_copy(big_map):
    m = big_map
    chosen = np.arange(0, N, 7)
    m.show_selection(chosen)
    assert np.array_equal(m.selection_indices(), chosen) and m.ghost.isVisible()
    assert np.array_equal(np.flatnonzero(m.points.data["visible"]), chosen)  # what the points item draws
    m.set_brushes([class_brush(1)] * N)  # new colors (k-means clusters) keep the selection
    assert np.array_equal(m.selection_indices(), chosen)
    m.show_selection([])
    assert len(m.selection_indices()) == 0 and not m.ghost.isVisible() and m.points.data["visible"].all()
