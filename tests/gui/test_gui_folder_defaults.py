"""The settings chosen for a folder (core/folder_defaults.py): applied and said on the Augment and Train pages
when it opens, overridden by the person, and never mixed with the demo's."""

import pytest
from PIL import Image

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import default_recipe
from ssl_studio.gui import data_page
from ssl_studio.gui.demo import DemoSettings

GREY = dict(saturation=0.0, hue=0.0, grayscale_p=0.0, blur_p=0.5, blur_sigma=(0.1, 1.0), brightness=0.8,
            contrast=0.8)  # the grey folder's rules
GREY_SIMCLR = default_recipe("simclr").replace(**GREY)
TINY = TrainConfig(epochs=500, time_budget=None, batch_size=8, device="cpu")


@pytest.fixture(scope="module")
def grey_folder(tiny_folder, tmp_path_factory):
    """tiny_folder's images as 20 px RGB files whose channels are equal."""
    root = tmp_path_factory.mktemp("grey")
    for png in sorted(tiny_folder.glob("*/*.png")):
        (root / png.parent.name).mkdir(exist_ok=True)
        try:
            image = Image.open(png).convert("L").resize((20, 20)).convert("RGB")
        except OSError:
            continue  # the fixture's broken file
        image.save(root / png.parent.name / png.name)
    return root


def test_opening_a_grey_folder_sets_and_says_the_augment_and_train_settings(window, drive, grey_folder, qtbot):
    augment, train = window.augment, window.train
    assert augment.recipe() == default_recipe("simclr") and augment.recipe().hue == 0.1
    dataset = drive.open_folder(window, grey_folder)
    assert dataset.resolution == 32 and window.data.working_resolution() is None  # the folder's choice
    assert augment.control("hue").value() == 0.0 and augment.control("grayscale_p").value() == 0.0
    assert augment.recipe() == GREY_SIMCLR and augment.preset_name() == "simclr"
    assert window.session.recipe == augment.recipe()  # what training takes
    assert augment.folder_note.isVisibleTo(augment)
    assert "grey, 20 px, 36 images, 3 classes" in augment.folder_note.text()
    assert "Grey images: saturation, hue and grayscale are off" in augment.folder_note.text()
    assert "Grey images: half the views are blurred" in augment.folder_note.text()
    assert "Changed by you" not in augment.folder_note.text()
    window.go("augment")  # the note makes the controls taller than the page: one scroll bar, not two
    window.resize(window.minimumSizeHint().width(), 820)  # the controls at their narrowest
    qtbot.waitUntil(lambda: augment.controls_scroll.verticalScrollBar().isVisible())
    assert augment.controls_scroll.widget().width() <= augment.controls_scroll.viewport().width()
    assert train.folder_note.isVisibleTo(train)
    assert "Images are 20 px: enlarged to 32 px" in train.folder_note.text()
    assert train.config().resolution == 32 and "32 px" in train.resolution_label.text()


def test_an_override_sticks_and_the_folders_choice_comes_back_on_request(window, drive, grey_folder):
    augment = window.augment
    drive.open_folder(window, grey_folder)
    augment.control("grayscale_p").setValue(0.5)
    assert window.session.recipe.grayscale_p == 0.5
    assert "Changed by you: grayscale probability." in augment.folder_note.text()
    window.go("train")
    window.train.control("method").setCurrentIndex(window.train.control("method").findData("simclr"))
    window.go("augment")
    assert augment.recipe().grayscale_p == 0.5 and window.session.recipe.grayscale_p == 0.5
    augment.folder_note.linkActivated.emit("folder")
    assert augment.recipe() == GREY_SIMCLR
    assert "Changed by you" not in augment.folder_note.text()


def test_a_method_chosen_brings_its_recipe_as_the_folder_wants_it(window, drive, grey_folder):
    drive.open_folder(window, grey_folder)
    window.train.control("method").setCurrentIndex(window.train.control("method").findData("byol"))
    assert window.augment.recipe() == default_recipe("byol").replace(**GREY)


def test_the_data_pages_resolution_chosen_by_hand_wins_and_is_said(window, drive, grey_folder, qtbot):
    drive.open_folder(window, grey_folder)
    page = window.data
    with qtbot.waitSignal(page.datasetLoaded, timeout=15_000):
        page.resolution.setCurrentIndex(page.resolution.findData(24))
        page.resolution.activated.emit(page.resolution.currentIndex())
    assert window.session.dataset.resolution == 24 and window.train.config().resolution == 24
    assert "Resolution 24 px chosen on the Data page (the folder's: 32 px)" in window.train.folder_note.text()


def test_the_demo_leaves_nothing_behind_the_data_pages_resolution_included(window, drive, qtbot, grey_folder,
                                                                          tiny_folder, monkeypatch):
    monkeypatch.setattr(data_page, "sample_folder", lambda name: tiny_folder)
    demo = window.demo
    demo.settings = DemoSettings(config=TINY, augment_seconds=0.05, resolution=16)
    train, augment = window.train, window.augment
    own_config = train.config()
    with qtbot.waitSignal(demo.stepChanged, check_params_cb=lambda step: step == "train", timeout=20_000):
        demo.start()
    assert window.session.dataset.resolution == 16  # the demo's
    with qtbot.waitSignal(train.job.ended, timeout=20_000):
        window.demo_bar.cancel_button.click()
    dataset = drive.open_folder(window, grey_folder)
    assert dataset.resolution == 32 and window.data.working_resolution() is None
    assert train.config() == own_config.replace(resolution=32)  # the person's budget and method, not the demo's
    assert augment.recipe() == GREY_SIMCLR  # the folder's
    assert "Changed by you" not in augment.folder_note.text()


def test_a_sweeps_runs_take_the_folders_choice_and_keep_what_the_person_changed(window, drive, grey_folder):
    drive.open_folder(window, grey_folder)
    window.augment.control("grayscale_p").setValue(0.5)  # the person's, over the folder's 0
    dialog = window.new_sweep_dialog()
    dialog.methods["byol"].setChecked(True)
    dialog.seeds.setValue(1)
    dialog.set_vary(0, "recipe.hue", "0.05, 0.1")
    defaults = window.session.folder_defaults

    def trained(same_recipe):  # each planned run's settings once the folder's choice is applied, as run_queue does
        dialog.same_recipe.setChecked(same_recipe)
        return {run.name: run.recipe if run.given is None else defaults.apply(run.config, run.recipe, run.given)[1]
                for run in dialog.planned}

    # Each method's own preset: the folder's grey rule, the varied hue as planned.
    for name, recipe in trained(False).items():
        method, hue = name.split("-")[0], float(name.split("-")[1][3:])
        assert recipe == default_recipe(method).replace(**{**GREY, "hue": hue})
    # The Augment page's recipe for both: its grayscale 0.5 is the person's and stays.
    for recipe in trained(True).values():
        assert (recipe.saturation, recipe.grayscale_p) == (0.0, 0.5)
    dialog.reject()
