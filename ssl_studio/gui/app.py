"""Start the desktop app: `ssl-studio`, `ssl-studio DATA_DIR` or `ssl-studio RUN_DIR`.

On Linux, Qt aborts the whole process (no Python exception to catch) when its platform plugin cannot start, so
the likely causes are checked before a QApplication exists:
  * no display at all (an SSH session without X forwarding, a container);
  * Qt 6.5+'s xcb plugin needs libxcb-cursor (and libxcb-icccm, libxcb-keysyms, libxkbcommon-x11), which many
    minimal installs lack:
        sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from importlib import resources
from pathlib import Path

# The libraries Qt's xcb plugin loads that desktop installs have and minimal ones often lack, with the Debian and
# Ubuntu package of each (seen here: xcb-cursor present, xcb-icccm and xcb-keysyms missing).
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1",
                 "xkbcommon-x11": "libxkbcommon-x11-0"}
XCB_HINT = ("Qt 6.5 and later needs these libraries to open windows on X11. Install them with:\n"
            "    sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1\n"
            "(Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms; "
            "Arch: sudo pacman -S xcb-util-cursor xcb-util-wm xcb-util-keysyms)")
NO_DISPLAY = ("ssl-studio: no display found (neither WAYLAND_DISPLAY nor DISPLAY is set), so the app cannot open "
              "a window.\nRun it from a desktop session, over SSH with X forwarding (ssh -X), or use the command "
              "line instead: ssl-studio run DATA_DIR --out RUN_DIR")

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)


def display_problem(environ=os.environ, platform: str = sys.platform, find_library=ctypes.util.find_library):
    """Why Qt could not open a window here, as a message for the user; None when it should work."""
    if not platform.startswith("linux"):
        return None
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        would_use_xcb = chosen.split(";")[0].split(":")[0] == "xcb"
    elif not environ.get("WAYLAND_DISPLAY") and not environ.get("DISPLAY"):
        return NO_DISPLAY
    else:
        would_use_xcb = not environ.get("WAYLAND_DISPLAY")
    missing = [name for name in XCB_LIBRARIES if find_library(name) is None] if would_use_xcb else []
    if missing:
        hint = XCB_HINT
        if "xkbcommon-x11" in missing:
            hint = hint.replace("libxcb-keysyms1\n", "libxcb-keysyms1 libxkbcommon-x11-0\n")
        return (f"ssl-studio: cannot start the X11 (xcb) display plugin: "
                f"{', '.join('lib' + name for name in missing)} not found.\n" + hint)
    return None


def resource(name: str):
    """A file the package carries (ssl_studio/resources/), whichever way it was installed."""
    return resources.files("ssl_studio").joinpath("resources", name)


def apply_style(app) -> None:
    """The app's look: also the GUI tests', so that what they measure (sizes, layouts) is what people see."""
    app.setStyle("Fusion")  # the same look on every platform, which the stylesheet is written against
    app.setStyleSheet(resource("style.qss").read_text(encoding="utf-8"))
    app.setWindowIcon(_icon(resource("icon.svg").read_bytes()))


def _icon(svg: bytes):
    """The icon drawn from the SVG's bytes at the usual sizes: Qt's own SVG icon engine wants a file path it can
    read again later, which a resource need not have."""
    from PySide6.QtCore import QByteArray
    from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg))
    icon = QIcon()
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(0)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(QPixmap.fromImage(image))
    return icon


def create_application(args: list[str] | None = None):
    """The QApplication with SSL Studio's names (which QSettings uses), style, icon and GUI-thread GC."""
    from PySide6.QtWidgets import QApplication

    from . import gc_timer, settings

    app = QApplication.instance() or QApplication(args or ["ssl-studio"])
    app.setOrganizationName(settings.ORGANIZATION)
    app.setApplicationName(settings.APPLICATION)
    app.setApplicationDisplayName(settings.APPLICATION)
    keep_none_alive(app)
    apply_style(app)
    gc_timer.install(app)
    single_threaded_gui()
    return app


def single_threaded_gui() -> None:
    """Torch work on the GUI thread runs on that thread alone, so that it never starts an OpenMP team.

    A thread that once ran a parallel torch operation keeps its team of OpenMP threads while it lives, and with a
    second team on the machine (training's, on a job thread) GNU OpenMP makes every parallel region slower: a
    small-cnn step at 2 threads took 35-43 ms instead of 25-27 ms, and the app trained at 60 % of the command line's
    steps/s (BENCHMARKS.md, "Training in the app"). The GUI thread's torch work is small (a folder's grey check,
    a few images); heavy work runs on job threads, whose thread counts core/threads.py chooses.
    """
    import torch

    torch.set_num_threads(1)
    # Torch gives each thread, at its first parallel call, the count last set on any thread: asking now fixes this
    # thread's count at 1 before a job thread sets its own (else the GUI thread would take the job's 2 later on).
    torch.get_num_threads()


def keep_none_alive(app) -> None:
    """Keep PySide6 6.12's lost references to None from aborting the app on Python 3.11.

    With PySide6 6.12.0 (the newest on PyPI as this is written), each call of a Qt method that returns nothing
    drops a reference to None that it never took: measured here, 1,000 QLabel.setText calls take None's count
    down by 1,000, and the app while it trains by about 300 a second. From Python 3.12 on None is immortal and
    nothing happens; on 3.11 its count (about 180,000 in the app) reaches zero within some 10 minutes of
    training, and the interpreter aborts with "Fatal Python error: none_dealloc". The remedy is 3.12's: a count
    no session can use up. Applied only where the loss is seen, and only where the count sits where CPython
    keeps it.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    before = sys.getrefcount(None)
    for _ in range(100):
        app.setQuitOnLastWindowClosed(app.quitOnLastWindowClosed())  # returns nothing
    count = ctypes.c_ssize_t.from_address(id(None))
    if before - sys.getrefcount(None) >= 100 and count.value == sys.getrefcount(None) - 1:
        count.value += 1 << 40


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("ssl-studio: give at most one folder (a folder of images, or a run folder)", file=sys.stderr)
        return 2
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    app = create_application([sys.argv[0] if sys.argv else "ssl-studio"])

    from .error_report import ErrorReporter
    from .stop_signals import StopSignals

    # Both first: Ctrl-C while the window is being built, or an error there, are handled as later ones are.
    stop = StopSignals(app)
    errors = ErrorReporter(parent=app)
    errors.install()

    from ..core.umap_process import UMAP
    from .main_window import MainWindow
    from .workers import Job

    window = MainWindow(warm_up_umap=True)
    stop.received.connect(lambda _signum: window.close())  # as its close button: jobs stopped, settings saved
    window.show()
    if argv:
        window.open_path(Path(argv[0]).expanduser())
    code = app.exec()
    Job.stop_all()
    UMAP.stop()  # a warm-up or fit still running in the UMAP process must not hold the exit
    return stop.exit_code(code)
