"""BYOL (Grill et al. 2020): an online network predicts a slowly moving copy of itself across two views.

No negatives: the predictor on the online side, and the target that follows the online network by a momentum
average instead of by gradients, are what keep it from collapsing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models import mlp_head
from .base import MethodParams, TwoViewMethod, in_float32
from .momentum import cosine_schedule, frozen_copy, momentum_setting, update_momentum
from .simclr import COLOR_BLIND_RECIPE


@in_float32
def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Minus the mean cosine similarity of each prediction with its target (no gradient reaches the target)."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def byol_loss(p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """Symmetric: view 1's prediction against view 2's target, and the other way round."""
    return (negative_cosine(p1, t2) + negative_cosine(p2, t1)) / 2


@dataclass(frozen=True)
class BYOLParams(MethodParams):
    # BYOL's own CIFAR value; over 15 epochs of shapes 0.99 gave 39.6 % kNN, 0.996 37.9 % (README, "Defaults").
    momentum: float = momentum_setting(0.99)


class BYOL(TwoViewMethod):
    name = "byol"
    title = "BYOL (momentum target)"
    summary = "One view's embedding predicts the other's, as given by a slowly moving average of the network."
    order = 20
    default_recipe = COLOR_BLIND_RECIPE
    Params = BYOLParams
    projector_widths = (512, 128)

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None) -> None:
        super().__init__(backbone, recipe, view_size, params)
        self.predictor = mlp_head(self.projector_widths[1], *self.projector_widths)
        self.target = frozen_copy(nn.Sequential(backbone, self.projector))

    def forward(self, views, targets=None):
        z = self.projector(self.backbone(views))
        p1, p2 = self.predictor(z).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target(views).chunk(2)
        return byol_loss(p1, p2, t1, t2), z

    def after_step(self, progress: float) -> None:
        online = nn.Sequential(self.backbone, self.projector)
        update_momentum(self.target, online, cosine_schedule(progress, self.params.momentum))
