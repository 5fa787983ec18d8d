"""Label these next: a budget the person types, a strategy and a space; the core's picks become the maps' selection
(framed on every map, their thumbnails in the selection bar) and export as a CSV of paths and a folder of links."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from ssl_studio.core.label_next import link_folder, pick, pool_of, write_csv
from ssl_studio.core.label_selection import STRATEGIES
from ssl_studio.core.runs import RunFolder

from ..page import Page, error_text
from .export import csv_and_links
from .linked import LinkedViews

DEFAULT_BUDGET = 100
CSV_NAME, LINKS_NAME = "label_next.csv", "label_next"


def _picking(embeddings, pool, what, budget, strategy, space, seed):
    yield from ()  # a job's generator, with nothing to report on the way
    return pick(embeddings, pool, what, budget, strategy, space, seed)


class LabelNext(QWidget):
    picked = Signal()  # a Pick has ended: its images selected, or the reason shown in the banner

    def __init__(self, page: Page, linked: LinkedViews, parent=None) -> None:
        super().__init__(parent)
        self.page, self.linked = page, linked
        self.run: RunFolder | None = None
        self.root: Path | None = None
        self.picks: np.ndarray | None = None
        # Any whole number may be typed: the core refuses one outside the pool, saying why (a clamp would not).
        self.budget = QSpinBox(minimum=-1_000_000, maximum=1_000_000, value=DEFAULT_BUDGET,
                               toolTip="How many images you can have labeled")
        self.strategy = QComboBox(toolTip="\n".join(f"{name}: {how}" for name, how in STRATEGIES.items()))
        self.strategy.addItems(list(STRATEGIES))
        self.strategy.setCurrentText("typical")
        self.space = QComboBox(toolTip="The space whose embeddings choose")
        self.pick_button = QPushButton("Pick", toolTip="Choose the images to label next; they become the selection")
        self.pick_button.clicked.connect(self.pick)
        self.export_button = QPushButton("Export…", enabled=False,
                                         toolTip=f"{CSV_NAME} (their paths) and a folder {LINKS_NAME}/ of them")
        self.export_button.clicked.connect(self._export_dialog)
        self.result = QLabel(wordWrap=True, objectName="caption")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("<b>Label these next:</b>"), self.budget, QLabel("images, by"), self.strategy,
                       QLabel("in"), self.space, self.pick_button, self.export_button):
            row.addWidget(widget)
        row.addWidget(self.result, 1)

    def reset(self, run: RunFolder, root: Path) -> None:
        """A new run, whose images lie under ``root``; no spaces yet, nothing picked."""
        self.run, self.root, self.picks = run, Path(root), None
        self.space.clear()
        self.result.setText("")
        self.export_button.setEnabled(False)

    def add_space(self, space: str, title: str) -> None:
        if self.space.findData(space) < 0:
            self.space.addItem(title, space)

    def pick(self):
        """Ask the core for the picks in a job beside the page's; they become the selection when they come."""
        if self.run is None or not self.page.embeddings:
            return None
        n = len(self.linked.paths)
        pool, what = pool_of(self.run, n)
        strategy, space, budget, run = self.strategy.currentText(), self.space.currentData(), self.budget.value(), \
            self.run
        self.result.setText("Picking…")
        self.pick_button.setEnabled(False)

        def for_this_run(handler):  # picks that come after another run was opened are not this one's
            return lambda *args: handler(*args) if self.run is run else None

        return self.page.start_job(
            lambda _token, x=dict(self.page.embeddings): _picking(x, pool, what, budget, strategy, space, 0),
            primary=False, succeeded=for_this_run(lambda picks: self._show(picks, strategy, what)),
            failed=for_this_run(self._refused), ended=self._ended)

    def _ended(self) -> None:
        self.pick_button.setEnabled(True)
        self.picked.emit()

    def _show(self, picks: np.ndarray, strategy: str, what: str) -> None:
        self.picks = picks
        self.linked.set_selection(picks)
        self.export_button.setEnabled(True)
        self.result.setText(f"{len(picks):,} images of {what} picked by {strategy} in {self.space.currentText()}: "
                            "the selection below, framed on every map.")

    def _refused(self, exc: Exception) -> None:
        self.result.setText("")
        self.page.banner.show_message(f"Could not pick the images to label: {error_text(exc)}")

    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the images to label into", str(Path.home()))
        if folder:
            self.export(folder)

    def export(self, folder: str | Path) -> list[Path]:
        """``folder``/label_next.csv (rank, path) and ``folder``/label_next/ (the images, linked or copied)."""
        files = [self.root / self.linked.paths[i] for i in self.picks]

        def write(csv_path: Path, links: Path) -> tuple[int, int]:
            write_csv(csv_path, files)
            return len(files), link_folder(links, files)

        return csv_and_links(self.page, folder, "images to label", CSV_NAME, LINKS_NAME, write)
