"""VICReg (Bardes et al. 2022): two views' embeddings agree (invariance), every dimension keeps a spread over the
batch (variance) and the dimensions carry different information (covariance). No negatives, no momentum network.

The variance and covariance are statistics of the batch; under torchrun they are taken over the global batch
(every process's embeddings, gathered with their gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..distributed import gather_with_grad
from ..schema import setting
from .base import MethodParams, TwoViewMethod, in_float32
from .simclr import COLOR_BLIND_RECIPE

EPS = 1e-4  # inside the square root of the variance: keeps the gradient finite for a collapsed dimension


def _variance(z: torch.Tensor) -> torch.Tensor:
    """Mean hinge on each dimension's standard deviation over the batch: 0 once it is at least 1."""
    return F.relu(1 - torch.sqrt(z.var(dim=0) + EPS)).mean()


def _covariance(z: torch.Tensor) -> torch.Tensor:
    """Sum of the squared off-diagonal covariances, over the number of dimensions."""
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = z.T @ z / (n - 1)
    return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / d


@in_float32
def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, invariance: float = 25.0, variance: float = 25.0,
                covariance: float = 1.0) -> torch.Tensor:
    """The paper's loss with its weights (25, 25, 1): the variance term averaged over the two views, the
    covariance term summed, as in the authors' code."""
    return (invariance * F.mse_loss(z1, z2) + variance * (_variance(z1) + _variance(z2)) / 2
            + covariance * (_covariance(z1) + _covariance(z2)))


def _weight(default: float, label: str, what: str):
    return setting(default, label, f"Weight of the {what} term.", minimum=0.0, maximum=1000.0, step=1.0)


@dataclass(frozen=True)
class VICRegParams(MethodParams):
    invariance: float = _weight(25.0, "Invariance weight", "invariance (two views agree)")
    variance: float = _weight(25.0, "Variance weight", "variance (each dimension keeps a spread over the batch)")
    covariance: float = _weight(1.0, "Covariance weight", "covariance (dimensions are decorrelated)")


class VICReg(TwoViewMethod):
    name = "vicreg"
    title = "VICReg"
    summary = "Two views agree, while every dimension keeps its spread over the batch and the dimensions decorrelate."
    order = 40
    default_recipe = COLOR_BLIND_RECIPE
    Params = VICRegParams
    projector_widths = (512, 512)  # decorrelating losses want more dimensions than InfoNCE's 128


    def forward(self, views, targets=None):
        z, z1, z2 = self.project(views)
        p = self.params
        return vicreg_loss(gather_with_grad(z1), gather_with_grad(z2), p.invariance, p.variance, p.covariance), z
