"""File > New sweep…: the dialog counts the runs and estimates their time before anything starts; the Train page
trains the queue in the background and says when the sweep is done."""

import json

from ssl_studio.core.sweep import QUEUE, Queue
from ssl_studio.core.workspace import SUMMARY
from ssl_studio.gui import settings


def test_the_dialog_counts_the_runs_and_estimates_their_time(window, drive, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.train.time_budget.setValue(30)
    dialog = window.new_sweep_dialog()
    assert dialog.chosen_methods() == ("simclr",)  # the Train page's method
    dialog.methods["byol"].setChecked(True)
    dialog.seeds.setValue(3)
    text = dialog.summary.text()
    # 2 methods x 3 seeds; a baseline per seed: (6 + 3) x 30 s = 4.5 min of training.
    assert "6 run(s): 6 self-supervised trainings and 3 supervised baseline(s)" in text
    assert "About 4.5 min of training" in text and "the transfer stage" in text
    dialog.set_vary(0, "params.momentum", "0.9, 0.99")
    assert "Cannot start: params.momentum is not a setting of simclr" in dialog.summary.text()
    assert not dialog.start_button.isEnabled()
    dialog.methods["simclr"].setChecked(False)
    assert dialog.summary.text().startswith("6 run(s)")  # byol x 2 momenta x 3 seeds
    dialog.set_vary(1, "lr", "0.001, 5")
    assert "learning rate (lr) must be at most 1 (got 5)" in dialog.summary.text()
    assert not dialog.start_button.isEnabled()
    assert dialog.vary[1][0].currentText() == "Learning rate (lr)"
    dialog.grab().save(str(settings.runs_dir().parent / "sweep_dialog.png"))
    dialog.reject()
    assert not (settings.runs_dir() / QUEUE).exists()  # nothing queued before Start


def test_a_tiny_sweep_trains_in_the_background_until_its_finished_signal(window, drive, qtbot, tiny_folder,
                                                                         tiny_transfer):
    drive.open_folder(window, tiny_folder)
    page = window.train
    page.by_epochs.setChecked(True)
    page.epochs.setValue(1)
    page.control("batch_size").setValue(8)
    page.control("device").setCurrentText("cpu")
    window.session.transfer_settings = tiny_transfer
    dialog = window.new_sweep_dialog()
    dialog.methods["byol"].setChecked(True)
    dialog.seeds.setValue(1)
    assert dialog.summary.text().startswith("2 run(s)")
    with qtbot.waitSignal(page.sweepFinished, timeout=180_000) as finished:
        dialog.start_button.click()
        assert window.current_page() is page and page.is_running()
        assert not page.start_button.isEnabled() and page.cancel_button.isEnabled()
    workspace = settings.runs_dir()
    assert finished.args[0].workspace == workspace
    assert [(j.name, j.state) for j in Queue(workspace).jobs()] == [("simclr-seed0", "finished"),
                                                                    ("byol-seed0", "finished")]
    summary = json.loads((workspace / SUMMARY).read_text())
    assert sorted(g["runs"] for g in summary["groups"]) == [["byol-seed0"], ["simclr-seed0"]]
    assert page.stage.text() == "Sweep done." and summary["verdict"] in page.banner.text()
    assert "byol-seed0" in page.run_label.text()
    qtbot.waitUntil(lambda: page.start_button.isEnabled())


def test_a_queue_that_cannot_be_read_is_told_in_the_banner_not_reported_as_a_bug(window, qtbot, tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / QUEUE).write_text("{ not JSON")
    page = window.train
    window.start_sweep(workspace)
    qtbot.waitUntil(lambda: not page.is_running())
    # pytest-qt fails a test whose job reports a bug (sys.excepthook): a SweepError is the person's, not a bug.
    assert page.banner.text().startswith(f"Training could not run: {QUEUE} in {workspace} is not valid JSON")
