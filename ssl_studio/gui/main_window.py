"""The main window: the registered pages in order (sidebar + pages), menus, status bar, drag-and-drop, settings,
shutdown. What is open is the session's (core/session.py); the pages observe it and move from one to the next."""

from __future__ import annotations

import base64
from pathlib import Path

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QListWidget,
                               QListWidgetItem, QMainWindow, QMessageBox, QStackedWidget, QVBoxLayout, QWidget)

from ssl_studio import __version__
from ssl_studio.core.data import ImageDataset, LoadProgress
from ssl_studio.core.project import APPROXIMATE_FROM
from ssl_studio.core.reopen import RunWithImages, open_run_with_images
from ssl_studio.core.run_export import FORMATS
from ssl_studio.core.runs import is_run_folder
from ssl_studio.core.session import DATASET, DONE, Session
from ssl_studio.core.sweep import Queue
from ssl_studio.core.umap_process import UMAP

from . import gc_timer, pages, settings
from .data_page import SAMPLE_TITLES
from .demo import Demo, DemoBar
from .page import Page, error_text, report_if_unexpected
from .run_export import ExportBar
from .sweep_dialog import SweepDialog
from .widgets import shown
from .workers import JOIN_TIMEOUT_S, Job


class MainWindow(QMainWindow):
    runOpened = Signal(object)  # the LoadedRun, once every page shows it
    closing = Signal()  # before the settings are saved on close

    # The built-in pages by attribute, for the menus and the tests; any page is page(name).
    data = property(lambda self: self.page("data"))
    augment = property(lambda self: self.page("augment"))
    train = property(lambda self: self.page("train"))
    compare = property(lambda self: self.page("compare"))
    transfer = property(lambda self: self.page("transfer"))

    def __init__(self, *, warm_up_umap: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("SSL Studio")
        self.setAcceptDrops(True)
        self.session = Session()
        self.run_job: Job | None = None
        self._quit_when_stopped = False
        self._warms_up_umap = warm_up_umap
        self._warmed_for_large = False  # NN-descent compiled too (UMAP.warm_up)
        self._warming = 0  # warm-ups started and not yet done

        self.pages = QStackedWidget()
        self.stages = QListWidget(objectName="stages")
        self.stages.setFixedWidth(150)
        self.stages.setIconSize(QSize(0, 0))
        self._pages: dict[str, Page] = {}
        for number, page_class in enumerate(pages.PAGES, 1):
            page = page_class(self.session)
            if not page.name or page.name in self._pages:
                raise ValueError(f"{page_class.__name__} needs a name of its own (gui/pages.PAGES has "
                                 f"{', '.join(self._pages) or 'none before it'})")
            page.set_number(number)
            page.goRequested.connect(self.go)
            page.openRunRequested.connect(self.open_run_dialog)
            page.openRunAtRequested.connect(self.open_run_at)
            page.statusMessage.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
            self._pages[page.name] = page
            self.pages.addWidget(page)
            self.stages.addItem(QListWidgetItem())
        self._show_done(self.session.done)
        self.compare.audit.trainAgainRequested.connect(self.train_again)
        self.page("runs").compareRunsRequested.connect(self.compare_runs)
        self.stages.currentRowChanged.connect(self.pages.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.stages)
        self.demo_bar = DemoBar()
        right = QVBoxLayout()
        right.addWidget(self.demo_bar)
        right.addWidget(self.pages, 1)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)

        self.data_status = QLabel("No data open")
        self.umap_status = QLabel()
        self.export_bar = ExportBar()
        self.export_bar.finished.connect(self._run_export_finished)
        self.statusBar().addPermanentWidget(self.export_bar)
        self.statusBar().addPermanentWidget(self.data_status)
        self.statusBar().addPermanentWidget(self.umap_status)

        self._build_menus()
        self.data.demoRequested.connect(lambda: self.demo.start())
        self.train.runningChanged.connect(UMAP.pause)
        self.session.observe(DATASET, self._dataset_opened)
        self.session.observe(DONE, self._show_done)
        self.demo = Demo(self, self.demo_bar)
        self._restore_geometry()
        self.go(next(iter(self._pages)))
        # torch, scikit-learn, pyqtgraph and the window itself are here for the whole session: keep the collector
        # from walking their ~400k objects again and again (half a second per young collection, measured).
        gc_timer.install(QApplication.instance()).freeze_long_lived()
        if warm_up_umap:
            self._start_umap_warm_up(0)

    # --- menus ------------------------------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self, statusTip=tip)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        file.addAction(self._action("&Open folder…", self.data.open_folder_dialog, QKeySequence.StandardKey.Open,
                                    "Open a folder of images (one subfolder per class, or flat)"))
        samples = file.addMenu("Open &sample dataset")
        for name, title in SAMPLE_TITLES.items():
            samples.addAction(self._action(title, lambda _=False, n=name: self.open_sample(n)))
        self.recent_menu = file.addMenu("Open &recent folder")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addAction(self._action("Open &run…", self.open_run_dialog, "Ctrl+Shift+O",
                                    "Open a run folder saved by SSL Studio (app or command line)"))
        file.addAction(self._action("Open &workspace…", self.open_workspace_dialog, tip=(
            "List the runs of a folder of run folders on the Runs page")))
        file.addSeparator()
        file.addAction(self._action("New s&weep…", self.new_sweep_dialog, tip="Several methods, settings and seeds "
                                    "trained one after another, compared with their spread"))
        file.addAction(self._action("Resume sweep…", self.resume_sweep_dialog,
                                    tip="Continue the queue of a sweep in a workspace folder"))
        self.export_menu = file.addMenu("&Export")
        self.export_action = self._action("&Maps and embeddings (PNG, SVG, CSV, NPY)…", self.export_dialog, "Ctrl+E",
                                          "Save the maps as PNG and SVG, the embeddings as NPY and CSV")
        self.export_menu.addAction(self.export_action)
        for fmt, tip in (("projector", "A folder TensorBoard's Embedding Projector opens"),
                         ("fiftyone", "The images, embeddings and maps, with a script that loads them into FiftyOne"),
                         ("onnx", "The trained network as ONNX, its weights, how to feed it and a model card"),
                         ("html", "One report.html anyone can open offline: the maps, accuracies, curves and settings")):
            self.export_menu.addAction(self._action(f"{FORMATS[fmt].title}…",
                                                    lambda _=False, f=fmt: self.export_run_dialog(f), tip=tip))
        self.add_space_action = self._action("&Add embedding space…", self.add_space_dialog, tip=(
            "Compare the embeddings of a model of your own (an .npy, one row per image) with the run's spaces"))
        file.addAction(self.add_space_action)
        self.add_images_action = self._action("Add &images to the maps…", self.add_images_dialog, tip=(
            "Embed a folder of new images with the open run and show where they land on every map"))
        self.remove_images_action = self._action("Remove the added images", self.compare.added_images.remove)
        file.addAction(self.add_images_action)
        file.addAction(self.remove_images_action)
        file.aboutToShow.connect(lambda: self.export_menu.setEnabled(self.compare.can_export()))
        file.aboutToShow.connect(lambda: self.add_space_action.setEnabled(self.compare.can_add_space()))
        file.aboutToShow.connect(lambda: self.add_images_action.setEnabled(self.compare.added_images.can_add()))
        file.aboutToShow.connect(lambda: self.remove_images_action.setEnabled(
            self.compare.added_images.added is not None))
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        go = self.menuBar().addMenu("&Go")
        for number, page in enumerate(self._pages.values(), 1):
            go.addAction(self._action(f"&{number} {page.title}", lambda _=False, n=page.name: self.go(n),
                                      f"Ctrl+{number}" if number < 10 else None))
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("&Demo", lambda: self.demo.start(), "Ctrl+D",
                                         "The Shapes sample trained, compared and its transfer curves measured, step "
                                         "by step, in a few minutes"))
        help_menu.addAction(self._action("&About SSL Studio", self._about))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        folders = settings.recent_folders()
        for folder in folders:
            self.recent_menu.addAction(self._action(shown(folder), lambda _=False, f=folder: self.open_path(f)))
        if not folders:
            self.recent_menu.addAction("No recent folders").setEnabled(False)

    def _about(self) -> None:
        QMessageBox.about(self, "About SSL Studio",
                          f"<b>SSL Studio {__version__}</b><p>See what self-supervised learning does: augmentations, "
                          "SSL pretraining, and maps of the learned space beside a supervised baseline, an "
                          "untrained network and raw pixels.</p>")

    # --- pages ------------------------------------------------------------------------------------------------
    def train_again(self, curation) -> bool:
        """The Audit view's "Train again without them": a new run on the curated set, from the Train page."""
        self.go("train")
        return self.train.start(curation=curation)

    def page(self, name: str) -> Page:
        try:
            return self._pages[name]
        except KeyError:
            raise ValueError(f"no page {name!r}; the pages are {', '.join(self._pages)}") from None

    def go(self, name: str) -> None:
        self.stages.setCurrentRow(list(self._pages.values()).index(self.page(name)))

    def current_page(self) -> Page:
        return self.pages.currentWidget()

    def _show_done(self, done: frozenset[str]) -> None:
        for row, page in enumerate(self._pages.values()):
            self.stages.item(row).setText(f"{row + 1}  {page.title}" + ("  ✓" if page.name in done else ""))

    def _dataset_opened(self, dataset: ImageDataset) -> None:
        if self._warms_up_umap and not self._warmed_for_large and len(dataset) >= APPROXIMATE_FROM:
            self._warmed_for_large = True
            self._start_umap_warm_up(len(dataset))
        kind = f"{len(dataset.class_names)} classes" if dataset.labeled else "unlabeled"
        self.data_status.setText(f"{shown(dataset.root.name)} · {len(dataset):,} images · {kind} · "
                                 f"{dataset.resolution} px")
        self.statusBar().showMessage(f"Opened {shown(dataset.root)}", 5000)

    # --- opening ----------------------------------------------------------------------------------------------
    def _may_interrupt_training(self) -> bool:
        if not self.train.is_running():
            return True
        answer = QMessageBox.question(self, "Stop training?", "Training is running. Stop it and open other data?")
        if answer == QMessageBox.StandardButton.Yes:
            self.train.cancel()
            return True
        return False

    def open_sample(self, name: str) -> None:
        if self._may_interrupt_training():
            self.go("data")
            self.data.open_sample(name)

    def open_path(self, path: str | Path) -> None:
        """A data folder, or a run folder (`ssl-studio DATA_DIR`, drag-and-drop, recent folders)."""
        if not self._may_interrupt_training():
            return
        if is_run_folder(path):
            self.open_run(path)
        else:
            self.go("data")
            self.data.load(path)

    def open_run_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(settings.runs_dir()))
        if folder and self._may_interrupt_training():
            self.open_run(folder)

    def open_run_at(self, path: str) -> None:
        if self._may_interrupt_training():
            self.open_run(path)

    def open_workspace_dialog(self) -> None:
        self.go("runs")
        self.page("runs").open_workspace_dialog()

    def open_run(self, path: str | Path) -> None:
        """Read a run folder in the background (and its images, when its data folder is still there)."""
        if self.run_job is not None and self.run_job.running:
            return
        self.statusBar().showMessage(f"Opening the run {shown(path)}…")
        job = Job(lambda token: open_run_with_images(path, token), self)
        job.events.connect(self._run_progress)
        job.succeeded.connect(self._run_opened)
        job.failed.connect(report_if_unexpected)
        job.failed.connect(self._run_failed)
        job.cancelled.connect(lambda: self.statusBar().showMessage("Opening the run was cancelled.", 5000))
        self.run_job = job.start()

    def _run_progress(self, events: list) -> None:
        event = events[-1]
        if isinstance(event, LoadProgress) and event.total:
            self.statusBar().showMessage(f"Opening the run: reading its images ({event.done:,} of {event.total:,})")

    def _run_failed(self, exc: Exception) -> None:
        self.statusBar().clearMessage()
        self.go("compare")
        self.compare.banner.show_message(f"Could not open the run: {error_text(exc)}")

    def _run_opened(self, result: RunWithImages) -> None:
        self.session.open_run(result)  # every page shows it
        self.statusBar().showMessage(f"Opened the run {shown(result.loaded.run.path)}", 10_000)
        self.go("compare")
        self.runOpened.emit(result.loaded)

    def compare_runs(self, first: str, second: str) -> None:
        """Two runs side by side on the Run vs run page, compared at once."""
        versus = self.page("versus")
        self.go("versus")
        versus.pick_runs(first, second)
        versus.compare()

    # --- sweeps -----------------------------------------------------------------------------------------------
    def new_sweep_dialog(self) -> SweepDialog | None:
        """The dialog, opened from the Train page's settings; once accepted, the Train page trains the queue."""
        dataset = self.session.dataset
        if dataset is None:
            self.statusBar().showMessage("Open a folder or a sample dataset first: a sweep trains on it.", 5000)
            return None
        try:
            config = self.train.config()
        except ValueError as exc:
            self.go("train")
            self.train.banner.show_message(f"These settings cannot work: {exc}.")
            return None
        dialog = SweepDialog(config, dataset.root, dataset.labeled and len(dataset.class_names) >= 2,
                             settings.runs_dir(), self.session.recipe, self.session.transfer_settings,
                             use_umap=self.compare.use_umap.isChecked(), defaults=self.session.folder_defaults,
                             parent=self)
        dialog.accepted.connect(lambda: self.start_sweep(dialog.workspace))
        dialog.open()
        return dialog

    def resume_sweep_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Resume the sweep in a workspace", str(settings.runs_dir()))
        if folder:
            self.start_sweep(Path(folder))

    def start_sweep(self, workspace: Path) -> None:
        if not Queue.exists(workspace):
            self.statusBar().showMessage(f"{shown(workspace)} holds no sweep queue.", 5000)
        elif self.train.is_running():
            self.statusBar().showMessage("Training is running: cancel it before starting the sweep.", 5000)
        else:
            self.go("train")
            self.train.start_sweep(workspace)

    def export_dialog(self) -> None:
        if not self.compare.can_export():
            self.statusBar().showMessage("Nothing to export yet: train a model or open a run first.", 5000)
            return
        folder = QFileDialog.getExistingDirectory(self, "Export maps and embeddings into", str(Path.home()))
        if folder:
            self.go("compare")
            self.compare.export(folder)

    def add_space_dialog(self) -> None:
        if not self.compare.can_add_space():
            self.statusBar().showMessage("Open a finished run first: a space is added to a run's maps.", 5000)
            return
        npy, _ = QFileDialog.getOpenFileName(
            self, "Embeddings to compare: one row per image in the run's order, or with a CSV of paths beside it",
            str(Path.home()), "NumPy arrays (*.npy)")
        if not npy:
            return
        title, ok = QInputDialog.getText(self, "Add embedding space", "Name of this space:", text=Path(npy).stem)
        if ok and title.strip():
            self.go("compare")
            self.compare.add_space(npy, title.strip())

    def add_images_dialog(self) -> None:
        if not self.compare.added_images.can_add():
            self.statusBar().showMessage("Open a run with maps first: new images are placed on its maps.", 5000)
            return
        folder = QFileDialog.getExistingDirectory(self, "Images to place on the maps", str(Path.home()))
        if folder:
            self.go("compare")
            self.compare.added_images.add_folder(folder)

    def _run_export_problem(self) -> str:
        if self.export_bar.is_running():
            return "An export is running already."
        if not self.compare.can_export() or self.compare.run is None or self.compare.is_running():
            return "Nothing to export yet: wait for the maps, or open a run."
        return ""

    def export_run_dialog(self, fmt: str) -> None:
        if problem := self._run_export_problem():
            self.statusBar().showMessage(problem, 5000)
            return
        folder = QFileDialog.getExistingDirectory(self, f"Export for {FORMATS[fmt].title} into (an empty folder is "
                                                        "best)", str(Path.home()))
        if folder:
            self.export_run_to(fmt, folder)

    def export_run_to(self, fmt: str, folder: str | Path) -> Job | None:
        """Export the run on the Compare page for another tool (core.run_export) in the background."""
        if problem := self._run_export_problem():
            self.statusBar().showMessage(problem, 5000)
            return None
        # The images in memory make the projector's sprite sheet without reading the folder again.
        dataset = self.session.dataset_of(self.compare.run)
        return self.export_bar.start(self.compare.run.path, fmt, folder, None if dataset is None else dataset.images)

    def _run_export_finished(self, text: str, kind: str) -> None:
        self.go("compare")
        self.compare.banner.show_message(text, kind)

    # --- drag and drop ----------------------------------------------------------------------------------------
    @staticmethod
    def _dropped_folder(event) -> str | None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        return str(paths[0]) if len(paths) == 1 and paths[0].is_dir() else None

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if self._dropped_folder(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt API)
        folder = self._dropped_folder(event)
        if folder:
            event.acceptProposedAction()
            self.open_path(folder)

    # --- UMAP warm-up -----------------------------------------------------------------------------------------
    def _start_umap_warm_up(self, points: int) -> None:
        """Import umap-learn and JIT-compile it for maps of ``points`` points while the user looks at data, so the
        first map is quick.

        It runs in the UMAP child process (core.umap_process), waited on by a job like any other task: closing the
        window cancels it, which stops the UMAP process. A broken umap install fails it: PCA maps still work.
        """
        self._warming += 1
        self.umap_status.setText("UMAP: warming up…")
        self.umap_status.setToolTip("UMAP is imported and compiled in the background; until it is ready, the "
                                    "maps show PCA first.")
        job = Job(lambda token: UMAP.warm_up(points, cancel=token), self)
        job.succeeded.connect(lambda _: self._umap_warmed(""))
        job.failed.connect(lambda exc: self._umap_warmed(f"{type(exc).__name__}: {exc}"))
        job.start()

    def _umap_warmed(self, problem: str) -> None:
        self._warming -= 1
        if problem:
            self.umap_status.setText("UMAP unavailable (PCA maps only)")
            self.umap_status.setToolTip(problem)
            self.compare.use_umap.setChecked(False)
            self.compare.use_umap.setEnabled(False)
        elif not self._warming and self.compare.use_umap.isEnabled():
            self.umap_status.setText("UMAP ready")

    # --- settings and shutdown --------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        saved = settings.load_json("geometry")
        if isinstance(saved, str) and self.restoreGeometry(base64.b64decode(saved)):
            return
        self.resize(1280, 820)

    def save_settings(self) -> None:
        settings.save_json("geometry", base64.b64encode(bytes(self.saveGeometry())).decode())
        self.train.save_settings()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.closing.emit()
        self.save_settings()
        settings.flush()  # on disk before the process can end
        if Job.live_jobs():
            self.statusBar().showMessage("Stopping the running jobs…")
            if not Job.stop_all(JOIN_TIMEOUT_S):
                # A step that cannot be interrupted (one UMAP fit) is still running. Its cancel is requested; hide
                # now and close for real when it returns, rather than leave a thread running under a dead window.
                event.ignore()
                self.hide()
                self._quit_when_stopped = True
                for job in Job.live_jobs():
                    job.ended.connect(self.close)
                return
        event.accept()
        if self._quit_when_stopped:
            QApplication.quit()
