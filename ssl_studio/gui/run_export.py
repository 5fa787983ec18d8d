"""File ▸ Export ▸ TensorBoard Projector…, FiftyOne…, Model (ONNX)… and Report (HTML)…: core.run_export in a
background job, its progress and a Cancel button in the status bar while it runs."""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from ssl_studio.core.data import LoadProgress
from ssl_studio.core.run_export import FORMATS, export_run

from .page import error_text, report_if_unexpected
from .widgets import shown
from .workers import Job


class ExportBar(QWidget):
    """The running export: what it does, how far it is, and Cancel. Hidden when no export runs."""

    finished = Signal(str, str)  # what happened, for the user; "info" or "error"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.label = QLabel()
        self.progress = QProgressBar(maximumWidth=140, maximumHeight=14, textVisible=False)
        self.cancel_button = QToolButton(text="Cancel", toolTip="Stop the export (the folder keeps what was written)")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        self.hide()

    def is_running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self, run_dir: str | Path, fmt: str, folder: str | Path, images: torch.Tensor | None = None) -> Job:
        """Export the run into ``folder``; ``images`` in the run's order spare reading them again (the sprite)."""
        title, opens = FORMATS[fmt]
        folder = Path(folder)
        job = Job(lambda token: export_run(run_dir, fmt, folder, images=images, cancel=token), self)
        job.events.connect(self._progress)
        job.succeeded.connect(lambda _: self.finished.emit(
            f"{title} export written to {shown(folder)}. Open it with: {opens.replace('OUT', shown(folder))}",
            "info"))
        job.failed.connect(report_if_unexpected)
        job.failed.connect(lambda exc: self.finished.emit(f"The {title} export failed: {error_text(exc)}", "error"))
        job.cancelled.connect(lambda: self.finished.emit(
            f"The {title} export was cancelled; {shown(folder)} holds only part of it.", "info"))
        job.ended.connect(self.hide)
        self.label.setText(f"Exporting for {title}…")
        self.progress.setRange(0, 0)
        self.show()
        self.job = job.start()
        return self.job

    def cancel(self) -> None:
        if self.is_running():
            self.job.cancel()

    def _progress(self, events: list) -> None:
        event = events[-1]
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        self.progress.setToolTip("Reading the run's images" if isinstance(event, LoadProgress) else event.text)
