"""Python's cycle collector, run on the GUI thread only, in small steps.

Left automatic, the collector runs in whichever thread happens to allocate, often a worker's. Collecting a cycle
that holds a Qt object (pyqtgraph items, pixmaps, widgets of a closed window) there destroys it off the GUI
thread, and Qt crashes: seen here as a segfault while a data-loading thread decoded a PNG. pyqtgraph's answer
(util.garbage_collector) disables the automatic collector and collects on a 0.5 s timer; measured here, that
froze the window for 0.1-1 s at a time: a worker that allocates fast (numba compiling UMAP) leaves hundreds of
thousands of young objects between two ticks, and its simple rule runs a full collection (~0.7 s over the ~700k
objects umap-learn and numba bring) every tenth time. So this one:
  * ticks every 50 ms, so each young collection has little to look at;
  * runs a full collection only when the long-lived objects grew by a quarter since the last one, the rule of
    CPython's own collector, counting what each young collection promotes;
  * moves everything alive once the window is built out of the collector's sight with gc.freeze(): modules and
    classes never become garbage. (umap-learn and numba are imported in the UMAP child process, not here.)
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 50


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._long_lived = 0  # objects in the oldest generation after the last full collection
        self._promoted = 0  # objects moved into it since
        gc.disable()
        gc.freeze()
        self._timer = QTimer(self, interval=INTERVAL_MS, timeout=self.collect)
        self._timer.start()

    def collect(self) -> None:
        count0, count1, count2 = gc.get_count()
        if count0 <= self._thresholds[0]:
            return
        if count1 <= self._thresholds[1]:
            gc.collect(0)
            return
        if count2 > self._thresholds[2] and self._promoted > self._long_lived // 4:
            gc.collect(2)
            self._long_lived, self._promoted = len(gc.get_objects(2)), 0
            return
        young = len(gc.get_objects(0)) + len(gc.get_objects(1))
        self._promoted += young - gc.collect(1)  # survivors of a generation-1 collection become long-lived

    def freeze_long_lived(self) -> None:
        """Hide everything alive now from future collections (call once the long-lived objects exist)."""
        gc.freeze()
        self._long_lived = self._promoted = 0


def install(app) -> GuiThreadCollector:
    """The application's collector (the app and the test suite both install it; once is enough)."""
    collector = app.findChild(GuiThreadCollector)
    return collector if collector is not None else GuiThreadCollector(app)
