"""How the self-supervised map formed: a slider (and a play button) through the snapshots the train stage took
of a fixed subset (core/map_history.py), beside a small curve of the subset's kNN at each snapshot."""

from __future__ import annotations

from dataclasses import replace

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QVBoxLayout, QWidget

from ssl_studio.core.coloring import Coloring
from ssl_studio.core.map_history import MapHistory

from ..scatter_map import ScatterMap

PLAY_MS = 400  # per snapshot: a 2-minute run's 30 snapshots play in 12 s


class MapHistoryView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.history: MapHistory | None = None
        self._coloring: Coloring | None = None
        self.map = ScatterMap("history")
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=0)
        self.slider.valueChanged.connect(self.show_snapshot)
        self.play_button = QToolButton(text="▶ Play", checkable=True, toolTip="Play the snapshots in order")
        self.play_button.toggled.connect(self._play)
        self.timer = QTimer(self, interval=PLAY_MS, timeout=self._next)
        self.caption = QLabel(objectName="caption")
        self.curve = pg.PlotWidget(background="w")
        self.curve.setMenuEnabled(False)
        self.curve.setMouseEnabled(x=False, y=False)
        self.curve.setFixedHeight(150)
        self.curve.setLabel("bottom", "seconds of training")
        self.curve.setLabel("left", "kNN top-1 (%)")
        self.curve.getAxis("left").enableAutoSIPrefix(False)
        self.knn_line = self.curve.plot(pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=4)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#c62828", width=1))
        self.curve.addItem(self.marker)
        self.empty = QLabel("This run has no record of its map forming (runs made before this version, or a "
                            "training stopped before its first snapshot).", wordWrap=True,
                            alignment=Qt.AlignmentFlag.AlignCenter)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.caption)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("How the self-supervised map formed: the same images, embedded every few seconds "
                                "while the network learned without labels (PCA, each snapshot turned to match the "
                                "one before).", wordWrap=True))
        layout.addWidget(self.empty)
        layout.addWidget(self.map, 1)
        layout.addLayout(controls)
        layout.addWidget(self.curve)

    def set_history(self, history: MapHistory | None, coloring: Coloring | None) -> None:
        """Snapshots to scrub through, colored by each image's class (or cluster) in the run."""
        self.play_button.setChecked(False)
        self.history = history
        has = history is not None and bool(history.snapshots)
        for widget in (self.map, self.slider, self.play_button, self.caption, self.curve):
            widget.setVisible(has)
        self.empty.setVisible(not has)
        if not has:
            self.map.clear()
            return
        self._coloring = None if coloring is None else replace(coloring, ids=coloring.ids[history.indices])
        seconds = [s.seconds for s in history.snapshots]
        knn = [s.knn for s in history.snapshots]
        if all(k is not None for k in knn):
            self.knn_line.setData(seconds, [100 * k for k in knn])
        else:
            self.knn_line.setData([], [])
        self.curve.setVisible(all(k is not None for k in knn))
        self.slider.setMaximum(len(history.snapshots) - 1)
        self.slider.setValue(len(history.snapshots) - 1)
        self.show_snapshot(self.slider.value())

    def show_snapshot(self, i: int) -> None:
        if self.history is None or not self.history.snapshots:
            return
        snapshot = self.history.snapshots[i]
        self.map.set_points(snapshot.coords, self._coloring)
        # Snapshots are scaled to [-1, 1]: a fixed view lets the points move instead of the axes.
        self.map.view_box.setRange(xRange=(-1.05, 1.05), yRange=(-1.05, 1.05), padding=0)
        self.marker.setValue(snapshot.seconds)
        knn = "" if snapshot.knn is None else f", kNN {snapshot.knn:.0%}"
        self.caption.setText(f"{snapshot.seconds:.0f} s, step {snapshot.step:,}{knn}")
        self.map.title.setText(f"<b>Self-supervised</b> after {snapshot.seconds:.0f} s of training")

    def _play(self, on: bool) -> None:
        if on and self.history is not None:
            if self.slider.value() == self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start()
        else:
            self.timer.stop()
        self.play_button.setText("❚❚ Pause" if on else "▶ Play")

    def _next(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play_button.setChecked(False)
        else:
            self.slider.setValue(self.slider.value() + 1)
