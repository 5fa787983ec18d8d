"""Class colors: the core report's palette as Qt colors, with one shared QBrush per class.

Sharing the brush objects matters for pyqtgraph: points with the same brush share one sprite in its pixmap atlas,
which is what keeps a 20k-point map fast.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap

from ssl_studio.core.coloring import PALETTE


def class_color(k: int) -> QColor:
    color = PALETTE[k % len(PALETTE)]
    return QColor(color) if isinstance(color, str) else QColor(*color[:3])


@lru_cache(maxsize=None)
def class_brush(k: int) -> QBrush:
    return QBrush(class_color(k))


def swatch(color: QColor, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(color)
    return QIcon(pixmap)
