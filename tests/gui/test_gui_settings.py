"""Settings: read back at once, written to disk off the calling thread, and kept with the folder they belong to."""

import threading

from PySide6.QtCore import QSettings

from ssl_studio.gui import settings


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
