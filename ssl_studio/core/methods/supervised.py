"""The supervised baseline: the same backbone trained with cross-entropy on the labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import Recipe
from .base import Method


class Supervised(Method):
    name = "supervised"
    title = "Supervised (labels)"
    summary = "The baseline: the same network trained on the labels with cross-entropy."
    order = 1000
    needs_labels = True
    # Light: the labels carry the signal, and strong colour changes would only slow learning them.
    default_recipe = Recipe(crop_scale=(0.5, 1.0), jitter_p=0.0, grayscale_p=0.0)

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None) -> None:
        super().__init__(backbone, recipe, view_size, params)
        if not num_classes or num_classes < 2:
            raise ValueError("the supervised baseline needs at least two classes")
        self.head = nn.Linear(backbone.feature_dim, num_classes)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        if labels is None:
            raise ValueError("the supervised baseline needs a labeled folder (one subfolder per class)")
        return self.augment(images, generator), labels

    def forward(self, views, targets):
        features = self.backbone(views)
        return F.cross_entropy(self.head(features), targets), features
