import json

import pytest
import torch

from ssl_studio.core.augment import Recipe, augment
from ssl_studio.core.methods import recipe_presets

PRESETS = recipe_presets()


def images(n=8, size=16, seed=0):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_give_float_views_in_range_at_the_requested_size(name):
    views = augment(images(), PRESETS[name], gen(), out_size=12)
    assert views.shape == (8, 3, 12, 12)
    assert views.dtype == torch.float32
    assert views.min() >= 0 and views.max() <= 1


def test_identity_recipe_returns_the_images():
    x = images()
    assert torch.allclose(augment(x, PRESETS["none"], gen()), x.float() / 255, atol=1e-5)


def test_every_sample_gets_its_own_parameters():
    same = images(1).expand(16, -1, -1, -1).contiguous()
    views = augment(same, PRESETS["simclr"], gen())
    flat = views.flatten(1)
    distinct = {tuple(row.round(decimals=4).tolist()) for row in flat}
    assert len(distinct) == 16


def test_seed_gives_the_same_views_and_another_seed_does_not():
    x = images()
    a = augment(x, PRESETS["simclr"], gen(1))
    assert torch.equal(a, augment(x, PRESETS["simclr"], gen(1)))
    assert not torch.equal(a, augment(x, PRESETS["simclr"], gen(2)))


def test_grayscale_makes_channels_equal():
    recipe = PRESETS["none"].replace(grayscale_p=1.0)
    v = augment(images(), recipe, gen())
    assert torch.allclose(v[:, 0], v[:, 1], atol=1e-6) and torch.allclose(v[:, 1], v[:, 2], atol=1e-6)


def test_solarize_inverts_pixels_above_the_threshold():
    x = images()
    v = augment(x, PRESETS["none"].replace(solarize_p=1.0, solarize_threshold=0.5), gen())
    f = x.float() / 255
    assert torch.allclose(v, torch.where(f >= 0.5, 1 - f, f), atol=1e-5)


def test_flip_mirrors_the_image():
    x = images()
    v = augment(x, PRESETS["none"].replace(flip_p=1.0), gen())
    assert torch.allclose(v, x.float().flip(-1) / 255, atol=1e-5)


def test_hue_rotation_keeps_greys_and_moves_colours():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    x[0] = 128  # grey
    x[1, 0] = 255  # pure red
    recipe = PRESETS["none"].replace(jitter_p=1.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.5)
    v = augment(x, recipe, gen())
    assert torch.allclose(v[0], torch.full_like(v[0], 128 / 255), atol=1e-5)
    assert not torch.allclose(v[1], x[1].float() / 255, atol=0.05)


def test_blur_smooths_noise_and_rotation_changes_geometry():
    x = images(4, 32)
    blurred = augment(x, PRESETS["none"].replace(blur_p=1.0, blur_sigma=(2.0, 2.0)), gen())
    assert blurred.std() < (x.float() / 255).std() * 0.6
    rotated = augment(x, PRESETS["none"].replace(rotate_p=1.0, rotate_degrees=45), gen())
    assert not torch.allclose(rotated, x.float() / 255, atol=0.05)


def test_recipe_round_trips_through_json():
    recipe = PRESETS["simclr"].replace(blur_p=0.3, crop_scale=(0.4, 0.9))
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


@pytest.mark.parametrize("bad, message", [
    ({"flip_p": 1.5}, "flip_p"), ({"crop_scale": [0.9, 0.1]}, "crop scale"), ({"crop_scale": [0.5]}, "crop_scale"),
    ({"hue": "lots"}, "hue"), ({"unknown": 1}, "unknown"), ({"rotate_degrees": float("nan")}, "rotate_degrees"),
    ({"flip_p": True}, "flip_p"),
])
def test_bad_recipe_json_is_refused_with_a_message(bad, message):
    with pytest.raises(ValueError, match=message):  # the message names the setting at fault
        Recipe.from_dict(bad)


def test_bad_image_shapes_are_refused():
    with pytest.raises(ValueError, match="expected images"):
        augment(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), PRESETS["simclr"])
