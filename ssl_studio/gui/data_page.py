"""Stage 1, Data: open a folder (or a sample), watch it load, see thumbnails, classes and skipped files."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QProgressBar, QPushButton, QSplitter, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ssl_studio.core.data import DataError, ImageDataset, LoadProgress, iter_load
from ssl_studio.core.folder_defaults import RESOLUTION
from ssl_studio.core.samples import sample_folder
from ssl_studio.core.session import DATASET, Session

from . import settings
from .colors import class_color, swatch
from .explanations import DATA, SplitFigure
from .page import Page, error_text
from .thumbnails import ThumbnailCache, ThumbnailModel, ThumbnailView
from .widgets import NextButton, footer, shown

RESOLUTIONS = (16, 24, 32, 48, 64, 96, 128)
AUTO = "auto"  # the saved choice for the folder's resolution (folder_defaults.RESOLUTION)
AUTO_TEXT = "Folder's choice"
SAMPLE_TITLES = {"shapes": "Shapes", "digits": "Digits"}

_STAGE_TEXT = {"scanning": "Looking for images", "decoding": "Decoding images", "cache": "Read from the cache",
               "sample": "Generating the sample dataset (first time only)"}


class DataPage(Page):
    name, title = "data", "Data"
    datasetLoaded = Signal(object)  # ImageDataset, once it is the session's
    loadStarted = Signal(str)  # what starts loading (a folder path or "sample:<name>"), before it is decoded
    demoRequested = Signal()

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(session, "The images to learn from. One subfolder per class gives labels "
                                  "(used only for the baseline and the scores); a flat folder is fine too.", parent)
        self._source: str | None = None  # what is loading: a folder path or "sample:<name>"

        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_empty())
        self.stack.addWidget(self._build_loading())
        self.stack.addWidget(self._build_loaded())
        self.add_body(self.stack)
        self.explain(DATA, SplitFigure())
        self.refresh_recent()
        self.session.observe(DATASET, self._show_dataset)

    # --- states -----------------------------------------------------------------------------------------------
    def _build_empty(self) -> QWidget:
        self.empty_state("Open a folder or a sample dataset to begin",
                         "Drop a folder of images anywhere on this window, or pick one below. New to "
                         "self-supervised learning? The demo shows every step on the Shapes sample in a few "
                         "minutes, by itself.",
                         [("▶  Run the demo", self.demoRequested.emit), ("Open folder…", self.open_folder_dialog)]
                         + [(f"{title} sample", lambda _=False, n=name: self.open_sample(n))
                            for name, title in SAMPLE_TITLES.items()]
                         + [("Open run…", self.openRunRequested.emit)])
        self.demo_button = self.empty.button_widgets[0]
        self.recent_title = QLabel("Recent folders (double-click to open)", objectName="sectionTitle")
        self.recent_list = QListWidget(objectName="recentList")
        self.recent_list.setMinimumWidth(480)
        self.recent_list.setMaximumHeight(170)
        self.recent_list.itemActivated.connect(
            lambda item: self.load(settings.recent_folders()[self.recent_list.row(item)]))
        self.empty.add_widget(self.recent_title)
        self.empty.add_widget(self.recent_list)
        return self.empty

    def _build_loading(self) -> QWidget:
        box = QWidget()
        self.loading_title = QLabel(objectName="emptyTitle", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.progress = QProgressBar(minimumWidth=420)
        self.progress_text = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.cancel)
        layout = QVBoxLayout(box)
        layout.addStretch(2)
        layout.addWidget(self.loading_title)
        layout.addWidget(self.progress, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.progress_text)
        layout.addWidget(cancel, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)
        return box

    def _build_loaded(self) -> QWidget:
        box = QWidget()
        self.summary = QLabel(objectName="summary", wordWrap=True,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.resolution = QComboBox(toolTip="Images are decoded once at this size; training and the maps use it. "
                                            "Smaller is faster. The folder's choice: "
                                            f"{RESOLUTION} px, whatever the images' size.")
        self.resolution.addItem(AUTO_TEXT, None)
        for r in RESOLUTIONS:
            self.resolution.addItem(f"{r} px", r)
        self.set_resolution(self._saved_resolution())
        self.resolution.activated.connect(self._resolution_changed)
        self.class_filter = QComboBox(minimumContentsLength=16)
        self.class_filter.currentIndexChanged.connect(self._filter_changed)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(QLabel("Show"))
        top.addWidget(self.class_filter)
        top.addWidget(QLabel("Working resolution"))
        top.addWidget(self.resolution)

        self.grid = ThumbnailView(size=64)
        self.classes = QTableWidget(0, 2)
        self.classes.setHorizontalHeaderLabels(["Class", "Images"])
        self._tidy_table(self.classes)
        self.skipped = QTableWidget(0, 2)
        self.skipped.setHorizontalHeaderLabels(["Skipped file", "Reason"])
        self._tidy_table(self.skipped)
        # Paths are short and reasons long here: size the path to fit, give the reason the rest.
        self.skipped.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.skipped.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.skipped_title = QLabel(objectName="sectionTitle")
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        self.classes_title = QLabel("Classes", objectName="sectionTitle")
        side_layout.addWidget(self.classes_title)
        side_layout.addWidget(self.classes, 3)
        side_layout.addWidget(self.skipped_title)
        side_layout.addWidget(self.skipped, 2)
        split = QSplitter()
        split.addWidget(self.grid)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 300])

        self.next = NextButton("Augment")
        self.next.go.connect(lambda: self.goRequested.emit("augment"))
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addLayout(footer(self.next))
        return box

    @staticmethod
    def _tidy_table(table: QTableWidget) -> None:
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        table.setWordWrap(False)

    # --- opening ----------------------------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        start = settings.recent_folders()[0] if settings.recent_folders() else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.load(folder)

    def open_sample(self, name: str) -> None:
        self._start(f"sample:{name}", f"Opening the {SAMPLE_TITLES[name]} sample…",
                    lambda token, r: self._sample_then_load(name, r, token))

    def load(self, folder: str | Path) -> None:
        folder = str(folder)
        self._start(folder, f"Opening {shown(folder)}…", lambda token, r: iter_load(folder, r, cancel=token))

    def reload(self) -> None:
        """Load the current data again (after the working resolution changed)."""
        if self._source and self._source.startswith("sample:"):
            self.open_sample(self._source.split(":", 1)[1])
        elif self._source:
            self.load(self._source)

    @staticmethod
    def _sample_then_load(name: str, resolution: int, token):
        yield LoadProgress(0, 0, "sample")
        folder = sample_folder(name)  # writes ~2k PNGs the first time: seconds, so it belongs in the worker
        return (yield from iter_load(folder, resolution, cancel=token))

    def _start(self, source: str, title: str, make) -> None:
        self.cancel()
        self.banner.hide()
        self._source = source
        self.loadStarted.emit(source)
        resolution = self.working_resolution()
        self.loading_title.setText(title)
        self.progress.setRange(0, 0)
        self.progress_text.setText("")
        self.stack.setCurrentIndex(1)
        self.start_job(lambda token: make(token, resolution), events=self._on_progress,
                       succeeded=lambda dataset: self._on_loaded(source, dataset),
                       failed=lambda exc: self._on_failed(source, exc), cancelled=self._on_cancelled)

    def _on_progress(self, events: list) -> None:
        event = events[-1]  # only the latest matters for a progress bar
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            self.progress_text.setText(f"{_STAGE_TEXT.get(event.stage, event.stage)}: {event.done:,} of "
                                       f"{event.total:,}")
        else:
            self.progress.setRange(0, 0)
            self.progress_text.setText(_STAGE_TEXT.get(event.stage, event.stage) + "…")

    def _on_failed(self, source: str, exc: Exception) -> None:
        if isinstance(exc, DataError) and not Path(source).exists() and source in settings.recent_folders():
            settings.forget_folder(source)
            self.refresh_recent()
        self.banner.show_message(f"Could not open the data. {error_text(exc)}")
        self.stack.setCurrentIndex(2 if self.session.dataset is not None else 0)

    def _on_cancelled(self) -> None:
        self.banner.show_message("Loading was cancelled.", "info")
        self.stack.setCurrentIndex(2 if self.session.dataset is not None else 0)

    def _on_loaded(self, source: str, dataset: ImageDataset) -> None:
        if not source.startswith("sample:"):
            settings.remember_folder(source)
            self.refresh_recent()
        self.session.open_dataset(dataset)
        self.datasetLoaded.emit(dataset)

    # --- showing ----------------------------------------------------------------------------------------------
    def _show_dataset(self, dataset: ImageDataset) -> None:
        labels = dataset.labels.numpy() if dataset.labeled else None
        previous = self.grid.model()
        self.model = ThumbnailModel(ThumbnailCache(dataset.images, 64), dataset.paths, labels,
                                    dataset.class_names, self)
        self.grid.setModel(self.model)
        if previous is not None:
            previous.deleteLater()  # and with it its pixmaps and its hold on the old images
        kind = (f"{len(dataset.class_names)} classes" if dataset.labeled
                else "unlabeled (no class subfolders: maps will be colored by cluster)")
        self.summary.setText(f"<b>{html.escape(shown(dataset.root))}</b><br>{len(dataset):,} images · {kind} · "
                             f"{len(dataset.skipped):,} skipped · decoded at {dataset.resolution} px")
        self.summary.setToolTip(shown(dataset.root))
        # The choice stays as the person made it (a run opened at its own size does not change what the next
        # folder decodes at); the folder's choice is named beside it.
        self.resolution.setItemText(0, f"{AUTO_TEXT} ({dataset.resolution} px)" if self.working_resolution() is None
                                    else AUTO_TEXT)

        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem(f"All images ({len(dataset):,})", -1)
        counts = dataset.class_counts()
        for k, name in enumerate(dataset.class_names):
            self.class_filter.addItem(f"{shown(name)} ({counts[name]:,})", k)
        self.class_filter.setEnabled(dataset.labeled)
        self.class_filter.blockSignals(False)

        self.classes.setRowCount(len(counts))
        for row, (name, count) in enumerate(counts.items()):
            item = QTableWidgetItem(shown(name))
            item.setIcon(swatch(class_color(row)))
            self.classes.setItem(row, 0, item)
            number = QTableWidgetItem(f"{count:,}")
            number.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.classes.setItem(row, 1, number)
        self.classes_title.setText("Classes" if dataset.labeled else "Classes: none (unlabeled folder)")

        self.skipped.setRowCount(len(dataset.skipped))
        for row, skip in enumerate(dataset.skipped):
            self.skipped.setItem(row, 0, QTableWidgetItem(shown(skip.path)))
            self.skipped.setItem(row, 1, QTableWidgetItem(shown(skip.reason)))
            self.skipped.item(row, 1).setToolTip(shown(skip.reason))
        self.skipped_title.setText(f"Skipped files ({len(dataset.skipped)})" if dataset.skipped
                                   else "Skipped files: none, every image could be read")
        self.skipped.setVisible(bool(dataset.skipped))
        self.stack.setCurrentIndex(2)

    def _filter_changed(self) -> None:
        dataset = self.session.dataset
        if dataset is None or not dataset.labeled:
            return
        k = self.class_filter.currentData()
        self.model.set_rows(None if k == -1 else np.flatnonzero(dataset.labels.numpy() == k))

    # --- resolution -------------------------------------------------------------------------------------------
    @staticmethod
    def _saved_resolution() -> int | None:
        value = settings.load_json("resolution", AUTO)
        return value if value in RESOLUTIONS else None

    def working_resolution(self) -> int | None:
        """The size the next data opened decodes at; None: each folder's own (core/folder_defaults.py)."""
        return self.resolution.currentData()

    def set_resolution(self, resolution: int | None) -> None:
        """Decode the next data opened at this size, None at the folder's own (for this session: the saved choice
        stays)."""
        self.resolution.setCurrentIndex(max(0, self.resolution.findData(resolution)) if resolution else 0)

    def _resolution_changed(self) -> None:
        chosen = self.working_resolution()
        settings.save_json("resolution", chosen or AUTO)
        dataset = self.session.dataset
        if dataset is not None and dataset.resolution != (chosen or RESOLUTION):
            self.reload()

    def refresh_recent(self) -> None:
        folders = settings.recent_folders()
        self.recent_list.clear()
        self.recent_list.addItems([shown(f) for f in folders])
        self.recent_list.setVisible(bool(folders))
        self.recent_title.setVisible(bool(folders))
