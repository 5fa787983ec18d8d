"""Rotation prediction (Gidaris et al. 2018): recognising which of four rotations was applied needs the object."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import Recipe
from .base import Method


def rotate_four(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at 0, 90, 180 and 270 degrees, with the rotation index as its target."""
    views = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return views, targets


def rotation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


TURNED_PAIRS = 0.5  # the other half stay upright, as every image is when it is embedded


@torch.no_grad()
def turn_pairs(views: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn both views of a random half of the pairs (view i and view n + i, square) by the same 90, 180 or 270
    degrees, so the two views still match; return the views and each one's turn (0-3), a rotation head's target.
    Drawn on the CPU from ``generator``, as augment draws, so a seed turns the same views on every device."""
    n = views.shape[0] // 2
    turns = torch.randint(1, 4, (n,), generator=generator) * (torch.rand(n, generator=generator) < TURNED_PAIRS)
    for k in (1, 2, 3):
        rows = (turns == k).nonzero().flatten()
        rows = torch.cat([rows, rows + n]).to(views.device)
        views[rows] = torch.rot90(views[rows], k, dims=(2, 3))
    return views, torch.cat([turns, turns]).to(views.device)


class RotationPrediction(Method):
    name = "rotation"
    title = "Rotation prediction"
    summary = "Each image is turned by 0, 90, 180 or 270 degrees; the network learns to tell which."
    order = 10
    # Lighter than SimCLR's: the pretext task, not the augmentations, carries the signal.
    default_recipe = Recipe(crop_scale=(0.5, 1.0), flip_p=0.5, jitter_p=0.5, brightness=0.3, contrast=0.3,
                            saturation=0.3, hue=0.05, grayscale_p=0.1)
    view_names = ("0°", "90°", "180°", "270°")

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None) -> None:
        super().__init__(backbone, recipe, view_size, params)
        self.head = nn.Linear(backbone.feature_dim, 4)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        return rotate_four(self.augment(images, generator))

    def forward(self, views, targets):
        features = self.backbone(views)
        return rotation_loss(self.head(features), targets), features
