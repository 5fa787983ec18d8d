"""Stage 1: open folders every way a person can, and see thumbnails, classes and skipped files."""

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from ssl_studio.gui import settings


def test_empty_state_invites_to_open_data(window):
    assert window.data.stack.currentWidget() is window.data.empty
    assert "Open a folder or a sample dataset to begin" in window.data.empty.title.text()
    assert window.augment.stack.currentWidget() is window.augment.empty
    assert not window.train.start_button.isEnabled()
    assert window.compare.stack.currentWidget() is window.compare.empty


def test_open_a_folder_shows_thumbnails_classes_and_skipped_files(window, drive, tiny_folder, tiny_spec):
    CLASSES, PER_CLASS = tiny_spec
    dataset = drive.open_folder(window, tiny_folder)
    page = window.data
    assert len(dataset) == len(CLASSES) * PER_CLASS
    assert page.grid.model().rowCount() == len(dataset)
    # Thumbnails are made on request from the uint8 tensor.
    pixmap = page.grid.model().data(page.grid.model().index(0), Qt.ItemDataRole.DecorationRole)
    assert pixmap.width() == 64 and not pixmap.isNull()
    counts = {page.classes.item(r, 0).text(): page.classes.item(r, 1).text() for r in range(page.classes.rowCount())}
    assert counts == {name: str(PER_CLASS) for name in sorted(CLASSES)}
    assert page.skipped.rowCount() == 1
    assert page.skipped.item(0, 0).text().endswith("broken.png")
    assert page.skipped.item(0, 1).text()  # a reason a person can act on
    assert str(tiny_folder) in page.summary.text()
    assert settings.recent_folders()[0] == str(tiny_folder)
    assert "✓" in window.stages.item(0).text()


def test_class_filter_shows_one_class(window, drive, tiny_folder, tiny_spec):
    CLASSES, PER_CLASS = tiny_spec
    drive.open_folder(window, tiny_folder)
    page = window.data
    page.class_filter.setCurrentIndex(2)
    assert page.grid.model().rowCount() == PER_CLASS
    page.class_filter.setCurrentIndex(0)
    assert page.grid.model().rowCount() == len(CLASSES) * PER_CLASS


def test_an_unlabeled_folder_is_accepted(window, drive, flat_folder):
    dataset = drive.open_folder(window, flat_folder)
    assert not dataset.labeled
    assert window.data.grid.model().rowCount() == 20
    assert "unlabeled" in window.data.summary.text()
    assert not window.data.class_filter.isEnabled()


def test_a_missing_folder_gives_a_clear_message(window, qtbot, tmp_path):
    missing = tmp_path / "nowhere"
    window.open_path(missing)
    qtbot.waitUntil(lambda: window.data.banner.isVisible())
    assert "does not exist" in window.data.banner.text()
    assert window.data.stack.currentWidget() is window.data.empty


def test_a_recent_folder_reopens_from_the_list(window, drive, qtbot, tiny_folder, flat_folder):
    settings.remember_folder(tiny_folder)
    settings.remember_folder(flat_folder)  # the latest first: the one wanted is not simply the top of the list
    window.data.refresh_recent()
    item = window.data.recent_list.item(1)
    assert item.text() == str(tiny_folder)
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=15_000):
        window.data.recent_list.itemActivated.emit(item)
    assert window.session.dataset.root == Path(tiny_folder) and window.session.dataset.labeled
    assert str(tiny_folder) in window.data.summary.text()


def test_dropping_a_folder_opens_it(window, qtbot, tiny_folder):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_folder))])
    event = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=15_000):
        window.dropEvent(event)
    assert window.session.dataset.root == Path(tiny_folder)


def test_a_sample_dataset_opens_from_the_menu(window, qtbot, tiny_folder, monkeypatch):
    # Generating the real Shapes sample takes seconds; the wiring is what is tested here.
    from ssl_studio.gui import data_page

    monkeypatch.setattr(data_page, "sample_folder", lambda name: tiny_folder)
    action = next(a for a in window.findChildren(type(window.export_action)) if a.text() == "Shapes")
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=15_000):
        action.trigger()
    assert window.session.dataset.root == Path(tiny_folder)
    assert settings.recent_folders() == []  # samples live in the cache, not among the user's folders


def test_changing_the_working_resolution_reloads(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    page = window.data
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=15_000):
        page.resolution.setCurrentIndex(page.resolution.findData(16))
        page.resolution.activated.emit(page.resolution.currentIndex())
    assert window.session.dataset.resolution == 16
    assert "16 px" in window.train.resolution_label.text()


def test_the_file_menu_lists_recent_folders(window, qtbot, tiny_folder, flat_folder):
    settings.remember_folder(tiny_folder)
    settings.remember_folder(flat_folder)
    window.recent_menu.aboutToShow.emit()
    listed = [a.text() for a in window.recent_menu.actions() if a.text() in (str(tiny_folder), str(flat_folder))]
    assert listed == [str(flat_folder), str(tiny_folder)]  # the latest first
    action = next(a for a in window.recent_menu.actions() if a.text() == str(tiny_folder))
    with qtbot.waitSignal(window.data.datasetLoaded, timeout=15_000):
        action.trigger()
    assert window.session.dataset.root == Path(tiny_folder) and window.session.dataset.labeled


def test_a_file_name_that_is_not_utf8_is_shown_with_its_bytes(window, drive, folder_factory):
    import os

    folder = folder_factory(per_class=4, broken=False)
    with open(os.fsencode(folder / "disk") + b"/\xe9t\xe9.jpg", "wb") as f:
        f.write(b"Latin-1 text, not a JPEG")
    drive.open_folder(window, folder)
    assert window.data.skipped.item(0, 0).text() == "disk/\\xe9t\\xe9.jpg"  # not "disk/t.jpg"
