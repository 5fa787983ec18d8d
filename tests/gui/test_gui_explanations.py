"""Each page's "How this works" panel: folded until asked for, remembered, its words and figure following the page."""

import numpy as np
from PySide6.QtCore import Qt

from ssl_studio.gui import settings
from ssl_studio.gui.explanations import NEGATIVE, POSITIVE
from ssl_studio.gui.main_window import MainWindow


def color_at(widget, x: float, y: float) -> tuple[int, int, int]:
    """The widget's pixel at (x, y) as it paints now (grab renders it; pixelColor copies the value out)."""
    c = widget.grab().toImage().pixelColor(round(x), round(y))
    return c.red(), c.green(), c.blue()


def on_white(color: str, alpha: int = 255) -> tuple[int, int, int]:
    """``color`` at ``alpha`` over white, computed by hand: each channel 255 + (c - 255) * alpha / 255."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return tuple(round(255 + (c - 255) * alpha / 255) for c in rgb)


def near(a, b, tolerance: int = 8) -> bool:
    return max(abs(x - y) for x, y in zip(a, b)) <= tolerance


def pages(window):
    return {"data": window.data, "augment": window.augment, "train": window.train, "compare": window.compare,
            "transfer": window.transfer}


def test_every_page_has_a_folded_explanation_that_is_remembered_open(window, qtbot):
    for name, page in pages(window).items():
        window.go(name)
        panel = page.explanation
        assert panel.button.isVisible() and not panel.isVisible(), name
        assert len(panel.text.text()) > 200 and panel.figure is not None, name
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
        assert panel.isVisible() and panel.button.arrowType() == Qt.ArrowType.DownArrow
    window.go("data")
    qtbot.mouseClick(window.data.explanation.button, Qt.MouseButton.LeftButton)  # folded again
    again = MainWindow(warm_up_umap=False)
    qtbot.addWidget(again)
    assert not again.data.explanation.is_expanded()
    assert all(page.explanation.is_expanded() for name, page in pages(again).items() if name != "data")
    assert settings.load_json("explanation/DataPage") is False


def test_the_augment_explanation_follows_the_recipe_and_shows_the_views(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.go("augment")
    page = window.augment
    qtbot.waitUntil(lambda: page.redraws > 0)
    figure = page.views_figure
    assert figure._image is not None and [name for name, _ in figure._views] == ["view 1", "view 2"]
    assert figure._pairs
    # It paints: the image and its views, and the two views' embeddings pulled together (green) among the others'.
    assert near(color_at(figure, 242, 72), on_white(POSITIVE)) and near(color_at(figure, 318, 36), on_white(NEGATIVE))
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
    background = color_at(figure, 1, 1)
    assert color_at(figure, 242, 72) == color_at(figure, 318, 36) == background  # no embeddings drawn


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


def test_the_similarity_histogram_paints_its_bars_where_the_similarities_are(window, qtbot):
    window.go("train")
    window.train.explanation.set_expanded(True, remember=False)
    histogram = window.train.similarity
    qtbot.waitExposed(histogram)
    fill = 90  # the bars' fill opacity

    def bars(positives, negatives):
        """The columns, across the middle of the plot, painted in each bar's fill."""
        histogram.set_similarities(positives, negatives)
        image = histogram.grab().toImage()
        row = [image.pixelColor(x, image.height() // 2) for x in range(image.width())]
        rgb = [(c.red(), c.green(), c.blue()) for c in row]
        return ([x for x, c in enumerate(rgb) if near(c, on_white(POSITIVE, fill), 3)],
                [x for x, c in enumerate(rgb) if near(c, on_white(NEGATIVE, fill), 3)])

    # Every positive pair at 0.9 and every negative at -0.5: one bar each, of the whole share, 1/40 of the axis
    # wide; then the other way round.
    green, grey = bars([0.9] * 8, [-0.5] * 56)
    assert green and grey and min(green) > max(grey) + histogram.width() // 3
    assert max(green) - min(green) < histogram.width() // 30 and max(grey) - min(grey) < histogram.width() // 30
    green, grey = bars([-0.9] * 8, [0.5] * 56)
    assert green and grey and max(green) < min(grey) - histogram.width() // 3
    histogram.clear_similarities()
    assert bars([], []) == ([], [])


def test_the_compare_explanation_says_how_to_read_a_map_and_the_scores(window):
    text = window.compare.explanation.text.text()
    for part in ("Reading a map", "kNN accuracy", "Linear probe", "held-out"):
        assert part in text


def test_the_transfer_explanation_says_what_the_curves_mean(window):
    text = window.transfer.explanation.text.text()
    for part in ("labels are few", "log scale", "Frozen features", "linear probe", "Fine-tuning", "from scratch",
                 "(all labels)"):
        assert part in text
