"""SimCLR (Chen et al. 2020): two augmented views of each image attract, every other view in the batch repels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import mlp_head
from .base import Method


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2B views: for each view the positive is its pair, the other 2B-2 views are negatives.

    Written as cross-entropy over cosine-similarity logits, so log-sum-exp is done stably by the library.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    n = z1.shape[0]
    # A view is never its own negative; a large finite value keeps the softmax free of NaN.
    logits.fill_diagonal_(-1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


class SimCLR(Method):
    name = "simclr"

    def __init__(self, backbone, recipe, view_size=None, temperature: float = 0.2, hidden_dim: int = 512,
                 out_dim: int = 128) -> None:
        super().__init__(backbone, recipe, view_size)
        self.temperature = temperature
        self.head = mlp_head(backbone.feature_dim, hidden_dim, out_dim)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        return torch.cat([self.augment(images, generator), self.augment(images, generator)]), None

    def forward(self, views, targets=None):
        z = self.head(self.backbone(views))
        z1, z2 = z.chunk(2)
        return info_nce(z1, z2, self.temperature), z
