"""The row above the maps: the colors' key (a swatch and a count per class or cluster) and which projection shows."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget
from superqt import QFlowLayout

from ssl_studio.core.coloring import Coloring

from ..colors import class_color, swatch
from ..widgets import shown


class Legend(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.entries = QWidget()
        self.flow = QFlowLayout(self.entries)
        self.flow.setContentsMargins(0, 0, 0, 0)
        self.projection = QLabel(objectName="caption",
                                 toolTip="PCA is instant but squashes clusters together; UMAP keeps neighbourhoods "
                                         "and shows clusters far better.")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.entries, 1)
        row.addWidget(self.projection)

    def count(self) -> int:
        return self.flow.count()

    def set_coloring(self, coloring: Coloring) -> None:
        while self.flow.count():
            item = self.flow.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for k, (name, count) in enumerate(zip(coloring.names, coloring.counts())):
            entry = QLabel(f"{shown(name)} ({count:,})", objectName="legendEntry")
            mark = QLabel()
            mark.setPixmap(swatch(class_color(k), 10).pixmap(10, 10))
            row = QWidget()
            row_layout = QHBoxLayout(row)
            row_layout.setContentsMargins(0, 0, 8, 0)
            row_layout.setSpacing(4)
            row_layout.addWidget(mark)
            row_layout.addWidget(entry)
            self.flow.addWidget(row)
