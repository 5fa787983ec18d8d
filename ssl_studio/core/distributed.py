"""The few collective operations the training loop and the methods need, written once for 1 or N processes.

Under torchrun (one process per GPU or CPU worker, PyTorch's own process group) a loss that compares samples
with each other (SimCLR's negatives, MoCo's keys, VICReg's and Barlow Twins' batch statistics) must see the
global batch: ``gather_with_grad`` concatenates every process's rows and lets gradients flow back to each.
In a single process every function here is the identity, so the methods are written once.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Gather(torch.autograd.Function):
    """all_gather that passes gradients back: each process gets the sum over processes of the gradient of its
    own rows (lightly's GatherLayer). torch's autograd-aware gathers are deprecated one release after another,
    so these few lines are ours."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every process's ``x`` concatenated along dim 0 in rank order; gradients flow back to each process."""
    return x if world()[1] == 1 else _Gather.apply(x)


def max_over_ranks(values: tuple[float, ...], device: torch.device) -> tuple[float, ...]:
    """Each value's largest across the processes: a flag true on any (one process ran out of time, is due to save)
    is true on all, and every process steps by the same clock (the slowest's), so their schedules never drift."""
    if world()[1] == 1:
        return values
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(t.tolist())


def gather_states(state: torch.Tensor) -> list[torch.Tensor]:
    """Every process's copy of a same-sized CPU tensor (a random generator's state), in rank order."""
    rank, size = world()
    if size == 1:
        return [state]
    # NCCL moves only device tensors; the states are small, so the round trip costs nothing that matters.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else state.device
    parts = [torch.empty_like(state, device=device) for _ in range(size)]
    dist.all_gather(parts, state.to(device))
    return [part.cpu() for part in parts]


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def init_from_env(device: torch.device) -> bool:
    """Join torchrun's process group (its RANK / WORLD_SIZE / MASTER_ADDR variables) when there is one; the
    backend follows the device: NCCL between GPUs, gloo between CPU processes. False outside torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
