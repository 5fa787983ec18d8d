"""Run against run: two runs of one data folder (or one run at two moments of its training) side by side, the second
map turned onto the first (core/alignment.py), each image colored by how many of its nearest neighbours both agree
on, and the images that moved most. Hover, selection and neighbours are linked across the two maps by the Compare
page's own parts (compare/maps.py, linked.py, inspector.py, legend.py)."""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QStackedWidget,
                               QVBoxLayout, QWidget)

from ssl_studio.core.alignment import K, MapSide, Versus, agreement_coloring, final_side, moment_sides, \
    shared_images, versus
from ssl_studio.core.coloring import Coloring
from ssl_studio.core.runs import RunError, holds_run_files
from ssl_studio.core.session import DATASET, OPENED, RUN, Session
from ssl_studio.core.spaces import Space
from ssl_studio.core.workspace import WorkspaceError, list_runs

from . import settings
from .compare.inspector import Inspector, SelectionBar
from .compare.legend import Legend
from .compare.linked import LinkedViews
from .compare.maps import MapGrid
from .page import Page, error_text
from .thumbnails import ThumbnailModel, ThumbnailView
from .widgets import shown

FIRST, SECOND = "first", "second"  # the two maps, named as the Compare page names its spaces
MAPS = (Space(FIRST, "First", "First", lambda _: None), Space(SECOND, "Second", "Second", lambda _: None))
MODES = {"runs": "Two runs", "moments": "One run, two moments"}
COLOR_BY = {"agreement": "Neighbours kept", "class": "Class"}
COLOR_BY_TIPS = {
    "agreement": f"The share of each image's {K} nearest neighbours that are the same in both: red where its "
                 "neighbourhood changed, blue where it stayed",
    "class": "Each image's class (its folder)",
}
MOVED_SHOWN = 60  # thumbnails in the moved-most strip
MOVED_SIZE = 48

EXPLANATION = f"""
<p><b>Two runs, one folder.</b> Each run places the same images on its own map, and the axes of a map mean nothing:
a cluster on the left in one may sit on the right, mirrored, in the other. The second map is turned, mirrored,
scaled and shifted onto the first (orthogonal Procrustes, on the images both runs hold), so the same cluster sits
in the same place, and whatever still differs is how the runs differ.</p>
<p><b>Neighbours kept.</b> A map flattens the embedding; the embedding itself says more. For every image, the
{K} images closest to it (cosine similarity, as the kNN score) are found in each run; the share it keeps in both
colours its point: blue where both runs see the same neighbourhood, red where it changed. The images that moved
most are listed below the maps; click one to see its neighbours in both.</p>
<p><b>One run, two moments.</b> A run keeps snapshots of its map while it trained (a few hundred images, PCA):
pick two to see what the network learned in between. A snapshot keeps no embedding, so its neighbours are the
map's own.</p>
"""


class VersusPage(Page):
    name, title = "versus", "Run vs run"  # run against run, short enough for the navigation
    scrolls = True  # with every panel open, the maps keep their room (scatter_map.MIN_HEIGHT_PX)
    compared = Signal(object)  # the Versus drawn
    refused = Signal(str)  # why two picks could not be compared

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(session, "Two runs of the same folder side by side, the second map turned onto the first, "
                                  f"each image colored by how many of its {K} nearest neighbours both agree on.",
                         parent)
        self.result: Versus | None = None
        self.moments: list[MapSide] = []
        self.colorings: dict[str, Coloring] = {}
        self.add_body(self._build())
        self.explain(EXPLANATION)
        for topic in (DATASET, RUN, OPENED):
            self.session.observe(topic, lambda *_: self.refresh_runs())

    # --- layout -----------------------------------------------------------------------------------------------
    def _build(self) -> QWidget:
        self.hint = QLabel("Pick two runs of the same data folder above (or one run and two moments of its "
                           "training), then Compare.", objectName="emptyText", wordWrap=True,
                           alignment=Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self._build_results())
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_pickers())
        layout.addWidget(self.stack, 1)
        return box

    def _build_pickers(self) -> QHBoxLayout:
        self.mode = QComboBox(toolTip="Two runs of one folder, or one run at two moments of its training")
        for key, text in MODES.items():
            self.mode.addItem(text, key)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.first_run, self.second_run = QComboBox(), QComboBox()
        for box in (self.first_run, self.second_run):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(22)
        self.first_run.currentIndexChanged.connect(self._fill_moments)
        self.first_moment, self.second_moment = QComboBox(), QComboBox()
        self.other_button = QPushButton("Other run…", toolTip="Add a run folder to the lists")
        self.other_button.clicked.connect(self._other_run_dialog)
        self.compare_button = QPushButton("Compare", objectName="primary")
        self.compare_button.clicked.connect(self.compare)
        row = QHBoxLayout()
        row.addWidget(self.mode)
        row.addSpacing(8)
        self.first_label, self.second_label = QLabel("First"), QLabel("against")
        for widget in (self.first_label, self.first_run, self.first_moment, self.second_label, self.second_run,
                       self.second_moment, self.other_button, self.compare_button):
            row.addWidget(widget)
        row.addStretch(1)
        self._mode_changed()
        return row

    def _build_results(self) -> QWidget:
        self.grid = MapGrid(MAPS)
        self.grid.show_spaces([FIRST, SECOND])
        self.legend = Legend(COLOR_BY, COLOR_BY_TIPS)
        self.legend.colorByChanged.connect(self._color_by)
        self.legend.hiddenChanged.connect(self.grid.set_hidden)
        self.inspector = Inspector([FIRST, SECOND])
        self.selection_bar = SelectionBar()
        self.linked = LinkedViews(self.grid, self.inspector, self.selection_bar, self)
        self.summary = QLabel(wordWrap=True)
        self.moved_title = QLabel(objectName="sectionTitle")
        self.moved = ThumbnailView(strip=True, size=MOVED_SIZE)
        self.moved.setFixedHeight(self.moved.height() + 18)  # and a caption under each: how many it kept
        self.moved.clicked.connect(lambda index: self.linked.show_neighbours(
            self.moved.model().dataset_index(index.row())))
        maps = QVBoxLayout()
        maps.addWidget(self.summary)
        maps.addWidget(self.legend)
        maps.addWidget(self.grid, 1)
        body = QHBoxLayout()
        body.addLayout(maps, 1)
        body.addWidget(self.inspector)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(body, 1)
        layout.addWidget(self.moved_title)
        layout.addWidget(self.moved)
        layout.addWidget(self.selection_bar)
        return box

    # --- picking ----------------------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self.refresh_runs()

    def known_runs(self) -> list[Path]:
        """The session's runs, the others in their folders and in the app's runs folder, newest first."""
        folders = {run.path.parent for run in self.session.runs} | {settings.runs_dir()}
        found = {run.path for run in self.session.runs}
        for folder in folders:
            try:
                found |= {folder / row.name for row in list_runs(folder) if row.state != "damaged"}
            except WorkspaceError:
                continue
        return sorted(found, key=lambda p: (p.stat().st_mtime if p.exists() else 0), reverse=True)

    def refresh_runs(self, extra: Path | None = None) -> None:
        """Fill the run lists again (keeping what is picked); the session's latest run first when nothing is."""
        runs = self.known_runs()
        for box in (self.first_run, self.second_run):
            runs += [Path(box.itemData(i)) for i in range(box.count()) if Path(box.itemData(i)) not in runs]
        if extra is not None and extra not in runs:
            runs.insert(0, extra)
        latest = self.session.run.path if self.session.run is not None else None
        for box, default in ((self.first_run, latest), (self.second_run, None)):
            picked = box.currentData() or default
            box.blockSignals(True)
            box.clear()
            for path in runs:
                box.addItem(path.name, str(path))
                box.setItemData(box.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
            index = box.findData(str(picked)) if picked else -1
            box.setCurrentIndex(index if index >= 0 else (1 if box is self.second_run and len(runs) > 1 else 0))
            box.blockSignals(False)
        self._fill_moments()

    def _other_run_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a run folder", str(settings.runs_dir()))
        if folder:
            self.add_run(folder)

    def add_run(self, folder: str | Path) -> None:
        if not holds_run_files(folder):
            self.banner.show_message(f"{shown(str(folder))} is not a run folder (it has none of a run's files).")
            return
        self.refresh_runs(Path(folder))

    def _mode_changed(self) -> None:
        moments = self.mode.currentData() == "moments"
        self.second_run.setVisible(not moments)
        self.first_moment.setVisible(moments)
        self.second_moment.setVisible(moments)
        self.first_label.setText("Run" if moments else "First")
        self.second_label.setText("from" if moments else "against")
        self._fill_moments()

    def _fill_moments(self) -> None:
        """The snapshots of the first run's map history, offered when comparing moments (first and last chosen)."""
        self.moments = []
        if self.mode.currentData() == "moments" and self.first_run.currentData():
            try:
                self.moments = moment_sides(self.first_run.currentData())
            except (RunError, OSError, ValueError) as exc:
                self.banner.show_message(error_text(exc))
        for box, default in ((self.first_moment, 0), (self.second_moment, len(self.moments) - 1)):
            box.clear()
            for side in self.moments:
                box.addItem(side.moment)
            box.setCurrentIndex(max(0, default))

    def pick_runs(self, first: str | Path, second: str | Path) -> None:
        """Choose two runs to compare (each added to the lists if it is not there)."""
        self.refresh_runs(Path(second))
        self.refresh_runs(Path(first))
        self.mode.setCurrentIndex(list(MODES).index("runs"))
        self.first_run.setCurrentIndex(self.first_run.findData(str(Path(first))))
        self.second_run.setCurrentIndex(self.second_run.findData(str(Path(second))))

    def pick_moments(self, run: str | Path, first: int, second: int) -> None:
        """Choose one run's snapshots ``first`` and ``second`` (in training order) to compare."""
        self.refresh_runs(Path(run))
        self.first_run.setCurrentIndex(self.first_run.findData(str(Path(run))))
        self.mode.setCurrentIndex(list(MODES).index("moments"))
        self.first_moment.setCurrentIndex(first)
        self.second_moment.setCurrentIndex(second)

    # --- comparing --------------------------------------------------------------------------------------------
    def compare(self) -> None:
        """Compare what is picked, in the background; a refusal (two data folders, no map) shows in the banner."""
        self.banner.hide()
        if self.mode.currentData() == "moments":
            if len(self.moments) < 2:
                self._refuse("This run kept fewer than two snapshots of its map while it trained: pick another, or "
                             "compare two runs.")
                return
            sides = (self.moments[self.first_moment.currentIndex()], self.moments[self.second_moment.currentIndex()])
            load = lambda: sides  # noqa: E731 (read already)
        else:
            first, second = self.first_run.currentData(), self.second_run.currentData()
            if not first or not second:
                self._refuse("Pick two runs: the lists hold the runs of this session and of your runs folder "
                             "(Other run… adds one).")
                return
            load = lambda: (final_side(first), final_side(second))  # noqa: E731 (in the job)
        dataset = self.session.dataset
        self.cancel()

        def work(token):
            result = versus(*load())
            images = yield from shared_images(result, dataset, token)
            return result, images

        self.compare_button.setEnabled(False)
        self.start_job(work, succeeded=lambda out: self.show_versus(*out), failed=lambda exc: self._refuse(
            error_text(exc)), ended=lambda: self.compare_button.setEnabled(True))

    def _refuse(self, text: str) -> None:
        self.banner.show_message(text)
        self.refused.emit(text)

    def show_versus(self, result: Versus, images) -> None:
        self.result = result
        labels, class_names = result.labels, result.a.class_names
        self.linked.reset(result.paths, labels, class_names, images)
        self.grid.clear()
        titles = {FIRST: html.escape(shown(result.a.title)),
                  SECOND: html.escape(shown(result.b.title)) + ", turned onto the first"}
        for space, side, rows in ((FIRST, result.a, result.rows_a), (SECOND, result.b, result.rows_b)):
            self.grid.spaces[space] = replace(self.grid.spaces[space], title=titles[space],
                                              short=html.escape(shown(side.title)))
            self.linked.set_neighbours(space, side.neighbours(rows))
        self.colorings = {"agreement": agreement_coloring(result.agreement)}
        if labels is not None:
            self.colorings["class"] = Coloring.by_class(labels, class_names)
        self.legend.set_choices(set(self.colorings), "agreement")
        # Captions and the selection's counts name the class where there is one (the colors say the agreement).
        self.linked.set_coloring(self.colorings.get("class", self.colorings["agreement"]))
        self._color_by("agreement")
        self.grid.set_points(FIRST, result.coords_a, self.linked.selection)
        self.grid.set_points(SECOND, result.coords_b, self.linked.selection)
        for space in (FIRST, SECOND):
            self.grid.set_title(space)
        self._show_moved(result)
        self.stack.setCurrentIndex(1)
        self.compared.emit(result)

    def _color_by(self, key: str) -> None:
        coloring = self.colorings[key]
        self.legend.set_coloring(coloring)
        self.grid.set_coloring(coloring)

    def _show_moved(self, result: Versus) -> None:
        k = min(K, len(result.paths) - 1)
        kept = (result.agreement * k).round().astype(int)
        low = int((result.agreement < 0.2).sum())
        self.summary.setText(
            f"<b>{len(result.paths):,}</b> images in both. On average <b>{result.agreement.mean():.0%}</b> of an "
            f"image's {k} nearest neighbours are the same in both; <b>{low:,}</b> keep fewer than 20 %.")
        self.moved_title.setText(f"Moved most: the images that kept the fewest of their {k} nearest neighbours "
                                 "(click one to see its neighbours in both)")
        model = ThumbnailModel(self.linked.cache, result.paths, result.labels, result.a.class_names, self,
                               captions=lambda i: f"{kept[i]} of {k}", size=MOVED_SIZE)
        model.set_rows(result.moved[:MOVED_SHOWN])
        if self.moved.model() is not None:
            self.moved.model().deleteLater()
        self.moved.setModel(model)
