"""Class and map colors (core.coloring's) as Qt colors, with one shared QBrush per color and opacity.

Sharing the brush objects matters for pyqtgraph: points with the same brush share one sprite in its pixmap atlas,
which is what keeps a 100k-point map fast.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap

from ssl_studio.core.coloring import PALETTE


def class_color(k: int) -> QColor:
    return QColor(PALETTE[k % len(PALETTE)])


@lru_cache(maxsize=None)
def point_brush(color: str, opacity: float = 1.0) -> QBrush:
    """The brush for points of this "#rrggbb" color, drawn with this opacity (0-1)."""
    qcolor = QColor(color)
    qcolor.setAlphaF(opacity)
    return QBrush(qcolor)


def swatch(color: QColor | str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)
