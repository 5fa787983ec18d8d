"""Hover, selection and nearest neighbours, linked across the maps by image index: the same image is highlighted
wherever it landed in each space, and the inspector and the selection bar show the details."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QObject

from ssl_studio.core.coloring import Coloring
from ssl_studio.core.neighbours import CosineNeighbours, same_label

from ..thumbnails import ThumbnailCache
from ..widgets import shown
from .inspector import Inspector, SelectionBar
from .maps import MapGrid

THUMBNAIL_SIZE = 64
INSPECT_SIZE = 112


class LinkedViews(QObject):
    def __init__(self, maps: MapGrid, inspector: Inspector, selection_bar: SelectionBar, parent=None) -> None:
        super().__init__(parent)
        self.maps, self.inspector, self.selection_bar = maps, inspector, selection_bar
        self.paths: list[str] = []
        self.labels: np.ndarray | None = None
        self.class_names: list[str] = []
        self.cache: ThumbnailCache | None = None
        self.coloring: Coloring | None = None
        self.neighbours: dict[str, CosineNeighbours] = {}
        self.selection = np.zeros(0, dtype=np.int64)
        self.clicked_index = -1
        maps.hovered.connect(self.set_hover)
        maps.clicked.connect(self.show_neighbours)
        maps.selected.connect(self.set_selection)
        inspector.imageClicked.connect(self.show_neighbours)
        selection_bar.imageClicked.connect(self.show_neighbours)
        selection_bar.cleared.connect(lambda: self.set_selection(np.zeros(0, dtype=np.int64)))

    def reset(self, paths: list[str], labels: np.ndarray | None, class_names: list[str], images) -> None:
        """New images to link (``images`` None: grey thumbnails), nothing hovered, clicked or selected yet."""
        self.clear()
        self.paths, self.labels, self.class_names = paths, labels, class_names
        self.cache = ThumbnailCache(images, THUMBNAIL_SIZE)
        self.clicked_index = -1
        self.inspector.reset(self.cache, paths, labels, class_names)
        self.selection_bar.reset(self.cache, paths, labels, class_names)
        self.set_selection(np.zeros(0, dtype=np.int64))

    def clear(self) -> None:
        self.coloring = None
        self.neighbours = {}

    def set_coloring(self, coloring: Coloring) -> None:
        """What the captions and the selection's counts name: the classes, or an unlabeled folder's clusters."""
        self.coloring = coloring
        self.selection_bar.show_selection(self.selection, coloring)

    def add_space(self, space: str, embedding: np.ndarray) -> None:
        self.set_neighbours(space, CosineNeighbours(embedding))

    def set_neighbours(self, space: str, finder) -> None:
        """What gives an image's nearest neighbours in this map's space: ``finder.of(index)`` (core/neighbours.py)."""
        self.neighbours[space] = finder

    def caption(self, index: int) -> str:
        return "" if self.coloring is None else self.coloring.name(index)

    def set_hover(self, index: int, source: str | None = None, partners: Sequence[int] = ()) -> None:
        """Highlight image ``index`` in every map (-1 clears), with its ``partners`` (the other image of a
        duplicate pair); the map under the mouse shows its thumbnail."""
        show = index >= 0 and source is not None and self.cache is not None
        self.maps.show_hover(index, source, self.cache.pixmap(index, THUMBNAIL_SIZE) if show else None,
                             shown(self.caption(index)) if show else "", partners)
        if index >= 0:
            self._inspect(index)
        elif self.clicked_index >= 0:
            self._inspect(self.clicked_index)

    def _inspect(self, index: int) -> None:
        if self.cache is None:
            return
        label = self.caption(index)
        self.inspector.show_image(self.cache.pixmap(index, INSPECT_SIZE),
                                  (f"<b>{html.escape(shown(label))}</b><br>" if label else "")
                                  + html.escape(shown(self.paths[index])))

    def set_selection(self, indices) -> None:
        self.selection = np.asarray(indices, dtype=np.int64)
        self.maps.show_selection(self.selection)
        self.selection_bar.show_selection(self.selection, self.coloring)

    def show_neighbours(self, index: int) -> None:
        """Image ``index``'s nearest neighbours in each space: framed on every map, listed in the inspector."""
        self.clicked_index = index
        self._inspect(index)
        title = ("Nearest neighbours of this image (cosine similarity in each space)" if self.labels is None else
                 f"Nearest neighbours of this <b>{html.escape(shown(self.caption(index)))}</b> "
                 f"(cosine similarity in each space)")
        rows = {}
        for space in self.maps.maps:
            if space not in self.neighbours:
                rows[space] = None
                self.maps.show_neighbours(space, None)
                continue
            near = self.neighbours[space].of(index)
            self.maps.show_neighbours(space, near)
            text = f"<b>{self.maps.spaces[space].short}</b>"
            if self.labels is not None:
                text += f": {same_label(self.labels, index, near)} of {len(near)} same class"
            rows[space] = (near, text)
        self.inspector.show_neighbours(title, rows)
