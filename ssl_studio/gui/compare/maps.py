"""The maps: one ScatterMap per space in a grid, each titled with its space and its scores, colored alike."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from ssl_studio.core.coloring import Coloring
from ssl_studio.core.spaces import BUILT_IN, Space

from ..colors import class_brush
from ..scatter_map import ScatterMap


class MapGrid(QWidget):
    hovered = Signal(int, str)  # image index (-1 for none), the space of the map under the mouse
    clicked = Signal(int)
    selected = Signal(object)  # np.ndarray of image indices

    def __init__(self, parent=None) -> None:
        super().__init__(parent, objectName="maps")
        self._brushes: list | None = None
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.maps: dict[str, ScatterMap] = {}
        self.spaces: dict[str, Space] = {}
        for space in BUILT_IN:
            self.add_space(space)

    def add_space(self, space: Space) -> bool:
        """A map for this space (one a person imported into a run); False when there is one already."""
        if space.name in self.maps:
            return False
        m = ScatterMap(space.name)
        m.hovered.connect(lambda i, s=space.name: self.hovered.emit(i, s))
        m.clicked.connect(self.clicked)
        m.selected.connect(self.selected)
        if self._brushes is not None:
            m.set_brushes(self._brushes)
        self.maps[space.name], self.spaces[space.name] = m, space
        return True

    def clear(self) -> None:
        self._brushes = None
        for m in self.maps.values():
            m.clear()
            m.hide_preview()  # else the last hovered thumbnail of the old data stays over the new map

    def has_points(self) -> bool:
        return any(m.has_points() for m in self.maps.values())

    def show_spaces(self, spaces: list[str]) -> None:
        """Lay out these spaces' maps (in two rows from four on, fewer in one), hiding the others."""
        for m in self.maps.values():
            self.grid.removeWidget(m)
            m.hide()
        columns = (len(spaces) + 1) // 2 if len(spaces) >= 4 else max(1, len(spaces))
        for i, space in enumerate(spaces):
            self.grid.addWidget(self.maps[space], i // columns, i % columns)
            self.maps[space].show()

    def set_select_mode(self, on: bool) -> None:
        for m in self.maps.values():
            m.view_box.select_mode = on

    def set_title(self, space: str, score: dict | None = None) -> None:
        title = f"<b>{self.spaces[space].title}</b>"
        if score:
            title += f" &nbsp; kNN <b>{score['knn_top1']:.0%}</b> · linear <b>{score['linear_top1']:.0%}</b>"
        self.maps[space].title.setText(title)

    def set_coloring(self, coloring: Coloring) -> None:
        # The same QBrush object for every point of a class: pyqtgraph then draws each class from one sprite.
        self._brushes = [class_brush(int(k)) for k in coloring.ids]
        for m in self.maps.values():
            m.set_brushes(self._brushes)

    def set_points(self, space: str, coords: np.ndarray, selection: np.ndarray) -> None:
        self.maps[space].set_points(coords, self._brushes or [class_brush(0)] * len(coords))
        self.maps[space].show_selection(selection)

    # --- linked highlights ------------------------------------------------------------------------------------
    def show_hover(self, index: int, source: str | None = None, pixmap=None, caption: str = "") -> None:
        """Ring image ``index`` in every map (-1 clears); the ``source`` map also shows its thumbnail."""
        for space, m in self.maps.items():
            m.show_hover(index)
            if space == source and index >= 0 and pixmap is not None:
                m.show_preview(index, pixmap, caption)
            else:
                m.hide_preview()

    def show_selection(self, indices: np.ndarray) -> None:
        for m in self.maps.values():
            m.show_selection(indices)

    def show_neighbours(self, space: str, indices: np.ndarray | None) -> None:
        self.maps[space].show_neighbours(indices)
