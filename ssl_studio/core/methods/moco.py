"""MoCo v2 (He et al. 2020; Chen et al. 2020): each view must pick its pair's key out of a queue of older keys.

The keys come from a momentum copy of the network, so keys made over many past steps stay consistent enough to
serve as negatives: many more negatives than one batch holds. The queue is a buffer, saved in every checkpoint, so
a resumed run continues with the same negatives. Under torchrun each process enqueues every process's keys
(gathered), so the queues stay identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather_with_grad
from ..schema import setting
from .base import MethodParams, TwoViewMethod, in_float32
from .momentum import cosine_schedule, frozen_copy, momentum_setting, update_momentum
from .simclr import COLOR_BLIND_RECIPE, temperature_setting


@in_float32
def moco_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of each query against its own key (the positive) and every key in the queue (the negatives).

    Cross-entropy over the logits with the positive in column 0: the library does the log-sum-exp stably.
    """
    q, k = F.normalize(q, dim=1), F.normalize(k.detach(), dim=1)
    logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ queue.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


@dataclass(frozen=True)
class MoCoParams(MethodParams):
    # Over 15 epochs of shapes (kNN, README "Defaults"): temperature 0.1 54.8 %, MoCo v2's 0.2 52.3 %; momentum
    # 0.99 52.3 %, 0.996 51.7 %, 0.9 (SimCLR's colours) 26.3 %; a queue of 1024 as good as 4096 (54.2 / 54.8 %).
    temperature: float = temperature_setting(0.1)
    momentum: float = momentum_setting(0.99)
    queue_size: int = setting(1024, "Queue size", "How many past keys serve as negatives. Keep it well below the "
                              "number of training images, or an image's own older keys become its negatives.",
                              minimum=16, maximum=65536, step=256)


class MoCo(TwoViewMethod):
    name = "moco"
    title = "MoCo v2 (queue of negatives)"
    summary = ("Each view picks its pair's key, made by a slowly moving copy of the network, out of a queue of "
               "older keys.")
    order = 30
    default_recipe = COLOR_BLIND_RECIPE
    Params = MoCoParams
    projector_widths = (512, 128)

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None) -> None:
        super().__init__(backbone, recipe, view_size, params)
        self.key_encoder = frozen_copy(nn.Sequential(backbone, self.projector))
        keys = F.normalize(torch.randn(self.params.queue_size, self.projector_widths[1]), dim=1)
        self.register_buffer("queue", keys)
        self.register_buffer("queue_next", torch.zeros((), dtype=torch.long))  # where the next key goes

    def forward(self, views, targets=None):
        z, q1, q2 = self.project(views)
        with torch.no_grad():
            k1, k2 = self.key_encoder(views).chunk(2)
        queue = self.queue.clone()  # the negatives of this step, before its own keys go in
        t = self.params.temperature
        # Symmetrized, as lightly's benchmarks do: both views are a query once, so every view trains the network.
        loss = (moco_loss(q1, k2, queue, t) + moco_loss(q2, k1, queue, t)) / 2
        self.enqueue(gather_with_grad(torch.cat([k1, k2]).detach()))
        return loss, z

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest keys with ``keys`` (the newest last, when there are more than the queue holds)."""
        keys = F.normalize(keys.float(), dim=1)[-len(self.queue):]
        slots = (self.queue_next + torch.arange(len(keys), device=keys.device)) % len(self.queue)
        self.queue[slots] = keys
        self.queue_next.copy_((self.queue_next + len(keys)) % len(self.queue))

    def after_step(self, progress: float) -> None:
        online = nn.Sequential(self.backbone, self.projector)
        update_momentum(self.key_encoder, online, cosine_schedule(progress, self.params.momentum))
