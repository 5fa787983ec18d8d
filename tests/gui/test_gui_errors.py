"""An exception nobody expected, in a slot, a thread or a worker: a dialog that says where the log is, the
traceback in that log, and the app goes on."""

import threading

import pytest
from PySide6.QtCore import QTimer

from ssl_studio.gui import train_page
from ssl_studio.gui.error_report import ErrorReporter


@pytest.fixture
def reporter(tmp_path):
    """The app's hooks, installed over pytest-qt's for the test (the app installs them in app.main)."""
    errors = ErrorReporter(tmp_path / "log" / "ssl-studio.log")
    errors.install()
    yield errors
    errors.uninstall()


def _raise_in_a_slot() -> None:
    raise ZeroDivisionError("a bug in a slot")


def test_an_exception_in_a_slot_shows_where_the_log_is_and_the_app_goes_on(window, qtbot, reporter):
    with qtbot.waitSignal(reporter.shown) as shown:
        QTimer.singleShot(0, _raise_in_a_slot)
    dialog = shown.args[0]
    assert "ZeroDivisionError: a bug in a slot" in dialog.text()
    assert str(reporter.log_file) in dialog.informativeText()
    assert "keeps running" in dialog.informativeText()
    assert "_raise_in_a_slot" in dialog.detailedText()
    log = reporter.log_file.read_text()
    assert "Traceback (most recent call last)" in log and "_raise_in_a_slot" in log
    assert not dialog.isModal()  # the window stays usable behind it
    window.go("augment")
    assert window.current_page() is window.augment

    # A second error while the dialog is up goes to the log and is counted there, not in a second dialog.
    thread = threading.Thread(target=_raise_in_a_slot, name="helper")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: "One more error" in dialog.informativeText())
    assert "in thread helper" in reporter.log_file.read_text()
    dialog.close()


def test_an_unexpected_error_in_a_worker_reaches_the_dialog_too(window, drive, qtbot, reporter, tiny_folder,
                                                               monkeypatch):
    def broken_training(*args, **kwargs):
        raise RuntimeError("a bug in training")
        yield

    monkeypatch.setattr(train_page, "train_models", broken_training)
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window)
    with qtbot.waitSignal(reporter.shown, timeout=20_000) as shown:
        window.train.start_button.click()
    assert "RuntimeError: a bug in training" in shown.args[0].text()
    assert "unexpected error" in window.train.banner.text()  # the page says what stopped, as before
    assert "a bug in training" in reporter.log_file.read_text()
