"""A map of many points: drawn in one seeded order across classes with opacity by crowding, hover through the
KD-tree without redrawing the points, selection by rectangle or lasso, hidden groups."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from ssl_studio.core.coloring import OPACITY, Coloring, crowding, draw_order
from ssl_studio.core.selection import inside_polygon
from ssl_studio.gui.colors import point_brush
from ssl_studio.gui.scatter_map import HOVER_RADIUS_PX, ScatterMap

N = 20_000
NAMES = [f"class {k}" for k in range(10)]


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


def make_map(qtbot, coords, coloring) -> ScatterMap:
    m = ScatterMap("ssl")
    qtbot.addWidget(m)
    m.resize(640, 640)
    m.show()
    qtbot.waitExposed(m)
    m.set_points(coords, coloring)
    m.plot.viewport().repaint()
    return m


@pytest.fixture
def labels():
    return np.sort(np.random.default_rng(0).integers(0, 10, N))  # class after class, as a folder lists them


@pytest.fixture
def big_map(qtbot, painted, labels):
    rng = np.random.default_rng(0)
    coords = rng.normal(scale=6, size=(10, 2))[labels] + rng.normal(size=(N, 2))
    return make_map(qtbot, coords, Coloring.by_class(labels, NAMES))


def pixels(m) -> np.ndarray:
    """The map's viewport as drawn, (H, W, 3) uint8: a copy, since a view of constBits() reads the QImage's memory
    after the image is freed (the allocator's bookkeeping then shows as stray top-left pixels)."""
    image = m.plot.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    row = image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), row)[:, :image.width() * 3] \
        .reshape(image.height(), image.width(), 3).copy()


def share_of(image: np.ndarray, color: str, tolerance: int = 40) -> float:
    """The fraction of pixels within ``tolerance`` of a "#rrggbb" color."""
    rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(image.astype(int) - rgb).max(axis=2) <= tolerance).mean())


def nearest_on_screen(m, pos: QPoint, shown=None) -> int:
    """The brute-force answer: the distance in viewport pixels from the mouse to every point, the closest within
    the radius."""
    p = m.view_box.mapSceneToView(m.plot.mapToScene(pos))
    d2 = (((m.coords - [p.x(), p.y()]) / m.view_box.viewPixelSize()) ** 2).sum(axis=1)
    if shown is not None:
        d2[~shown] = np.inf
    best = int(np.argmin(d2))
    return best if d2[best] <= HOVER_RADIUS_PX ** 2 else -1


def test_points_are_drawn_in_one_seeded_order_with_a_brush_per_class_and_crowding(big_map, labels):
    m = big_map
    order = m.order
    assert np.array_equal(order, draw_order(N))  # every map of these N images draws them in this order
    drawn = m.points.data
    np.testing.assert_array_equal(drawn["x"], m.coords[order, 0])
    np.testing.assert_array_equal(drawn["y"], m.coords[order, 1])
    level = crowding(m.coords)
    expected = [point_brush(m.coloring.color(int(labels[i])), OPACITY[level[i]]) for i in order]
    assert all(a is b for a, b in zip(drawn["brush"], expected))  # shared brush objects: one sprite each
    assert len({id(b) for b in drawn["brush"]}) <= 10 * len(OPACITY)
    # Painted last, over everything: points of every class, not the last class of the folder.
    assert np.bincount(labels[order[-2000:]], minlength=10).min() > 100
    assert level.max() > 0 and level.min() == 0  # the clusters' cores are see-through, their fringes not


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
        with qtbot.waitSignal(m.hovered, timeout=10_000) as hovered:
            qtbot.mouseMove(m.plot.viewport(), pos)
        assert hovered.args[0] == expected >= 0
        m.show_hover(hovered.args[0])
        qtbot.waitUntil(lambda: m.hover in painted)
    assert tree.queries >= 5
    # The 20k points come from their pixmap cache: a hover redraws only the highlight.
    assert m.points not in painted and m.ghost not in painted


def test_where_the_mouse_stops_is_answered_however_fast_it_moved(big_map, qtbot):
    """QTest's moves come microseconds apart, far faster than pyqtgraph's scene passes moves on."""
    m = big_map
    hovered = []
    m.hovered.connect(hovered.append)
    stops = [m.plot.mapFromScene(m.scene_pos_of(int(i))) for i in np.random.default_rng(2).integers(0, N, 6)]
    for pos in stops:
        qtbot.mouseMove(m.plot.viewport(), pos)
    expected = nearest_on_screen(m, stops[-1])
    qtbot.waitUntil(lambda: hovered and hovered[-1] == expected >= 0)


def test_selecting_shows_exactly_the_selected_points_over_a_grey_copy(big_map, labels):
    m = big_map
    chosen = np.arange(0, N, 7)
    m.show_selection(chosen)
    assert np.array_equal(m.selection_indices(), chosen) and m.ghost.isVisible()
    # What the points item draws, position by position in the draw order.
    assert np.array_equal(np.sort(m.order[m.points.data["visible"]]), chosen)
    m.set_coloring(Coloring.by_cluster(labels[::-1].copy()))  # new colors (k-means clusters) keep the selection
    assert np.array_equal(m.selection_indices(), chosen)
    m.show_selection([])
    assert len(m.selection_indices()) == 0 and not m.ghost.isVisible() and m.points.data["visible"].all()


def test_new_colors_are_painted(big_map, labels):
    m = big_map
    assert share_of(pixels(m), "#1f77b4") > 0.002  # class 0's blue is on the map
    red = Coloring(np.zeros(N, dtype=np.int64), ["all"], ("#d62728",))
    m.set_coloring(red)
    m.plot.viewport().repaint()
    image = pixels(m)
    assert share_of(image, "#d62728") > 0.02 and share_of(image, "#1f77b4") == 0


def test_a_hidden_class_is_not_drawn_hovered_or_selected(big_map, labels, qtbot):
    m = big_map
    m.set_hidden({3})
    hidden = labels == 3
    assert np.array_equal(m.points.data["visible"], ~hidden[m.order])
    m.show_selection(np.arange(N))  # a selection of everything draws the hidden class neither in color nor grey
    assert not m.points.data["visible"][hidden[m.order]].any() and not m.ghost.data["visible"][hidden[m.order]].any()
    m.show_selection([])
    index = int(np.flatnonzero(hidden)[len(np.flatnonzero(hidden)) // 2])
    pos = m.plot.mapFromScene(m.scene_pos_of(index))
    with qtbot.waitSignal(m.hovered, timeout=10_000) as hovered:
        qtbot.mouseMove(m.plot.viewport(), pos)
    assert hovered.args[0] == nearest_on_screen(m, pos, shown=~hidden) != index
    whole = m.view_box.viewRect()
    with qtbot.waitSignal(m.selected) as selected:
        m.view_box.rectSelected.emit(whole)
    assert np.array_equal(selected.args[0], np.flatnonzero(~hidden))
    m.set_hidden(())
    assert m.points.data["visible"].all()


def test_a_drawn_lasso_selects_the_points_inside_it(big_map, qtbot, monkeypatch):
    m = big_map
    m.view_box.tool = "lasso"
    # pyqtgraph drops mouse moves that come faster than its rate limit; QTest's come all at once.
    monkeypatch.setitem(pg.CONFIG_OPTIONS, "mouseRateLimit", 0)
    viewport = m.plot.viewport()
    w, h = viewport.width(), viewport.height()
    corners = [QPoint(w // 5, h // 5), QPoint(4 * w // 5, h // 3), QPoint(w // 2, 4 * h // 5)]
    path = [a + (b - a) * (t / 10) for a, b in zip(corners, corners[1:] + corners[:1]) for t in range(10)]
    with qtbot.waitSignal(m.view_box.lassoSelected, timeout=5000) as lasso, \
            qtbot.waitSignal(m.selected, timeout=5000) as selected:
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=path[0])
        for point in path[1:] + [path[0]]:
            qtbot.mouseMove(viewport, point)
        assert len(m.view_box.lasso_line.getData()[0]) > 20  # the loop is drawn while dragging
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=path[0])
    polygon = lasso.args[0]
    # The lasso went through the triangle's corners (in view coordinates) ...
    for corner in corners:
        p = m.view_box.mapSceneToView(m.plot.mapToScene(corner))
        assert np.min(np.hypot(*(polygon - [p.x(), p.y()]).T)) < 2 * max(m.view_box.viewPixelSize())
    # ... and selected what lies inside it: a good share of the map, not all of it.
    inside = np.flatnonzero(inside_polygon(m.coords, polygon))
    assert np.array_equal(selected.args[0], inside) and 0.05 * N < len(inside) < 0.9 * N
    drawn = m.view_box.lasso_line.getData()[0]
    assert drawn is None or len(drawn) == 0  # and gone once released
