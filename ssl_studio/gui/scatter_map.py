"""One 2-D map of an embedding space: a pyqtgraph scatter that stays interactive at 100k points.

All points are one ScatterPlotItem fed arrays in the seeded draw order of core.coloring (the same in every map of
the same images, so no class hides the others), with one shared QBrush per group and opacity, no pens. Points are
kept by image index everywhere else (coordinates, KD-tree, selection, hidden groups); only what is handed to the
item is in draw order. Hover does not use per-point items: the viewport's mouse moves are throttled and answered
by a KD-tree over the map's coordinates. A selection hides the points outside it (a visibility mask) over a grey
copy of all of them, so selecting never builds brushes; the hovered point and the neighbours are small separate
items. The points and the grey copy are cached as pixmaps at the device's resolution (Qt's DeviceCoordinateCache):
a hover repaints four maps from their caches instead of drawing 4 x 100k points again, and a pan scrolls the cache
(measured in BENCHMARKS.md, scale).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QFrame, QGraphicsItem, QLabel, QVBoxLayout, QWidget
from scipy.spatial import cKDTree
from superqt.utils import qthrottled

from ssl_studio.core.coloring import OPACITY, Coloring, crowding
from ssl_studio.core.selection import inside_polygon

from .colors import point_brush

HOVER_RADIUS_PX = 8
MIN_HEIGHT_PX = 220  # what a map asks for: a page that scrolls (Page.scrolls) gives it at least this much
POINT_SIZE = 5
GHOST_BRUSH = QBrush(QColor(215, 215, 215))  # the points outside a selection


class SelectViewBox(pg.ViewBox):
    """A ViewBox whose left drag selects: a rectangle (the "rect" tool, or Shift held with the "pan" tool) or a
    freehand lasso (the "lasso" tool)."""

    rectSelected = Signal(object)  # QRectF in view coordinates
    lassoSelected = Signal(object)  # (M, 2) np.ndarray: the lasso's corners in view coordinates

    def __init__(self) -> None:
        super().__init__()
        self.tool = "pan"  # "pan" | "rect" | "lasso"
        self._lasso: list[tuple[float, float]] = []
        self.lasso_line = pg.PlotCurveItem(pen=pg.mkPen("#1f2430", width=1.5, style=Qt.PenStyle.DashLine))
        self.lasso_line.setZValue(10)
        self.addItem(self.lasso_line, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (Qt API)
        tool = self.tool
        if tool == "pan" and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            tool = "rect"
        if ev.button() != Qt.MouseButton.LeftButton or tool == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if tool == "lasso":
            self._drag_lasso(ev)
        elif ev.isFinish():
            self.rbScaleBox.hide()
            rect = QRectF(ev.buttonDownPos(ev.button()), ev.pos()).normalized()
            self.rectSelected.emit(self.childGroup.mapRectFromParent(rect))
        else:
            self.updateScaleBox(ev.buttonDownPos(), ev.pos())

    def _drag_lasso(self, ev) -> None:
        if ev.isStart():
            self._lasso = [self._view_point(ev.buttonDownPos(ev.button()))]
        self._lasso.append(self._view_point(ev.pos()))
        corners = np.array(self._lasso + self._lasso[:1])
        if ev.isFinish():
            self.lasso_line.setData([], [])
            self.lassoSelected.emit(corners[:-1])
        else:
            self.lasso_line.setData(corners[:, 0], corners[:, 1])

    def _view_point(self, pos) -> tuple[float, float]:
        p = self.childGroup.mapFromParent(pos)
        return p.x(), p.y()


class MapPlot(pg.PlotWidget):
    """A plot that asks for MIN_HEIGHT_PX, which a scrolling page (Page.scrolls) gives every widget before sharing
    out the rest. A graphics view's own size hint is its scene's size, which follows the view: such a page would
    keep every size a map once had as what it prefers."""

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(MIN_HEIGHT_PX, MIN_HEIGHT_PX)


class ScatterMap(QWidget):
    hovered = Signal(int)  # dataset index under the mouse, -1 when none
    clicked = Signal(int)
    selected = Signal(object)  # np.ndarray of dataset indices inside a dragged rectangle or lasso

    def __init__(self, space: str, parent=None) -> None:
        super().__init__(parent)
        self.space = space
        self.coords: np.ndarray | None = None  # by image index, as everything but the points item
        self._tree: cKDTree | None = None
        self.coloring: Coloring | None = None
        self.order = np.zeros(0, dtype=np.int64)  # the image drawn at each position of the points item
        self._crowding = np.zeros(0, dtype=np.int64)
        self._hidden: frozenset[int] = frozenset()  # groups of the coloring not drawn
        self._shown = np.zeros(0, dtype=bool)  # per image: its group is not hidden
        self._selected: np.ndarray | None = None  # per image, while there is a selection

        # Wraps rather than widen the map when its scores and count of mistakes outgrow it.
        self.title = QLabel(objectName="mapTitle", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.view_box = SelectViewBox()
        self.view_box.rectSelected.connect(self._rect_selected)
        self.view_box.lassoSelected.connect(self._lasso_selected)
        self.plot = MapPlot(viewBox=self.view_box, background="w")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        # Map axes carry no units (UMAP/PCA coordinates), so hide them; equal aspect keeps distances honest.
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.view_box.setAspectLocked(True)

        self.points = pg.ScatterPlotItem(pxMode=True, size=POINT_SIZE, pen=None, hoverable=False)
        # Shown under the selected points while there is a selection. One brush: filling it costs about half of
        # what the points' per-point brushes cost (140 against 300 ms at 100k points).
        self.ghost = pg.ScatterPlotItem(pxMode=True, size=POINT_SIZE, pen=None, hoverable=False, brush=GHOST_BRUSH)
        self.neighbours = pg.ScatterPlotItem(pxMode=True, size=POINT_SIZE + 7, brush=None, symbol="s",
                                             pen=pg.mkPen("#d81b60", width=2))
        self.hover = pg.ScatterPlotItem(pxMode=True, size=16, brush=pg.mkBrush(255, 255, 255, 60),
                                        pen=pg.mkPen("#000000", width=2.5))
        for item in (self.ghost, self.points, self.neighbours, self.hover):
            self.plot.addItem(item)
        for item in (self.ghost, self.points):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.ghost.setZValue(-1)
        self.points.setZValue(0)
        self.neighbours.setZValue(2)
        self.hover.setZValue(3)

        self.placeholder = QLabel("Waiting for this map…", self.plot, objectName="mapPlaceholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # A thumbnail that follows the mouse: a child widget rather than a QToolTip, so it updates without
        # flicker and works under any platform plugin.
        self.preview = QFrame(self.plot, objectName="hoverPreview")
        self.preview_image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview_caption = QLabel(objectName="caption", alignment=Qt.AlignmentFlag.AlignCenter)
        preview_layout = QVBoxLayout(self.preview)
        preview_layout.setContentsMargins(4, 4, 4, 4)
        preview_layout.setSpacing(2)
        preview_layout.addWidget(self.preview_image)
        preview_layout.addWidget(self.preview_caption)
        self.preview.hide()

        self.plot.scene().sigMouseClicked.connect(self._mouse_clicked)
        self.plot.viewport().installEventFilter(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)

    # --- data -------------------------------------------------------------------------------------------------
    def set_points(self, coords: np.ndarray, coloring: Coloring | None = None) -> None:
        """Show (N, 2) coordinates, image i at coords[i], colored by ``coloring`` (None: all alike)."""
        coords = np.asarray(coords, dtype=np.float64)
        self.coords = coords
        self._tree = cKDTree(coords)
        self._crowding = crowding(coords)
        self.coloring = coloring or Coloring(np.zeros(len(coords), dtype=np.int64), [""])
        self._shown = ~np.isin(self.coloring.ids, list(self._hidden))
        self._selected = None
        self._draw_points()
        self.placeholder.hide()
        self.view_box.autoRange(padding=0.05)

    def set_coloring(self, coloring: Coloring) -> None:
        """New colors for the same images; the hidden groups and the selection stay."""
        if self.coords is None:
            return
        order = self.order
        self.coloring = coloring
        self._shown = ~np.isin(coloring.ids, list(self._hidden))
        if np.array_equal(coloring.draw_order(), order):
            self.points.setBrush(self._brushes())
            self._show_visible()
        else:  # raised groups (the kNN's mistakes) move to the top: the points are handed over again
            self._draw_points()

    def set_hidden(self, groups) -> None:
        """Draw nothing of these groups of the coloring (their points cannot be hovered or selected either)."""
        self._hidden = frozenset(int(k) for k in groups)
        if self.coords is not None:
            self._shown = ~np.isin(self.coloring.ids, list(self._hidden))
            self._show_visible()

    def _draw_points(self) -> None:
        self.order = self.coloring.draw_order()
        x, y = self.coords[self.order, 0], self.coords[self.order, 1]
        self.points.setData(x=x, y=y, brush=self._brushes(), pen=None, size=POINT_SIZE)
        self.ghost.setData(x=x, y=y)
        self._show_visible()

    def _brushes(self) -> list:
        """One brush per point in draw order, from a table of one shared QBrush per group and opacity."""
        table = np.empty((len(self.coloring.names), len(OPACITY)), dtype=object)
        for k in range(len(self.coloring.names)):
            for level, alpha in enumerate(OPACITY):
                table[k, level] = point_brush(self.coloring.color(k), alpha)
        return list(table[self.coloring.ids[self.order], self._crowding[self.order]])

    def _show_visible(self, ghost: bool = True) -> None:
        """The points of shown groups, and of those only the selected ones over the grey copy while there is a
        selection. ``ghost`` False: the hidden groups did not change, so the grey copy keeps its cached pixmap."""
        visible = self._shown if self._selected is None else self._shown & self._selected
        # pyqtgraph's setPointsVisible also looks every point's symbol up again (about 2 us a point, 200 ms at
        # 100k); visibility needs none of that, so the mask goes straight into the per-point field paint reads.
        self.points.data["visible"] = visible[self.order]
        self.points.update()
        if ghost:
            self.ghost.data["visible"] = self._shown[self.order]
            self.ghost.update()
        self.ghost.setVisible(self._selected is not None)

    def clear(self) -> None:
        self.coords = None
        self._tree = None
        self.coloring = None
        self._selected = None
        for item in (self.ghost, self.points, self.neighbours, self.hover):
            item.clear()
        self.ghost.hide()
        self.title.setText("")
        self.placeholder.show()

    def has_points(self) -> bool:
        return self.coords is not None

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.placeholder.resize(self.plot.size())


    # --- linked highlights ------------------------------------------------------------------------------------
    def _overlay(self, item: pg.ScatterPlotItem, indices, **style) -> bool:
        if self.coords is None or indices is None or len(indices) == 0:
            item.clear()
            return False
        indices = np.asarray(indices, dtype=np.int64)
        item.setData(x=self.coords[indices, 0], y=self.coords[indices, 1], **style)
        return True

    def show_hover(self, *indices: int) -> None:
        """Ring these images (a duplicate pair: both); -1 alone clears."""
        self._overlay(self.hover, [i for i in indices if i >= 0])

    def show_selection(self, indices) -> None:
        """Show only the selected points in their colors, the others in grey under them (nothing selected: all)."""
        if self.coords is None:
            return
        self._selected = None
        if indices is not None and len(indices) > 0:
            self._selected = np.zeros(len(self.coords), dtype=bool)
            self._selected[np.asarray(indices, dtype=np.int64)] = True
        self._show_visible(ghost=False)

    def selection_indices(self) -> np.ndarray:
        """The dataset indices drawn as selected, ascending."""
        if self.coords is None or not self.ghost.isVisible():
            return np.zeros(0, dtype=np.int64)
        return np.sort(self.order[self.points.data["visible"]])

    def show_neighbours(self, indices) -> None:
        self._overlay(self.neighbours, indices)

    # --- mouse ------------------------------------------------------------------------------------------------
    def point_at(self, scene_pos) -> int:
        """The dataset index of the point nearest ``scene_pos`` within HOVER_RADIUS_PX pixels, else -1."""
        if self._tree is None or not self.view_box.sceneBoundingRect().contains(scene_pos):
            return -1
        p = self.view_box.mapSceneToView(scene_pos)
        px_w, px_h = self.view_box.viewPixelSize()
        # A ball wide enough for the larger pixel side holds every candidate; then compare in pixels.
        candidates = np.asarray(self._tree.query_ball_point([p.x(), p.y()], r=HOVER_RADIUS_PX * max(px_w, px_h)),
                                dtype=np.int64)
        candidates = candidates[self._shown[candidates]]  # a hidden group's points are not there to hover
        if not len(candidates):
            return -1
        offsets = (self.coords[candidates] - [p.x(), p.y()]) / [px_w, px_h]
        best = int(np.argmin((offsets ** 2).sum(axis=1)))
        return int(candidates[best]) if (offsets[best] ** 2).sum() <= HOVER_RADIUS_PX ** 2 else -1

    def scene_pos_of(self, index: int):
        """Scene position of a point (for tests and for placing the preview)."""
        return self.view_box.mapViewToScene(pg.Point(*self.coords[index]))

    @qthrottled(timeout=30, leading=True)
    def _mouse_moved(self, scene_pos) -> None:
        self.hovered.emit(self.point_at(scene_pos))

    def _mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        index = self.point_at(event.scenePos())
        if index >= 0:
            self.clicked.emit(index)

    def _rect_selected(self, rect: QRectF) -> None:
        if self.coords is None:
            return
        x, y = self.coords[:, 0], self.coords[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        self.selected.emit(np.flatnonzero(inside & self._shown))

    def _lasso_selected(self, polygon: np.ndarray) -> None:
        if self.coords is not None:
            self.selected.emit(np.flatnonzero(inside_polygon(self.coords, polygon) & self._shown))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        # Moves come from the viewport, not the scene's sigMouseMoved: pyqtgraph drops a move that comes within
        # 10 ms of the last one, and the one dropped can be where the mouse stopped. The throttle keeps the last.
        if event.type() == QEvent.Type.MouseMove:
            self._mouse_moved(self.plot.mapToScene(event.position().toPoint()))
        elif event.type() == QEvent.Type.Leave:
            self._mouse_moved.cancel()  # a move still waiting in the throttle would hover again after leaving
            self.hovered.emit(-1)
        return False

    def show_preview(self, index: int, pixmap, caption: str) -> None:
        """Show the hovered image's thumbnail and label beside its point, inside this map."""
        if index < 0 or self.coords is None or pixmap is None:
            self.preview.hide()
            return
        self.preview_image.setPixmap(pixmap)
        self.preview_caption.setText(caption)
        self.preview_caption.setVisible(bool(caption))
        self.preview.adjustSize()
        pos = self.plot.mapFromScene(self.scene_pos_of(index))
        x, y = pos.x() + 12, pos.y() + 12
        # Keep it inside the plot: flip to the other side of the point near the right or bottom edge.
        if x + self.preview.width() > self.plot.width():
            x = pos.x() - 12 - self.preview.width()
        if y + self.preview.height() > self.plot.height():
            y = pos.y() - 12 - self.preview.height()
        self.preview.move(QPoint(max(0, int(x)), max(0, int(y))))
        self.preview.show()
        self.preview.raise_()

    def hide_preview(self) -> None:
        self.preview.hide()
