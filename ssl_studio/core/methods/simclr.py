"""SimCLR (Chen et al. 2020): two augmented views of each image attract, every other view in the batch repels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import Recipe
from ..distributed import gather_with_grad
from ..models import mlp_head
from ..schema import setting
from .base import MethodParams, TwoViewMethod
from .rotation import rotation_loss, turn_pairs


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2B views: for each view the positive is its pair, the other 2B-2 views are negatives.

    Written as cross-entropy over cosine-similarity logits, so log-sum-exp is done stably by the library. Under
    torchrun the caller passes the global batch (distributed.gather_with_grad), so negatives span every process.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    n = z1.shape[0]
    # A view is never its own negative; a large finite value keeps the softmax free of NaN.
    logits.fill_diagonal_(-1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def temperature_setting(default: float):
    """The same label, help and range for every InfoNCE method, so they share one command-line flag."""
    return setting(default, "Temperature", "InfoNCE temperature: lower sharpens the contrast between the positive "
                   "pair and the negatives.", minimum=0.01, maximum=10, step=0.05)


@dataclass(frozen=True)
class SimCLRParams(MethodParams):
    # SimCLR's CIFAR value; over 15 and 30 epochs of shapes it edged out 0.2 (49.6 vs 48.8, 49.0 vs 47.3 kNN).
    temperature: float = temperature_setting(0.5)
    # Contrast alone learns to ignore how an image is turned; a second task that must tell it keeps the object's
    # layout. At fixed steps it gained on four folders of five and cost the silhouettes 0.3 points of kNN (README,
    # "Defaults", seventh study).
    rotation_task: float = setting(0.5, "Rotation task", "Weight of a second pretext task: both views of half the "
                                   "pairs are turned by the same 90, 180 or 270 degrees and a linear head tells which. "
                                   "0: the contrast alone.", minimum=0, maximum=10, step=0.1)
    SAVED_WITHOUT = {"rotation_task": 0.0}


class SimCLR(TwoViewMethod):
    name = "simclr"
    title = "SimCLR (contrastive, InfoNCE)"
    summary = ("Two views of one image attract, the other images of the batch repel; a second task tells how a "
               "pair was turned.")
    order = 0
    # SimCLR's recipe (CIFAR variant: blur off at small resolution) with crops of at least 35% of the image: on a
    # 2-minute budget, 15 epochs of shapes reached 49.6% kNN against 39.4% with SimCLR's 20% (README, "Defaults").
    default_recipe = Recipe(crop_scale=(0.35, 1.0), blur_p=0.0)
    Params = SimCLRParams

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None, hidden_dim: int = 512,
                 out_dim: int = 128) -> None:
        super().__init__(backbone, recipe, view_size, params)
        self.head = mlp_head(backbone.feature_dim, hidden_dim, out_dim)
        # Only when the task is on, so the weights of runs made without it load as they were saved.
        self.rotation_head = nn.Linear(backbone.feature_dim, 4) if self.params.rotation_task > 0 else None

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        views, _ = super().make_views(images, labels, generator)
        return (views, None) if self.rotation_head is None else turn_pairs(views, generator)

    def forward(self, views, targets=None):
        features = self.backbone(views)
        z = self.head(features)
        z1, z2 = z.chunk(2)
        loss = info_nce(gather_with_grad(z1), gather_with_grad(z2), self.params.temperature)
        if targets is not None:
            loss = loss + self.params.rotation_task * rotation_loss(self.rotation_head(features), targets)
        return loss, z


# SimCLR's recipe with any hue and grey half the time, so that colour never tells two views apart and shape must:
# over 15 epochs of shapes it lifted BYOL from 25.0 to 39.6 % kNN, VICReg from 47.7 to 58.8 %, MoCo from 37.5 to
# 52.3 %, Barlow Twins from 37.7 to 55.0 % (README, "Defaults"). A folder whose classes differ by colour wants less.
COLOR_BLIND_RECIPE = SimCLR.default_recipe.replace(hue=0.5, grayscale_p=0.5)
