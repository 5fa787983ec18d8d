"""The few collective operations the training loop and the methods need, written once for 1 or N processes.

Under torchrun (one process per GPU or CPU worker, PyTorch's own process group) a loss that compares samples
with each other (SimCLR's negatives, MoCo's keys, VICReg's and Barlow Twins' batch statistics) must see the
global batch: ``gather_with_grad`` concatenates every process's rows and lets gradients flow back to each.
In a single process every function here is the identity, so the methods are written once.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every process's ``x`` concatenated along dim 0 in rank order; gradients flow back to each process."""
    if world()[1] == 1:
        return x
    from torch.distributed.nn.functional import all_gather  # autograd-aware, unlike dist.all_gather

    return torch.cat(all_gather(x))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every process when it is true on any (for example: one process ran out of time)."""
    if world()[1] == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
