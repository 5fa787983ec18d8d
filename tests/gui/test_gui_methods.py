"""Every self-supervised method from the app: the Augment page previews its own make_views, the Train page trains
it, and a method that draws pictures (masked-part prediction) shows them live under the loss curve."""

import pytest

from ssl_studio.core.methods import method_names

# What each method's preview shows beside the image: its views, as make_views makes them.
COLUMNS = {"simclr": ["view 1", "view 2"], "rotation": ["0°", "90°", "180°", "270°"],
           "byol": ["view 1", "view 2"], "moco": ["view 1", "view 2"], "vicreg": ["view 1", "view 2"],
           "barlow": ["view 1", "view 2"], "masked": ["view", "masked"]}


def choose(window, name):
    combo = window.train.control("method")
    combo.setCurrentIndex(combo.findData(name))


def test_every_method_has_its_preview_columns_listed_here():
    assert set(COLUMNS) == set(method_names(self_supervised=True))


@pytest.mark.parametrize("name", COLUMNS)
def test_the_augment_page_previews_each_methods_own_views(name, window, drive, tiny_folder):
    drive.open_folder(window, tiny_folder)
    choose(window, name)
    window.go("augment")
    page = window.augment
    assert page._columns == COLUMNS[name]
    assert len(page._cells[0]) == len(COLUMNS[name]) + 2  # the image, each view, the caption
    for view in range(len(COLUMNS[name]) + 1):
        assert not page.view_image(0, view).isNull()
    assert window.augment.preset_name() == name  # and the method's own recipe


@pytest.mark.parametrize("name", ["byol", "moco", "vicreg", "barlow", "masked"])
def test_each_method_trains_from_the_train_page(name, window, drive, tiny_folder):
    drive.open_folder(window, tiny_folder)
    choose(window, name)
    compare = drive.train_and_compare(window)
    page = window.train
    assert page.config().method == name
    assert page.finished_events["ssl"].reason == "completed"
    assert compare.maps["ssl"].has_points()
    strip = page.pictures
    assert strip.isVisible() == (name == "masked")  # only a method that draws pictures shows the strip
    if name == "masked":
        assert strip.updates >= 1 and "Masked-part prediction" in strip.caption.text()
        for row in ("original", "masked", "reconstructed"):
            assert not strip.picture(row, 0).isNull()
        page.reset_monitor()  # a new run starts without the last one's pictures
        assert not strip.isVisible()
