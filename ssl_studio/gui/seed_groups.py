"""The Runs page's seed groups (core/workspace.group_runs): a chart per metric, each group's mean as a bar with
every seed's value as a point and the sample standard deviation as a whisker, and a table of the same figures.
The groups come best first, as summary.json lists them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ssl_studio.core.spaces import COLORS
from ssl_studio.core.workspace import METRICS, short_settings

from .widgets import shown

METRIC_TITLES = {"ssl_knn": "SSL kNN", "ssl_linear": "SSL linear probe", "transfer_1pct": "Transfer, 1 % of labels"}
BAR_BRUSH = pg.mkBrush(53, 88, 214, 70)
SEED_COLOR = COLORS["ssl"]


def group_label(group: dict) -> str:
    """The values of the settings that tell the groups apart, in few words (a data folder by its name)."""
    values = [Path(v).name if key == "data" else v for key, v in short_settings(group).items()]
    return ", ".join(shown(v) for v in values) or "all runs"


def group_settings(settings: dict) -> str:
    return ", ".join(f"{key}={shown(v)}" for key, v in settings.items()) or "all runs"


def figures(spread: dict | None) -> str:
    """"82.0 ± 2.0 % (80.0, 82.0, 84.0)"; a single seed has no spread."""
    if spread is None:
        return ""
    values = ", ".join(f"{100 * v:.1f}" for v in spread["values"])
    std = "" if spread["std"] is None else f" ± {100 * spread['std']:.1f}"
    return f"{100 * spread['mean']:.1f}{std} % ({values})"


class MetricPlot(pg.PlotItem):
    """One metric: a bar per group at its mean, its seeds as points spread a little sideways, ± 1 std."""

    def __init__(self, metric: str) -> None:
        super().__init__(title=METRIC_TITLES[metric])
        self.metric = metric
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.showGrid(y=True, alpha=0.2)
        self.fit_axis([])
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=BAR_BRUSH, pen=pg.mkPen(SEED_COLOR, width=1))
        self.spread = pg.ErrorBarItem(pen=pg.mkPen("#2b3140", width=1.5), beam=0.12)
        self.seeds = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(SEED_COLOR), pen=pg.mkPen("w", width=1),
                                        hoverable=True, tip=lambda x, y, data: data)
        for item in (self.bars, self.spread, self.seeds):
            self.addItem(item)

    def show_groups(self, groups: list[dict]) -> None:
        x, means, stds, px, py, tips = [], [], [], [], [], []
        for k, group in enumerate(groups):
            spread = group["metrics"].get(self.metric)
            if spread is None:
                continue
            x.append(k)
            means.append(spread["mean"])
            stds.append(spread["std"] or 0.0)
            n = len(spread["values"])
            offsets = np.linspace(-0.18, 0.18, n) if n > 1 else [0.0]
            for offset, value, run in zip(offsets, spread["values"], group["runs"]):
                px.append(k + offset)
                py.append(value)
                tips.append(f"{shown(run)}: {value:.1%}")
        low, high = self.fit_axis(py + [m - d for m, d in zip(means, stds)] + [m + d for m, d in zip(means, stds)])
        self.bars.setOpts(x=x, y0=low, height=[m - low for m in means], width=0.6)
        self.spread.setData(x=np.array(x, dtype=float), y=np.array(means), height=2 * np.array(stds))
        self.seeds.setData(x=px, y=py, data=tips)
        self.getAxis("bottom").setTicks([[(k, group_label(g)) for k, g in enumerate(groups)]])
        self.setLabel("bottom", ", ".join(short_settings(groups[0])) if groups else "")
        self.setXRange(-0.6, max(len(groups), 1) - 0.4, padding=0)

    def fit_axis(self, values: list[float]) -> tuple[float, float]:
        """Show ``values`` on an axis of round percentages (axis_range) and return its ends."""
        low, high, step = axis_range(values)
        self.setYRange(low, high, padding=0.02)
        ticks = np.arange(round(low / step), round(high / step) + 1) * step
        self.getAxis("left").setTicks([[(t, f"{100 * t:g}%") for t in ticks]])
        return low, high

    def means(self) -> list[float]:
        """Where the bars end, group by group (what a test reads back)."""
        return [float(self.bars.opts["y0"] + h) for h in self.bars.opts["height"]]


def axis_range(values: list[float]) -> tuple[float, float, float]:
    """(low, high, step) of an axis in [0, 1] that holds ``values`` with at most 5 round steps between its ends.

    From 0 when the values span much of the range; closer otherwise, so that seeds at 97 and 99 % do not look alike
    (the ticks say where the axis starts)."""
    if not values:
        return 0.0, 1.0, 0.25
    lo, hi = max(0.0, min(values)), min(1.0, max(values))
    for step in (0.01, 0.02, 0.05, 0.1, 0.25):
        low, high = np.floor(lo / step - 0.5) * step, np.ceil(hi / step + 0.5) * step
        if (high - low) / step <= 5:
            return max(0.0, float(low)), min(1.0, float(high)), step
    return 0.0, 1.0, 0.25


class SeedGroupsView(QWidget):
    """What the marks mean, the charts, and the table of groups under them."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.charts = pg.GraphicsLayoutWidget()
        self.charts.setBackground("w")
        self.plots = {metric: MetricPlot(metric) for metric in METRICS}
        for metric in METRICS:
            self.charts.addItem(self.plots[metric])
        self.table = QTableWidget(0, 2 + len(METRICS))
        self.table.setHorizontalHeaderLabels(["settings", "runs", *(METRIC_TITLES[m] for m in METRICS)])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.charts)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(QLabel("Each group: runs whose settings differ only by the seed, best mean SSL kNN first. "
                                "Bar: the mean; points: every seed; whisker: ± one sample standard deviation.",
                                wordWrap=True))
        layout.addWidget(split, 1)

    def show_groups(self, groups: list[dict]) -> None:
        for plot in self.plots.values():
            plot.show_groups(groups)
        self.table.setRowCount(len(groups))
        for k, group in enumerate(groups):
            cells = [group_settings(short_settings(group)), str(len(group["runs"])),
                     *(figures(group["metrics"].get(m)) for m in METRICS)]
            tips = [group_settings(group["settings"]), ", ".join(shown(r) for r in group["runs"])]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tips[column] if column < len(tips) else text)
                self.table.setItem(k, column, item)
