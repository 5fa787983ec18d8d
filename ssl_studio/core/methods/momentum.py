"""What the momentum methods (BYOL, MoCo) share: a target network that follows the trained one as an exponential
moving average, with a momentum that rises from its base value to 1 along a cosine over the run.

The target's parameters take no gradients, so ``Method.param_groups`` leaves them out of the optimizer. The update
is a pure function of the weights and the run's progress, so under torchrun every process makes the same one.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..schema import setting


def momentum_setting(default: float):
    """The same label, help and range for every momentum method, so they share one command-line flag."""
    return setting(default, "Momentum", "Start of the target network's momentum, which rises to 1 along a cosine "
                   "over the run: higher makes the target change more slowly.", minimum=0.5, maximum=1.0,
                   step=0.001)


def cosine_schedule(progress: float, start: float, end: float = 1.0) -> float:
    """``start`` at progress 0, ``end`` at progress 1, along half a cosine (lightly's cosine_schedule)."""
    progress = min(1.0, max(0.0, progress))
    return end - (end - start) * (math.cos(math.pi * progress) + 1) / 2


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that takes no gradients: the target network."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target = momentum * target + (1 - momentum) * online, for every parameter, in two foreach ops."""
    target_params = list(target.parameters())
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, list(online.parameters()), alpha=1 - momentum)
