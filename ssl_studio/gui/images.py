"""uint8 image tensors and arrays -> QImage / QPixmap.

Qt wraps a numpy buffer without copying it, so every QImage made here is .copy()'d: the array may be freed or
reused as soon as the function returns.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def to_hwc_uint8(image) -> np.ndarray:
    """One image as a contiguous (H, W, 3) uint8 array: accepts (3,H,W) tensors (uint8 or float in [0, 1])
    and (H,W,3) arrays."""
    if isinstance(image, torch.Tensor):
        # Converted by numpy: a torch kernel on a large image runs in parallel, which on the GUI thread would leave
        # that thread an OpenMP team (workers.py).
        image = image.detach().cpu()
        image = image.float().numpy() if image.dtype != torch.uint8 else image.numpy()
        image = image.transpose(1, 2, 0)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def to_qimage(image) -> QImage:
    array = to_hwc_uint8(image)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def to_pixmap(image, size: int | None = None) -> QPixmap:
    """A pixmap of the image, scaled to size x size when given (smoothly: these are photos, not pixel art)."""
    pixmap = QPixmap.fromImage(to_qimage(image))
    if size is not None and (pixmap.width() != size or pixmap.height() != size):
        pixmap = pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
    return pixmap


def placeholder_pixmap(size: int) -> QPixmap:
    """Grey square for an image whose pixels are not available (a run opened without its data folder)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.lightGray)
    return pixmap
