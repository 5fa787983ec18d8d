"""Stage 5, Transfer: accuracy against the number of labels, for every space and for fine-tuning, filled in live.

The figures come from core.pipeline.transfer, run in a worker (a Job) after the maps are drawn, or from a run's
transfer.json when a run is opened. Left: a probe (linear or kNN) on each space's frozen features against the number
of labeled images, on a log scale, the spread of the repeated label subsets as error bars. Right: the whole network
fine-tuned from the SSL weights and from scratch. Dashed on the left: the same probe on the images each label-free
strategy picks in the SSL space (core/selection_curves.py), as many as the per-class draw labels. Hovering a point
gives its exact figures.
"""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QRadioButton, QVBoxLayout, QWidget)
from superqt import QElidingLabel

from ssl_studio.core.atomic import write_atomic
from ssl_studio.core.coloring import PALETTE
from ssl_studio.core.events import StageStarted, TrainEvent, TransferFinished, TransferPlanned, TransferPoint
from ssl_studio.core.pipeline import transfer
from ssl_studio.core.report import CHART_TITLES
from ssl_studio.core import runs
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.selection_curves import SELECTION_SPACE, selection_reading
from ssl_studio.core.session import DATASET, FINISHED, OPENED, Session
from ssl_studio.core.spaces import FINETUNED, TITLES, TRAINED_ON_LABELS, Space, run_spaces
from ssl_studio.core.train import TrainProgress
from ssl_studio.core.transfer import reading

from .explanations import TRANSFER, TransferCurvesFigure
from .export import save_png, save_svg
from .page import Page, error_text
from .widgets import shown

STRATEGY_COLORS = {"random": PALETTE[5], "typical": PALETTE[4], "coverage": PALETTE[9]}  # apart from the spaces'


def point_text(title: str, point: dict, classes: int | None) -> str:
    """The exact figures of one point, for its tooltip and the hover line."""
    per_class = f" (about {point['labels'] / classes:.2g} per class)" if classes else ""
    text = f"{title}: {point['top1']:.1%} top-1 with {point['labels']:,} labels{per_class}, {point['fraction']:.0%}"
    if point.get("repeats", 1) > 1:
        text += f"; ± {point['std']:.1%} over {point['repeats']} label subsets"
    if "seconds" in point:
        text += f"; {point.get('steps', '?')} steps in {point['seconds']:.0f} s"
    return text


def _log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Ticks at 1, 2 and 5 times the powers of ten between 10**lo and 10**hi (the x axis holds log10 labels)."""
    ticks = []
    for k in range(math.floor(lo), math.ceil(hi) + 1):
        for mult in (1, 2, 5):
            v = mult * 10**k
            if lo - 1e-9 <= math.log10(v) <= hi + 1e-9:
                ticks.append((math.log10(v), f"{v:,}"))
    return ticks


class CurvePlot(pg.PlotItem):
    """Top-1 against the number of labels, log scale on x; one line, its points and error bars per curve."""

    def __init__(self, title: str, hovered) -> None:
        super().__init__(title=title)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "labeled images (log scale)")
        self.setLabel("left", "top-1 on the held-out 20 %")
        self.setYRange(0, 1, padding=0.02)
        self.getAxis("left").setTicks([[(v / 4, f"{25 * v}%") for v in range(5)]])
        # Top left: few labels score low, so the curves rise away from it.
        self.legend = self.addLegend(offset=(10, 10), labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 200))
        self._hovered = hovered
        self._under_mouse: dict[str, str] = {}  # curve -> its hovered point's figures: curves can share a point
        self.series: dict[str, tuple[pg.PlotDataItem, pg.ScatterPlotItem, pg.ErrorBarItem]] = {}

    def set_curve(self, key: str, title: str, color: str, points: list[dict], classes: int | None,
                  dashed: bool = False) -> None:
        if key not in self.series:
            pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            line = self.plot(name=title, pen=pen)
            dots = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(color), pen=pg.mkPen("w", width=1), hoverable=True,
                                      hoverSize=12, tip=lambda x, y, data: data)
            dots.sigHovered.connect(lambda _item, found, _ev, key=key: self._hover(key, found))
            bars = pg.ErrorBarItem(pen=pg.mkPen(color, width=1), beam=0.02)
            for item in (bars, dots):
                self.addItem(item)
            self.series[key] = (line, dots, bars)
        line, dots, bars = self.series[key]
        points = sorted(points, key=lambda p: p["labels"])
        x = np.log10([p["labels"] for p in points])
        y = np.array([p["top1"] for p in points])
        std = np.array([p.get("std", 0.0) for p in points])
        line.setData(x, y)
        dots.setData(x=x, y=y, data=[point_text(title, p, classes) for p in points])
        bars.setData(x=x, y=y, height=2 * std)

    def _hover(self, key: str, found) -> None:
        if len(found):
            self._under_mouse[key] = found[0].data()
        else:
            self._under_mouse.pop(key, None)
        self._hovered("\n".join(self._under_mouse[k] for k in self.series if k in self._under_mouse))

    def fit_x(self) -> None:
        xs = np.concatenate([c[0].xData for c in self.series.values() if c[0].xData is not None] or [np.zeros(1)])
        lo, hi = float(xs.min()), float(xs.max())
        pad = max(0.15, 0.05 * (hi - lo))
        self.setXRange(lo - pad, hi + pad, padding=0)
        self.getAxis("bottom").setTicks([_log_ticks(lo - pad, hi + pad)])

    def reset(self) -> None:
        for items in self.series.values():
            for item in items:
                self.removeItem(item)
        self.legend.clear()
        self.series.clear()


class TransferPage(Page):
    name, title = "transfer", "Transfer"
    transferFinished = Signal(object)  # RunFolder, once transfer.json is written

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(session, "What pretraining buys when labels are few: accuracy on the held-out 20 % "
                                  "against the number of labeled images, for a probe on each space's frozen "
                                  "features, and for the whole network fine-tuned from the SSL weights or "
                                  "from scratch.", parent)
        self.run: RunFolder | None = None  # the run these curves are of (a newer one may be training meanwhile)
        self.data: dict = {}  # the run's transfer curves as they fill in
        self.spaces: dict[str, Space] = {}  # the run's, by name: how each curve is titled and colored
        self._planned = 0
        self._done = 0

        self.empty_state("No transfer curves yet", "When the maps are drawn, the app measures how accuracy grows "
                                                   "with the number of labels, for every space and for fine-tuning. "
                                                   "Train a model, or open a saved run.",
                         [("Go to Train", lambda: self.goRequested.emit("train")),
                          ("Open run…", self.openRunRequested.emit)])
        self.add_results(self._build_results())
        self.explain(TRANSFER, TransferCurvesFigure())
        self.session.observe(DATASET, lambda dataset: self.clear())
        self.session.observe(OPENED, lambda opened: self.show_loaded(opened.loaded))
        self.session.observe(FINISHED, self._stage_finished)

    def _build_results(self) -> QWidget:
        self.start_button = QPushButton("Run transfer", objectName="primary",
                                        toolTip=f"Measure the curves again on this run (replaces {runs.TRANSFER})")
        self.start_button.clicked.connect(lambda: self.start())
        self.resume_button = QPushButton("Resume", toolTip="Continue from the fine-tuning checkpoints")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.resume_button.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export…", toolTip="Save the curves as PNG and SVG, the figures as CSV")
        self.export_button.clicked.connect(self._export_dialog)
        self.linear = QRadioButton("Linear probe", checked=True)
        self.knn = QRadioButton("kNN")
        group = QButtonGroup(self)
        group.addButton(self.linear)
        group.addButton(self.knn)
        self.linear.toggled.connect(self._draw_probes)
        self.progress = QProgressBar(maximumWidth=160, maximumHeight=14, textVisible=False, visible=False)
        self.status = QElidingLabel(objectName="stageText", elideMode=Qt.TextElideMode.ElideRight)
        self.status.setMinimumWidth(200)
        toolbar = QHBoxLayout()
        for widget in (self.start_button, self.resume_button, self.cancel_button, self.export_button):
            toolbar.addWidget(widget)
        toolbar.addSpacing(12)
        toolbar.addWidget(QLabel("Frozen features:"))
        toolbar.addWidget(self.linear)
        toolbar.addWidget(self.knn)
        toolbar.addStretch(1)
        toolbar.addWidget(self.progress)
        toolbar.addWidget(self.status, 1)

        self.reading = QLabel(objectName="sectionTitle", wordWrap=True)
        self.hover = QLabel("Hover a point for its exact figures.", objectName="caption", wordWrap=True)
        self.charts = pg.GraphicsLayoutWidget()
        self.charts.setBackground("w")
        self.probe_plot = CurvePlot("Frozen features", self._show_hover)
        self.finetune_plot = CurvePlot(CHART_TITLES["finetune"], self._show_hover)
        self.charts.addItem(self.probe_plot, 0, 0)
        self.charts.addItem(self.finetune_plot, 0, 1)
        self.charts.ci.layout.setColumnStretchFactor(0, 3)
        self.charts.ci.layout.setColumnStretchFactor(1, 2)
        self.charts_box = QWidget()  # what is exported: a plain widget renders its children (a plot view would not)
        charts_layout = QVBoxLayout(self.charts_box)
        charts_layout.setContentsMargins(0, 0, 0, 0)
        charts_layout.addWidget(self.charts)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addWidget(self.reading)
        layout.addWidget(self.charts_box, 1)
        layout.addWidget(self.hover)
        self._update_enabled()
        return box

    # --- filling ----------------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget the curves (new data was opened)."""
        self.cancel()
        self.run = None
        self.data, self.spaces = {}, {}
        self.probe_plot.reset()
        self.finetune_plot.reset()
        self.banner.hide()
        self.stack.setCurrentIndex(0)

    def _stage_finished(self, stage: str, run: RunFolder) -> None:
        if stage == "compare" and not self.is_running():
            self.run = run
            self.start()

    def start(self, resume: bool = False) -> bool:
        """Measure the curves of the page's run in the background, with the session's transfer settings."""
        if self.is_running():
            return False
        dataset, run = self.session.dataset_of(self.run), self.run
        if dataset is None or run is None:
            self.banner.show_message("The transfer curves need a trained run and its images: train a model, or "
                                     "open a run whose data folder is still there.", "info")
            return False
        self._reset_curves()
        self.banner.hide()
        self.stack.setCurrentIndex(1)
        self.status.setText("Starting…")
        self.progress.setRange(0, 0)
        self.progress.show()
        settings = self.session.transfer_settings

        def while_shown(handler):  # a job cancelled by clear() still delivers its last events: not to this page
            return lambda *args: handler(*args) if self.run is run else None

        self.start_job(lambda token: transfer(dataset, run, settings, cancel=token, resume=resume),
                       events=while_shown(self._on_events), succeeded=while_shown(lambda _: self._on_done()),
                       failed=while_shown(self._on_failed), cancelled=while_shown(self._on_cancelled),
                       ended=self._update_enabled)
        self.resume_button.hide()
        self._update_enabled()
        return True

    def show_loaded(self, loaded) -> None:
        """Show a run read back by core.pipeline.open_run; its images, when the session has them, let the curves be
        measured."""
        self.clear()
        self.run = loaded.run
        dataset = self.session.dataset_of(loaded.run)
        self.stack.setCurrentIndex(1)
        self.data = loaded.transfer
        self._redraw()
        if loaded.transfer:
            self.status.setText("Opened run.")
        elif dataset is not None:
            self.status.setText("This run has no transfer curves yet (made before the Transfer stage, or stopped "
                                "before it): Run transfer measures them.")
        else:
            self.status.setText(f"This run has no transfer curves, and its data folder {shown(loaded.data_root)} "
                                "could not be read to measure them.")
        self._update_enabled()

    def _reset_curves(self) -> None:
        self.data, self.spaces = {}, {}
        self._planned = self._done = 0
        self.probe_plot.reset()
        self.finetune_plot.reset()
        self.reading.setText("")

    def _on_events(self, events: list) -> None:
        probes_changed = tuned_changed = False
        latest = None
        for event in events:
            if isinstance(event, StageStarted):
                self.status.setText(event.text + ("" if event.text.endswith(".") else "…"))
            elif isinstance(event, TransferPlanned):
                self._planned = 2 * (event.probes + event.selections) + len(event.finetunes)
                self.progress.setRange(0, 1000)
            elif isinstance(event, TransferPoint):
                self._done += 1
                event.add_to(self.data)
                probes_changed |= event.kind in ("probe", "selection")
                tuned_changed |= event.kind == "finetune"
            elif isinstance(event, TrainEvent) and isinstance(event.event, TrainProgress):
                latest = event.event
            elif isinstance(event, TransferFinished):
                self.data = event.transfer
        # One redraw per delivered batch (at most ten a second), however many points arrived.
        if probes_changed:
            self._draw_probes()
        if tuned_changed:
            self._draw_finetune()
        if self._planned:
            self.progress.setValue(int(1000 * (self._done + (latest.fraction if latest else 0)) / self._planned))

    def _redraw(self) -> None:
        self._draw_probes()
        self._draw_finetune()

    def _draw_probes(self) -> None:
        probe = "linear" if self.linear.isChecked() else "knn"
        self.probe_plot.setTitle(CHART_TITLES[probe])
        self.probe_plot.reset()
        curves = {space: points for space, c in self.data.get("probe", {}).items() if (points := c.get(probe))}
        if curves.keys() - self.spaces.keys() and self.run is not None:  # a space imported since: read them again
            self.spaces = {space.name: space for space in run_spaces(self.run)}
        for space, points in curves.items():
            self.probe_plot.set_curve(space, self.spaces[space].curve_title, self.spaces[space].color, points,
                                      self.data.get("classes"))
        space = self._titles().get(self.data.get("selection_space", SELECTION_SPACE), SELECTION_SPACE)
        for strategy, c in self.data.get("selection", {}).items():
            if c.get(probe):
                self.probe_plot.set_curve(f"selection:{strategy}", f"{space}, {strategy} picks",
                                          STRATEGY_COLORS.get(strategy, PALETTE[-1]), c[probe],
                                          self.data.get("classes"), dashed=True)
        if self.probe_plot.series:
            self.probe_plot.fit_x()
        self._update_reading()

    def _draw_finetune(self) -> None:
        for start, points in self.data.get("finetune", {}).items():
            self.finetune_plot.set_curve(start, FINETUNED[start].title, FINETUNED[start].color, points,
                                         self.data.get("classes"))
        if self.finetune_plot.series:
            self.finetune_plot.fit_x()
        self._update_reading()

    def _update_reading(self) -> None:
        if "error" in self.data:
            self.reading.setText(html.escape(self.data["error"][0].upper() + self.data["error"][1:]) + ".")
            return
        sentences = (reading(self.data, self._titles(), saw_labels=TRAINED_ON_LABELS),
                     selection_reading(self.data, self._titles()))
        self.reading.setText(html.escape(" ".join(s for s in sentences if s)))

    def _titles(self) -> dict[str, str]:
        return {**TITLES, **self.data.get("titles", {})}

    def _show_hover(self, text: str) -> None:
        self.hover.setText(text or "Hover a point for its exact figures.")

    def _on_done(self) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        if "error" in self.data:
            self.status.setText("No transfer stage for this folder.")
            self._update_reading()
        else:
            self.status.setText(f"Done. The curves are saved in {runs.TRANSFER} and {runs.REPORT}.")
            self._redraw()
        if self.run is not None:
            self.statusMessage.emit(f"Transfer curves ready; saved in {self.run.path}", 10_000)
            self.session.finish("transfer", self.run)
            self.transferFinished.emit(self.run)

    def _on_failed(self, exc: Exception) -> None:
        self.progress.setRange(0, 1000)
        self.status.setText("Stopped.")
        self.banner.show_message(f"Could not measure the transfer curves: {error_text(exc)}")

    def _on_cancelled(self) -> None:
        self.progress.setRange(0, 1000)
        self.status.setText("Cancelled. Resume continues the fine-tuning from its last checkpoint.")
        self.resume_button.show()

    # --- running ----------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        if self.is_running():
            super().cancel()
            self.status.setText("Cancelling… (finishing the current step)")

    def _update_enabled(self) -> None:
        running = self.is_running()
        self.progress.setVisible(running)
        self.start_button.setEnabled(not running and self.session.dataset_of(self.run) is not None)
        self.resume_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.export_button.setEnabled(self.can_export())

    # --- export -----------------------------------------------------------------------------------------------
    def can_export(self) -> bool:
        return bool(self.data.get("probe") or self.data.get("finetune"))

    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the transfer curves into", str(Path.home()))
        if folder:
            self.export(folder)

    def export(self, folder: str | Path) -> list[Path]:
        """transfer.png and transfer.svg (the two charts as drawn), transfer.csv (every point) into ``folder``."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            written = [write_atomic(folder / "transfer.png", self._save_png),
                       write_atomic(folder / "transfer.svg", self._save_svg),
                       write_atomic(folder / "transfer.csv", self._save_csv)]
        except OSError as exc:
            self.banner.show_message(f"Export failed: {exc}")
            return []
        self.banner.show_message(f"Exported {len(written)} files to {shown(folder)}.", "info")
        return written

    def _save_png(self, path: Path) -> None:
        save_png(self.charts_box, path)

    def _save_svg(self, path: Path) -> None:
        save_svg(self.charts_box, path, "SSL Studio transfer curves")

    def _save_csv(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["measure", "curve", "fraction", "labels", "top1", "std", "repeats", "seconds", "steps"])
            space = self.data.get("selection_space", SELECTION_SPACE)
            picked = {f"{space}, {strategy} picks": c for strategy, c in self.data.get("selection", {}).items()}
            for curve, curves in {**self.data.get("probe", {}), **picked}.items():
                for probe, points in curves.items():
                    for p in points:
                        writer.writerow([probe, curve, p["fraction"], p["labels"], p["top1"], p["std"],
                                         p.get("repeats", 1), "", ""])
            for start, points in self.data.get("finetune", {}).items():
                for p in points:
                    writer.writerow(["finetune", start, p["fraction"], p["labels"], p["top1"], "", "",
                                     p["seconds"], p.get("steps", "")])
