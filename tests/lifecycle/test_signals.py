"""Real signals to the real app (offscreen, in a subprocess with its own settings, runs, cache and log folders).

SIGINT (sent to the whole process group, as Ctrl-C in a terminal does) and SIGTERM (to the app alone, as `kill`
does) close it as its close button does: jobs stopped and joined, the cancelled run's checkpoint written,
settings saved, no traceback, exit code 130 or 143. No process of the app outlives it, SIGKILL included:
its UMAP process dies with it and multiprocessing's resource tracker follows.

Every step waits on a condition (a line the app prints, a process in /proc), with a timeout generous enough for a
busy machine.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ssl_studio.core.checkpoint import load_checkpoint
from ssl_studio.core.samples import make_shapes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("drive_app.py")
START_S = 180  # start-up imports torch, Qt and the window; a busy 2-core machine can take a while
STOP_S = 60
GONE_S = 30


class App:
    """`python drive_app.py [DATA_DIR]`, its stdout read line by line, its stderr kept in a file."""

    def __init__(self, home: Path, *args: str) -> None:
        self.home = home
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "SSL_STUDIO_CACHE_DIR": str(home / "cache")}
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):  # settings, runs, log: never the user's own
            env[f"XDG_{name}_HOME"] = str(home / name.lower())
        env.pop("NUMBA_CACHE_DIR", None)
        self.stderr_path = home / "stderr.txt"
        with open(self.stderr_path, "w") as stderr:
            # A process group of its own, as a command started from a terminal has.
            self.process = subprocess.Popen([sys.executable, str(DRIVER), *args], env=env, stdout=subprocess.PIPE,
                                            stderr=stderr, text=True, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, prefix: str, timeout: float = START_S) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the app never printed {prefix!r}; stderr:\n{self.stderr()}") from None
            if line.startswith(prefix):
                return line

    def descendants(self) -> dict[int, str]:
        """pid -> command line of every process below the app, now."""
        found, todo = {}, [self.process.pid]
        while todo:
            for child in _children(todo.pop()):
                if child not in found:
                    found[child] = _cmdline(child)
                    todo.append(child)
        return found

    def wait_for_umap_process(self, started: bool = True) -> int:
        """The UMAP process; with started, once it has run its start-up (which ends by lowering its priority to
        nice 10). While the app trains it is paused (SIGSTOP), possibly before that start-up."""
        return _wait(lambda: next((p for p, cmd in self.descendants().items()
                                   if "multiprocessing.spawn" in cmd and (not started or _nice(p) == 10)), None),
                     START_S, lambda: f"no UMAP process came up; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def settings(self) -> str:
        return next((self.home / "config").rglob("*.conf")).read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(p) for p in task.read_text().split()]
        except OSError:  # the thread or the process is gone
            pass
    return children


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the state on; the name may hold spaces


def _nice(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[16]) if fields else None  # field 19 of proc(5)


def _alive(pid: int, start: str) -> bool:
    fields = _stat(pid)
    # Same start time: the same process, not a new one that got its number. A zombie has ended.
    return fields is not None and fields[19] == start and fields[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _wait(condition, timeout: float, message):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.05)  # polling interval, not a synchronisation


def _assert_all_end(processes: dict[int, str]) -> None:
    starts = {pid: (_stat(pid) or [""] * 20)[19] for pid in processes}
    _wait(lambda: not any(_alive(pid, start) for pid, start in starts.items()), GONE_S,
          lambda: "still running: " + "; ".join(processes[p] for p, s in starts.items() if _alive(p, s)))


@pytest.fixture
def app_home(tmp_path):
    apps = []

    def start(*args: str) -> App:
        app = App(tmp_path, *args)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.kill()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", per_class=4, size=24)


def _stop(app: App, signum: int) -> None:
    processes = app.descendants()
    assert any("resource_tracker" in cmd for cmd in processes.values()), processes
    if signum == signal.SIGINT:
        os.killpg(app.process.pid, signum)  # as Ctrl-C in a terminal: to every process of the group
    else:
        app.process.send_signal(signum)  # as `kill PID`
    assert app.process.wait(STOP_S) == 128 + signum
    stderr = app.stderr()
    for sign in ("Traceback", "KeyboardInterrupt", "Fatal Python error", "resource_tracker"):
        assert sign not in stderr, stderr
    _assert_all_end(processes)
    assert "geometry=" in app.settings()  # saved when the window closed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_training_and_the_umap_warm_up_closes_the_app(app_home, tiny_data, signum):
    """Both at once, which makes one start of the app (the costly part) cover the two: the warm-up, begun with the
    window, still has `import umap` (10-20 s) and its first compilation ahead of it, and waits paused while the
    app trains."""
    app = app_home(str(tiny_data))
    run = Path(app.wait_for_line("training ").split(" ", 1)[1])
    app.wait_for_umap_process(started=False)
    _stop(app, signum)
    _tensors, meta = load_checkpoint(run / "ssl.safetensors")  # written whole when the cancel stopped training
    assert meta["method"] == "simclr"


def test_sigkill_of_the_app_leaves_no_process_behind(app_home):
    app = app_home()
    app.wait_for_umap_process()
    processes = app.descendants()
    assert {"resource_tracker", "multiprocessing.spawn"} <= {
        word for cmd in processes.values() for word in ("resource_tracker", "multiprocessing.spawn") if word in cmd}
    app.process.kill()
    app.process.wait()
    _assert_all_end(processes)
