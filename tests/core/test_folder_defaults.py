"""Settings chosen from what a folder is: grey or colour, the images' size, how many; explicit choices win."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_studio.cli import main
from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import load_folder
from ssl_studio.core.folder_defaults import FolderFacts, Given, choose, is_grey
from ssl_studio.core.methods import default_recipe
from ssl_studio.core.samples import make_shapes


def grey_copy(src, dst):
    """``src``'s images as RGB files whose three channels are equal."""
    for png in sorted(src.glob("*/*.png")):
        (dst / png.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(png).convert("L").convert("RGB").save(dst / png.parent.name / png.name)
    return dst


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "colour", per_class=3, size=20, seed=1)


@pytest.fixture(scope="module")
def grey(colour, tmp_path_factory):
    return grey_copy(colour, tmp_path_factory.mktemp("data") / "grey")


def test_an_rgb_file_with_equal_channels_is_grey_and_a_coloured_one_is_not(colour, grey):
    assert Image.open(next(grey.glob("*/*.png"))).mode == "RGB"
    assert FolderFacts.of(load_folder(grey, 16)).grey
    assert not FolderFacts.of(load_folder(colour, 16)).grey


def test_one_coloured_pixel_makes_images_colour_and_jpeg_rounding_does_not():
    images = torch.full((4, 3, 8, 8), 120, dtype=torch.uint8)
    images[:, 2] += 3  # a grey JPEG's colour planes round unevenly by a level or two
    assert is_grey(images)
    images[3, 0, 5, 5] = 200
    assert not is_grey(images)


def test_facts_count_images_and_classes_and_read_the_files_own_size(colour, tmp_path):
    dataset = load_folder(colour, 16)
    assert FolderFacts.of(dataset) == FolderFacts(images=24, classes=8, grey=False, side=20)
    # The shorter side, the median of the files: one odd file does not move it.
    for i, size in enumerate([(40, 30), (30, 50), (31, 31), (90, 120)]):
        Image.new("RGB", size, (i * 40, 10, 200)).save(tmp_path / f"{i}.png")
    flat = load_folder(tmp_path, 16)
    assert FolderFacts.of(flat) == FolderFacts(images=4, classes=0, grey=False, side=30)
    assert FolderFacts.of(flat).describe() == "colour, 30 px, 4 images, no classes"


def test_a_folder_decodes_at_32_px_whatever_its_size_unless_a_resolution_is_given(colour):
    assert load_folder(colour, None).resolution == 32
    assert tuple(load_folder(colour, None).images.shape[-2:]) == (32, 32)  # 20 px files, enlarged
    assert load_folder(colour, 16).resolution == 16


def test_the_choice_and_its_reasons():
    grey28 = choose(FolderFacts(images=10_000, classes=10, grey=True, side=28))
    assert grey28.reasons() == ["Images are 28 px: enlarged to 32 px, which the small network's four halvings need (at "
                              "their own size they lost accuracy).",
                                "Grey images: saturation, hue and grayscale are off (they change nothing there).",
                                "Grey images: half the views are blurred, so that with no colour to vary two views "
                                "still differ in detail and the network must match shapes.",
                                "Grey images: brightness and contrast jitter at full strength (up to ±80 %): with "
                                "no colour to vary, tone is what a view can change."]
    assert grey28.recipe_changes == {"saturation": 0.0, "hue": 0.0, "grayscale_p": 0.0, "blur_p": 0.5,
                                     "blur_sigma": (0.1, 1.0), "brightness": 0.8, "contrast": 0.8}
    assert grey28.train_changes == {"resolution": 32}
    big = choose(FolderFacts(images=2_000, classes=10, grey=False, side=96))
    assert big.train_changes == {"resolution": 32} and big.recipe_changes == {}
    assert big.reasons() == ["Images are 96 px: decoded at 32 px, where a few minutes of training on a CPU learn "
                             "the most."]
    assert choose(FolderFacts(images=500, classes=0, grey=False, side=32)).rules == ()


def test_settings_chosen_explicitly_win_over_the_folders():
    grey28 = choose(FolderFacts(images=10_000, classes=10, grey=True, side=28))
    config, recipe = TrainConfig(), default_recipe("simclr")
    assert (recipe.hue, recipe.grayscale_p, recipe.jitter_p, config.resolution) == (0.1, 0.2, 0.8, 32)
    chosen, chosen_recipe, kept = grey28.apply(config, recipe)
    assert (chosen.resolution, chosen_recipe.hue, chosen_recipe.grayscale_p, kept) == (32, 0.0, 0.0, [])
    assert (recipe.blur_p, chosen_recipe.blur_p, chosen_recipe.blur_sigma) == (0.0, 0.5, (0.1, 1.0))
    assert chosen_recipe == recipe.replace(saturation=0.0, hue=0.0, grayscale_p=0.0, blur_p=0.5, blur_sigma=(0.1, 1.0),
                                           brightness=0.8, contrast=0.8)
    assert chosen == config.replace(resolution=32) and chosen_recipe.jitter_p == 0.8
    mine = recipe.replace(hue=0.3)
    chosen, chosen_recipe, kept = grey28.apply(config, mine, Given(frozenset({"resolution"}), frozenset({"hue"})))
    assert (chosen.resolution, chosen_recipe.hue, chosen_recipe.grayscale_p) == (32, 0.3, 0.0)
    assert kept == ["train.resolution", "recipe.hue"]
    # A whole recipe chosen (a preset): none of the folder's recipe changes apply.
    none = Recipe(crop_scale=(1.0, 1.0), jitter_p=0.3, grayscale_p=0.1)
    _, chosen_recipe, kept = grey28.apply(config, none, Given(whole_recipe=True))
    assert chosen_recipe == none and kept == ["recipe.saturation", "recipe.hue", "recipe.grayscale_p",
                                              "recipe.blur_p", "recipe.blur_sigma", "recipe.brightness",
                                              "recipe.contrast"]


def test_the_settings_a_person_changed_become_what_the_folder_leaves_and_survive_json():
    grey28 = choose(FolderFacts(images=10_000, classes=10, grey=True, side=28))
    config, recipe = TrainConfig(lr=0.01), default_recipe("simclr").replace(hue=0.3, saturation=0.0)
    # saturation is the folder's own value and lr is no folder setting: neither counts as changed.
    given = Given.of(grey28.changed(config.to_dict(), recipe.to_dict()))
    assert given == Given(frozenset(), frozenset({"hue", "grayscale_p", "blur_p", "blur_sigma", "brightness",
                                                  "contrast"}))
    assert given.to_dict() == {"train": [], "recipe": ["blur_p", "blur_sigma", "brightness", "contrast", "grayscale_p",
                                                       "hue"], "whole_recipe": False}
    assert Given.from_dict(json.loads(json.dumps(given.to_dict()))) == given
    chosen = Given(frozenset({"resolution"}), whole_recipe=True)
    assert Given.from_dict(json.loads(json.dumps(chosen.to_dict()))) == chosen


def test_the_command_line_prints_and_stores_the_folders_choice(grey, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(grey), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--no-umap",
                 "--no-transfer"]) == 0
    printed = capsys.readouterr().err
    assert ("Defaults for this folder (grey, 20 px, 24 images, 8 classes):\n"
            "  Images are 20 px: enlarged to 32 px, which the small network's four halvings need (at their own "
            "size they lost accuracy).\n"
            "  Grey images: saturation, hue and grayscale are off (they change nothing there).\n"
            "  Grey images: half the views are blurred, so that with no colour to vary two views still differ in "
            "detail and the network must match shapes.\n"
            "  Grey images: brightness and contrast jitter at full strength (up to ±80 %): with no colour to vary, "
            "tone is what a view can change.\n") in printed
    stored = json.loads((out / "config.json").read_text())
    assert stored["data"]["resolution"] == 32 and stored["train"]["resolution"] == 32
    assert stored["recipe"]["hue"] == 0.0 and stored["recipe"]["grayscale_p"] == 0.0
    assert stored["recipe"]["jitter_p"] == 0.8
    assert stored["recipe"]["brightness"] == 0.8 and stored["recipe"]["contrast"] == 0.8
    assert stored["recipe"]["blur_p"] == 0.5 and stored["recipe"]["blur_sigma"] == [0.1, 1.0]
    assert stored["defaults"] == {
        "facts": {"images": 24, "classes": 8, "grey": True, "side": 20},
        "rules": [{"reason": "Images are 20 px: enlarged to 32 px, which the small network's four halvings need (at "
                             "their own size they lost accuracy).", "recipe": {}, "train": {"resolution": 32}},
                  {"reason": "Grey images: saturation, hue and grayscale are off (they change nothing there).",
                   "recipe": {"saturation": 0.0, "hue": 0.0, "grayscale_p": 0.0}, "train": {}},
                  {"reason": "Grey images: half the views are blurred, so that with no colour to vary two views "
                             "still differ in detail and the network must match shapes.",
                   "recipe": {"blur_p": 0.5, "blur_sigma": [0.1, 1.0]}, "train": {}},
                  {"reason": "Grey images: brightness and contrast jitter at full strength (up to ±80 %): with no "
                             "colour to vary, tone is what a view can change.",
                   "recipe": {"brightness": 0.8, "contrast": 0.8}, "train": {}}],
        "kept": []}
    assert np.load(out / "embeddings" / "ssl.npy").shape[0] == 24


def test_flags_given_win_and_the_print_says_so(grey, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(grey), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--no-umap",
                 "--no-transfer", "--resolution", "16", "--hue", "0.3"]) == 0
    printed = capsys.readouterr().err
    assert "  --resolution given: it wins over the folder's resolution 32.\n" in printed
    assert "  --hue given: it wins over the folder's color jitter hue 0.\n" in printed
    stored = json.loads((out / "config.json").read_text())
    assert stored["data"]["resolution"] == 16 and stored["train"]["resolution"] == 16
    assert stored["recipe"]["hue"] == 0.3 and stored["recipe"]["grayscale_p"] == 0.0
    assert stored["defaults"]["kept"] == ["train.resolution", "recipe.hue"]
