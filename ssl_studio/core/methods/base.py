"""What every training objective provides to the one training loop."""

from __future__ import annotations

import torch
from torch import nn

from ..augment import Recipe, augment


class Method(nn.Module):
    """A backbone plus whatever heads an objective needs.

    ``make_views`` turns a uint8 batch into network inputs and targets (no gradients, so it can be timed and run
    apart); ``forward`` returns ``(loss, embedding)`` where the embedding is what the loss acts on, used for the
    collapse reading. ``forward`` is the only thing DistributedDataParallel needs to wrap. ``after_step`` is where
    a momentum method would update its target network.
    """

    name = "method"
    needs_labels = False

    def __init__(self, backbone: nn.Module, recipe: Recipe, view_size: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.recipe = recipe
        self.view_size = view_size

    def augment(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return augment(images, self.recipe, generator, out_size=self.view_size)

    @torch.no_grad()
    def make_views(self, images: torch.Tensor, labels: torch.Tensor | None,
                   generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def after_step(self) -> None:
        """Hook run after each optimizer step."""
