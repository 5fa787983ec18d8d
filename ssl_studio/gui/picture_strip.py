"""The pictures a method draws while it trains (masked-part prediction: original, masked, filled in), one row each.

The training loop asks the method for them every couple of seconds (TrainProgress.pictures); the strip stays
hidden for methods that draw none.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from .images import to_pixmap

PICTURE_SIZE = 56


class PictureStrip(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLabel(objectName="caption")
        self.grid = QGridLayout()
        self.grid.setSpacing(4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.caption)
        layout.addLayout(self.grid)
        layout.addStretch(1)
        self._shape: tuple = ()  # (row names, images per row) the labels are laid out for
        self._cells: dict[str, list[QLabel]] = {}
        self.updates = 0  # how many sets of pictures were shown (for tests and the curious)
        self.hide()

    def show_pictures(self, pictures: list[tuple[str, object]], caption: str) -> None:
        """``pictures``: (row name, images) pairs, the images a (N, 3, H, W) float tensor in [0, 1]."""
        self._layout([name for name, _ in pictures], min(len(images) for _, images in pictures))
        for name, images in pictures:
            for label, image in zip(self._cells[name], images):
                label.setPixmap(to_pixmap(image, PICTURE_SIZE))
        self.caption.setText(caption)
        self.updates += 1
        self.show()

    def clear(self) -> None:
        self.hide()
        self._layout([], 0)

    def picture(self, name: str, i: int):
        """The QImage shown in row ``name`` for image ``i``."""
        return self._cells[name][i].pixmap().toImage()

    def _layout(self, names: list[str], count: int) -> None:
        if (tuple(names), count) == self._shape:
            return
        self._shape = (tuple(names), count)
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()
        self._cells = {}
        for row, name in enumerate(names):
            self.grid.addWidget(QLabel(name, objectName="caption"), row, 0, Qt.AlignmentFlag.AlignRight)
            self._cells[name] = []
            for i in range(count):
                label = QLabel(objectName="previewImage")
                label.setFixedSize(PICTURE_SIZE, PICTURE_SIZE)
                self.grid.addWidget(label, row, i + 1)
                self._cells[name].append(label)
        self.grid.setColumnStretch(count + 1, 1)
