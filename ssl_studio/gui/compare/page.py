"""Stage 4, Compare: maps of the SSL, supervised, untrained and pixel spaces side by side, linked.

The spaces come from core.pipeline.compare, run in a job: embeddings and scores first, then a PCA map of every
space at once, then UMAP replacing each PCA map as it is ready. This page only composes the parts (maps, legend,
inspector and selection bar, their linking, export) and applies the job's events to them.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QHBoxLayout, QLabel, QProgressBar, QStackedWidget,
                               QTabWidget, QToolButton, QVBoxLayout, QWidget)
from superqt import QElidingLabel

from ssl_studio.core.coloring import Coloring
from ssl_studio.core.data import ImageDataset
from ssl_studio.core.map_history import MapHistory
from ssl_studio.core.events import ClustersReady, PipelineFinished, ProjectionReady, SpaceReady, StageStarted
from ssl_studio.core.pipeline import LoadedRun, compare, compare_imported
from ssl_studio.core.project import UmapProgress
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.session import DATASET, FINISHED, OPENED, Session
from ssl_studio.core.spaces import BUILT_IN, Space, import_space, read_embedding_file, run_spaces

from .. import settings
from ..explanations import COMPARE, MapReadingFigure
from ..page import Page, error_text
from ..widgets import shown
from ..workers import Job
from . import export
from .added_images import AddedImagesLayer
from .audit import AuditPanel
from .color_by import ColorBy
from .history import MapHistoryView
from .inspector import Inspector, SelectionBar
from .label_next import LabelNext
from .legend import Legend
from .linked import LinkedViews
from .maps import MapGrid


class ComparePage(Page):
    name, title = "compare", "Compare"
    scrolls = True  # with every panel open, the maps keep their room (scatter_map.MIN_HEIGHT_PX)
    comparisonFinished = Signal(object)  # RunFolder

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(session, "Each map places every image by its embedding: close points are images the "
                                  "network finds similar. Hover a point to see it in every map; drag in Select "
                                  "mode (or with Shift) to select; click to see its nearest neighbours in each "
                                  "space.", parent)
        self.run: RunFolder | None = None  # the run these maps are of (a newer one may be training meanwhile)
        self.embeddings: dict[str, np.ndarray] = {}
        self.scores: dict[str, dict] = {}
        self.kinds: dict[str, str] = {}  # space -> "pca" | "umap", what its map shows now
        self._queue: deque = deque()  # job events not applied yet (see _drain)
        self._drain_scheduled = False

        self.empty_state("Nothing to compare yet", "Train a model on the Train page (the maps are computed when it "
                                                   "finishes), or open a saved run.",
                         [("Go to Train", lambda: self.goRequested.emit("train")),
                          ("Open run…", self.openRunRequested.emit)])
        self.add_results(self._build_results())
        self.explain(COMPARE, MapReadingFigure())
        self.session.observe(DATASET, lambda dataset: self.clear())
        self.session.observe(OPENED, lambda opened: self.show_loaded(opened.loaded, opened.images))
        self.session.observe(FINISHED, self._stage_finished)

    # --- layout -----------------------------------------------------------------------------------------------
    def _build_results(self) -> QWidget:
        self.grid = MapGrid()
        self.maps = self.grid.maps
        self.legend = Legend()
        self.inspector = Inspector()
        self.selection_bar = SelectionBar()
        self.linked = LinkedViews(self.grid, self.inspector, self.selection_bar, self)
        self.added_images = AddedImagesLayer(self)
        self.color_by = ColorBy(self, self.grid, self.legend)
        self.label_next = LabelNext(self, self.linked)
        self.audit = AuditPanel(self, self.linked, self.color_by)
        self.selection_bar.add_action(self.audit.selection_button)
        self.side = QTabWidget()  # the hovered image and its neighbours, or the audit: beside the maps
        self.side.addTab(self.inspector, "Inspect")
        self.side.addTab(self.audit, "Audit")

        self.history = MapHistoryView()
        maps = QWidget()
        center = QVBoxLayout(maps)
        center.setContentsMargins(0, 0, 0, 0)
        center.addWidget(self.legend)
        center.addWidget(self.grid, 1)
        self.views = QStackedWidget()  # the maps side by side, or the SSL map forming
        self.views.addWidget(maps)
        self.views.addWidget(self.history)
        body = QHBoxLayout()
        body.addWidget(self.views, 1)
        body.addWidget(self.side)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_toolbar())
        layout.addLayout(body, 1)
        layout.addWidget(self.label_next)
        layout.addWidget(self.selection_bar)
        return box

    def _build_toolbar(self) -> QHBoxLayout:
        toolbar = QHBoxLayout()
        toolbar.addWidget(QLabel("Show"))
        self.show_boxes: dict[str, QCheckBox] = {}
        self.boxes_layout = QHBoxLayout()
        toolbar.addLayout(self.boxes_layout)
        for space in BUILT_IN:
            self._add_space(space)
        toolbar.addSpacing(16)
        self.forming_button = QToolButton(text="How it formed", checkable=True,
                                          toolTip="Watch the self-supervised map form while the network learned")
        self.forming_button.toggled.connect(lambda on: self.views.setCurrentIndex(int(on)))
        toolbar.addWidget(self.forming_button)
        self.versus_button = QToolButton(text="Against another run", toolTip="Set this map against another run of "
                                         "the same folder, or two moments of this one (the Run vs run page)")
        self.versus_button.clicked.connect(lambda: self.goRequested.emit("versus"))
        toolbar.addWidget(self.versus_button)
        toolbar.addSpacing(16)
        toolbar.addWidget(QLabel("Drag to"))
        self.pan_button = QToolButton(text="Pan", checkable=True, checked=True,
                                      toolTip="Drag pans, the wheel zooms (Shift+drag still selects)")
        self.select_button = QToolButton(text="Select", checkable=True, toolTip="Drag a rectangle to select images")
        self.lasso_button = QToolButton(text="Lasso", checkable=True,
                                        toolTip="Draw a loop around images to select them")
        group = QButtonGroup(self)
        for tool, button in (("pan", self.pan_button), ("rect", self.select_button), ("lasso", self.lasso_button)):
            group.addButton(button)
            button.toggled.connect(lambda on, tool=tool: on and self.grid.set_tool(tool))
            toolbar.addWidget(button)
        toolbar.addSpacing(16)
        self.use_umap = QCheckBox("UMAP", checked=bool(settings.load_json("use_umap", True)),
                                  toolTip="Replace the PCA maps with UMAP maps when ready: slower, but shows "
                                          "clusters far better.")
        self.use_umap.toggled.connect(lambda on: settings.save_json("use_umap", on))
        toolbar.addWidget(self.use_umap)
        toolbar.addStretch(1)
        # Narrow enough, with the status, that a busy Compare page fits a 1280 px wide window beside the sidebar.
        self.busy = QProgressBar(maximumWidth=80, maximumHeight=14, textVisible=False)
        self.busy.setRange(0, 0)
        self.busy.hide()
        self.status = QElidingLabel(objectName="stageText", elideMode=Qt.TextElideMode.ElideRight)
        self.status.setMinimumWidth(100)  # elided: 160 made the toolbar wider than a 1280 px window's page
        toolbar.addWidget(self.busy)
        toolbar.addWidget(self.status)
        return toolbar

    def _add_space(self, space: Space) -> None:
        """A map, a check box and a row of neighbours for a space, the first time a run has it."""
        if self.grid.add_space(space):
            self.inspector.add_space(space.name)
        if space.name not in self.show_boxes:
            box = QCheckBox(space.short, checked=True)
            box.toggled.connect(self._layout_maps)
            self.show_boxes[space.name] = box
            self.boxes_layout.addWidget(box)

    def _layout_maps(self) -> None:
        self.grid.show_spaces(self.visible_spaces())

    def visible_spaces(self) -> list[str]:
        return [s for s, box in self.show_boxes.items() if box.isChecked() and box.isEnabled()]

    # --- filling ----------------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every result (new data was opened)."""
        self.cancel()
        self._queue.clear()
        self.run = None
        self.added_images.remove()
        self.embeddings, self.scores, self.kinds = {}, {}, {}
        self.linked.clear()
        self.grid.clear()
        self.color_by.reset(None, None)
        self.audit.reset(None, None)
        self.history.set_history(None, None)
        self.forming_button.setChecked(False)
        self.banner.hide()
        self.stack.setCurrentIndex(0)

    def _begin(self, run: RunFolder, paths, labels, class_names, images) -> None:
        self.clear()
        self.run = run
        for space in run_spaces(run):
            self._add_space(space)
        self.linked.reset(paths, labels, class_names, images)
        if labels is not None:
            classes = Coloring.by_class(labels, class_names)
            self.linked.set_coloring(classes)
            self.color_by.reset(classes, run.held_out_split(len(paths)))
        for box in self.show_boxes.values():
            box.setEnabled(True)
        for space in self.grid.maps:
            self.grid.set_title(space)
        self._layout_maps()
        self.stack.setCurrentIndex(1)

    def _stage_finished(self, stage: str, run: RunFolder) -> None:
        dataset = self.session.dataset_of(run)
        if stage == "train" and dataset is not None:
            self.start(dataset, run)

    def start(self, dataset: ImageDataset, run: RunFolder) -> None:
        """Compute the four spaces of a trained run in the background and show them as they arrive."""
        self._begin(run, dataset.paths, dataset.labels.numpy() if dataset.labeled else None, dataset.class_names,
                    dataset.images)
        self.label_next.reset(run, dataset.root)
        self.audit.reset(run, dataset.root)
        self.status.setText("Starting…")
        self.busy.show()
        use_umap = self.use_umap.isChecked()
        self._start_comparison(lambda token: compare(dataset, run, cancel=token, use_umap=use_umap))

    def _start_comparison(self, make_generator) -> Job:
        self.color_by.set_enabled(False)  # until every space has come
        # The outcome is queued behind the events, which _drain may still be applying.
        return self.start_job(make_generator, events=self._on_events,
                              succeeded=lambda _: self._on_events([self._on_done]),
                              failed=lambda exc: self._on_events([lambda: self._on_failed(exc)]),
                              cancelled=lambda: self._on_events([lambda: self._on_stopped("Stopped.")]))

    def show_loaded(self, loaded: LoadedRun, images: torch.Tensor | None) -> None:
        """Show a run read back by core.pipeline.open_run (``images`` aligned to its paths, or None)."""
        self._begin(loaded.run, loaded.paths, loaded.labels, loaded.class_names, images)
        self.label_next.reset(loaded.run, loaded.data_root)
        self.audit.reset(loaded.run, loaded.data_root)
        if loaded.labels is None and loaded.clusters is not None:
            self._set_clusters(loaded.clusters)
        self._show_history(loaded.map_history)
        scores = loaded.metrics.get("embeddings", {}) if isinstance(loaded.metrics, dict) else {}
        for space, x in loaded.embeddings.items():
            self._space_ready(space, x, scores.get(space))
        for space in self.grid.maps:
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
        if loaded.embeddings:
            self.audit.load()

    def can_add_space(self) -> bool:
        return self.run is not None and bool(self.embeddings) and not self.is_running()

    def add_space(self, npy: str | Path, title: str) -> Job:
        """Import another model's embeddings (an .npy, rows matched by a CSV of paths beside it when there is one)
        into this run, then score and map them beside the others."""
        run, paths, use_umap = self.run, list(self.linked.paths), self.use_umap.isChecked()

        def work(token):
            array, rows = read_embedding_file(npy)
            space = import_space(run, title, array, paths, rows)
            yield space
            yield from compare_imported(run, space.name, cancel=token, use_umap=use_umap)

        self.status.setText(f"Adding the space {title}…")
        self.busy.show()
        return self._start_comparison(work)

    def _show_history(self, history: MapHistory | None) -> None:
        self.history.set_history(history, self.linked.coloring)

    def _set_clusters(self, ids: np.ndarray) -> None:
        """An unlabeled folder's k-means clusters: its colors and its captions."""
        clusters = Coloring.by_cluster(ids)
        self.linked.set_coloring(clusters)
        self.color_by.set_clusters(clusters)

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
        if isinstance(event, Space):  # a space just imported into the run
            self._add_space(event)
            self.grid.set_title(event.name)
        elif isinstance(event, StageStarted):
            self.status.setText(event.text + "…")
        elif isinstance(event, SpaceReady):
            self._space_ready(event.space, event.embedding, event.metrics)
        elif isinstance(event, ClustersReady):
            self._set_clusters(event.ids)
        elif isinstance(event, ProjectionReady):
            self._projection_ready(event.space, event.kind, event.coords)
            if event.kind == "umap":
                self.status.setText(self._umap_status())
        elif isinstance(event, UmapProgress):  # from the UMAP process, while it maps event.label's space
            step = ("finding neighbours" if event.stage == "neighbours"
                    else f"laying out, {event.done / max(1, event.total):.0%}")
            space = self.grid.spaces.get(event.label)
            self.status.setText(f"{self._umap_status()} {space.title if space else event.label}: {step}…")
        elif isinstance(event, PipelineFinished):
            self.run = event.run
            if event.metrics.get("note"):
                self.banner.show_message(event.metrics["note"], "info")

    def _umap_status(self) -> str:
        done = sum(k == "umap" for k in self.kinds.values())
        return f"UMAP maps: {done} of {len(self.embeddings)} ready…"

    def _space_ready(self, space: str, embedding: np.ndarray, metrics: dict | None) -> None:
        self.embeddings[space] = embedding
        if metrics:
            self.scores[space] = metrics
        self.linked.add_space(space, embedding)
        self.label_next.add_space(space, self.grid.spaces[space].title if space in self.grid.spaces else space)
        self._update_title(space)

    def _projection_ready(self, space: str, kind: str, coords: np.ndarray) -> None:
        self.kinds[space] = kind
        self.grid.set_points(space, coords, self.linked.selection)
        self._update_title(space)

    def _update_title(self, space: str) -> None:
        self.grid.set_title(space, self.scores.get(space))
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
        self.legend.projection.setText(text)

    def _update_space_boxes(self) -> None:
        if self.is_running():
            return
        self.color_by.set_enabled(True)
        self.color_by.refresh()
        for space, box in self.show_boxes.items():
            have = space in self.embeddings
            box.setEnabled(have)
            box.setToolTip("" if have else ("No supervised baseline: the folder has no labels (or one class)."
                                            if space == "supervised" else "Not computed in this run."))
        self._layout_maps()

    def _on_done(self) -> None:
        self.busy.hide()
        self._update_projection_label()
        if self.linked.labels is None:
            self.status.setText("Done: no labels, so colored by k-means clusters of the SSL space, no accuracies.")
        elif len(self.linked.class_names) < 2:
            self.status.setText("Done: only one class, so no supervised baseline (it needs two or more).")
        else:
            self.status.setText("Done.")
        self._update_space_boxes()
        if self.run is not None:
            self._show_history(self.run.read_map_history(len(self.linked.paths)))
            self.statusMessage.emit(f"Maps ready; the run is saved in {self.run.path}. Measuring the transfer curves "
                                    "on the Transfer page…", 10_000)
            self.audit.load()
            self.session.finish("compare", self.run)  # the Transfer page starts on it
            self.comparisonFinished.emit(self.run)

    def _on_failed(self, exc: Exception) -> None:
        self._on_stopped("Failed.")
        self.banner.show_message(f"Could not compute the maps: {error_text(exc)}")

    def _on_stopped(self, text: str) -> None:
        self.busy.hide()
        self._update_projection_label()
        self.status.setText(text)
        self._update_space_boxes()

    # --- export -----------------------------------------------------------------------------------------------
    def can_export(self) -> bool:
        return bool(self.embeddings) and self.grid.has_points()

    def export(self, folder: str | Path) -> Job:
        """Write the maps (PNG and SVG) and each space's embedding (NPY and CSV: path, label, values) into
        ``folder``. The job returns the list of files written."""
        paths = list(self.linked.paths)
        return export.export(self, self.grid, folder, dict(self.embeddings), paths,
                             [self.linked.caption(i) for i in range(len(paths))])
