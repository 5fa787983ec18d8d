"""Stage 4, Compare: maps of the SSL, supervised, untrained and pixel spaces side by side, linked.

The spaces come from core.pipeline.compare, run in a worker: embeddings and scores first, then a PCA map of every
space at once, then UMAP replacing each PCA map as it is ready. Hover, selection and nearest neighbours are linked
across the maps by dataset index: the same image is highlighted wherever it landed in each space.
"""

from __future__ import annotations

import csv
import html
import sys
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QPoint, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QStackedWidget, QToolButton, QVBoxLayout, QWidget)
from superqt import QElidingLabel, QFlowLayout

from ssl_studio.core.atomic import write_atomic
from ssl_studio.core.data import ImageDataset
from ssl_studio.core.evaluate import kmeans_labels
from ssl_studio.core.pipeline import PipelineFinished, ProjectionReady, SpaceReady, StageStarted, compare
from ssl_studio.core.runs import RunError, RunFolder
from ssl_studio.core.spaces import SPACES, TITLES

from . import settings
from .colors import class_brush, class_color, swatch
from .scatter_map import ScatterMap
from .thumbnails import ThumbnailCache, ThumbnailModel, ThumbnailView
from .widgets import Banner, EmptyState, page_header, shown
from .workers import Job

NEIGHBOURS = 8
NEIGHBOUR_SIZE = 30
MAX_CLUSTERS = 8
SHORT_TITLES = {"ssl": "SSL", "supervised": "Supervised", "untrained": "Untrained", "pixels": "Pixels"}


@dataclass(frozen=True)
class ClustersReady:
    """k-means cluster ids to color an unlabeled folder's maps (computed in the worker, like the report does)."""

    labels: np.ndarray


def cluster_colors(embeddings: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """The pipeline report's coloring for an unlabeled folder: k-means on the SSL space (pixels without one)."""
    x = embeddings.get("ssl", embeddings.get("pixels"))
    return kmeans_labels(x, n_clusters=min(MAX_CLUSTERS, len(x)), seed=seed)


def _compare_with_clusters(dataset: ImageDataset, run: RunFolder, use_umap: bool, token):
    seed = int(run.read_json("config.json").get("train", {}).get("seed", 0))
    embeddings = {}
    for event in compare(dataset, run, cancel=token, use_umap=use_umap):
        if isinstance(event, SpaceReady):
            embeddings[event.space] = event.embedding
        if isinstance(event, StageStarted) and event.name == "project" and not dataset.labeled:
            yield ClustersReady(cluster_colors(embeddings, seed))
        yield event


class ComparePage(QWidget):
    trainRequested = Signal()
    openRunRequested = Signal()
    comparisonFinished = Signal(object)  # RunFolder

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.run: RunFolder | None = None
        self.paths: list[str] = []
        self.labels: np.ndarray | None = None
        self.class_names: list[str] = []
        self.colors: np.ndarray | None = None
        self.color_names: list[str] = []
        self.embeddings: dict[str, np.ndarray] = {}
        self.scores: dict[str, dict] = {}
        self.kinds: dict[str, str] = {}  # space -> "pca" | "umap", what its map shows now
        self.cache: ThumbnailCache | None = None
        self.selection = np.zeros(0, dtype=np.int64)
        self.clicked_index = -1
        self._unit: dict[str, np.ndarray] = {}  # l2-normalized embeddings for cosine neighbours
        self._queue: deque = deque()  # job events not applied yet (see _drain)
        self._drain_scheduled = False
        self._brushes: list | None = None

        self.banner = Banner()
        self.empty = EmptyState("Nothing to compare yet",
                                "Train a model on the Train page (the maps are computed when it finishes), "
                                "or open a saved run.")
        self.empty.add_button("Go to Train", self.trainRequested.emit, primary=True)
        self.empty.add_button("Open run…", self.openRunRequested.emit)
        self.empty.finish_buttons()

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self._build_results())
        layout = QVBoxLayout(self)
        self.header = page_header(
            "4 · Compare", "Each map places every image by its embedding: close points are images the network "
                           "finds similar. Hover a point to see it in every map; drag in Select mode (or with "
                           "Shift) to select; click to see its nearest neighbours in each space.")
        layout.addWidget(self.header)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)

    # --- layout -----------------------------------------------------------------------------------------------
    def _build_results(self) -> QWidget:
        toolbar = QHBoxLayout()
        toolbar.addWidget(QLabel("Show"))
        self.show_boxes: dict[str, QCheckBox] = {}
        for space in SPACES:
            box = QCheckBox(SHORT_TITLES[space], checked=True)
            box.toggled.connect(self._layout_maps)
            self.show_boxes[space] = box
            toolbar.addWidget(box)
        toolbar.addSpacing(16)
        toolbar.addWidget(QLabel("Drag to"))
        self.pan_button = QToolButton(text="Pan", checkable=True, checked=True,
                                      toolTip="Drag pans, the wheel zooms (Shift+drag still selects)")
        self.select_button = QToolButton(text="Select", checkable=True, toolTip="Drag a rectangle to select images")
        group = QButtonGroup(self)
        group.addButton(self.pan_button)
        group.addButton(self.select_button)
        self.select_button.toggled.connect(self._set_select_mode)
        toolbar.addWidget(self.pan_button)
        toolbar.addWidget(self.select_button)
        toolbar.addSpacing(16)
        self.use_umap = QCheckBox("UMAP", checked=bool(settings.load_json("use_umap", True)),
                                  toolTip="Replace the PCA maps with UMAP maps when ready: slower, but shows "
                                          "clusters far better.")
        self.use_umap.toggled.connect(lambda on: settings.save_json("use_umap", on))
        toolbar.addWidget(self.use_umap)
        toolbar.addStretch(1)
        self.busy = QProgressBar(maximumWidth=120, maximumHeight=14, textVisible=False)
        self.busy.setRange(0, 0)
        self.busy.hide()
        self.status = QElidingLabel(objectName="stageText", elideMode=Qt.TextElideMode.ElideRight)
        self.status.setMinimumWidth(200)
        toolbar.addWidget(self.busy)
        toolbar.addWidget(self.status)

        self.legend = QWidget()
        self.legend_layout = QFlowLayout(self.legend)
        self.legend_layout.setContentsMargins(0, 0, 0, 0)
        self.projection_label = QLabel(objectName="caption",
                                       toolTip="PCA is instant but squashes clusters together; UMAP keeps "
                                               "neighbourhoods and shows clusters far better.")
        legend_row = QHBoxLayout()
        legend_row.addWidget(self.legend, 1)
        legend_row.addWidget(self.projection_label)

        self.maps: dict[str, ScatterMap] = {}
        self.maps_box = QWidget(objectName="maps")
        self.maps_grid = QGridLayout(self.maps_box)
        self.maps_grid.setContentsMargins(0, 0, 0, 0)
        self.maps_grid.setSpacing(6)
        for space in SPACES:
            m = ScatterMap(space)
            m.hovered.connect(lambda i, s=space: self.set_hover(i, s))
            m.clicked.connect(self.show_neighbours)
            m.selected.connect(self.set_selection)
            self.maps[space] = m

        center = QVBoxLayout()
        center.addLayout(legend_row)
        center.addWidget(self.maps_box, 1)
        body = QHBoxLayout()
        body.addLayout(center, 1)
        body.addWidget(self._build_inspector())

        self.selection_label = QLabel("Selection: none. Drag a rectangle in Select mode (or Shift+drag) on any map.")
        self.clear_selection_button = QPushButton("Clear selection")
        self.clear_selection_button.clicked.connect(lambda: self.set_selection(np.zeros(0, dtype=np.int64)))
        self.selection_strip = ThumbnailView(strip=True, size=40)
        self.selection_strip.clicked.connect(
            lambda index: self.show_neighbours(self.selection_model.dataset_index(index.row())))
        selection_row = QHBoxLayout()
        selection_row.addWidget(self.selection_label, 1)
        selection_row.addWidget(self.clear_selection_button)

        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(toolbar)
        layout.addLayout(body, 1)
        layout.addLayout(selection_row)
        layout.addWidget(self.selection_strip)
        return box

    def _build_inspector(self) -> QWidget:
        panel = QFrame(objectName="inspector")
        panel.setFixedWidth(365)  # eight neighbours in a row
        self.inspect_image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.inspect_image.setFixedSize(112, 112)
        self.inspect_text = QLabel("Hover or click a point.", wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.neighbour_rows: dict[str, tuple[QLabel, ThumbnailView]] = {}
        rows = QWidget()
        rows_layout = QVBoxLayout(rows)
        rows_layout.setContentsMargins(0, 0, 0, 0)
        self.neighbours_title = QLabel("Nearest neighbours: click a point on any map to see the images closest "
                                       "to it in each space.", objectName="sectionTitle", wordWrap=True)
        rows_layout.addWidget(self.neighbours_title)
        for space in SPACES:
            title = QLabel(objectName="caption")
            strip = ThumbnailView(strip=True, size=NEIGHBOUR_SIZE)
            strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the 8 fit the panel
            strip.setFixedHeight(NEIGHBOUR_SIZE + 14)
            strip.clicked.connect(lambda index, view=strip: self.show_neighbours(
                view.model().dataset_index(index.row())))
            rows_layout.addWidget(title)
            rows_layout.addWidget(strip)
            self.neighbour_rows[space] = (title, strip)
            title.hide()
            strip.hide()
        rows_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(rows)
        layout = QVBoxLayout(panel)
        layout.addWidget(self.inspect_image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.inspect_text)
        layout.addWidget(scroll, 1)
        return panel

    def _layout_maps(self) -> None:
        for m in self.maps.values():
            self.maps_grid.removeWidget(m)
            m.hide()
        shown = self.visible_spaces()
        columns = 2 if len(shown) == 4 else max(1, len(shown))
        for i, space in enumerate(shown):
            self.maps_grid.addWidget(self.maps[space], i // columns, i % columns)
            self.maps[space].show()

    def visible_spaces(self) -> list[str]:
        return [s for s in SPACES if self.show_boxes[s].isChecked() and self.show_boxes[s].isEnabled()]

    def _set_select_mode(self, on: bool) -> None:
        for m in self.maps.values():
            m.view_box.select_mode = on

    # --- filling ----------------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every result (new data was opened)."""
        self.stop()
        self._queue.clear()
        self.run = None
        self.embeddings, self.scores, self.kinds, self._unit = {}, {}, {}, {}
        self.colors, self._brushes = None, None
        for m in self.maps.values():
            m.clear()
        self.banner.hide()
        self.stack.setCurrentIndex(0)

    def _begin(self, run: RunFolder, paths, labels, class_names, images) -> None:
        self.clear()
        self.run = run
        self.paths, self.labels, self.class_names = paths, labels, class_names
        self.cache = ThumbnailCache(images, 64)
        for view in [self.selection_strip] + [strip for _, strip in self.neighbour_rows.values()]:
            if view.model() is not None:
                view.model().deleteLater()  # the previous run's models, their pixmaps and images
        self.selection_model = ThumbnailModel(self.cache, paths, labels, class_names, self, size=40)
        self.selection_model.set_rows([])
        self.selection_strip.setModel(self.selection_model)
        self.neighbour_models = {}
        for space, (title, strip) in self.neighbour_rows.items():
            model = ThumbnailModel(self.cache, paths, labels, class_names, self, size=NEIGHBOUR_SIZE)
            model.set_rows([])
            strip.setModel(model)
            self.neighbour_models[space] = model
            title.hide()
            strip.hide()
        self.neighbours_title.setText("Nearest neighbours: click a point on any map to see the images closest "
                                      "to it in each space.")
        self.inspect_image.clear()
        self.inspect_text.setText("Hover or click a point.")
        self.set_selection(np.zeros(0, dtype=np.int64))
        if labels is not None:
            self._set_colors(np.asarray(labels), class_names)
        for space, box in self.show_boxes.items():
            box.setEnabled(True)
        for m in self.maps.values():
            m.title.setText(f"<b>{TITLES[m.space]}</b>")
        self._layout_maps()
        self.stack.setCurrentIndex(1)

    def start(self, dataset: ImageDataset, run: RunFolder) -> None:
        """Compute the four spaces of a trained run in the background and show them as they arrive."""
        self._begin(run, dataset.paths, dataset.labels.numpy() if dataset.labeled else None, dataset.class_names,
                    dataset.images)
        self.status.setText("Starting…")
        self.busy.show()
        use_umap = self.use_umap.isChecked()
        job = Job(lambda token: _compare_with_clusters(dataset, run, use_umap, token), self)
        job.events.connect(self._on_events)
        job.succeeded.connect(lambda _: self._on_events([self._on_done]))
        job.failed.connect(lambda exc: self._on_events([lambda: self._on_failed(exc)]))
        job.cancelled.connect(lambda: self._on_events([lambda: self._on_stopped("Stopped.")]))
        self.job = job.start()

    def show_loaded(self, loaded, images: torch.Tensor | None, clusters: np.ndarray | None) -> None:
        """Show a run read back by core.pipeline.open_run (``images`` aligned to its paths, or None)."""
        self._begin(loaded.run, loaded.paths, loaded.labels, loaded.class_names, images)
        if clusters is not None:
            self._set_colors(clusters, [f"cluster {k + 1}" for k in range(int(clusters.max()) + 1)])
        scores = loaded.metrics.get("embeddings", {}) if isinstance(loaded.metrics, dict) else {}
        for space, x in loaded.embeddings.items():
            self._space_ready(space, x, scores.get(space))
        for space in SPACES:
            for kind in ("umap", "pca"):
                if (space, kind) in loaded.projections:
                    self._projection_ready(space, kind, loaded.projections[(space, kind)])
                    break
        self._update_space_boxes()
        self.status.setText("Opened run." + ("" if images is not None else
                                             f" Thumbnails are grey: its data folder {shown(loaded.data_root)} "
                                             "could not be read."))
        if not loaded.projections:
            self.banner.show_message("This run has no maps yet (it was stopped before they were computed).",
                                     "info")

    def stop(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()

    def is_running(self) -> bool:
        return self.job is not None and self.job.running

    def _set_colors(self, colors: np.ndarray, names: list[str]) -> None:
        self.colors = np.asarray(colors, dtype=np.int64)
        self.color_names = names
        # The same QBrush object for every point of a class: pyqtgraph then draws each class from one sprite.
        self._brushes = [class_brush(int(k)) for k in self.colors]
        for m in self.maps.values():
            m.set_brushes(self._brushes)
        while self.legend_layout.count():
            item = self.legend_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        counts = np.bincount(self.colors, minlength=len(names))
        for k, name in enumerate(names):
            entry = QLabel(f"{shown(name)} ({counts[k]:,})", objectName="legendEntry")
            icon = swatch(class_color(k), 10)
            row = QWidget()
            row_layout = QHBoxLayout(row)
            row_layout.setContentsMargins(0, 0, 8, 0)
            row_layout.setSpacing(4)
            mark = QLabel()
            mark.setPixmap(icon.pixmap(10, 10))
            row_layout.addWidget(mark)
            row_layout.addWidget(entry)
            self.legend_layout.addWidget(row)

    def _on_events(self, events: list) -> None:
        self._queue.extend(events)
        if not self._drain_scheduled:
            self._drain()

    def _drain(self) -> None:
        """Apply queued events in order, at most one map drawn per event-loop turn.

        Setting a 20k-point map takes up to ~80 ms, and the four PCA maps usually arrive in one batch: drawn in one
        go they would freeze the window for a third of a second.
        """
        self._drain_scheduled = False
        while self._queue:
            event = self._queue.popleft()
            if callable(event):  # the job's outcome, queued behind its events
                event()
                continue
            self._apply(event)
            if isinstance(event, ProjectionReady) and self._queue:
                self._drain_scheduled = True
                QTimer.singleShot(0, self._drain)
                return
        self._update_space_boxes()

    def _apply(self, event) -> None:
        if isinstance(event, StageStarted):
            self.status.setText(event.text + "…")
        elif isinstance(event, SpaceReady):
            self._space_ready(event.space, event.embedding, event.metrics)
        elif isinstance(event, ClustersReady):
            self._set_colors(event.labels, [f"cluster {k + 1}" for k in range(int(event.labels.max()) + 1)])
        elif isinstance(event, ProjectionReady):
            self._projection_ready(event.space, event.kind, event.coords)
            if event.kind == "umap":
                done = sum(k == "umap" for k in self.kinds.values())
                self.status.setText(f"UMAP maps: {done} of {len(self.embeddings)} ready…")
        elif isinstance(event, PipelineFinished):
            self.run = event.run
            if event.metrics.get("note"):
                self.banner.show_message(event.metrics["note"], "info")

    def _space_ready(self, space: str, embedding: np.ndarray, metrics: dict | None) -> None:
        self.embeddings[space] = embedding
        if metrics:
            self.scores[space] = metrics
        # numpy, not torch: a torch op on the GUI thread would wait for torch's threads, busy with the worker's work.
        x = np.asarray(embedding, dtype=np.float32)
        self._unit[space] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        self._update_title(space)

    def _projection_ready(self, space: str, kind: str, coords: np.ndarray) -> None:
        self.kinds[space] = kind
        brushes = self._brushes or [class_brush(0)] * len(coords)
        self.maps[space].set_points(coords, brushes)
        self._update_title(space)
        self.maps[space].show_selection(self.selection, self._selection_brushes())

    def _update_title(self, space: str) -> None:
        title = f"<b>{TITLES[space]}</b>"
        score = self.scores.get(space)
        if score:
            title += f" &nbsp; kNN <b>{score['knn_top1']:.0%}</b> · linear <b>{score['linear_top1']:.0%}</b>"
        self.maps[space].title.setText(title)
        self._update_projection_label()

    def _update_projection_label(self) -> None:
        kinds = set(self.kinds.values())
        if not kinds:
            text = ""
        elif kinds == {"umap"}:
            text = "Maps: UMAP"
        elif self.is_running() and self.use_umap.isChecked():
            text = "Maps: PCA for now, UMAP on its way…"
        else:
            text = "Maps: PCA" if kinds == {"pca"} else "Maps: PCA and UMAP"
        self.projection_label.setText(text)

    def _update_space_boxes(self) -> None:
        if self.is_running():
            return
        for space, box in self.show_boxes.items():
            have = space in self.embeddings
            box.setEnabled(have)
            box.setToolTip("" if have else ("No supervised baseline: the folder has no labels (or one class)."
                                            if space == "supervised" else "Not computed in this run."))
        self._layout_maps()

    def _on_done(self) -> None:
        self.busy.hide()
        self._update_projection_label()
        if self.labels is None:
            self.status.setText("Done: no labels, so colored by k-means clusters of the SSL space, no accuracies.")
        elif len(self.class_names) < 2:
            self.status.setText("Done: only one class, so no supervised baseline (it needs two or more).")
        else:
            self.status.setText("Done.")
        self._update_space_boxes()
        if self.run is not None:
            self.comparisonFinished.emit(self.run)

    def _on_failed(self, exc: Exception) -> None:
        if not isinstance(exc, (RunError, ValueError, OSError)):
            traceback.print_exception(exc, file=sys.stderr)
        self._on_stopped("Failed.")
        self.banner.show_message(f"Could not compute the maps: {exc}")

    def _on_stopped(self, text: str) -> None:
        self.busy.hide()
        self._update_projection_label()
        self.status.setText(text)
        self._update_space_boxes()

    # --- linked interaction -----------------------------------------------------------------------------------
    def caption(self, index: int) -> str:
        if self.colors is None:
            return ""
        if self.labels is not None:
            return self.class_names[int(self.labels[index])]
        return self.color_names[int(self.colors[index])]

    def set_hover(self, index: int, source: str | None = None) -> None:
        """Highlight image ``index`` in every map (-1 clears); the map under the mouse shows its thumbnail."""
        for space, m in self.maps.items():
            m.show_hover(index)
            if space == source and index >= 0 and self.cache is not None:
                m.show_preview(index, self.cache.pixmap(index, 64), shown(self.caption(index)))
            else:
                m.hide_preview()
        if index >= 0:
            self._inspect(index)
        elif self.clicked_index >= 0:
            self._inspect(self.clicked_index)

    def _inspect(self, index: int) -> None:
        if self.cache is None:
            return
        self.inspect_image.setPixmap(self.cache.pixmap(index, 112))
        label = self.caption(index)
        self.inspect_text.setText((f"<b>{html.escape(shown(label))}</b><br>" if label else "")
                                  + html.escape(shown(self.paths[index])))

    def set_selection(self, indices) -> None:
        self.selection = np.asarray(indices, dtype=np.int64)
        brushes = self._selection_brushes()
        for m in self.maps.values():
            m.show_selection(self.selection, brushes)
        if hasattr(self, "selection_model"):
            self.selection_model.set_rows(self.selection)
        n = len(self.selection)
        if n == 0:
            self.selection_label.setText("Selection: none. Drag a rectangle in Select mode (or Shift+drag) on any "
                                         "map to see where those images land in the other spaces.")
        else:
            parts = ""
            if self.colors is not None:
                counts = np.bincount(self.colors[self.selection], minlength=len(self.color_names))
                top = np.argsort(-counts)[:4]
                parts = " · ".join(f"{counts[k]} {shown(self.color_names[k])}" for k in top if counts[k])
            self.selection_label.setText(f"Selection: {n:,} image(s)" + (f" ({parts})" if parts else ""))
        self.clear_selection_button.setEnabled(n > 0)

    def _selection_brushes(self) -> list | None:
        return None if self._brushes is None else [self._brushes[i] for i in self.selection]

    def neighbours_of(self, index: int, space: str, k: int = NEIGHBOURS) -> np.ndarray:
        """The k images most cosine-similar to image ``index`` in ``space`` (itself excluded), closest first."""
        unit = self._unit[space]
        sims = unit @ unit[index]
        sims[index] = -np.inf
        k = min(k, len(sims) - 1)
        top = np.argpartition(-sims, k - 1)[:k] if k > 0 else np.zeros(0, dtype=np.int64)
        return top[np.argsort(-sims[top])]

    def show_neighbours(self, index: int) -> None:
        self.clicked_index = index
        self._inspect(index)
        self.neighbours_title.setText("Nearest neighbours of this image (cosine similarity in each space)"
                                      if self.labels is None else
                                      f"Nearest neighbours of this <b>{html.escape(shown(self.caption(index)))}</b> "
                                      f"(cosine similarity in each space)")
        for space in SPACES:
            title, strip = self.neighbour_rows[space]
            if space not in self._unit:
                title.hide()
                strip.hide()
                self.maps[space].show_neighbours(None)
                continue
            near = self.neighbours_of(index, space)
            self.neighbour_models[space].set_rows(near)
            self.maps[space].show_neighbours(near)
            text = f"<b>{SHORT_TITLES[space]}</b>"
            if self.labels is not None:
                same = int((self.labels[near] == self.labels[index]).sum())
                text += f": {same} of {len(near)} same class"
            title.setText(text)
            title.show()
            strip.show()

    # --- export -----------------------------------------------------------------------------------------------
    def can_export(self) -> bool:
        return bool(self.embeddings) and any(m.has_points() for m in self.maps.values())

    def export(self, folder: str | Path) -> Job:
        """Write the maps (PNG and SVG, drawn here) and, in a worker, each space's embedding as NPY and as CSV
        (path, label, values) into ``folder``. The job returns the list of files written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        pictures = [write_atomic(folder / "maps.png", self._save_png),
                    write_atomic(folder / "maps.svg", self._save_svg)]
        embeddings = dict(self.embeddings)
        paths = list(self.paths)
        names = [self.caption(i) for i in range(len(paths))]

        def write_arrays(token):
            written = list(pictures)
            for space, x in embeddings.items():
                token.raise_if_cancelled()
                written.append(write_atomic(folder / f"embedding_{space}.npy", lambda tmp, x=x: _save_npy(tmp, x)))
                written.append(write_atomic(folder / f"embedding_{space}.csv",
                                            lambda tmp, x=x: _save_csv(tmp, x, paths, names)))
                yield space
            return written

        job = Job(write_arrays, self)
        job.failed.connect(lambda exc: self.banner.show_message(f"Export failed: {exc}"))
        job.succeeded.connect(lambda written: self.banner.show_message(
            f"Exported {len(written)} files to {folder}.", "info"))
        return job.start()

    def _save_png(self, path: Path) -> None:
        if not self.maps_box.grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}")

    def _save_svg(self, path: Path) -> None:
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        size = self.maps_box.size()
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setTitle("SSL Studio maps")
        painter = QPainter(generator)
        try:
            self.maps_box.render(painter, QPoint(0, 0))
        finally:
            painter.end()


def _save_npy(path: Path, x: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, x, allow_pickle=False)


def _save_csv(path: Path, x: np.ndarray, paths: list[str], names: list[str]) -> None:
    # surrogateescape writes a file name that is not valid UTF-8 back as its original bytes.
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"] + [f"e{j}" for j in range(x.shape[1])])
        for i in range(len(x)):
            writer.writerow([paths[i], names[i], *(f"{v:.6g}" for v in x[i])])
