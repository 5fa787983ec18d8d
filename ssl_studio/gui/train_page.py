"""Stage 3, Train: settings, then SSL pretraining and the supervised baseline in the background, watched live."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QRadioButton, QScrollArea, QVBoxLayout,
                               QWidget)
from superqt import QCollapsible, QElidingLabel

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import Budget, TrainConfig, available_devices
from ssl_studio.core.curation import Curation, curate
from ssl_studio.core.data import ImageDataset
from ssl_studio.core.methods import method_class, method_names
from ssl_studio.core.events import StageStarted, TrainEvent, TrainingPlanned
from ssl_studio.core.pipeline import prepare_run, train_models
from ssl_studio.core.reopen import RunWithImages
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.schema import fields_by_name, info
from ssl_studio.core.session import DATASET, OPENED, RECIPE, RUN, Session
from ssl_studio.core.spaces import COLORS, TITLES
from ssl_studio.core.sweep import RunEnded, RunStarted, SweepFinished, run_queue
from ssl_studio.core.train import TrainFinished, TrainingError, TrainProgress

from . import settings
from .explanations import SimilarityHistogram, train_text
from .folder_note import FolderNote
from .page import EXPECTED_ERRORS, Page, error_text
from .picture_strip import PictureStrip
from .setting_controls import SettingControls
from .widgets import NextButton, shown

# The page redraws twice a second while training, and its loss plot has no grid (pyqtgraph replays the grid with
# each axis at every redraw): a redraw is Python on the GUI thread, which training's own Python waits on (the GIL).
# Measured in one run, the page shown against hidden: 4 redraws/s with a grid cost training 15 % of its views/s,
# 10/s without one 8 %, 2/s without one nothing measurable.
REDRAW_MS = 500
HEALTH_TIP = ("<b>Representation health</b>: how spread out the embeddings of a batch are (the std of the "
              "l2-normalized features, times √dim).<br>About <b>1</b>: images map to varied points, healthy.<br>"
              "Toward <b>0</b>: <i>collapse</i>, every image maps to the same point and the network learns "
              "nothing. Below ~0.2 try a higher temperature, a lower learning rate or stronger augmentations.")


@dataclass(frozen=True)
class RunPrepared:
    """First event of a training job: the run folder exists and records the settings it trains with."""

    run: RunFolder
    config: TrainConfig
    dataset: ImageDataset  # what it trains on: the open dataset, or a curated set of it


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def health_words(health: float | None) -> tuple[str, str]:
    """(text, color) for a health reading."""
    if health is None or not math.isfinite(health):
        return "–", "#777"
    if health >= 0.5:
        return f"{health:.2f} healthy", "#2e7d32"
    if health >= 0.2:
        return f"{health:.2f} low", "#b26a00"
    return f"{health:.2f} collapsing", "#c62828"


class TrainPage(Page):
    name, title = "train", "Train"
    trainingFinished = Signal(object)  # RunFolder, after both models trained
    # Training started (True) or stopped (False): a job began or ended, or a sweep moved between training its runs'
    # models and mapping them (the window pauses the UMAP process while training runs).
    runningChanged = Signal(bool)
    sweepFinished = Signal(object)  # SweepFinished: the queue is empty and the workspace summarized

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(session, "Pretrain a network without labels (self-supervised), then the same network "
                                  "with labels as a baseline, with the same budget (time or epochs). Training "
                                  "runs in the background.", parent)
        self._method_trained: str | None = None  # the method of the run the job trains (its pictures' title)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._points: dict[str, list[tuple[float, float]]] = {}
        self._models: list[str] = []
        self._current: str | None = None
        self.finished_events: dict[str, TrainFinished] = {}
        self._was_running = False
        self._folder_shown = False  # the note about the open folder's choice is up to date and shown
        self.similarity = SimilarityHistogram()
        self.explain("", self.similarity)  # the words follow the method

        settings_box = self._build_settings()
        monitor = self._build_monitor()
        body = QHBoxLayout()
        # Scrollable: a method with many settings, or the advanced ones unfolded, must not force the window taller.
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        scroll.setWidget(settings_box)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(settings_box.minimumWidth() + scroll.verticalScrollBar().sizeHint().width())
        scroll.setMaximumWidth(settings_box.maximumWidth() + scroll.verticalScrollBar().sizeHint().width())
        body.addWidget(scroll)
        body.addWidget(monitor, 1)
        self.next = NextButton("Compare")
        self.next.go.connect(lambda: self.goRequested.emit("compare"))
        self.next.setEnabled(False)
        self.add_body(body)
        self.add_footer(self.next)
        self._load_settings()
        self.general.changed.connect(self._show_folder_note)
        self._show_recipe(self.session.recipe, self.session.recipe_title)
        self.session.set_method(self.method.currentData())
        self.method.currentIndexChanged.connect(lambda _: self.session.set_method(self.method.currentData()))
        self.session.observe(DATASET, self._dataset_opened)
        self.session.observe(RUN, lambda run: self._show_run_folder())
        self.session.observe(OPENED, self._show_opened)
        self.session.observe(RECIPE, self._show_recipe)
        self._update_enabled()

    # --- settings form ----------------------------------------------------------------------------------------
    def _build_settings(self) -> QWidget:
        box = QGroupBox("Settings")
        box.setMinimumWidth(340)
        box.setMaximumWidth(420)
        form = QFormLayout(box)
        self.folder_note = FolderNote("train")
        self.folder_note.back.connect(self.use_folder_defaults)
        form.addRow(self.folder_note)
        self.general = SettingControls(TrainConfig, self, choices={
            "method": {m: method_class(m).title for m in method_names(self_supervised=True)},
            "device": dict.fromkeys(available_devices(), "")})
        self.method = self.general.widgets["method"]
        # The budget: a radio button per unit, each beside its value's box, as Budget describes them.
        self.budget_controls = SettingControls(Budget, self, names=["time_budget", "epochs"])
        units = info(fields_by_name(Budget)["unit"]).choices()
        self.by_time = QRadioButton(units["time"], toolTip=info(fields_by_name(Budget)["unit"]).help)
        self.by_epochs = QRadioButton(units["epochs"], toolTip=self.by_time.toolTip())
        group = QButtonGroup(self)
        group.addButton(self.by_time)
        group.addButton(self.by_epochs)
        self.by_time.setChecked(True)
        self.time_budget = self.budget_controls.widgets["time_budget"]
        self.epochs = self.budget_controls.widgets["epochs"]
        budget = QGridLayout()
        budget.addWidget(self.by_time, 0, 0)
        budget.addWidget(self.time_budget, 0, 1)
        budget.addWidget(self.by_epochs, 1, 0)
        budget.addWidget(self.epochs, 1, 1)
        self.general.add_rows(form, ["method", "backbone"])
        form.addRow("Budget", budget)
        advanced = self.general.advanced()
        self.general.add_rows(form, [n for n in self.general.widgets
                                     if n not in ("method", "backbone") and n not in advanced])
        self.advanced = QCollapsible("Advanced")
        advanced_form = QWidget()
        self.general.add_rows(QFormLayout(advanced_form), advanced)
        self.advanced.addWidget(advanced_form)
        # The chosen method's own settings, rebuilt when the method changes.
        self.method_box = QGroupBox()
        self.method_form = QFormLayout(self.method_box)
        self.params: SettingControls | None = None
        form.addRow(self.method_box)
        form.addRow(self.advanced)
        self.recipe_label = QLabel(wordWrap=True)
        self.recipe_label.linkActivated.connect(lambda _: self.goRequested.emit("augment"))
        self.resolution_label = QLabel()
        self.runs_label = QElidingLabel(elideMode=Qt.TextElideMode.ElideMiddle)
        change = QPushButton("Change…")
        change.clicked.connect(self._choose_runs_dir)
        runs = QHBoxLayout()
        runs.addWidget(self.runs_label, 1)
        runs.addWidget(change)
        form.addRow("Augmentation", self.recipe_label)
        form.addRow("Resolution", self.resolution_label)
        form.addRow("Save runs in", runs)

        self.start_button = QPushButton("Start training", objectName="primary")
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume", toolTip="Continue the cancelled run from its last checkpoint")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.resume_button.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self._show_method_params()
        self.method.currentIndexChanged.connect(lambda _: self._show_method_params())
        self.by_time.toggled.connect(self._update_enabled)
        return box

    def control(self, name: str) -> QWidget:
        """The widget of a setting: a TrainConfig field or one of the chosen method's own."""
        if name in self.general.widgets:
            return self.general.widgets[name]
        return self.params.widgets[name]

    def _show_method_params(self, values: dict | None = None) -> None:
        cls = method_class(self.method.currentData())
        while self.method_form.rowCount():
            self.method_form.removeRow(0)
        self.params = SettingControls(cls.Params, self)
        saved = settings.load_setting("method_params", lambda all: cls.Params.from_dict(all[cls.name]))
        self.params.set_values(values or (saved.to_dict() if saved else {}))
        self.params.add_rows(self.method_form)
        self.method_box.setTitle(f"{cls.title} settings")
        self.method_box.setVisible(bool(self.params.widgets))
        self.method_box.setToolTip(cls.summary)
        self.explanation.set_text(train_text(cls))
        self._update_enabled()

    @staticmethod
    def _saved_params() -> dict:
        """Each method's own settings as last saved, by method name (so switching methods loses none)."""
        saved = settings.load_json("method_params", {})
        return saved if isinstance(saved, dict) else {}

    def _build_monitor(self) -> QWidget:
        box = QWidget()
        # Wraps: the longest messages ("Done: ... trained in ...") must not make the window wider.
        self.stage = QLabel("Not started yet.", objectName="stageText", wordWrap=True)
        self.run_label = QElidingLabel(objectName="caption", elideMode=Qt.TextElideMode.ElideMiddle)
        self.progress = QProgressBar(maximum=1000, value=0, textVisible=True)
        self.progress.setFormat("")
        self.loss_label = QLabel("Loss –")
        self.speed_label = QLabel("– views/s")
        self.health_label = QLabel("Health –", toolTip=HEALTH_TIP, textFormat=Qt.TextFormat.RichText)
        self.health_label.setCursor(Qt.CursorShape.WhatsThisCursor)
        stats = QHBoxLayout()
        for label in (self.loss_label, self.speed_label, self.health_label):
            label.setObjectName("stat")
            stats.addWidget(label)
        stats.addStretch(1)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "seconds of training")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setMouseEnabled(x=False, y=False)
        # A long run reports four points a second for hours: draw only what a pixel column can show.
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stage)
        layout.addWidget(self.run_label)
        layout.addWidget(self.progress)
        layout.addLayout(stats)
        layout.addWidget(self.plot, 1)
        self.pictures = PictureStrip()
        layout.addWidget(self.pictures)
        return box

    def _load_settings(self) -> None:
        """The settings last saved; any that no longer parse (an older version's) leave the defaults."""
        config = settings.load_setting("train", TrainConfig.from_dict)
        budget = settings.load_setting("budget", Budget.from_dict) or Budget()
        if config is not None:
            self.general.set_values(config.to_dict())
            budget = Budget.of(config, budget)
        self.set_budget(budget)
        self._show_runs_dir()

    def save_settings(self) -> None:
        """The settings as the run folder records them (TrainConfig.to_dict), the budget with the value
        not chosen, and each method's own settings under its name. Settings that cannot work are not saved."""
        try:
            config = self.config()
        except ValueError:
            return
        settings.save_json("train", config.to_dict())
        settings.save_json("budget", self.budget().to_dict())
        settings.save_json("method_params", {**self._saved_params(), config.method: config.params.to_dict()})

    def _choose_runs_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save runs in", str(settings.runs_dir()))
        if folder:
            settings.set_runs_dir(folder)
            self._show_runs_dir()

    def _show_runs_dir(self) -> None:
        self.runs_label.setText(str(settings.runs_dir()))
        self.runs_label.setToolTip(str(settings.runs_dir()))

    def config(self) -> TrainConfig:
        """The settings as a TrainConfig; raises ValueError with the core's message when they cannot work."""
        method = method_class(self.method.currentData())
        return TrainConfig(**self.general.values(), **self.budget().config_values(),
                           params=method.Params(**self.params.values()),
                           resolution=self.session.dataset.resolution if self.session.dataset
                           else TrainConfig().resolution)

    def set_config(self, config: TrainConfig) -> None:
        """Show a run's settings (File ▸ Open run…)."""
        self.general.set_values(config.to_dict())
        self.set_budget(Budget.of(config, self.budget()))
        self._show_method_params(config.params.to_dict())

    def budget(self) -> Budget:
        """The budget as set: the chosen unit, and both values."""
        return Budget("epochs" if self.by_epochs.isChecked() else "time", **self.budget_controls.values())

    def set_budget(self, budget: Budget) -> None:
        self.budget_controls.set_values(budget.to_dict())
        (self.by_epochs if budget.unit == "epochs" else self.by_time).setChecked(True)

    # --- what the session tells -------------------------------------------------------------------------------
    def use_folder_defaults(self) -> None:
        """The open folder's training settings (core/folder_defaults.py; its resolution is the Data page's)."""
        defaults = self.session.folder_defaults
        if defaults is not None:
            self.general.set_values({k: v for k, v in defaults.train_changes.items() if k != "resolution"})
        self._show_folder_note()

    def _show_folder_note(self) -> None:
        defaults = self.session.folder_defaults
        if not self._folder_shown or defaults is None:
            return
        changed = defaults.changed(train={**self.general.values(), "resolution": self.session.dataset.resolution})
        resolution = [s for s in changed if s == "train.resolution"]
        extra = (f"<br><i>Resolution {self.session.dataset.resolution} px chosen on the Data page (the folder's: "
                 f"{defaults.train_changes['resolution']} px).</i>" if resolution else "")
        self.folder_note.show_choice(defaults, [s for s in changed if s not in resolution], extra)

    def _dataset_opened(self, dataset: ImageDataset) -> None:
        """New data: a training of other data stops (its checkpoint stays in its run folder); the folder's settings
        are shown, and said."""
        self.cancel()
        self._folder_shown = True
        self.use_folder_defaults()
        self.resolution_label.setText(f"{dataset.resolution} px (set on the Data page)")
        self.reset_monitor()
        self.next.setEnabled(False)
        self.resume_button.hide()
        self._update_enabled()

    def _show_recipe(self, recipe: Recipe, title: str) -> None:
        self.recipe_label.setText(f"{title} <a href='augment'>edit…</a>")

    def _show_opened(self, opened: RunWithImages) -> None:
        self._folder_shown = False  # the run's own settings, not a choice for its folder
        self.folder_note.hide()
        self.set_config(opened.loaded.config)
        self.show_history(opened.loaded.history)

    # --- running ----------------------------------------------------------------------------------------------
    def start(self, resume: bool = False, curation: Curation | None = None) -> bool:
        """Start (or resume) training, on the open dataset with ``curation``'s marks applied when given; False, with
        a message in the banner, when it cannot start."""
        if self.is_running():
            return False
        dataset, run = self.session.dataset, self.session.run
        if dataset is None:
            self.banner.show_message("Open a folder or a sample dataset on the Data page first.", "info")
            return False
        if resume and run is not None:
            # With the settings the run folder records, as `ssl-studio run --resume` does (on its curated set).
            dataset = self.session.dataset_of(run) if self.session.dataset_of(run) is not None else dataset
            make = lambda token: self._resume(dataset, run, token)  # noqa: E731
        else:
            try:
                config = self.config()
            except ValueError as exc:
                self.banner.show_message(f"These settings cannot work: {exc}.")
                return False
            if curation is not None:
                try:
                    dataset = curate(dataset, curation)
                except ValueError as exc:
                    self.banner.show_message(f"Cannot train on the curated set: {exc}.")
                    return False
            self.reset_monitor()
            folder = settings.runs_dir() / time.strftime("%Y-%m-%d_%H-%M-%S")
            recipe = self.session.recipe
            make = lambda token: self._train(dataset, folder, config, recipe, token, curation)  # noqa: E731
        self.save_settings()
        self.banner.hide()
        self._models = []  # the train stage says which models it trains (TrainingPlanned)
        self.stage.setText("Starting…")
        self.progress.setRange(0, 0)
        self.start_job(make, events=self._on_events, succeeded=self._on_succeeded, failed=self._on_failed,
                       cancelled=self._on_cancelled, ended=self._update_enabled, flush_ms=REDRAW_MS)
        self.next.setEnabled(False)
        self.resume_button.hide()
        self._update_enabled()
        return True

    @staticmethod
    def _train(dataset, folder: Path, config, recipe, token, curation=None):
        run = prepare_run(dataset, folder, config, recipe, curation=curation)
        yield RunPrepared(run, config, dataset)
        yield from train_models(dataset, run, config, recipe, cancel=token)
        return run

    @staticmethod
    def _resume(dataset, run, token):
        stored = run.read_settings()
        config, recipe = stored.config, stored.recipe
        yield RunPrepared(run, config, dataset)
        yield from train_models(dataset, run, config, recipe, cancel=token, resume=True)
        return run

    def start_sweep(self, workspace: Path) -> bool:
        """Train the queue in ``workspace`` run after run, each watched here as one run is; Cancel stops the
        current run at its checkpoint and leaves the rest queued (start_sweep again resumes)."""
        if self.is_running():
            return False
        self.banner.hide()
        self.reset_monitor()
        self._sweep_failed: list[RunEnded] = []
        self.stage.setText(f"Starting the sweep in {workspace}…")
        self.progress.setRange(0, 0)
        self.start_job(lambda token: run_queue(workspace, cancel=token), events=self._on_sweep_events,
                       succeeded=self._on_sweep_succeeded, failed=self._on_failed, cancelled=self._on_sweep_cancelled,
                       ended=self._update_enabled, flush_ms=REDRAW_MS)
        self.next.setEnabled(False)
        self.resume_button.hide()
        self._update_enabled()
        return True

    def _on_sweep_events(self, events: list) -> None:
        batch = []
        for event in events:
            if isinstance(event, RunStarted):
                self._on_events(batch)
                batch = []
                self.reset_monitor()
                self._models = []
                self.run_label.setText(f"Sweep run {event.number}: {event.name}"
                                       + (" (resumed)" if event.resumed else "") + f", {event.left} more queued")
            elif isinstance(event, RunEnded) and event.state == "failed":
                self._sweep_failed.append(event)
                self.banner.show_message(f"{event.name} failed: {event.reason}. The queue goes on.")
            elif isinstance(event, StageStarted) and event.name not in COLORS:
                self.runningChanged.emit(False)  # its maps: the UMAP process may run
                batch.append(event)
            elif isinstance(event, TrainingPlanned):
                self.runningChanged.emit(True)
                batch.append(event)
            elif not isinstance(event, TrainEvent) or event.which in COLORS:  # not the transfer stage's fine-tuning
                batch.append(event)
        self._on_events(batch)

    def _on_sweep_succeeded(self, finished: SweepFinished) -> None:
        failed = " ".join(f"{e.name} failed: {e.reason}." for e in self._sweep_failed)
        self.stage.setText(f"Sweep done. {len(self._sweep_failed)} of its runs failed." if failed else "Sweep done.")
        self.banner.show_message(f"{failed} {finished.summary['verdict']} The runs and their groups are in "
                                 f"{finished.workspace}.".strip(), "warning" if failed else "info")
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self.progress.setFormat("Done")
        self.statusMessage.emit("Sweep done.", 10_000)
        self.sweepFinished.emit(finished)

    def _on_sweep_cancelled(self) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setFormat("Cancelled")
        self.stage.setText("Sweep cancelled.")
        self.banner.show_message("The sweep was cancelled: the current run keeps its checkpoint and the rest stay "
                                 "queued. File ▸ Resume sweep… continues.", "info")

    def cancel(self) -> None:
        if self.is_running():
            super().cancel()
            self.stage.setText("Cancelling… (finishing the current step and saving a checkpoint)")

    def _on_events(self, events: list) -> None:
        latest: TrainProgress | None = None
        pictures: tuple[str, TrainProgress] | None = None
        similarities = None
        for event in events:
            if isinstance(event, RunPrepared):
                self._method_trained = event.config.method
                self.session.start_run(event.run, event.dataset)
            elif isinstance(event, TrainingPlanned):
                self._models = list(event.models)
            elif isinstance(event, StageStarted) and event.name not in self._models:
                self.stage.setText(event.text)  # a sweep's run past training: its embeddings, maps, transfer
                self.progress.setRange(0, 0)
            elif isinstance(event, StageStarted):
                self._current = event.name
                self._points.setdefault(event.name, [])
                step = self._models.index(event.name) + 1
                self.stage.setText(f"Step {step} of {len(self._models)}: {event.text}")
                self.progress.setRange(0, 1000)
                self.progress.setValue(0)
                self.progress.setFormat(f"{TITLES.get(event.name, event.name)} · starting…")
                latest = None  # the previous model's last figures must not show under this one
            elif isinstance(event, TrainEvent):
                if isinstance(event.event, TrainProgress):
                    self._points.setdefault(event.which, []).append((event.event.elapsed, event.event.loss))
                    latest = event.event
                    if event.event.pictures:
                        pictures = (event.which, event.event)
                    if event.event.similarities is not None:
                        similarities = event.event.similarities
                else:
                    self.finished_events[event.which] = event.event
        # One redraw per delivered batch (at most every REDRAW_MS), however many points arrived.
        for which, points in self._points.items():
            self._draw_curve(which, points)
        if latest is not None:
            self._show_progress(latest)
        if pictures is not None:
            which, p = pictures
            title = method_class(self._method_trained).title if which == "ssl" and self._method_trained else which
            self.pictures.show_pictures(p.pictures, f"{title}, after {format_seconds(p.elapsed)} of training")
        if similarities is not None:
            self.similarity.set_similarities(*similarities)

    def _draw_curve(self, which: str, points) -> None:
        if not points:
            return
        if which not in self._curves:
            self._curves[which] = self.plot.plot(name=TITLES.get(which, which),
                                                 pen=pg.mkPen(COLORS[which], width=2))
        xy = np.asarray(points, dtype=np.float64)
        self._curves[which].setData(xy[:, 0], xy[:, 1])

    def _show_progress(self, p: TrainProgress) -> None:
        which = self._current or "ssl"
        remaining_models = max(0, len(self._models) - 1 - self._models.index(which)) if which in self._models else 0
        eta = None if p.eta is None else p.eta + remaining_models * (p.elapsed + p.eta)
        self.progress.setValue(int(1000 * p.fraction))
        self.progress.setFormat(f"{TITLES.get(which, which)} · {p.fraction:.0%} · "
                                f"ETA {format_seconds(eta)}" + (" (both models)" if remaining_models else ""))
        self.loss_label.setText(f"Loss {p.loss:.3f}")
        self.speed_label.setText(f"{p.views_per_second:,.0f} views/s · epoch {p.epoch + 1}")
        text, color = health_words(p.health)
        self.health_label.setText(f"Health <span style='color:{color}'>●</span> {text}")

    def _on_succeeded(self, run: RunFolder) -> None:
        seconds = sum(f.seconds for f in self.finished_events.values())
        trained = " and ".join(TITLES.get(which, which).lower() for which in self.finished_events)
        models = "models" if len(self.finished_events) > 1 else "model"
        self.stage.setText(f"Done: {trained} {models} trained in {format_seconds(seconds)}. "
                           "The maps are being computed on the Compare page.")
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self.progress.setFormat("Done")
        self.next.setEnabled(True)
        self.statusMessage.emit("Training done. Computing the maps on the Compare page…", 10_000)
        self.session.finish("train", run)  # the Compare page starts on it
        self.trainingFinished.emit(run)

    def _on_failed(self, exc: Exception) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setFormat("Stopped")
        if isinstance(exc, TrainingError):
            message = f"Training stopped: {exc}"
        elif isinstance(exc, EXPECTED_ERRORS):
            message = f"Training could not run: {exc}"
        else:
            message = f"Training failed with an unexpected error ({error_text(exc)})."
        self.stage.setText("Stopped.")
        self.banner.show_message(message)
        run = self.session.run
        self.resume_button.setVisible(run is not None and run.checkpoint("ssl").exists())

    def _on_cancelled(self) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setFormat("Cancelled")
        run = self.session.run
        where = f" The last checkpoint is kept in {run.path}." if run is not None else ""
        self.stage.setText("Cancelled.")
        self.banner.show_message("Training was cancelled." + where + " Resume continues from it.", "info")
        self.resume_button.setVisible(run is not None)

    def _show_run_folder(self) -> None:
        run = self.session.run
        text = f"Run folder: {shown(run.path)}" if run is not None else ""
        self.run_label.setText(text)
        self.run_label.setToolTip(text)

    def _update_enabled(self) -> None:
        running = self.is_running()
        if running != self._was_running:
            self._was_running = running
            self.runningChanged.emit(running)
        self.general.set_enabled(not running)
        if self.params is not None:
            self.params.set_enabled(not running)
        self.by_time.setEnabled(not running)
        self.by_epochs.setEnabled(not running)
        self.time_budget.setEnabled(not running and self.by_time.isChecked())
        self.epochs.setEnabled(not running and self.by_epochs.isChecked())
        have_data = self.session.dataset is not None
        self.start_button.setEnabled(not running and have_data)
        self.start_button.setToolTip("" if have_data else "Open data on the Data page first")
        self.cancel_button.setEnabled(running)
        self.resume_button.setEnabled(not running)

    # --- results from elsewhere -------------------------------------------------------------------------------
    def reset_monitor(self) -> None:
        self.plot.clear()
        self.plot.addLegend(offset=(-10, 10)).clear()
        self._curves.clear()
        self._points.clear()
        self.finished_events.clear()
        self._current = None
        self.pictures.clear()
        self.similarity.clear_similarities()
        self.stage.setText("Not started yet.")
        self.run_label.setText("")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.loss_label.setText("Loss –")
        self.speed_label.setText("– views/s")
        self.health_label.setText("Health –")

    def show_history(self, history: dict[str, list]) -> None:
        """Show the session's run's saved loss curves ([[step, elapsed, loss], ...] per model)."""
        self.reset_monitor()
        for which, rows in history.items():
            self._points[which] = [(row[1], row[2]) for row in rows]
            self._draw_curve(which, self._points[which])
        self.stage.setText("Opened a saved run.")
        self._show_run_folder()
        self.next.setEnabled(True)
