"""Masked-part prediction: the mask, the loss on hidden pixels only, the decoder's output size, and the pictures."""

import math

import pytest
import torch

from ssl_studio.core.methods import build_method
from ssl_studio.core.methods.masked import HIDDEN_GRAY, MaskedParams, masked_mse, patch_mask

IMAGES = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_masked_mse_counts_the_hidden_pixels_only():
    prediction = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 5.0)
    target[..., 0, 0] = 2.0
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1
    # One hidden pixel, off by 2 in each of 3 channels; the visible pixels, off by 5, do not count.
    assert masked_mse(prediction, target, mask).item() == 4.0


@pytest.mark.parametrize("size, patch, ratio", [(24, 4, 0.5), (24, 8, 0.25), (20, 8, 0.75), (12, 4, 0.05)])
def test_patch_mask_hides_whole_patches_in_the_asked_share(size, patch, ratio):
    mask = patch_mask(5, size, patch, ratio, torch.Generator().manual_seed(0))
    assert mask.shape == (5, 1, size, size) and set(mask.unique().tolist()) <= {0.0, 1.0}
    grid = math.ceil(size / patch)
    extra = grid * patch - size  # the last row and column of patches are cut by the edge: pad them whole
    padded = torch.nn.functional.pad(mask, (0, extra, 0, extra), mode="replicate")
    cells = padded.unfold(2, patch, patch).unfold(3, patch, patch).reshape(5, grid * grid, -1)
    per_patch = cells.amax(dim=2)
    assert torch.equal(cells.amin(dim=2), per_patch)  # a patch is hidden whole or not at all
    hidden = max(1, round(ratio * grid * grid))
    assert per_patch.sum(dim=1).tolist() == [hidden] * 5  # exactly that many in every image
    assert not torch.equal(mask[0], mask[1])  # and a different choice for each


def test_views_hide_the_masked_pixels_and_the_target_keeps_them():
    method = build_method("masked", "small-cnn", view_size=24)
    views, targets = method.make_views(IMAGES, None, torch.Generator().manual_seed(0))
    target, mask = targets[:, :3], targets[:, 3:]
    assert views.shape == target.shape == (6, 3, 24, 24) and mask.shape == (6, 1, 24, 24)
    assert torch.all(views[mask.expand_as(views) == 1] == HIDDEN_GRAY)
    assert torch.equal(views * (1 - mask), target * (1 - mask))
    assert mask.mean().item() == pytest.approx(0.5)
    columns = method.preview(IMAGES, torch.Generator().manual_seed(0))
    assert [name for name, _ in columns] == ["view", "masked"]
    assert torch.equal(columns[1][1], views)


@pytest.mark.parametrize("backbone", ["small-cnn", "resnet18"])
@pytest.mark.parametrize("view_size", [24, 20, 12])
def test_the_reconstruction_has_the_views_size_and_gradients_reach_the_backbone(backbone, view_size):
    """20 and 12 px are not multiples of the backbone's stride of 8: the decoder's output is resized to fit."""
    method = build_method("masked", backbone, view_size=view_size)
    views, targets = method.make_views(IMAGES, None, torch.Generator().manual_seed(0))
    image, _ = method.reconstruct(views)
    assert image.shape == views.shape and 0 <= image.min() and image.max() <= 1
    loss, embedding = method(views, targets)
    loss.backward()
    assert embedding.shape == (6, method.backbone.feature_dim)
    assert all(p.grad is not None for p in method.backbone.parameters())


def test_pictures_show_original_masked_and_filled_in_without_touching_training():
    torch.manual_seed(0)
    method = build_method("masked", "small-cnn", view_size=24, params=MaskedParams(mask_ratio=0.25, patch_size=8))
    method.train()
    before = {k: v.clone() for k, v in method.state_dict().items()}
    pictures = method.pictures(IMAGES)
    assert [name for name, _ in pictures] == ["original", "masked", "reconstructed"]
    original, masked, filled = (t for _, t in pictures)
    assert all(t.shape == (6, 3, 24, 24) for t in (original, masked, filled))
    hidden = masked == HIDDEN_GRAY
    assert torch.equal(filled[~hidden], original[~hidden])  # what was seen is shown as it was
    assert torch.equal(method.pictures(IMAGES)[1][1], masked)  # the same patches every time
    assert method.training
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())  # BatchNorm's included
