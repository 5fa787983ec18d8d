"""Closing during any job stops and joins it; what the user set up comes back in the next session.

(The app itself, signalled in a real subprocess, is tested in tests/lifecycle/.)"""

import os
import signal

import pytest

from ssl_studio.gui import settings
from ssl_studio.gui.main_window import MainWindow
from ssl_studio.gui.stop_signals import StopSignals
from ssl_studio.gui.workers import Job
from ssl_studio.core.methods import recipe_presets

PRESETS = recipe_presets()


def test_closing_during_training_stops_and_joins_it(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    page = window.train
    window.go("train")
    page.time_budget.setValue(600)
    page.control("batch_size").setValue(8)
    page.start_button.click()
    qtbot.waitUntil(lambda: "ssl" in page._curves, timeout=20_000)
    run = window.session.run
    assert window.close()
    assert not Job.live_jobs()  # joined inside closeEvent, not left to finish later
    assert run.checkpoint("ssl").exists()  # the cancelled run kept its last checkpoint


def test_closing_while_loading_stops_the_loader(window, tiny_folder):
    window.open_path(tiny_folder)
    assert window.data.is_running()
    assert window.close()
    assert not Job.live_jobs()


def test_closing_while_the_maps_are_computed_stops_them(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window)
    with qtbot.waitSignal(window.train.trainingFinished, timeout=30_000):
        window.train.start_button.click()
    assert window.compare.is_running()
    assert window.close()
    assert not Job.live_jobs()


def test_closing_while_fine_tuning_for_the_transfer_curves_stops_it(window, drive, qtbot, tiny_run, tmp_path):
    import shutil

    from ssl_studio.core.events import TrainEvent
    from ssl_studio.core.transfer import TransferConfig

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "transfer.json").unlink()
    drive.open_run(window, run)
    page = window.transfer
    page.settings = TransferConfig(fractions=(1.0,), finetune_fractions=(1.0,), finetune_epochs=(10_000,))
    tuning = []
    page.start_button.click()
    page.job.events.connect(lambda events: tuning.extend(e for e in events if isinstance(e, TrainEvent)))
    qtbot.waitUntil(lambda: bool(tuning), timeout=60_000)  # fine-tuning from the SSL weights has begun
    assert window.close()
    assert not Job.live_jobs()
    assert (run / "finetune_ssl_100pct.safetensors").exists()  # the cancelled fine-tuning kept its checkpoint
    assert not (run / "transfer.json").exists()  # and no curves were written half-made


def test_closing_during_an_export_stops_it(window, drive, qtbot, tiny_run, tmp_path, monkeypatch):
    from ssl_studio.core import run_export

    copied = []

    def large_copy(*args, cancel, **kwargs):  # as a folder of many images: a copy that goes on until cancelled
        while True:
            cancel.raise_if_cancelled()
            copied.append(len(copied))
            yield len(copied)

    monkeypatch.setattr(run_export, "write_fiftyone", large_copy)
    drive.open_run(window, tiny_run)
    job = window.export_run_to("fiftyone", tmp_path / "export")
    qtbot.waitUntil(lambda: len(copied) > 10, timeout=20_000)
    assert job.running and window.close()
    assert not Job.live_jobs() and job.join(timeout=0)  # its generator has returned: the copy stopped


def test_what_the_user_set_up_is_remembered(qtbot, drive, tiny_folder):
    first = MainWindow(warm_up_umap=False)
    qtbot.addWidget(first)
    first.show()
    drive.open_folder(first, tiny_folder)
    first.resize(first.width(), 751)  # the offscreen screen is 800x800: restoring clamps a wider window's width
    first.augment.preset.setCurrentIndex(first.augment.preset.findData("rotation"))
    first.augment.preset.activated.emit(first.augment.preset.currentIndex())
    first.augment.control("solarize_p").setValue(0.3)
    first.train.control("batch_size").setValue(64)
    first.train.by_epochs.setChecked(True)
    first.train.epochs.setValue(7)
    first.compare.use_umap.setChecked(True)
    first.close()

    second = MainWindow(warm_up_umap=False)
    qtbot.addWidget(second)
    assert second.height() == 751
    assert settings.recent_folders() == [str(tiny_folder)]
    assert second.augment.recipe() == PRESETS["rotation"].replace(solarize_p=0.3)
    assert second.session.recipe == second.augment.recipe()
    assert second.train.control("batch_size").value() == 64
    assert second.train.by_epochs.isChecked() and second.train.epochs.value() == 7
    assert second.compare.use_umap.isChecked()


@pytest.fixture
def terminal_signals():
    """SIGINT and SIGTERM as a terminal's process has them: pytest started by a script's `cmd &` has SIGINT ignored,
    which StopSignals rightly leaves alone (as under nohup)."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_sigterm_and_sigint_arrive_on_the_event_loop_not_as_exceptions(qtbot, terminal_signals):
    stop = StopSignals()
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with qtbot.waitSignal(stop.received) as received:
                os.kill(os.getpid(), signum)  # without StopSignals: this test process ends, or KeyboardInterrupt
            assert received.args == [signum]
        assert stop.exit_code(0) == 128 + signal.SIGTERM  # the first one decides
    finally:
        stop.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
