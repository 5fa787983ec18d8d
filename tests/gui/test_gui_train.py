"""Stage 3: training runs in the background, shows its progress, can be cancelled, and reports errors inline."""

import math

import pytest

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import simclr
from ssl_studio.core.train import TrainingError
from ssl_studio.gui.train_page import format_seconds, health_words


def test_start_then_cancel_keeps_the_last_checkpoint(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.data.next.click()
    window.augment.next.click()
    page = window.train
    assert window.current_page() is page
    page.time_budget.setValue(600)
    page.control("batch_size").setValue(8)
    page.control("device").setCurrentText("cpu")
    page.start_button.click()
    assert page.is_running()
    assert not page.start_button.isEnabled() and page.cancel_button.isEnabled()
    assert not page.control("method").isEnabled()  # settings are locked while they are in use
    qtbot.waitUntil(lambda: "ssl" in page._curves, timeout=20_000)  # the live curve has points
    assert page.loss_label.text().startswith("Loss ")
    assert "views/s" in page.speed_label.text()
    assert "Health" in page.health_label.text()
    assert "ETA" in page.progress.format()
    with qtbot.waitSignal(page.job.cancelled, timeout=10_000):
        page.cancel_button.click()
    assert page.finished_events["ssl"].reason == "cancelled"
    assert window.session.run.checkpoint("ssl").exists()
    assert "cancelled" in page.banner.text()
    assert page.resume_button.isVisible() and page.start_button.isEnabled()
    assert not page.next.isEnabled()


def test_a_finished_training_fills_the_maps(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    compare = drive.train_and_compare(window)
    page = window.train
    assert set(page.finished_events) == {"ssl", "supervised"}  # labeled data: SSL, then the baseline
    assert all(e.reason == "completed" for e in page.finished_events.values())
    assert page.next.isEnabled()
    assert set(page._curves) == {"ssl", "supervised"}
    assert (window.session.run.path / "metrics.json").is_file()
    assert str(window.session.run.path.parent) == page.runs_label.text()
    for space in ("ssl", "supervised", "untrained", "pixels"):
        m = compare.maps[space]
        assert m.has_points() and len(m.coords) == len(window.session.dataset)
        assert "kNN" in m.title.text() and "linear" in m.title.text()
    assert "✓" in window.stages.item(3).text()


def test_an_unavailable_device_is_a_clear_message_and_the_app_keeps_running(window, drive, qtbot, tiny_folder):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window)
    page = window.train
    page.control("device").addItem("cuda")  # as if listed by mistake: the core must refuse it, the app must carry on
    page.control("device").setCurrentText("cuda")
    assert page.start()
    with qtbot.waitSignal(page.job.failed, timeout=10_000):
        pass
    assert "not available" in page.banner.text()
    assert page.start_button.isEnabled()


def test_a_diverged_training_shows_the_cores_message(window, drive, qtbot, tiny_folder, monkeypatch):
    # The loss itself turns NaN: the real training loop must notice, stop, and say so through the page.
    real = simclr.info_nce
    monkeypatch.setattr(simclr, "info_nce", lambda *a, **kw: real(*a, **kw) * math.nan)
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window)
    page = window.train
    page.start()
    with qtbot.waitSignal(page.job.failed, timeout=20_000) as failed:
        pass
    (error,) = failed.args
    assert isinstance(error, TrainingError) and "diverged" in str(error) and "lower learning rate" in str(error)
    assert page.banner.text() == f"Training stopped: {error}"
    assert page.banner.kind() == "error"
    assert page.start_button.isEnabled()


def test_settings_the_core_refuses_are_shown_before_anything_starts(window, drive, tiny_folder):
    drive.open_folder(window, tiny_folder)
    page = window.train
    page.control("batch_size").setMinimum(1)  # let a value through that TrainConfig refuses
    page.control("batch_size").setValue(1)
    assert not page.start()
    assert "batch size must be at least 2" in page.banner.text()
    assert not page.is_running()


def test_number_formatting():
    assert format_seconds(65) == "1:05"
    assert format_seconds(3725) == "1:02:05"
    assert format_seconds(None) == "–"
    assert health_words(0.9)[0].endswith("healthy")
    assert health_words(0.05)[0].endswith("collapsing")
    assert health_words(math.nan)[0] == "–"


def test_the_next_model_does_not_start_under_the_last_ones_figures(window, drive, tiny_folder):
    """When SSL's last progress and the baseline's start arrive in one batch, the bar restarts for the baseline."""
    from ssl_studio.core.events import StageStarted, TrainEvent
    from ssl_studio.core.train import TrainProgress

    drive.open_folder(window, tiny_folder)
    page = window.train
    page._models = ["ssl", "supervised"]
    last = TrainProgress(step=90, epoch=2, total_steps=90, fraction=1.0, loss=3.2, views_per_second=2000.0,
                         elapsed=12.0, eta=0.0, health=0.98, lr=0.0)
    page._on_events([StageStarted("ssl", "Training self-supervised"), TrainEvent("ssl", last),
                     StageStarted("supervised", "Training supervised")])
    assert page.progress.value() == 0
    assert page.progress.format() == "Supervised · starting…"
    assert page.stage.text() == "Step 2 of 2: Training supervised"


def test_training_says_when_it_runs_so_the_umap_process_can_wait(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window)
    page = window.train
    with qtbot.waitSignals([page.runningChanged, page.runningChanged], timeout=30_000,
                           check_params_cbs=[lambda running: running, lambda running: not running]):
        assert page.start()


def test_the_budget_boxes_follow_the_budget_schema(window):
    from ssl_studio.core.config import Budget

    page = window.train
    # Time is more than 0 s, shown in whole seconds: the box starts at 1 s; epochs from 1 to 10,000.
    assert (page.time_budget.minimum(), page.time_budget.decimals(), page.time_budget.suffix()) == (1, 0, " s")
    assert (page.epochs.minimum(), page.epochs.maximum()) == (1, 10_000)
    page.time_budget.setValue(90)
    page.set_config(TrainConfig(epochs=4, time_budget=None))  # a run opened: its unit and value, the other kept
    assert page.by_epochs.isChecked() and page.budget() == Budget("epochs", 90.0, 4)
    assert (page.config().epochs, page.config().time_budget) == (4, None)
    page.by_time.setChecked(True)
    assert (page.config().epochs, page.config().time_budget) == (None, 90.0)


def test_resume_trains_on_with_the_settings_the_run_folder_records(window, drive, qtbot, tiny_folder, tmp_path):
    from ssl_studio.core.cancel import CancelToken
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.events import TrainEvent
    from ssl_studio.core.pipeline import run_pipeline
    from ssl_studio.core import runs
    from ssl_studio.core.runs import RunFolder
    from ssl_studio.core.train import TrainProgress

    # A run stopped at its first progress report, as the command line leaves it on Ctrl-C. Enough epochs that the
    # report (every 0.25 s) comes while SSL still trains, even on a fast machine.
    token = CancelToken()
    config = TrainConfig(epochs=200, time_budget=None, batch_size=8, device="cpu")
    for event in run_pipeline(tiny_folder, tmp_path / "run", config, cancel=token):
        if isinstance(event, TrainEvent) and isinstance(event.event, TrainProgress):
            token.cancel()
    stopped = RunFolder(tmp_path / "run")
    assert not stopped.checkpoint_meta("ssl")["finished"] and not stopped.exists(runs.METRICS)
    drive.open_run(window, tmp_path / "run")
    page = window.train
    # Settings changed on the page since: the rotation method could not even load the SimCLR checkpoint.
    page.control("method").setCurrentIndex(page.control("method").findData("rotation"))
    page.epochs.setValue(1)
    # The rest of 200 epochs of each model: about 19 s on a quiet 2-core machine, past 60 s on a loaded one.
    with qtbot.waitSignal(page.trainingFinished, timeout=180_000):
        assert page.start(resume=True)
    assert page.finished_events["ssl"].reason == "completed" and page.banner.isHidden()
    config = window.session.run.read_settings().config
    assert (config.method, config.epochs) == ("simclr", 200)
    assert page.config().method == "rotation"  # the page keeps its own settings for the next run
