"""Masked-part prediction (context encoders, Pathak et al. 2016; the pretext task of MAE): random square patches
of each view are hidden, and the network fills them in from what is left.

The encoder is the backbone every method trains, so its embeddings compare with theirs; a small decoder of
transposed convolutions turns the backbone's feature map back into an image. The loss is on the hidden pixels
only: copying the visible ones teaches nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import NO_AUGMENTATION, augment
from ..schema import setting
from .base import Method, MethodParams, in_float32
from .rotation import RotationPrediction

HIDDEN_GRAY = 0.5  # what a hidden pixel shows: the middle of the range, 0 after the backbone's normalization
PICTURE_SEED = 0  # the live pictures always hide the same patches, so the reconstructions can be seen improving


def patch_mask(batch: int, size: int, patch: int, ratio: float, generator: torch.Generator | None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """(batch, 1, size, size), 1 where hidden: exactly round(ratio * patches) patches of each image, at random."""
    grid = math.ceil(size / patch)
    hidden = min(grid * grid - 1, max(1, round(ratio * grid * grid)))  # always something hidden, something seen
    ranks = torch.rand(batch, grid * grid, generator=generator).argsort(dim=1).argsort(dim=1)
    mask = (ranks < hidden).float().view(batch, 1, grid, grid)
    mask = mask.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)[:, :, :size, :size]
    return mask.to(device)


def hide(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x * (1 - mask) + HIDDEN_GRAY * mask


@in_float32
def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hidden pixels only (``mask`` is 1 there), every channel counted."""
    hidden = mask.expand_as(target)
    return ((prediction - target).pow(2) * hidden).sum() / hidden.sum().clamp(min=1)


def decoder(in_dim: int, stride: int) -> nn.Sequential:
    """Transposed convolutions that double the resolution until the feature map is image-sized again; narrow
    (a quarter of the backbone's width, then halving) so it costs less than the encoder."""
    layers: list[nn.Module] = []
    width = in_dim
    for i in range(round(math.log2(stride))):
        out = max(16, in_dim // 4 // 2**i)
        layers += [nn.ConvTranspose2d(width, out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(out),
                   nn.ReLU(inplace=True)]
        width = out
    layers += [nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid()]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class MaskedParams(MethodParams):
    # Over 15 epochs of shapes (README, "Defaults"): ratio 0.5 38.3 % kNN, 0.75 34.2 %, 0.25 25.6 %; 8 px patches
    # 35.8 %.
    mask_ratio: float = setting(0.5, "Mask ratio", "Share of each view's patches that are hidden.", minimum=0.05,
                                maximum=0.95, step=0.05)
    patch_size: int = setting(4, "Patch size", "Side of a hidden square, in pixels of the view.", minimum=1,
                              maximum=64)


class MaskedPrediction(Method):
    name = "masked"
    title = "Masked-part prediction"
    summary = "Random patches of each image are hidden; the network reconstructs them from the rest."
    order = 60
    # Light, as for rotation (the pretext task carries the signal), but with any hue and grey half the time: over
    # 15 epochs of shapes, 38.3 % kNN against 25.6 % with rotation's colours (README, "Defaults").
    default_recipe = RotationPrediction.default_recipe.replace(hue=0.5, grayscale_p=0.5)
    Params = MaskedParams
    view_names = ("masked",)

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None) -> None:
        super().__init__(backbone, recipe, view_size, params)
        self.decoder = decoder(backbone.feature_dim, backbone.map_stride)

    def _mask(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return patch_mask(len(x), x.shape[-1], self.params.patch_size, self.params.mask_ratio, generator, x.device)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        """The masked views are the network's input; the target is the whole view and its mask, as 4 channels."""
        x = self.augment(images, generator)
        mask = self._mask(x, generator)
        return hide(x, mask), torch.cat([x, mask], dim=1)

    def reconstruct(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the image the decoder draws, at the views' size; the feature map)."""
        features = self.backbone.features_map(views)
        image = self.decoder(features)
        if image.shape[-2:] != views.shape[-2:]:  # a view side that is not a multiple of the backbone's stride
            image = F.interpolate(image, size=views.shape[-2:], mode="bilinear", align_corners=False)
        return image, features

    def forward(self, views, targets):
        image, features = self.reconstruct(views)
        return masked_mse(image, targets[:, :3], targets[:, 3:]), features.mean(dim=(2, 3))

    @torch.no_grad()
    def preview(self, images, generator):
        views, targets = self.make_views(images, None, generator)
        return [("view", targets[:, :3]), ("masked", views)]

    @torch.no_grad()
    def pictures(self, images):
        """The images at the views' size, the same patches hidden each time, and the hidden parts filled in."""
        was_training = self.training
        self.eval()  # batch statistics of a handful of images, and no update of the running ones
        try:
            x = augment(images, NO_AUGMENTATION, out_size=self.view_size)
            mask = self._mask(x, torch.Generator().manual_seed(PICTURE_SEED))
            masked = hide(x, mask)
            image, _ = self.reconstruct(masked)
        finally:
            self.train(was_training)
        return [("original", x), ("masked", masked), ("reconstructed", masked * (1 - mask) + image * mask)]
