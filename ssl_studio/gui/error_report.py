"""An exception nobody expected (in a slot, a worker or a thread): its traceback goes to a log file, a dialog says
what happened and where that log is, and the app keeps running.

Installed by the app only (app.main): the tests keep pytest-qt's own hook, which fails the test instead.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

LOG_BYTES = 1_000_000  # then the log rotates, keeping two older ones: an error repeated per paint stays bounded


def default_log_file() -> Path:
    return platformdirs.user_log_path("ssl-studio") / "ssl-studio.log"


class ErrorReporter(QObject):
    shown = Signal(object)  # the dialog, once it is on screen (the tests wait on it)
    _report = Signal(str, str)  # summary, traceback: from any thread to the GUI thread

    def __init__(self, log_file: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file = Path(log_file) if log_file is not None else default_log_file()
        self.dialog: QMessageBox | None = None
        self._more = 0  # errors since the dialog opened
        self._log = logging.getLogger(f"ssl_studio.errors.{id(self)}")
        self._log.propagate = False
        self._log_problem = ""
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(self.log_file, maxBytes=LOG_BYTES, backupCount=2,
                                                           encoding="utf-8", delay=True)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self._log.addHandler(handler)
        except OSError as exc:
            self._log_problem = f"{exc.strerror or exc}"
        self._previous = None
        self._report.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous = sys.excepthook, threading.excepthook
        sys.excepthook = self._excepthook
        threading.excepthook = lambda args: self._excepthook(args.exc_type, args.exc_value, args.exc_traceback,
                                                             args.thread)

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None
        for handler in self._log.handlers:
            handler.close()

    def _excepthook(self, exc_type, exc, tb, thread: threading.Thread | None = None) -> None:
        if issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            (self._previous[0] if self._previous else sys.__excepthook__)(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        where = f" in thread {thread.name}" if thread is not None else ""
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)  # for whoever started it from a terminal
        try:
            self._log.error("Unexpected error%s\n%s", where, details)
        except Exception as log_error:  # logging reports its own failures on stderr; the dialog must still come
            self._log_problem = str(log_error)
        summary = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
        # Queued even from the GUI thread: the dialog opens once the slot that raised has returned.
        self._report.emit(summary, details)

    def _show(self, summary: str, details: str) -> None:
        if self._log_problem:
            where = f"The details could not be written to {self.log_file} ({self._log_problem})."
        else:
            where = f"The details are in the log file:\n{self.log_file}"
        if self.dialog is not None and self.dialog.isVisible():
            self._more += 1
            more = "One more error" if self._more == 1 else f"{self._more} more errors"
            self.dialog.setInformativeText(f"{more} since this one. {where}")
            return
        self._more = 0
        # A parent, so that closing the main window closes this too (a dialog of its own would keep the app open).
        parent = QApplication.activeWindow() or next(
            (w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow) and w.isVisible()), None)
        dialog = QMessageBox(QMessageBox.Icon.Critical, "SSL Studio: unexpected error",
                             f"Something went wrong: {summary}", QMessageBox.StandardButton.Close, parent)
        dialog.setInformativeText("SSL Studio keeps running, and the runs it saved are as they were. "
                                  f"{where}\nPlease attach it if you report the problem.")
        dialog.setDetailedText(details)
        dialog.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowModality(Qt.WindowModality.NonModal)  # the app keeps working behind it
        dialog.destroyed.connect(self._forget_dialog)
        self.dialog = dialog
        dialog.show()
        self.shown.emit(dialog)

    def _forget_dialog(self) -> None:
        self.dialog = None
