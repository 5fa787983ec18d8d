"""Settings: read back at once, written to disk off the calling thread, and kept with the folder they belong to."""

import json
import threading

from PySide6.QtCore import QSettings

from ssl_studio.core.config import Budget, TrainConfig
from ssl_studio.core.methods import recipe_presets
from ssl_studio.core.methods.simclr import SimCLRParams
from ssl_studio.gui import settings
from ssl_studio.gui.augment_page import AugmentPage
from ssl_studio.gui.train_page import TrainPage


def test_a_saved_value_reads_back_at_once_and_is_on_disk_after_flush():
    settings.save_json("recipe", {"preset": "simclr", "values": [1, 2]})
    assert settings.load_json("recipe") == {"preset": "simclr", "values": [1, 2]}
    settings.flush()
    assert QSettings().value("recipe") == '{"preset": "simclr", "values": [1, 2]}'


def test_the_disk_write_runs_on_the_writer_thread(monkeypatch):
    threads = []
    write = settings._write
    monkeypatch.setattr(settings, "_write", lambda key, text: (threads.append(threading.current_thread()),
                                                                write(key, text)))
    settings.save_json("use_umap", True)
    settings.flush()
    assert threads and threads[0] is not threading.current_thread()
    assert QSettings().value("use_umap") == "true"


def test_a_value_saved_before_the_folder_changes_stays_in_its_own_folder(tmp_path):
    settings.save_json("runs_dir", "/first")
    settings.use_private_folder(tmp_path / "second")
    assert settings.load_json("runs_dir") == str(tmp_path / "second" / "runs")
    settings.flush()
    first = QSettings(str(tmp_path / "settings" / settings.ORGANIZATION / f"{settings.APPLICATION}.ini"),
                      QSettings.Format.IniFormat)
    assert first.value("runs_dir") == '"/first"'


def as_json(value):
    return json.loads(json.dumps(value))


def test_the_app_saves_the_settings_as_the_run_folders_config_json_holds_them(qtbot):
    page = TrainPage()
    qtbot.addWidget(page)
    page.by_epochs.setChecked(True)
    page.epochs.setValue(3)
    page.time_budget.setValue(90)
    page.control("batch_size").setValue(16)
    page.control("temperature").setValue(0.2)
    page.save_settings()
    config = TrainConfig(epochs=3, time_budget=None, batch_size=16, params=SimCLRParams(temperature=0.2))
    assert settings.load_json("train") == as_json(config.to_dict())  # prepare_run writes config.to_dict() too
    assert settings.load_json("budget") == {"unit": "epochs", "time_budget": 90.0, "epochs": 3}
    assert settings.load_json("method_params") == {"simclr": {"temperature": 0.2, "rotation_task": 0.5}}
    augment = AugmentPage()
    qtbot.addWidget(augment)
    augment.control("flip_p").setValue(0.0)
    assert settings.load_json("recipe") == as_json(recipe_presets()["simclr"].replace(flip_p=0.0).to_dict())
    assert settings.load_json("recipe_preset") == "custom"

    again, augment_again = TrainPage(), AugmentPage()
    qtbot.addWidget(again)
    qtbot.addWidget(augment_again)
    assert again.config() == config and again.budget() == Budget("epochs", 90.0, 3)
    assert augment_again.recipe() == recipe_presets()["simclr"].replace(flip_p=0.0)


def test_settings_saved_in_a_shape_that_no_longer_parses_leave_the_defaults(qtbot):
    # What an older version saved: the budget and every method's settings inside "train", the preset in "recipe".
    settings.save_json("train", {"method": "byol", "batch_size": 16, "budget": "epochs", "time_budget": 90,
                                 "epochs": 7, "params": {"byol": {"momentum": 0.9}}})
    settings.save_json("recipe", {"preset": "rotation", "values": recipe_presets()["rotation"].to_dict()})
    settings.save_json("budget", {"unit": "fortnights"})
    settings.save_json("method_params", {"simclr": {"temperature": "hot"}, "byol": []})
    page, augment = TrainPage(), AugmentPage()
    qtbot.addWidget(page)
    qtbot.addWidget(augment)
    assert page.config() == TrainConfig() and page.budget() == Budget()
    assert augment.recipe() == recipe_presets()["simclr"] and augment.preset_name() == "simclr"
    page.control("method").setCurrentIndex(page.control("method").findData("byol"))
    assert page.config() == TrainConfig(method="byol")
