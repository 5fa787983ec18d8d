"""SIGINT (Ctrl-C) and SIGTERM (`kill`) close the main window as its close button does.

While Qt's event loop runs, the interpreter runs no Python code, so a Python signal handler would wait for the
next slot, and the default SIGINT handler then raises KeyboardInterrupt in whatever slot that is (a traceback,
and the app goes on). Python's own way out: set_wakeup_fd makes the C-level handler write the signal's number to
a socket, and a QSocketNotifier on the other end wakes the event loop at once.
"""

from __future__ import annotations

import signal
import socket

from PySide6.QtCore import QObject, QSocketNotifier, Signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals(QObject):
    received = Signal(int)  # the signal's number, on the GUI thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.signum: int | None = None  # the first one received
        self._read, self._write = socket.socketpair()
        for end in (self._read, self._write):
            end.setblocking(False)
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        # A Python-level handler is still needed, to replace the default actions (KeyboardInterrupt, termination);
        # the work is done on the event loop's turn, in _drain. A signal the app was started with ignored (nohup,
        # `&` in a script) stays ignored, as Python itself leaves it.
        self._previous = {signum: signal.signal(signum, _ignore) for signum in SIGNALS
                          if signal.getsignal(signum) is not signal.SIG_IGN}

    def _drain(self) -> None:
        try:
            data = self._read.recv(64)
        except BlockingIOError:
            return
        for signum in data:
            if signum in SIGNALS:
                if self.signum is None:
                    self.signum = signum
                self.received.emit(signum)

    def exit_code(self, default: int) -> int:
        """The shell's convention for a process stopped by a signal (130 for SIGINT, 143 for SIGTERM)."""
        return default if self.signum is None else 128 + self.signum

    def uninstall(self) -> None:
        """Give the signals back to whoever had them (the tests run several apps' worth of these in one process)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


def _ignore(signum, frame) -> None:
    pass
