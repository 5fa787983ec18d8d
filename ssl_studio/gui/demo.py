"""The one-click demo (Help ▸ Demo, the Data page's button): the Shapes sample opened, trained, compared and its
transfer curves measured, the window moving from page to page by itself with a caption at each step in the demo
bar. One Cancel there stops whatever runs (loading, training, the maps or the curves) and leaves the app as it is,
usable.

The demo only takes the pages' public actions in turn (open the sample, set the recipe and the settings, start
training; the maps follow training and the curves follow the maps by themselves) and listens to the pages'
signals, so it shows exactly what a person doing the same would see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from ssl_studio.core import demo
from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import Budget, TrainConfig
from ssl_studio.core.events import StageStarted
from ssl_studio.core.transfer import TransferConfig

from .train_page import format_seconds

STEPS = ("data", "augment", "train", "compare", "transfer")  # each shown on the page of that name
REPORT_LINK = "export-report"  # the last caption's link: File > Export > Report (HTML)...
CAPTIONS = {
    "data": "Opening the Shapes sample: 2,400 small images of 8 shapes. Their colors are random: a color says "
            "nothing about the shape.",
    "augment": "Training has begun. The network is shown each image as two random views (cropped, mirrored, "
               "recolored, sometimes grey) and must tell that they are the same image: so it learns to ignore "
               "position and color, and to see the shape.",
    "ssl": "Self-supervised training, no labels: each view must pick its partner out of the batch (the InfoNCE "
           "loss). Watch the two views of an image (green) grow more alike than two different images (grey).",
    "supervised": "Now the same network learns from the labels, with the same budget: the baseline to compare "
                  "with.",
    "compare": "Every image is embedded by each network and placed on a map (PCA first, then UMAP). The colors are "
               "the shapes, which the self-supervised network never saw.",
    "transfer": "What if only a few images had labels? Each curve is the accuracy reached with 1\u00a0%, 10\u00a0% "
                "or all of the labels, from the frozen features of each network, and for the whole network fine-tuned "
                "from the self-supervised weights or from scratch.",
}


@dataclass(frozen=True)
class DemoSettings:
    sample: str = demo.SAMPLE
    resolution: int = demo.RESOLUTION
    config: TrainConfig = demo.CONFIG
    recipe: Recipe = demo.RECIPE
    transfer: TransferConfig = demo.TRANSFER
    augment_seconds: float = 8.0  # the Augment page stays this long, while training starts behind it


class DemoBar(QFrame):
    """Above the pages while the demo runs: the step, its caption, the time since the click, Cancel or Close."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("demoBar")
        self.step = QLabel(objectName="demoStep")
        self.caption = QLabel(wordWrap=True, objectName="demoCaption", textFormat=Qt.TextFormat.RichText)
        self.clock = QLabel(objectName="demoStep")
        self.cancel_button = QPushButton("Cancel demo")
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.addWidget(self.step)
        layout.addWidget(self.caption, 1)
        layout.addWidget(self.clock)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.close_button)
        self.hide()

    def show_step(self, step: str, caption: str, running: bool) -> None:
        self.step.setText(step)
        self.caption.setText(caption)
        self.cancel_button.setVisible(running)
        self.close_button.setVisible(not running)
        self.show()


class Demo(QObject):
    """Drives the main window through the demo; ``finished(True)`` once the maps are done, ``finished(False)`` when
    it was cancelled or a step failed (the caption says which)."""

    stepChanged = Signal(str)  # one of STEPS, then "done" or "stopped"
    finished = Signal(bool)

    def __init__(self, window, bar: DemoBar, settings: DemoSettings | None = None) -> None:
        super().__init__(window)
        self.window, self.bar, self.settings = window, bar, settings or DemoSettings()
        self.step: str | None = None
        self.started_at = 0.0
        self.map_seconds: float | None = None  # from the click to the finished maps
        self.seconds: float | None = None  # from the click to the finished transfer curves
        self._maps_result = ""
        self._user_transfer: TransferConfig | None = None  # the session's own transfer settings, back after the demo
        self._user_resolution: int | None = None  # the Data page's choice (None: each folder's own)
        self._said_back = False  # the settings came back as the person's data began to load: say so when it is open
        # The person's own training settings and recipe while the demo's are shown: back when their own data opens
        # (or the window closes), so the demo's budget and Shapes recipe never carry over into their work.
        self._user_settings: tuple[TrainConfig | None, Budget, Recipe, str] | None = None
        self._clock = QTimer(self, interval=1000)
        self._clock.timeout.connect(self._tick)
        self._to_train = QTimer(self, singleShot=True)
        self._to_train.timeout.connect(self._show_training)
        bar.cancel_button.clicked.connect(self.cancel)
        bar.caption.linkActivated.connect(lambda link: link == REPORT_LINK and window.export_run_dialog("html"))
        # Each handler acts only in its own step: the same signals come when a person does the same by hand.
        window.data.datasetLoaded.connect(self._data_loaded)
        # Back before the person's own data decodes, so that its folder's defaults apply over their settings.
        window.data.loadStarted.connect(lambda _source: self.give_back_settings())
        window.train.trainingFinished.connect(self._trained)
        window.compare.comparisonFinished.connect(self._compared)
        window.transfer.transferFinished.connect(self._transferred)
        window.closing.connect(self.give_back_settings)  # the demo's settings are not what the next launch starts with

    @property
    def running(self) -> bool:
        return self.step in STEPS

    # --- the steps --------------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Begin from the Data page; False when it cannot (the user kept a training that runs)."""
        if self.running:
            return False
        w = self.window
        data = w.data
        self._user_resolution = data.working_resolution()
        data.set_resolution(self.settings.resolution)
        self.started_at, self.map_seconds, self.seconds = time.monotonic(), None, None
        self._enter("data")
        w.open_sample(self.settings.sample)
        if not data.is_running():  # the user chose to keep the training that runs
            self._stop("The demo did not start: training is running.")
            return False
        self._watch(data.job)
        self._clock.start()
        return True

    def _data_loaded(self, _dataset) -> None:
        if self.step != "data":
            self.give_back_settings()
            if self._said_back:  # said again once the data is open, after the window's "Opened ..."
                self._said_back = False
                self._say_back()
            return
        w = self.window
        w.data.set_resolution(self._user_resolution)  # the demo's 32 px was for its sample only
        if self._user_settings is None:
            try:
                config = w.train.config()
            except ValueError:  # settings that cannot work are not the person's to get back
                config = None
            self._user_settings = (config, w.train.budget(), w.augment.recipe(), w.augment.preset_name())
        w.train.set_config(self.settings.config)  # first: a change of method brings that method's preset recipe
        w.augment.set_recipe(self.settings.recipe, demo.RECIPE_PRESET)  # Custom if the settings changed it
        session = w.session
        self._user_transfer, session.transfer_settings = session.transfer_settings, self.settings.transfer
        self._enter("augment")
        if not w.train.start():
            self._stop(f"The demo could not start training: {w.train.banner.text()}")
            return
        self._watch(w.train.job)
        w.train.job.events.connect(self._training_events)
        self._to_train.start(int(self.settings.augment_seconds * 1000))

    def _show_training(self) -> None:
        if self.step == "augment":
            self._enter("train", CAPTIONS["ssl"])

    def _training_events(self, events: list) -> None:
        if self.step in ("augment", "train") and any(isinstance(e, StageStarted) and e.name == "supervised"
                                                     for e in events):
            self._to_train.stop()
            self._enter("train", CAPTIONS["supervised"])

    def _trained(self, _run) -> None:
        if self.step not in ("augment", "train"):
            return
        self._enter("compare")
        compare = self.window.compare  # the window has started the comparison, as after any training
        if compare.is_running():
            self._watch(compare.job)

    def _compared(self, _run) -> None:
        if self.step != "compare":
            return
        self.map_seconds = time.monotonic() - self.started_at
        scores = self.window.compare.scores
        ssl, pixels = scores.get("ssl", {}).get("knn_top1"), scores.get("pixels", {}).get("knn_top1")
        self._maps_result = ""
        if ssl is not None and pixels is not None:
            self._maps_result = (f" The self-supervised network reaches <b>{ssl:.0%}</b> kNN accuracy, raw pixels "
                                 f"{pixels:.0%}" + (": it learned to tell the shapes apart without a single label."
                                                    if ssl > pixels + 0.1 else "."))
        # The maps are what there is to see now: their page's explanation folds away (its button stays).
        self.window.compare.explanation.set_expanded(False, remember=False)
        transfer = self.window.transfer  # the window has started the curves, as after any comparison
        if not transfer.is_running():
            self._done()
            return
        self._enter("transfer", f"Maps done in {format_seconds(self.map_seconds)}.{self._maps_result} "
                                + CAPTIONS["transfer"])
        self._watch(transfer.job)

    def _transferred(self, _run) -> None:
        if self.step == "transfer":
            self.window.transfer.explanation.set_expanded(False, remember=False)
            self._done(self.window.transfer.reading.text())

    def _done(self, reading: str = "") -> None:
        self.seconds = time.monotonic() - self.started_at
        self._finish("done", f"Done in {format_seconds(self.seconds)} (maps in {format_seconds(self.map_seconds)})."
                             f"{self._maps_result} {reading} The Compare page's maps answer hover, selection and "
                             "clicks; “How this works” on each page explains its step. "
                             f"<a href='{REPORT_LINK}'>Save a report anyone can open</a> (one HTML file).", True)

    def give_back_settings(self) -> None:
        """The person's own training settings and recipe, as they were before the demo, shown and saved again."""
        if self._user_settings is None or self.running:
            return
        config, budget, recipe, preset = self._user_settings
        self._user_settings = None
        w = self.window
        if config is not None:
            w.train.set_config(config)  # the method first: a new method's preset may follow, then the recipe
            w.train.set_budget(budget)
            w.train.save_settings()
        w.augment.set_recipe(recipe, preset)
        self._said_back = True
        self._say_back()

    def _say_back(self) -> None:
        self.window.statusBar().showMessage("Your own training settings and recipe are back: the demo's were made "
                                            "for the Shapes sample.", 10_000)

    # --- stopping ---------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop whatever the demo has started; what is finished stays (the sample, a checkpoint, the maps)."""
        if not self.running:
            return
        for page in (self.window.data, self.window.train, self.window.compare, self.window.transfer):
            page.cancel()
        self._stop("Demo cancelled. The app is yours: what was done so far stays.")

    def _watch(self, job) -> None:
        job.failed.connect(lambda exc: self._stop("The demo stopped: a step failed (its page says why)."))
        job.cancelled.connect(lambda: self._stop("The demo stopped: a step was cancelled."))

    def _stop(self, text: str) -> None:
        if self.running:
            self._finish("stopped", text, False)

    def _finish(self, step: str, text: str, ok: bool) -> None:
        self._clock.stop()
        # It stops at the time the caption gives, not at its last tick (which can be a second behind).
        self.bar.clock.setText(format_seconds(self.seconds if self.seconds is not None
                                              else time.monotonic() - self.started_at))
        self._to_train.stop()
        if self._user_transfer is not None:  # a running transfer job keeps the settings it started with
            self.window.session.transfer_settings, self._user_transfer = self._user_transfer, None
        self.step = step
        self.bar.show_step("Demo", text, running=False)
        self.stepChanged.emit(step)
        self.finished.emit(ok)

    def _enter(self, step: str, caption: str | None = None) -> None:
        self.step = step
        self.window.go(step)
        page = self.window.current_page()
        page.explanation.set_expanded(True, remember=False)
        number = STEPS.index(step) + 1
        self.bar.show_step(f"Demo {number}/{len(STEPS)}", caption or CAPTIONS[step], running=True)
        self._tick()
        self.stepChanged.emit(step)

    def _tick(self) -> None:
        self.bar.clock.setText(format_seconds(time.monotonic() - self.started_at))
