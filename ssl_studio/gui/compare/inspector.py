"""The detail views beside and below the maps: the inspector (the hovered or clicked image, its nearest neighbours
in each space) and the selection bar (what a dragged rectangle holds)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from ssl_studio.core.spaces import SPACES

from ..thumbnails import ThumbnailCache, ThumbnailModel, ThumbnailView
from ..widgets import shown

NEIGHBOUR_SIZE = 30
SELECTION_SIZE = 40
NEIGHBOURS_HINT = "Nearest neighbours: click a point on any map to see the images closest to it in each space."
SELECTION_HINT = ("Selection: none. Drag a rectangle in Select mode (or Shift+drag) on any map to see where those "
                  "images land in the other spaces.")


def _replace_model(view: ThumbnailView, model: ThumbnailModel) -> None:
    if view.model() is not None:
        view.model().deleteLater()  # the previous run's model, its pixmaps and its hold on the images
    model.set_rows([])
    view.setModel(model)


class Inspector(QFrame):
    imageClicked = Signal(int)  # a neighbour's thumbnail was clicked: its image index

    def __init__(self, parent=None) -> None:
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
        for space in SPACES:
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
        self.label = QLabel("Selection: none. Drag a rectangle in Select mode (or Shift+drag) on any map.")
        self.clear_button = QPushButton("Clear selection")
        self.clear_button.clicked.connect(self.cleared)
        self.strip = ThumbnailView(strip=True, size=SELECTION_SIZE)
        self.strip.clicked.connect(lambda index: self.imageClicked.emit(self.model.dataset_index(index.row())))
        self.model: ThumbnailModel | None = None
        row = QHBoxLayout()
        row.addWidget(self.label, 1)
        row.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.strip)

    def reset(self, cache: ThumbnailCache, paths: list[str], labels, class_names: list[str]) -> None:
        self.model = ThumbnailModel(cache, paths, labels, class_names, self, size=SELECTION_SIZE)
        _replace_model(self.strip, self.model)

    def show_selection(self, indices: np.ndarray, groups: list[tuple[str, int]]) -> None:
        """The selected images, with how many of them each of the largest ``groups`` (class or cluster) holds."""
        if self.model is not None:
            self.model.set_rows(indices)
        if len(indices) == 0:
            self.label.setText(SELECTION_HINT)
        else:
            parts = " · ".join(f"{count} {shown(name)}" for name, count in groups)
            self.label.setText(f"Selection: {len(indices):,} image(s)" + (f" ({parts})" if parts else ""))
        self.clear_button.setEnabled(len(indices) > 0)
