"""The maps: one ScatterMap per space in a grid, each titled with its space and its scores, colored alike (or, by
kNN mistakes, each by its own space's), with the same groups hidden in all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from ssl_studio.core.coloring import Coloring
from ssl_studio.core.spaces import BUILT_IN, Space

from ..scatter_map import ScatterMap


class MapGrid(QWidget):
    hovered = Signal(int, str)  # image index (-1 for none), the space of the map under the mouse
    clicked = Signal(int)
    selected = Signal(object)  # np.ndarray of image indices

    def __init__(self, spaces: Iterable[Space] = BUILT_IN, parent=None) -> None:
        super().__init__(parent, objectName="maps")
        self.coloring: Coloring | None = None  # of every map, but for those in space_colorings
        self.space_colorings: dict[str, Coloring] = {}
        self.hidden: frozenset[int] = frozenset()
        self.scores: dict[str, dict | None] = {}
        self.notes: dict[str, str] = {}  # a word after a map's scores: how many its kNN gets wrong
        self.tool = "pan"
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.maps: dict[str, ScatterMap] = {}
        self.spaces: dict[str, Space] = {}
        for space in spaces:
            self.add_space(space)

    def add_space(self, space: Space) -> bool:
        """A map for this space (one a person imported into a run); False when there is one already."""
        if space.name in self.maps:
            return False
        m = ScatterMap(space.name)
        m.hovered.connect(lambda i, s=space.name: self.hovered.emit(i, s))
        m.clicked.connect(self.clicked)
        m.selected.connect(self.selected)
        m.view_box.tool = self.tool
        m.set_hidden(self.hidden)
        self.maps[space.name], self.spaces[space.name] = m, space
        return True

    def clear(self) -> None:
        self.coloring, self.space_colorings, self.notes, self.scores = None, {}, {}, {}
        self.set_hidden(())
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

    def set_tool(self, tool: str) -> None:
        """What a left drag does on every map: "pan", "rect" (select in a rectangle) or "lasso"."""
        self.tool = tool
        for m in self.maps.values():
            m.view_box.tool = tool

    def set_title(self, space: str, score: dict | None = None) -> None:
        self.scores[space] = score
        title = f"<b>{self.spaces[space].title}</b>"
        if score:
            title += f" &nbsp; kNN <b>{score['knn_top1']:.0%}</b> · linear <b>{score['linear_top1']:.0%}</b>"
        note = self.notes.get(space)
        self.maps[space].title.setText(title + (f" · {note}" if note else ""))

    def coloring_of(self, space: str) -> Coloring | None:
        return self.space_colorings.get(space, self.coloring)

    def set_coloring(self, coloring: Coloring) -> None:
        """Color every map alike; the groups are new, so none is hidden."""
        self.coloring, self.space_colorings = coloring, {}
        self.set_hidden(())
        for space, m in self.maps.items():
            m.set_coloring(coloring)
            if self.notes.pop(space, None):
                self.set_title(space, self.scores.get(space))

    def set_space_coloring(self, space: str, coloring: Coloring, note: str = "") -> None:
        """Color one map by a coloring of its own (its kNN mistakes, ``note`` saying how many), with the same
        groups as the others'."""
        self.space_colorings[space] = coloring
        self.maps[space].set_coloring(coloring)
        self.notes[space] = note
        self.set_title(space, self.scores.get(space))

    def set_hidden(self, groups) -> None:
        """Hide these groups of the coloring in every map."""
        self.hidden = frozenset(groups)
        for m in self.maps.values():
            m.set_hidden(self.hidden)

    def set_points(self, space: str, coords: np.ndarray, selection: np.ndarray) -> None:
        self.maps[space].set_points(coords, self.coloring_of(space))
        self.maps[space].show_selection(selection)

    # --- linked highlights ------------------------------------------------------------------------------------
    def show_hover(self, index: int, source: str | None = None, pixmap=None, caption: str = "",
                   partners: Sequence[int] = ()) -> None:
        """Ring image ``index`` and its ``partners`` in every map (-1 clears); the ``source`` map also shows its
        thumbnail."""
        for space, m in self.maps.items():
            m.show_hover(index, *partners)
            if space == source and index >= 0 and pixmap is not None:
                m.show_preview(index, pixmap, caption)
            else:
                m.hide_preview()

    def show_selection(self, indices: np.ndarray) -> None:
        for m in self.maps.values():
            m.show_selection(indices)

    def show_neighbours(self, space: str, indices: np.ndarray | None) -> None:
        self.maps[space].show_neighbours(indices)
