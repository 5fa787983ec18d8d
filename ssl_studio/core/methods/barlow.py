"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of two views' embeddings, over the batch, is pushed
toward the identity: each dimension agrees across the views and carries something the others do not.

The correlation is a statistic of the batch; under torchrun it is taken over the global batch (every process's
embeddings, gathered with their gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..distributed import gather_with_grad
from ..schema import setting
from .base import MethodParams, TwoViewMethod, in_float32
from .simclr import COLOR_BLIND_RECIPE


def _standardize(z: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per dimension over the batch (the authors' BatchNorm1d without affine)."""
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + 1e-5)


@in_float32
def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, redundancy: float = 5e-3) -> torch.Tensor:
    """Sum of (1 - c_ii)^2 over the diagonal of the cross-correlation c, plus ``redundancy`` times c_ij^2 off it."""
    c = _standardize(z1).T @ _standardize(z2) / z1.shape[0]
    on_diagonal = (c.diagonal() - 1).pow(2).sum()
    off_diagonal = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return on_diagonal + redundancy * off_diagonal


@dataclass(frozen=True)
class BarlowParams(MethodParams):
    # The paper's; over 15 epochs of shapes 5e-3 gave 55.0 % kNN, 1e-2 53.1 %, 2e-2 32.3 % (README, "Defaults").
    redundancy: float = setting(5e-3, "Redundancy weight (λ)", "Weight of the off-diagonal correlations: how "
                                "strongly the dimensions are decorrelated.", minimum=0.0, maximum=1.0, log=True)


class BarlowTwins(TwoViewMethod):
    name = "barlow"
    title = "Barlow Twins"
    summary = "The correlation between two views' embeddings, dimension by dimension, is pushed to the identity."
    order = 50
    default_recipe = COLOR_BLIND_RECIPE
    Params = BarlowParams
    projector_widths = (512, 512)  # decorrelating losses want more dimensions than InfoNCE's 128


    def forward(self, views, targets=None):
        z, z1, z2 = self.project(views)
        return barlow_twins_loss(gather_with_grad(z1), gather_with_grad(z2), self.params.redundancy), z
