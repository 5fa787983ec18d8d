"""The same awkward input in the real main window (offscreen): skipped files are listed with their reasons, an
unusable folder or a tampered run gives a message in the window, and nothing reaches a traceback."""

import os
import pickle

import pytest

from reliability_corpus import GOOD, NON_UTF8_TEXT, SKIPPED

pytest.importorskip("pytestqt")


NOT_UTF8 = "bees/" + os.fsdecode(NON_UTF8_TEXT)  # holds lone surrogates, which a Qt string cannot hold


def open_mixed(window, qtbot, folder) -> dict[str, str]:
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=30_000):
        window.open_path(folder)
    table = window.data.skipped
    return {table.item(row, 0).text(): table.item(row, 1).text() for row in range(table.rowCount())}


def open_and_set_tiny_training(window, qtbot, folder) -> None:
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=15_000):
        window.open_path(folder)
    window.go("train")
    page = window.train
    page.by_epochs.setChecked(True)
    page.epochs.setValue(1)
    page.control("batch_size").setValue(8)
    page.control("device").setCurrentText("cpu")


def test_the_data_page_lists_every_skipped_file_with_its_reason(gui_window, qtbot, corpus, unreadable):
    shown = open_mixed(gui_window, qtbot, corpus["mixed"])
    assert len(gui_window.session.dataset) == len(GOOD)
    assert len(shown) == len(SKIPPED)
    for path, reason in SKIPPED.items():
        if path != NOT_UTF8:
            assert reason in shown.pop(path), path
    ((_, reason),) = shown.items()  # what is left is the file whose name is not UTF-8
    assert SKIPPED[NOT_UTF8] in reason
    assert f"{len(SKIPPED)} skipped" in gui_window.data.summary.text()
    assert gui_window.data.banner.text() == ""


def test_a_name_that_is_not_utf8_is_shown_with_its_odd_bytes_marked(gui_window, qtbot, corpus):
    shown = open_mixed(gui_window, qtbot, corpus["mixed"])
    (odd,) = set(shown) - set(SKIPPED)
    assert odd != "bees/t.jpg" and ("\ufffd" in odd or "\\xe9" in odd)


def test_an_empty_folder_shows_a_message_and_the_app_carries_on(gui_window, qtbot, corpus, labeled):
    gui_window.open_path(corpus["empty"])
    qtbot.waitUntil(lambda: "No images found" in gui_window.data.banner.text(), timeout=15_000)
    with qtbot.waitSignal(gui_window.data.datasetLoaded, timeout=15_000):
        gui_window.open_path(labeled)
    assert len(gui_window.session.dataset) == 16


def test_one_image_loads_and_training_explains_why_it_cannot_start(gui_window, qtbot, corpus):
    open_and_set_tiny_training(gui_window, qtbot, corpus["one_image"])
    page = gui_window.train
    page.start_button.click()
    qtbot.waitUntil(lambda: "at least 2 images" in page.banner.text(), timeout=15_000)
    assert "unexpected error" not in page.banner.text()


def test_open_run_refuses_a_tampered_run_in_the_window(gui_window, qtbot, labeled, tmp_path):
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.pipeline import run_pipeline

    run = tmp_path / "run"
    list(run_pipeline(labeled, run, TrainConfig(epochs=1, time_budget=None, batch_size=8, resolution=16,
                                                device="cpu"), use_umap=False, skip=("transfer",)))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    (run / "ssl.safetensors").write_bytes(pickle.dumps(Payload()))
    gui_window.open_run(run)
    qtbot.waitUntil(lambda: "Could not open the run" in gui_window.compare.banner.text(), timeout=15_000)
    assert "ssl.safetensors" in gui_window.compare.banner.text()
    assert not marker.exists()


def test_one_class_trains_and_the_compare_page_says_why_there_is_no_baseline(gui_window, qtbot, corpus):
    open_and_set_tiny_training(gui_window, qtbot, corpus["one_class"])
    page = gui_window.train
    with qtbot.waitSignal(gui_window.compare.comparisonFinished, timeout=60_000):
        page.start_button.click()
    assert "supervised" not in gui_window.compare.embeddings
    assert "one class" in gui_window.compare.status.text()
