"""Fixtures for the reliability suite: the generated bad-input corpus, isolation from the user's cache and settings."""

import os

import pytest
import torch
from PIL import Image

import reliability_corpus as corpus_module

# Before any QApplication exists (the GUI test imports Qt lazily): no display is needed anywhere in this suite.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SSL_STUDIO_CACHE_DIR", str(root))
    return root


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """On 2 cores shared with other jobs, torch's default two threads measured 10x slower per training step than
    one (0.7 s vs 0.06 s). Child processes get the same through OMP_NUM_THREADS."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Folders of awkward input, built once per session; tests must not modify them."""
    base = tmp_path_factory.mktemp("corpus")
    empty = base / "empty"
    empty.mkdir()
    return {
        "mixed": corpus_module.build_mixed(base / "mixed"),
        "one_class": corpus_module.build_one_class(base / "one_class"),
        "one_image": corpus_module.build_one_image(base / "one_image"),
        "empty": empty,
    }


@pytest.fixture
def labeled(tmp_path_factory):
    return corpus_module.build_labeled(tmp_path_factory.mktemp("labeled"))


@pytest.fixture
def unreadable(corpus, monkeypatch):
    """The corpus's locked.png cannot be read during the test (see reliability_corpus.deny_reading)."""
    locked = corpus["mixed"] / "bees" / corpus_module.UNREADABLE
    if corpus_module.IS_ROOT:
        monkeypatch.setattr(Image, "open", corpus_module.denying_open(Image.open))
        yield
    else:
        locked.chmod(0)
        yield
        locked.chmod(0o644)


@pytest.fixture
def gui_window(qtbot, qapp, tmp_path):
    """The real main window, with settings (QSettings), runs and caches in temp folders, never the user's; closed
    at the end the way a user closes it, which stops and joins its jobs."""
    from PySide6.QtCore import QThreadPool

    from ssl_studio.gui import settings
    from ssl_studio.gui.main_window import MainWindow

    qapp.setOrganizationName(settings.ORGANIZATION)
    qapp.setApplicationName(settings.APPLICATION)
    settings.use_private_folder(tmp_path)
    settings.save_json("use_umap", False)
    window = MainWindow(warm_up_umap=False)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()
    assert QThreadPool.globalInstance().waitForDone(5000), "a worker thread outlived the window"
