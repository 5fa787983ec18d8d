"""The supervised baseline: the same backbone trained with cross-entropy on the labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method


class Supervised(Method):
    name = "supervised"
    needs_labels = True

    def __init__(self, backbone, recipe, num_classes: int, view_size=None) -> None:
        super().__init__(backbone, recipe, view_size)
        self.head = nn.Linear(backbone.feature_dim, num_classes)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        if labels is None:
            raise ValueError("the supervised baseline needs a labeled folder (one subfolder per class)")
        return self.augment(images, generator), labels

    def forward(self, views, targets):
        features = self.backbone(views)
        return F.cross_entropy(self.head(features), targets), features
