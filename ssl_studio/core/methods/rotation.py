"""Rotation prediction (Gidaris et al. 2018): recognising which of four rotations was applied needs the object."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method


def rotate_four(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at 0, 90, 180 and 270 degrees, with the rotation index as its target."""
    views = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return views, targets


def rotation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


class RotationPrediction(Method):
    name = "rotation"

    def __init__(self, backbone, recipe, view_size=None) -> None:
        super().__init__(backbone, recipe, view_size)
        self.head = nn.Linear(backbone.feature_dim, 4)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        return rotate_four(self.augment(images, generator))

    def forward(self, views, targets):
        features = self.backbone(views)
        return rotation_loss(self.head(features), targets), features
