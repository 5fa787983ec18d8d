"""Start-up checks that run before Qt can abort the process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_studio.gui.app import NO_DISPLAY, display_problem, main


def found(name):
    return f"lib{name}.so.0"


def missing(name):
    return None


def test_no_display_on_linux_says_so():
    assert display_problem({}, "linux", found) == NO_DISPLAY


def test_x11_without_xcb_cursor_prints_the_install_hint():
    message = display_problem({"DISPLAY": ":0"}, "linux", missing)
    assert "libxcb-cursor" in message.splitlines()[0]
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message


def test_each_missing_xcb_library_is_named():
    # As on this machine: xcb-cursor installed, xcb-icccm and xcb-keysyms not.
    def some(name):
        return None if name in ("xcb-icccm", "xcb-keysyms") else found(name)

    first_line = display_problem({"DISPLAY": ":0"}, "linux", some).splitlines()[0]
    assert "libxcb-icccm, libxcb-keysyms not found" in first_line
    assert "cursor" not in first_line


def test_wayland_or_a_working_x11_is_fine():
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", missing) is None
    assert display_problem({"DISPLAY": ":0"}, "linux", found) is None


def test_an_explicit_platform_is_respected():
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", missing) is None
    assert "apt-get install" in display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux", missing)


def test_other_systems_are_not_checked():
    assert display_problem({}, "darwin", missing) is None
    assert display_problem({}, "win32", missing) is None


def test_more_than_one_folder_is_refused(capsys):
    assert main(["a", "b"]) == 2
    assert "at most one folder" in capsys.readouterr().err


OPENMP_THREADS_AFTER_A_GUI_THREAD_MATMUL = """
import os, sys, threading
import torch
if sys.argv[1] != "bare":
    from ssl_studio.gui.app import create_application
    create_application()
if sys.argv[1] == "app, a job first":  # a job thread sets its own count before the GUI thread's first torch call
    job = threading.Thread(target=lambda: (torch.set_num_threads(2), torch.rand(512, 512) @ torch.rand(512, 512)))
    job.start()
    job.join()
before = len(os.listdir("/proc/self/task"))
torch.rand(512, 512) @ torch.rand(512, 512)  # large enough for torch to run it in parallel
print(torch.get_num_threads(), len(os.listdir("/proc/self/task")) - before)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
@pytest.mark.parametrize("start, threads, new_threads", [("app", 1, 0), ("app, a job first", 1, 0), ("bare", 2, 1)])
def test_torch_on_the_gui_thread_starts_no_openmp_team(start, threads, new_threads):
    """A team on the GUI thread slowed training on a job thread to 60 % of its speed (gui/app.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", OPENMP_THREADS_AFTER_A_GUI_THREAD_MATMUL, start], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count, new = (int(n) for n in done.stdout.split()[-2:])
    # The job's own team may end meanwhile (fewer threads), never a new one on the GUI thread.
    assert count == threads and (new == new_threads if new_threads else new <= 0)
