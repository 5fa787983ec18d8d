"""A new page is one module and one line in gui/pages.py (ARCHITECTURE.md, "Adding a page"): the window lists it in
its navigation and its Go menu, go("toy") shows it, and it observes the session as the built-in pages do."""

import pytest
from PySide6.QtGui import QAction, QKeySequence

from ssl_studio.gui import pages
from ssl_studio.gui.main_window import MainWindow

TOY_PAGE = '''
from PySide6.QtWidgets import QLabel

from ssl_studio.core.session import DATASET
from ssl_studio.gui.page import Page


class ToyPage(Page):
    name, title = "toy", "Toy"

    def __init__(self, session=None, parent=None):
        super().__init__(session, "A page written in one file.", parent)
        self.count = QLabel("No data")
        self.add_body(self.count)
        self.session.observe(DATASET, lambda dataset: self.count.setText(f"{len(dataset)} images"))
'''


@pytest.fixture
def toy_window(tmp_path, monkeypatch, qtbot):
    (tmp_path / "toy_page.py").write_text(TOY_PAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from toy_page import ToyPage

    monkeypatch.setattr(pages, "PAGES", [*pages.PAGES, ToyPage])  # the one registry line
    window = MainWindow(warm_up_umap=False)
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_page_in_one_file_and_one_registry_line_is_in_the_window(toy_window, drive, tiny_folder):
    window = toy_window
    toy = window.page("toy")
    assert [window.stages.item(row).text() for row in range(window.stages.count())] == [
        "1  Data", "2  Augment", "3  Train", "4  Compare", "5  Transfer", "6  Runs", "7  Run vs run", "8  Toy"]
    assert toy.header.title.text() == "8 · Toy"
    window.go("toy")
    assert window.current_page() is toy and window.stages.currentRow() == 7
    window.go("compare")
    assert window.current_page() is window.compare
    go_to_toy = next(a for a in window.findChildren(QAction) if a.text() == "&8 Toy")
    assert go_to_toy.shortcut() == QKeySequence("Ctrl+8")
    go_to_toy.trigger()
    assert window.current_page() is toy
    # It observes the session: the data opened on the Data page reaches it.
    dataset = drive.open_folder(window, tiny_folder)
    assert toy.count.text() == f"{len(dataset)} images"


def test_going_to_a_page_that_is_not_registered_says_which_are(window):
    with pytest.raises(ValueError, match="no page 'toy'; the pages are data, augment, train, compare, transfer"):
        window.go("toy")


def test_a_page_registered_without_a_name_of_its_own_is_refused(qapp, monkeypatch):
    from ssl_studio.gui.data_page import DataPage

    monkeypatch.setattr(pages, "PAGES", [*pages.PAGES, DataPage])
    with pytest.raises(ValueError, match=r"DataPage needs a name of its own \(gui/pages.PAGES has data, augment, "):
        MainWindow(warm_up_umap=False)
