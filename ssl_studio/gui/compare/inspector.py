"""The detail views beside and below the maps: the inspector (the hovered or clicked image, its nearest neighbours
in each space) and the selection bar (what a dragged rectangle or lasso holds: a count per class and a grid of the
images, a seeded sample of them when there are many)."""

from __future__ import annotations

import html
from collections.abc import Iterable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from ssl_studio.core.coloring import Coloring
from ssl_studio.core.selection import sample
from ssl_studio.core.spaces import SPACES

from ..thumbnails import ThumbnailCache, ThumbnailModel, ThumbnailView
from ..widgets import shown

NEIGHBOUR_SIZE = 30
SELECTION_SIZE = 40
SELECTION_ROWS = 2  # of thumbnails the grid shows at once; more scroll
SELECTION_SHOWN = 240  # thumbnails at most: a larger selection shows a seeded sample of this many
NEIGHBOURS_HINT = "Nearest neighbours: click a point on any map to see the images closest to it in each space."
SELECTION_HINT = ("Selection: none. Drag a rectangle in Select mode (or Shift+drag), or a loop in Lasso mode, on any "
                  "map to see where those images land in the other spaces.")


def _replace_model(view: ThumbnailView, model: ThumbnailModel) -> None:
    if view.model() is not None:
        view.model().deleteLater()  # the previous run's model, its pixmaps and its hold on the images
    model.set_rows([])
    view.setModel(model)


class Inspector(QFrame):
    imageClicked = Signal(int)  # a neighbour's thumbnail was clicked: its image index

    def __init__(self, spaces: Iterable[str] = SPACES, parent=None) -> None:
        super().__init__(parent, objectName="inspector")
        self.setFixedWidth(365)  # eight neighbours in a row
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(112, 112)
        self.text = QLabel("Hover or click a point.", wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.neighbour_rows: dict[str, tuple[QLabel, ThumbnailView]] = {}
        self.neighbour_models: dict[str, ThumbnailModel] = {}
        rows = QWidget()
        rows_layout = QVBoxLayout(rows)
        rows_layout.setContentsMargins(0, 0, 0, 0)
        self.neighbours_title = QLabel(NEIGHBOURS_HINT, objectName="sectionTitle", wordWrap=True)
        rows_layout.addWidget(self.neighbours_title)
        self.rows_layout = QVBoxLayout()
        rows_layout.addLayout(self.rows_layout)
        for space in spaces:
            self.add_space(space)
        rows_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(rows)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.text)
        layout.addWidget(scroll, 1)

    def add_space(self, space: str) -> None:
        """A row of nearest neighbours for this space (hidden until it has some)."""
        title = QLabel(objectName="caption")
        strip = ThumbnailView(strip=True, size=NEIGHBOUR_SIZE)
        strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the 8 fit the panel
        strip.setFixedHeight(NEIGHBOUR_SIZE + 14)
        strip.clicked.connect(lambda index, view=strip: self.imageClicked.emit(
            view.model().dataset_index(index.row())))
        self.rows_layout.addWidget(title)
        self.rows_layout.addWidget(strip)
        self.neighbour_rows[space] = (title, strip)
        title.hide()
        strip.hide()

    def reset(self, cache: ThumbnailCache, paths: list[str], labels, class_names: list[str]) -> None:
        """Show nothing yet, with thumbnails of these images to come."""
        for space, (title, strip) in self.neighbour_rows.items():
            self.neighbour_models[space] = ThumbnailModel(cache, paths, labels, class_names, self,
                                                          size=NEIGHBOUR_SIZE)
            _replace_model(strip, self.neighbour_models[space])
            title.hide()
            strip.hide()
        self.neighbours_title.setText(NEIGHBOURS_HINT)
        self.image.clear()
        self.text.setText("Hover or click a point.")

    def show_image(self, pixmap, text: str) -> None:
        self.image.setPixmap(pixmap)
        self.text.setText(text)

    def show_neighbours(self, title: str, rows: dict[str, tuple[np.ndarray, str] | None]) -> None:
        """Under ``title``, for each space its nearest images and a caption (None hides the space's row)."""
        self.neighbours_title.setText(title)
        for space, row in rows.items():
            title_label, strip = self.neighbour_rows[space]
            title_label.setVisible(row is not None)
            strip.setVisible(row is not None)
            if row is not None:
                self.neighbour_models[space].set_rows(row[0])
                title_label.setText(row[1])


class SelectionBar(QWidget):
    cleared = Signal()
    imageClicked = Signal(int)  # a selected image's thumbnail was clicked: its image index

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel(SELECTION_HINT, wordWrap=True)
        self.clear_button = QPushButton("Clear selection", enabled=False)
        self.clear_button.clicked.connect(self.cleared)
        self.grid = ThumbnailView(size=SELECTION_SIZE)
        self.grid.setFixedHeight(SELECTION_ROWS * (SELECTION_SIZE + 12) + 4)
        self.grid.clicked.connect(lambda index: self.imageClicked.emit(self.model.dataset_index(index.row())))
        self.model: ThumbnailModel | None = None
        self.row = QHBoxLayout()
        self.row.addWidget(self.label, 1)
        self.row.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.row)
        layout.addWidget(self.grid)

    def add_action(self, widget: QWidget) -> None:
        """Something to do with the selection, before Clear selection."""
        self.row.insertWidget(self.row.count() - 1, widget)

    def reset(self, cache: ThumbnailCache, paths: list[str], labels, class_names: list[str]) -> None:
        self.model = ThumbnailModel(cache, paths, labels, class_names, self, size=SELECTION_SIZE)
        _replace_model(self.grid, self.model)

    def show_selection(self, indices: np.ndarray, coloring: Coloring | None) -> None:
        """The selected images (a seeded sample of SELECTION_SHOWN when there are more), with how many of them
        each class (or cluster) of ``coloring`` holds."""
        if self.model is not None:
            self.model.set_rows(sample(indices, SELECTION_SHOWN))
        self.clear_button.setEnabled(len(indices) > 0)
        if len(indices) == 0:
            self.label.setText(SELECTION_HINT)
            return
        text = f"<b>Selection: {len(indices):,} image(s)</b>"
        if len(indices) > SELECTION_SHOWN:
            text += f", {SELECTION_SHOWN} of them below (a random sample)"
        if coloring is not None:
            text += " &nbsp; " + " · ".join(
                f"<span style='color:{coloring.color(k)}'>■</span> {html.escape(shown(coloring.names[k]))} "
                f"<b>{count:,}</b>" for k, count in coloring.most_common(indices))
        self.label.setText(text)
