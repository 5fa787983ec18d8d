"""A list model of image thumbnails that stays fast for 10k+ images.

The view (a QListView in IconMode with uniform item sizes) asks only for the rows it shows; each pixmap is made
from the dataset's uint8 tensor on first request and kept in a bounded LRU cache shared by every view of the same
images (the data grid, the selection strip, the neighbour strips, the hover preview).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QListView

from .images import placeholder_pixmap, to_pixmap
from .widgets import shown

INDEX_ROLE = Qt.ItemDataRole.UserRole + 1


class ThumbnailCache:
    """Pixmaps of images[i] at one size, made lazily; ``images`` None means no pixels (grey placeholders)."""

    def __init__(self, images: torch.Tensor | None, size: int = 64, capacity: int = 4000) -> None:
        self.images = images
        self.size = size
        self._capacity = capacity
        self._cache: OrderedDict[tuple[int, int], QPixmap] = OrderedDict()

    def pixmap(self, index: int, size: int | None = None) -> QPixmap:
        size = size or self.size
        key = (index, size)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        if self.images is None or not 0 <= index < len(self.images):
            pixmap = placeholder_pixmap(size)
        else:
            pixmap = to_pixmap(self.images[index], size)
        self._cache[key] = pixmap
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return pixmap


class ThumbnailModel(QAbstractListModel):
    """Rows are dataset indices (all of them, or a subset such as one class or a selection)."""

    def __init__(self, cache: ThumbnailCache, paths: list[str], labels: np.ndarray | None,
                 class_names: list[str], parent=None, *, captions: bool | Callable[[int], str] = False,
                 size: int | None = None) -> None:
        """``captions``: each image's class under it, or what this function says of image i."""
        super().__init__(parent)
        self.cache = cache
        self.size = size or cache.size
        self._paths = paths
        self._labels = labels
        self._class_names = class_names
        self._captions = captions
        self._rows = np.arange(len(paths))

    def set_rows(self, indices) -> None:
        self.beginResetModel()
        self._rows = np.arange(len(self._paths)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.endResetModel()

    def dataset_index(self, row: int) -> int:
        return int(self._rows[row])

    def label_text(self, index: int) -> str:
        if self._labels is None or not self._class_names:
            return ""
        return self._class_names[int(self._labels[index])]

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i = int(self._rows[index.row()])
        if role == Qt.ItemDataRole.DecorationRole:
            return self.cache.pixmap(i, self.size)
        if role == Qt.ItemDataRole.DisplayRole and self._captions:
            return shown(self._captions(i) if callable(self._captions) else self.label_text(i))
        if role == Qt.ItemDataRole.ToolTipRole:
            label = self.label_text(i)
            return shown(self._paths[i] + (f"\nclass: {label}" if label else ""))
        if role == INDEX_ROLE:
            return i
        if role == Qt.ItemDataRole.SizeHintRole:
            extra = 18 if self._captions else 0
            return QSize(self.size + 8, self.size + 8 + extra)
        return None


class ThumbnailView(QListView):
    """A QListView set up for thumbnails: a wrapping grid, or a one-row strip (``strip=True``)."""

    def __init__(self, parent=None, *, strip: bool = False, size: int = 64) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        # Uniform sizes let the view lay out 10k rows without asking the model for each one.
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setIconSize(QSize(size, size))
        self.setSpacing(2)
        self.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
        if strip:
            self.setFlow(QListView.Flow.LeftToRight)
            self.setWrapping(False)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            # Room for one row of items plus a horizontal scroll bar when they do not fit.
            self.setFixedHeight(size + 14 + self.horizontalScrollBar().sizeHint().height())
