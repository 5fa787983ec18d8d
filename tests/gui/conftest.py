"""GUI tests run offscreen, with their own settings, cache and runs folders, and fail if a thread is left running."""

import os

# Before anything can create a QApplication: no display is needed, and none of the user's is touched.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import gc  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QThreadPool, QtMsgType, qInstallMessageHandler  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from ssl_studio.gui import settings  # noqa: E402
from ssl_studio.gui.workers import Job  # noqa: E402

from ssl_studio.core.transfer import TransferConfig  # noqa: E402

CLASSES = ("disk", "bar", "check")
TINY_TRANSFER = TransferConfig(fractions=(0.2, 0.5, 1.0), repeats=2, finetune_fractions=(0.5, 1.0),
                               finetune_epochs=(1,))
JOIN_S = 5.0
PER_CLASS = 12


@pytest.fixture(scope="session", autouse=True)
def gui_thread_gc(qapp):
    """As the app does: collect garbage only on the GUI thread (a worker thread collecting a dead test's widgets
    would destroy Qt objects off the GUI thread and crash), keep PySide6 from using up None's references, and
    look as the app looks."""
    from ssl_studio.gui import gc_timer
    from ssl_studio.gui.app import apply_style, keep_none_alive

    gc_timer.install(qapp)
    keep_none_alive(qapp)
    apply_style(qapp)
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, qapp):
    """Settings in a temp INI file, the image cache and runs in temp folders: never the user's real ones."""
    monkeypatch.setenv("SSL_STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    qapp.setOrganizationName(settings.ORGANIZATION)
    qapp.setApplicationName(settings.APPLICATION)
    settings.use_private_folder(tmp_path)
    settings.save_json("use_umap", False)  # UMAP's import and JIT take far longer than a test may
    yield tmp_path


# The offscreen platform plugin says this of every window it shows; it is not about our code.
BENIGN_QT_MESSAGES = ("This plugin does not support propagateSizeHints()",)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item):
    """Close every window the test left open, first thing in teardown, listening for Qt's warnings meanwhile
    (e.g. "QThread: Destroyed while thread is still running"); no_thread_left_running reports them."""
    app = QApplication.instance()
    if app is not None:
        warnings = item.qt_close_warnings = []

        def handler(kind, context, message):
            if kind != QtMsgType.QtDebugMsg and message not in BENIGN_QT_MESSAGES:
                warnings.append(message)

        previous = qInstallMessageHandler(handler)
        try:
            for widget in app.topLevelWidgets():
                widget.close()
            app.processEvents()
        finally:
            qInstallMessageHandler(previous)
    return (yield)


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp, request):
    """Fail a test that leaves a worker or a Python thread running once its windows are closed, or whose windows
    made Qt warn while closing.

    A finished job's thread is back in the pool a moment after its last signal, so the check joins (with a
    generous timeout) rather than samples: a thread that is merely finishing passes, one that keeps running fails.
    """
    before = set(threading.enumerate())
    yield
    problems = []
    if not QThreadPool.globalInstance().waitForDone(JOIN_S * 1000):
        problems.append(f"{QThreadPool.globalInstance().activeThreadCount()} worker thread(s) still running")
    qapp.processEvents()  # deliver the finished jobs' last signals
    if Job.live_jobs():
        problems.append(f"{len(Job.live_jobs())} job(s) never ended")
    # Dummy threads are Qt's pool threads seen from Python: they stay listed after their work ends.
    extra = [t for t in set(threading.enumerate()) - before if not isinstance(t, threading._DummyThread)]
    for thread in extra:
        thread.join(JOIN_S)
    alive = [t.name for t in extra if t.is_alive()]
    if alive:
        problems.append(f"Python thread(s) still alive: {alive}")
    warnings = getattr(request.node, "qt_close_warnings", [])
    if warnings:
        problems.append(f"Qt warned while the windows closed: {warnings}")
    if problems:
        Job.stop_all(JOIN_S)
        pytest.fail("; ".join(problems))


def _draw(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A shape on a random background, in a random color: class = shape, as in the shapes sample."""
    yy, xx = np.mgrid[:size, :size] / size
    cx, cy = rng.uniform(0.35, 0.65, size=2)
    if kind == "disk":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < 0.08
    elif kind == "bar":
        mask = np.abs(xx - cx) < 0.12
    else:
        mask = ((xx * 8).astype(int) + (yy * 8).astype(int)) % 2 == 0
    background = rng.integers(0, 256, size=3)
    color = rng.integers(0, 256, size=3)
    return np.where(mask[..., None], color, background).astype(np.uint8)


def make_folder(root, classes=CLASSES, per_class=PER_CLASS, seed=0, broken=True):
    """A small labeled folder of 32 px PNGs (plus one broken file, to be skipped with a reason)."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_draw(kind, rng)).save(root / kind / f"{i:03d}.png")
    if broken:
        (root / classes[0] / "broken.png").write_bytes(b"not a png at all")
    return root


@pytest.fixture(scope="session")
def tiny_spec():
    """(class names, images per class) of tiny_folder."""
    return CLASSES, PER_CLASS


@pytest.fixture(scope="session")
def tiny_transfer():
    """The transfer settings tiny_run was made with."""
    return TINY_TRANSFER


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def flat_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat")
    rng = np.random.default_rng(1)
    for i in range(20):
        Image.fromarray(_draw(CLASSES[i % 3], rng)).save(root / f"img{i:02d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_folder, tmp_path_factory):
    """A finished run folder of tiny_folder, made once by the core pipeline (as the command line does)."""
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_STUDIO_CACHE_DIR", str(root / "cache"))
        config = TrainConfig(epochs=1, time_budget=None, batch_size=8, device="cpu")
        for _ in run_pipeline(tiny_folder, root / "run", config, use_umap=False, transfer=TINY_TRANSFER):
            pass
    return root / "run"


@pytest.fixture
def window(qtbot):
    from ssl_studio.gui.main_window import MainWindow

    w = MainWindow(warm_up_umap=False)
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    return w


class Driver:
    """Steps the tests share, done through the window's real widgets and signals."""

    def __init__(self, qtbot) -> None:
        self.qtbot = qtbot

    def open_folder(self, window, folder, timeout=15_000):
        with self.qtbot.waitSignal(window.data.datasetLoaded, timeout=timeout):
            window.open_path(folder)
        return window.session.dataset

    @staticmethod
    def tiny_training(window, epochs=1, batch_size=8):
        window.go("train")
        page = window.train
        page.by_epochs.setChecked(True)
        page.epochs.setValue(epochs)
        page.control("batch_size").setValue(batch_size)
        page.control("device").setCurrentText("cpu")

    def open_run(self, window, run, timeout=20_000):
        with self.qtbot.waitSignal(window.runOpened, timeout=timeout):
            window.open_run(run)
        return window.compare

    def train_and_compare(self, window, timeout=30_000):
        """Train with the tiny settings, then wait until the Compare page has drawn every map."""
        self.tiny_training(window)
        with self.qtbot.waitSignal(window.compare.comparisonFinished, timeout=timeout):
            window.train.start_button.click()
        return window.compare


@pytest.fixture
def drive(qtbot):
    return Driver(qtbot)


@pytest.fixture
def folder_factory(tmp_path):
    return lambda name="data", **kw: make_folder(tmp_path / name, **kw)
