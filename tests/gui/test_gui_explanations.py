"""Each page's "How this works" panel: folded until asked for, remembered, its words and figure following the page."""

import numpy as np
from PySide6.QtCore import Qt

from ssl_studio.gui import settings
from ssl_studio.gui.main_window import MainWindow


def pages(window):
    return {"data": window.data, "augment": window.augment, "train": window.train, "compare": window.compare,
            "transfer": window.transfer}


def test_every_page_has_a_folded_explanation_that_is_remembered_open(window, qtbot):
    for name, page in pages(window).items():
        window.go(list(pages(window)).index(name))
        panel = page.explanation
        assert panel.button.isVisible() and not panel.isVisible(), name
        assert len(panel.text.text()) > 200 and panel.figure is not None, name
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
        assert panel.isVisible() and panel.button.arrowType() == Qt.ArrowType.DownArrow
    window.go(0)
    qtbot.mouseClick(window.data.explanation.button, Qt.MouseButton.LeftButton)  # folded again
    again = MainWindow(warm_up_umap=False)
    qtbot.addWidget(again)
    assert not again.data.explanation.is_expanded()
    assert all(page.explanation.is_expanded() for name, page in pages(again).items() if name != "data")
    assert settings.load_json("explanation/DataPage") is False


def test_the_augment_explanation_follows_the_recipe_and_shows_the_views(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.go(1)
    page = window.augment
    qtbot.waitUntil(lambda: page.redraws > 0)
    figure = page.views_figure
    assert figure._image is not None and [name for name, _ in figure._views] == ["view 1", "view 2"]
    assert figure._pairs
    text = page.explanation.text.text()
    assert "<b>color itself</b>: 20% of views are grey" in text and "each view is a crop of 35% to 100%" in text
    page.control("grayscale_p").setValue(0.0)
    assert "color itself" not in page.explanation.text.text()
    for name in ("crop_scale", "flip_p", "jitter_p"):
        page.control(name).setValue((1.0, 1.0) if name == "crop_scale" else 0.0)
    assert "This recipe changes nothing" in page.explanation.text.text()
    combo = window.train.control("method")
    combo.setCurrentIndex(combo.findData("rotation"))
    qtbot.waitUntil(lambda: figure._views and figure._views[0][0] == "0°")
    assert not figure._pairs and "Rotation prediction" in page.explanation.text.text()


def test_the_train_explanation_names_the_loss_and_draws_the_similarities_live(window, drive, qtbot, tiny_folder):
    page = window.train
    text = page.explanation.text.text()
    for part in ("InfoNCE", "positive pair", "negatives", "cosine similarity", "temperature"):
        assert part in text
    histogram = page.similarity
    assert histogram.placeholder.isVisible()
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window, epochs=3)
    page.start_button.click()
    qtbot.waitUntil(lambda: not histogram.placeholder.isVisible(), timeout=20_000)
    for curve in histogram.curves.values():  # shares of the batch's pairs, over bins from -1 to 1
        x, y = curve.getData()
        assert x[0] == -1 and x[-1] == 1 and np.isclose(y.sum(), 1.0)
        # Every bar fits under the y axis's top, which moves in steps rather than with every batch.
        assert y.max() <= histogram.ceiling == histogram.viewRange()[1][1] and histogram.ceiling in histogram.CEILINGS
    with qtbot.waitSignal(window.compare.comparisonFinished, timeout=30_000):
        pass
    combo = page.control("method")
    combo.setCurrentIndex(combo.findData("rotation"))
    assert "Rotation prediction" in page.explanation.text.text()
    drive.open_folder(window, tiny_folder)  # new data: a new run, an empty histogram
    assert histogram.placeholder.isVisible()


def test_the_compare_explanation_says_how_to_read_a_map_and_the_scores(window):
    text = window.compare.explanation.text.text()
    for part in ("Reading a map", "kNN accuracy", "Linear probe", "held-out"):
        assert part in text


def test_the_transfer_explanation_says_what_the_curves_mean(window):
    text = window.transfer.explanation.text.text()
    for part in ("labels are few", "log scale", "Frozen features", "linear probe", "Fine-tuning", "from scratch",
                 "(all labels)"):
        assert part in text
