"""Two processes on PyTorch's gloo backend compute what one process computes on the same global batch, for every
method; and torchrun runs the command line with two processes to a valid run folder."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssl_studio.core.checkpoint import load_checkpoint
from ssl_studio.core.methods import build_method, method_names
from ssl_studio.core.pipeline import open_run
from ssl_studio.core.samples import make_shapes

WORLD, PER_RANK, CLASSES = 2, 6, 3


def _batch():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (WORLD * PER_RANK, 3, 16, 16), dtype=torch.uint8, generator=g)
    return images, torch.arange(WORLD * PER_RANK) % CLASSES


def _method(name):
    torch.manual_seed(0)
    method = build_method(name, "small-cnn", num_classes=CLASSES, view_size=12)
    # Without SyncBatchNorm (CUDA only) each process normalizes its own share; the running statistics are the
    # same everywhere, so eval mode compares exactly what the gathers and the gradient averaging do.
    return method.eval()


def _rank_views(method, rank):
    images, labels = _batch()
    shard = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    return method.make_views(images[shard], labels[shard], torch.Generator().manual_seed(rank))


def _regroup(parts):
    """One process's view of the global batch: each process's rows come group by group (view 1 of every image,
    then view 2, ...), so the global batch is every process's first group, then every second group..."""
    if parts[0] is None:
        return None
    if isinstance(parts[0], tuple):
        return tuple(_regroup(list(p)) for p in zip(*parts))
    groups = parts[0].shape[0] // PER_RANK
    return torch.cat([p[g * PER_RANK:(g + 1) * PER_RANK] for g in range(groups) for p in parts])


def _one_step_each(rank, names, init_file, out_dir):
    """One process's training step of each method, its loss and gradients saved to out_dir/NAME.RANK.npz."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        for name in names:
            method = _method(name)
            views, targets = _rank_views(method, rank)
            ddp = torch.nn.parallel.DistributedDataParallel(method)  # kept alive: its hooks average the gradients
            loss, _ = ddp(views, targets)
            loss.backward()
            grads = {k: p.grad.numpy() for k, p in method.named_parameters() if p.grad is not None}
            np.savez(os.path.join(out_dir, f"{name}.{rank}.npz"), loss=loss.detach().numpy(), **grads)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_steps(tmp_path_factory):
    """Both processes are started once for every method: starting them costs more than the steps."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_one_step_each, args=(method_names(), str(out / "init"), str(out)), nprocs=WORLD)
    return out


@pytest.mark.parametrize("name", method_names())
def test_two_processes_give_the_one_process_loss_and_gradients(name, two_process_steps):
    method = _method(name)
    per_rank = [_rank_views(method, rank) for rank in range(WORLD)]
    views, targets = _regroup([v for v, _ in per_rank]), _regroup([t for _, t in per_rank])
    loss, _ = method(views, targets)
    loss.backward()
    ranks = [np.load(two_process_steps / f"{name}.{rank}.npz") for rank in range(WORLD)]
    # DDP averages the processes' gradients: the mean of their losses is the one-process loss.
    assert np.isclose(np.mean([r["loss"] for r in ranks]), loss.item(), rtol=1e-5)
    expected = {k: p.grad.numpy() for k, p in method.named_parameters() if p.grad is not None}
    # float32 sums in another order: near zero, close relative to the largest gradient. Barlow Twins' reach ~100,
    # and its last bias, which the loss cannot see (it standardizes), gets 0 as a difference of such terms.
    atol = max(1e-6, 1e-5 * max(float(np.abs(g).max()) for g in expected.values()))
    for rank in ranks:
        assert set(rank.files) - {"loss"} == set(expected)
        for key, grad in expected.items():
            np.testing.assert_allclose(rank[key], grad, rtol=1e-4, atol=atol, err_msg=key)


def _moco_on_a_time_budget(rank, init_file, out_dir):
    """train() itself, MoCo for three seconds (room for several steps on a busy machine), in one of two processes;
    what it ends with is saved."""
    from safetensors.torch import save_file

    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.train import TrainFinished, train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        images, _ = _batch()
        config = TrainConfig(method="moco", backbone="small-cnn", epochs=None, time_budget=3.0, batch_size=3,
                             resolution=16, device="cpu")
        torch.manual_seed(0)
        method = build_method("moco", "small-cnn", view_size=12)
        (done,) = [e for e in train(method, images, None, config) if isinstance(e, TrainFinished)]
        state = {k: v.contiguous() for k, v in method.state_dict().items() if "running" not in k
                 and "num_batches" not in k}  # BatchNorm's statistics are each process's own
        save_file(state, os.path.join(out_dir, f"moco.{rank}.safetensors"),
                  metadata={"steps": str(done.steps), "reason": str(done.reason)})
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def moco_in_two_processes(tmp_path_factory):
    """What each of the two processes ended with: (tensors, {"steps", "reason"}) by rank."""
    from safetensors import safe_open

    out = tmp_path_factory.mktemp("moco")
    # Joined with a deadline: processes that disagree on when the budget ran out would wait on each other forever.
    context = mp.start_processes(_moco_on_a_time_budget, args=(str(out / "init"), str(out)), nprocs=WORLD,
                                 join=False)
    deadline = time.monotonic() + 240
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two processes did not finish together within 240 s")
    ranks = []
    for rank in range(WORLD):
        with safe_open(str(out / f"moco.{rank}.safetensors"), "pt") as f:
            ranks.append(({k: f.get_tensor(k) for k in f.keys()}, f.metadata()))
    return ranks


def fresh_moco() -> dict:
    torch.manual_seed(0)
    return build_method("moco", "small-cnn", view_size=12).state_dict()


def test_two_processes_on_a_time_budget_stop_together_with_the_same_queue_of_every_processs_keys(
        moco_in_two_processes):
    (first, meta0), (second, meta1) = moco_in_two_processes
    assert meta0 == meta1 and meta0["reason"] == "budget" and int(meta0["steps"]) >= 2
    # Each step enqueued both views' keys of both processes' 3 images: 2 x 2 x 3 a step, modulo the queue's size.
    assert int(first["queue_next"]) == int(meta0["steps"]) * 2 * WORLD * 3 % len(first["queue"])
    assert not torch.equal(first["queue"], fresh_moco()["queue"])
    assert torch.equal(first["queue"], second["queue"]) and torch.equal(first["queue_next"], second["queue_next"])


def test_two_processes_on_a_time_budget_end_with_one_network_and_one_momentum_target(moco_in_two_processes):
    (first, _), (second, _) = moco_in_two_processes
    fresh = fresh_moco()
    assert [k for k in first if k.startswith("key_encoder.") and not torch.equal(first[k], fresh[k])]  # it moved
    assert [k for k in first if not torch.equal(first[k], second[k])] == []


def test_torchrun_runs_the_command_line_with_two_processes(tmp_path):
    data = make_shapes(tmp_path / "shapes", per_class=8, size=16)
    out = tmp_path / "run"
    # torchrun is PyTorch's torch.distributed.run module: started as such, it needs no script on the PATH.
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "ssl_studio", "run", str(data), "--out",
         str(out), "--epochs", "2", "--batch-size", "8", "--resolution", "16", "--device", "cpu", "--no-umap"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    run = open_run(out)
    assert set(run.embeddings) == {"ssl", "supervised", "untrained", "pixels"}
    tensors, meta = load_checkpoint(out / "ssl.safetensors")
    # Each of the 2 processes took 8 of the 51 training images per step: 3 steps an epoch, not 6.
    assert meta["step"] == 2 * (len(run.paths) * 4 // 5 // 16) and meta["finished"]
    assert "rng" in tensors and "rng.1" in tensors  # each process's random state, for an exact resume
    assert result.stderr.count("Training self-supervised") == 1  # rank 0 alone reports
