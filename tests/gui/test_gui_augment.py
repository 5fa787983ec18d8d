"""Stage 2: the recipe's controls redraw the preview, and the recipe edited here is the one training gets."""

import threading

import numpy as np
from PySide6.QtGui import QImage

from ssl_studio.core.augment import Recipe
from ssl_studio.gui.augment_page import AugmentPage
from ssl_studio.core.methods import recipe_presets

PRESETS = recipe_presets()


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    return data.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3].copy()


def views(page):
    return [pixels(page.view_image(i, v)) for i in range(8) for v in (1, 2)]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_preview_shows_eight_images_with_two_views_each(window, drive, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.go("augment")
    page = window.augment
    assert page.stack.currentIndex() == 1
    for i in range(8):
        for v in range(3):
            assert not page.view_image(i, v).isNull()
    # Two views of one image differ: that difference is what SSL learns to ignore.
    assert not np.array_equal(pixels(page.view_image(0, 1)), pixels(page.view_image(0, 2)))


def test_moving_a_slider_redraws_the_preview(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.go("augment")
    page = window.augment
    before = views(page)
    redraws = page.redraws
    page.control("grayscale_p").setValue(1.0)
    qtbot.waitUntil(lambda: page.redraws > redraws)
    after = views(page)
    assert changed(before, after)
    # Every view is now gray: R == G == B.
    first = after[0].reshape(after[0].shape[0], -1, 3).astype(int)
    assert np.abs(first[..., 0] - first[..., 1]).max() <= 1
    assert page.preset_name() == "custom"
    assert page.recipe().grayscale_p == 1.0


def test_the_previews_torch_work_runs_off_the_gui_thread(window, drive, monkeypatch, tiny_folder):
    """On the GUI thread it would leave that thread an OpenMP team for good, which slows every later training down
    (gui/workers.py)."""
    drive.open_folder(window, tiny_folder)
    page = window.augment
    method_class = type(page._preview_method(8))
    preview, threads = method_class.preview, []
    monkeypatch.setattr(method_class, "preview", lambda self, *a: (threads.append(threading.current_thread()),
                                                                   preview(self, *a))[1])
    window.go("augment")
    assert page.redraws == 1 and threads and threading.main_thread() not in threads


def test_a_hidden_preview_draws_when_shown(window, drive, tiny_folder):
    """Its torch calls wait on the GUI thread; while hidden (during training, say) they would only compete."""
    drive.open_folder(window, tiny_folder)
    page = window.augment
    assert not page.isVisible() and page.redraws == 0
    page.control("grayscale_p").setValue(1.0)
    assert page.redraws == 0
    window.go("augment")
    assert page.redraws == 1 and not page.view_image(0, 1).isNull()


def test_a_preset_sets_every_control(window):
    page = window.augment
    page.preset.setCurrentIndex(page.preset.findData("rotation"))
    page.preset.activated.emit(page.preset.currentIndex())
    assert page.recipe() == PRESETS["rotation"]
    assert page.preset_name() == "rotation"


def test_every_recipe_field_has_a_control(window):
    from dataclasses import fields

    assert {f.name for f in fields(Recipe)} == set(window.augment._controls)


def test_each_slider_has_its_settings_range_help_and_box(window):
    from ssl_studio.core.schema import described_fields, info

    page = window.augment
    for f in described_fields(Recipe):
        slider = page.control(f.name)
        assert (slider.minimum(), slider.maximum()) == (info(f).minimum, info(f).maximum)
        assert slider.toolTip() == info(f).help and slider.parent().title() == info(f).group
    # The ranges the core checks: blur sigma up to 5 px, aspect ratio from 1/4 to 4.
    assert page.control("blur_sigma").maximum() == 5.0
    assert (page.control("crop_ratio").minimum(), page.control("crop_ratio").maximum()) == (0.25, 4.0)


def test_seed_and_new_sample_change_what_is_shown(window, drive, qtbot, tiny_folder):
    drive.open_folder(window, tiny_folder)
    window.go("augment")
    page = window.augment
    originals = [pixels(page.view_image(i, 0)) for i in range(8)]
    before = views(page)
    redraws = page.redraws
    page.seed.setValue(page.seed.value() + 1)
    qtbot.waitUntil(lambda: page.redraws > redraws)
    assert changed(before, views(page))
    redraws = page.redraws
    page.new_sample.click()
    qtbot.waitUntil(lambda: page.redraws > redraws)
    assert changed(originals, [pixels(page.view_image(i, 0)) for i in range(8)])


def test_the_edited_recipe_reaches_training_and_is_remembered(window, qtbot):
    page = window.augment
    page.control("rotate_p").setValue(0.5)
    page.control("rotate_degrees").setValue(30.0)
    assert window.session.recipe.rotate_p == 0.5
    assert window.session.recipe.rotate_degrees == 30.0
    assert "Custom" in window.train.recipe_label.text()
    again = AugmentPage()
    qtbot.addWidget(again)
    assert again.recipe() == page.recipe()
    assert again.preset_name() == "custom"


def test_choosing_a_method_brings_its_preset_unless_the_recipe_was_edited(window):
    window.train.control("method").setCurrentIndex(window.train.control("method").findData("rotation"))
    assert window.augment.preset_name() == "rotation"
    assert window.session.recipe == PRESETS["rotation"]
    window.augment.control("flip_p").setValue(0.0)  # now it is the user's own recipe
    window.train.control("method").setCurrentIndex(window.train.control("method").findData("simclr"))
    assert window.augment.preset_name() == "custom"
    assert window.session.recipe.flip_p == 0.0
