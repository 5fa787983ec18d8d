"""The one-click demo: every step in turn with its caption, and one Cancel at any step leaves the app usable."""

import dataclasses
import json
import threading

import pytest
from PySide6.QtWidgets import QFileDialog

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.transfer import TransferConfig
from ssl_studio.gui import data_page, settings
from ssl_studio.gui.demo import CAPTIONS, REPORT_LINK, DemoSettings
from ssl_studio.gui.train_page import format_seconds
from ssl_studio.gui.workers import Job

TINY = TrainConfig(epochs=1, time_budget=None, batch_size=8, device="cpu")
TINY_TRANSFER = TransferConfig(fractions=(0.5, 1.0), repeats=2, finetune_fractions=(1.0,), finetune_epochs=(1,))


@pytest.fixture
def demo(window, tiny_folder, monkeypatch):
    """The window's demo on the tiny folder (standing in for the Shapes sample, which takes seconds to make)."""
    monkeypatch.setattr(data_page, "sample_folder", lambda name: tiny_folder)
    window.demo.settings = DemoSettings(config=TINY, augment_seconds=0.05, transfer=TINY_TRANSFER)
    return window.demo


def test_the_demo_goes_through_every_page_to_the_maps_and_the_transfer_curves(window, demo, qtbot, tmp_path,
                                                                              monkeypatch):
    steps, pages, captions = [], [], []
    demo.stepChanged.connect(lambda step: steps.append(step) or pages.append(window.current_page())
                             or captions.append(window.demo_bar.caption.text()))
    with qtbot.waitSignal(demo.finished, timeout=60_000) as outcome:
        window.data.demo_button.click()
        assert window.demo_bar.isVisible() and window.demo_bar.cancel_button.isVisible()
    assert outcome.args == [True]
    assert steps[:2] == ["data", "augment"] and steps[-3:] == ["compare", "transfer", "done"] and "train" in steps
    assert pages[:2] == [window.data, window.augment] and pages[-3:-1] == [window.compare, window.transfer]
    assert window.compare.grid.has_points() and window.current_page() is window.transfer
    # The curves were measured with the demo's settings; the page has its own back for the next run.
    assert window.transfer.data["settings"] == TINY_TRANSFER.to_dict()
    assert window.session.transfer_settings == TransferConfig() and window.transfer.probe_plot.series
    assert 0 < demo.map_seconds <= demo.seconds
    # Training ran with the demo's budget and recipe, and the supervised baseline got its own caption.
    stored = window.session.run.read_settings()
    assert stored.config.epochs == 1 and window.session.recipe == stored.recipe == demo.settings.recipe
    assert window.augment.preset.currentText().startswith("Shape over color")  # named, not Custom
    assert window.train.finished_events.keys() == {"ssl", "supervised"}
    text = window.demo_bar.caption.text()
    assert "Done in" in text and "kNN accuracy" in text and window.demo_bar.close_button.isVisible()
    assert f"Done in {window.demo_bar.clock.text()} " in text  # the clock stopped where the caption says
    assert window.transfer.reading.text() in text
    assert not window.demo_bar.cancel_button.isVisible()
    # Each step's caption, and the scores the captions give are the run's own, as metrics.json has them.
    said = dict(zip(steps, captions))
    assert (said["data"], said["augment"], said["compare"]) == (CAPTIONS["data"], CAPTIONS["augment"],
                                                                CAPTIONS["compare"])
    assert [c for s, c in zip(steps, captions) if s == "train"][-1] == CAPTIONS["supervised"]
    assert set(c for s, c in zip(steps, captions) if s == "train") <= {CAPTIONS["ssl"], CAPTIONS["supervised"]}
    scores = json.loads((window.compare.run.path / "metrics.json").read_text())["embeddings"]
    ssl, pixels = round(100 * scores["ssl"]["knn_top1"]), round(100 * scores["pixels"]["knn_top1"])
    result = f" The self-supervised network reaches <b>{ssl}%</b> kNN accuracy, raw pixels {pixels}%"
    assert said["transfer"].startswith(f"Maps done in {format_seconds(demo.map_seconds)}.{result}")
    assert said["transfer"].endswith(CAPTIONS["transfer"]) and result in text
    # The demo opened each page's explanation for the visit, without making that the user's choice.
    assert window.train.explanation.is_expanded() and settings.load_json("explanation/TrainPage") is None
    # The last caption offers a report anyone can open: its link asks for a folder and writes report.html there.
    assert f"href='{REPORT_LINK}'" in text
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path / "report"))
    window.demo_bar.caption.linkActivated.emit(REPORT_LINK)
    qtbot.waitUntil(lambda: (tmp_path / "report" / "report.html").is_file() and not window.export_bar.is_running(),
                    timeout=60_000)


def test_help_demo_starts_it_and_a_second_start_is_refused(window, demo, qtbot):
    action = next(a for a in window.findChildren(type(window.export_action)) if a.text() == "&Demo")
    with qtbot.waitSignal(demo.stepChanged, check_params_cb=lambda step: step == "augment", timeout=20_000):
        action.trigger()
        assert not demo.start()
    with qtbot.waitSignal(demo.finished, timeout=60_000):
        demo.cancel()


def test_cancel_while_the_sample_loads(window, demo, qtbot, tiny_folder, monkeypatch):
    pressed = threading.Event()
    monkeypatch.setattr(data_page, "sample_folder", lambda name: pressed.wait(10) and tiny_folder)
    demo.start()
    with qtbot.waitSignal(window.data.job.ended, timeout=20_000):
        window.demo_bar.cancel_button.click()
        pressed.set()
    assert demo.step == "stopped" and "cancelled" in window.demo_bar.caption.text()
    assert window.session.dataset is None and not Job.live_jobs()


def test_cancel_while_training_stops_it_and_the_app_trains_again(window, demo, drive, qtbot):
    demo.settings = DemoSettings(config=TINY.replace(epochs=500), augment_seconds=0.05)
    with qtbot.waitSignal(demo.stepChanged, check_params_cb=lambda step: step == "train", timeout=20_000):
        demo.start()
    with qtbot.waitSignal(window.train.job.ended, timeout=20_000):
        window.demo_bar.cancel_button.click()
    assert demo.step == "stopped" and not window.train.is_running() and not window.compare.is_running()
    assert window.train.start_button.isEnabled()
    # Usable: the same window trains and compares again, by hand.
    drive.train_and_compare(window)


def test_the_persons_own_settings_come_back_when_their_own_data_opens(window, demo, drive, qtbot, flat_folder):
    from ssl_studio.core.config import Budget
    from ssl_studio.core.methods import recipe_presets

    # The person's own settings before the demo: BYOL for 45 s with the recipe that changes nothing.
    train, augment = window.train, window.augment
    train.control("method").setCurrentIndex(train.control("method").findData("byol"))
    train.set_budget(Budget("time", 45.0, 7))
    augment.set_recipe(recipe_presets()["none"], "none")
    own_config, own_recipe = train.config(), augment.recipe()
    demo.settings = DemoSettings(config=TINY.replace(epochs=500), augment_seconds=0.05)
    with qtbot.waitSignal(demo.stepChanged, check_params_cb=lambda step: step == "train", timeout=20_000):
        demo.start()
    assert train.config().method == "simclr" and augment.recipe() == demo.settings.recipe  # the demo's, meanwhile
    with qtbot.waitSignal(train.job.ended, timeout=20_000):
        window.demo_bar.cancel_button.click()
    drive.open_folder(window, flat_folder)
    assert train.config() == own_config.replace(resolution=window.session.dataset.resolution)
    assert train.budget() == Budget("time", 45.0, 7)
    assert augment.recipe() == own_recipe and augment.preset_name() == "none"
    assert settings.load_json("train") == train.config().to_dict()  # saved too: the next launch starts with them
    assert "Your own training settings" in window.statusBar().currentMessage()


def test_cancel_while_the_maps_are_computed(window, demo, qtbot, monkeypatch):
    from ssl_studio.gui.compare import page as compare_page

    # The comparison waits, as a large one would, until Cancel has been pressed.
    pressed = threading.Event()
    real = compare_page.compare

    def compare_after_cancel(*args, **kwargs):
        pressed.wait(10)
        return (yield from real(*args, **kwargs))

    monkeypatch.setattr(compare_page, "compare", compare_after_cancel)
    with qtbot.waitSignal(demo.stepChanged, check_params_cb=lambda step: step == "compare", timeout=30_000):
        demo.start()
    assert CAPTIONS["compare"] in window.demo_bar.caption.text()
    with qtbot.waitSignal(window.compare.job.ended, timeout=20_000):
        window.demo_bar.cancel_button.click()
        pressed.set()
    assert demo.step == "stopped" and not window.compare.is_running() and not Job.live_jobs()


def test_cancel_while_the_transfer_curves_are_measured(window, demo, qtbot):
    demo.settings = DemoSettings(config=TINY, augment_seconds=0.05,
                                 transfer=dataclasses.replace(TINY_TRANSFER, finetune_epochs=None,
                                                                 finetune_budget=(600.0,)))
    with qtbot.waitSignal(demo.stepChanged, check_params_cb=lambda step: step == "transfer", timeout=30_000):
        demo.start()
    assert CAPTIONS["transfer"] in window.demo_bar.caption.text() and "Maps done in" in window.demo_bar.caption.text()
    with qtbot.waitSignal(window.transfer.job.ended, timeout=20_000):
        window.demo_bar.cancel_button.click()
    assert demo.step == "stopped" and not window.transfer.is_running() and not Job.live_jobs()
    assert window.session.transfer_settings == TransferConfig()
