"""The one training loop, shared by the GUI, the command line and multi-process runs.

It is a generator of progress events so any caller (a Qt worker, a progress bar, a test) can drive it, watch it
and stop it between steps. The dataset lives on the training device as uint8 and is augmented there, batch by batch.
Under torchrun it shards each epoch's permutation by rank, wraps the method in DistributedDataParallel, agrees on
when to stop, and lets rank 0 alone write checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import distributed
from .cancel import CancelToken
from .checkpoint import CheckpointError, load_checkpoint, load_state_into, save_checkpoint
from .config import TrainConfig, resolve_device
from .methods import Method

REPORT_EVERY_S = 0.25
PICTURES_EVERY_S = 2.0  # how often a method that draws pictures (reconstructions) is asked for them
PICTURE_IMAGES = 6


class TrainingError(Exception):
    """Training cannot go on (diverged, out of memory, unusable data); the message says what to change."""


@dataclass(frozen=True)
class TrainProgress:
    step: int
    epoch: int  # of the last step taken, from 0 (a 35-epoch run ends in epoch 34)
    total_steps: int | None
    fraction: float
    loss: float
    views_per_second: float
    elapsed: float
    eta: float | None
    health: float | None  # spread of the normalized embeddings: about 1 when healthy, toward 0 on collapse
    lr: float
    pictures: list[tuple[str, torch.Tensor]] | None = None  # Method.pictures, every PICTURES_EVERY_S
    # Method.pair_similarities of the last batch: (positive pairs, negatives), for a method comparing two views
    similarities: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass(frozen=True)
class TrainFinished:
    reason: str  # "completed" (epochs done), "budget" (time is up) or "cancelled"
    steps: int
    seconds: float
    views_per_second: float
    checkpoint: Path | None
    history: list


def embedding_health(z: torch.Tensor) -> float:
    """Mean per-dimension std of l2-normalized embeddings, scaled by sqrt(dim): ~1 if spread, 0 if collapsed."""
    if z.shape[0] < 2:
        return float("nan")
    z = F.normalize(z.detach().float().flatten(1), dim=1)
    return float(z.std(dim=0).mean() * math.sqrt(z.shape[1]))


def lr_at(base: float, fraction: float, warmup: float) -> float:
    """Linear warm-up then cosine decay, driven by the fraction of the budget used (steps or seconds)."""
    if fraction < warmup:
        return base * (fraction + 1e-3) / warmup
    progress = min(1.0, (fraction - warmup) / max(1e-8, 1 - warmup))
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bfloat16 arithmetic in hardware. Elsewhere it is emulated, and slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch, hence the getattr
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


class StepTuning:
    """The memory layout and precision of a training step on a device, kept where the bench showed a win.

    channels_last suits the convolutions of CUDA and oneDNN (CPU) alike. bf16 autocast is for CUDA's tensor cores
    and CPUs with native bf16: on this project's 2-core AVX-512 BF16 machine, small-cnn SimCLR steps took 74 ms in
    float32, 53 ms in channels_last, 36 ms with both (BENCHMARKS.md). The weights stay float32.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.channels_last = device.type in ("cuda", "cpu")
        self.bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())

    def model(self, module: torch.nn.Module) -> torch.nn.Module:
        module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def inputs(self, views: torch.Tensor) -> torch.Tensor:
        return views.contiguous(memory_format=torch.channels_last) if self.channels_last else views

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # Derived from (seed, epoch) alone so a resumed run visits the same batches it would have.
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    state = optimizer.state_dict()
    tensors = {f"optim.{idx}.{key}": value for idx, entry in state["state"].items()
               for key, value in entry.items() if torch.is_tensor(value)}
    return tensors, state["param_groups"]


def _restore_optimizer(optimizer, tensors: dict[str, torch.Tensor], param_groups: list) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def train(method: Method, images: torch.Tensor, labels: torch.Tensor | None, config: TrainConfig, *,
          rows: torch.Tensor | None = None, cancel: CancelToken | None = None,
          checkpoint_path: str | Path | None = None, resume: bool = False, extra_meta: dict | None = None,
          checkpoint_every: float = 30.0) -> Iterator[TrainProgress | TrainFinished]:
    """Train ``method`` on uint8 ``images`` (N,3,R,R), or only on their ``rows`` (an index, e.g. the training split);
    yields TrainProgress events, then one TrainFinished.

    ``images`` may be the memory-mapped image cache: on the CPU each batch is gathered from it, so only the images
    in use are read into memory; on a GPU the whole set is copied to the device once, as uint8.
    """
    if method.needs_labels and labels is None:
        raise TrainingError(f"{method.name} training needs labels: open a folder with one subfolder per class")
    rows = torch.arange(len(images)) if rows is None else torch.as_tensor(rows, dtype=torch.int64)
    if len(rows) < 2:
        raise TrainingError("training needs at least 2 images")
    device = resolve_device(config.device)
    rank, world = distributed.world()
    cancel = cancel or CancelToken()
    tuning = StepTuning(device)
    if config.sync_batchnorm and world > 1:
        if device.type != "cuda":
            raise TrainingError("synchronized batch norm needs GPUs (PyTorch has it for CUDA only); "
                                "run without --sync-batchnorm on CPU processes")
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    tuning.model(method)
    model = torch.nn.parallel.DistributedDataParallel(method) if world > 1 else method
    if config.compile:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(method.param_groups(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed * 7919 + rank)

    step, elapsed_before, history = 0, 0.0, []
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    if resume and checkpoint_path and checkpoint_path.exists():
        tensors, meta = load_checkpoint(checkpoint_path)
        try:
            if (meta.get("method"), meta.get("config", {}).get("backbone")) != (method.name, config.backbone):
                raise TrainingError(f"{checkpoint_path.name} holds a {meta.get('method')} run, not {method.name}")
            load_state_into(method, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, method.name,
                            checkpoint_path)
            _restore_optimizer(optimizer, tensors, meta["optimizer_param_groups"])
            generator.set_state(tensors.get(f"rng.{rank}", tensors["rng"]) if rank else tensors["rng"])
            step, elapsed_before, history = meta["step"], meta["elapsed"], meta["history"]
            if not (isinstance(step, int) and step >= 0 and isinstance(elapsed_before, (int, float))
                    and isinstance(history, list)):
                raise ValueError("its step, elapsed time or history has the wrong type")
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            # A checkpoint that is readable but not one this loop wrote (edited, damaged) must not crash the app.
            raise CheckpointError(f"{checkpoint_path.name} cannot be resumed, it is damaged or was edited "
                                  f"({type(exc).__name__}: {exc})") from exc

    n = len(rows)
    batch = min(config.batch_size, n // world)
    if batch < 2:
        raise TrainingError(f"{n} images are too few for {world} processes with batches of at least 2")
    steps_per_epoch = max(1, n // (batch * world))
    total_steps = config.epochs * steps_per_epoch if config.epochs else None
    images = images.to(device, non_blocking=True)  # on the CPU: the same tensor, not a copy
    labels = labels.to(device) if labels is not None else None
    rows = rows.to(device)
    # Spread over the images, as a folder is sorted by class; the same ones each time, to be seen improving.
    picture_rows = rows[torch.linspace(0, n - 1, min(n, PICTURE_IMAGES)).long().to(device)]

    def fraction_done(elapsed: float) -> float:
        parts = [step / total_steps] if total_steps else []
        if config.time_budget:
            parts.append(elapsed / config.time_budget)
        return min(1.0, max(parts))

    def save(finished: bool) -> Path | None:
        """Rank 0 writes; every rank must call it at the same step, since each sends its random state."""
        if checkpoint_path is None:
            return None
        states = distributed.gather_states(generator.get_state())
        if rank != 0:
            return None
        opt_tensors, groups = _optimizer_tensors(optimizer)
        tensors = {**{f"model.{k}": v for k, v in method.state_dict().items()}, **opt_tensors,
                   "rng": states[0], **{f"rng.{r}": state for r, state in enumerate(states) if r}}
        meta = {**(extra_meta or {}), "method": method.name, "config": config.to_dict(),
                "recipe": method.recipe.to_dict(), "step": step, "elapsed": elapsed_before + clock(),
                "history": history, "finished": finished,
                "views_per_second": views_total / max(1e-9, clock()), "optimizer_param_groups": groups,
                "versions": {"torch": torch.__version__}}
        return save_checkpoint(checkpoint_path, tensors, meta)

    start = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - start

    def stop_reason(elapsed: float) -> str | None:
        if cancel.cancelled:
            return "cancelled"
        if total_steps and step >= total_steps:
            return "completed"
        if config.time_budget and elapsed >= config.time_budget:
            return "budget"
        return None

    method.train()
    last_report = last_save = 0.0
    last_pictures = -PICTURES_EVERY_S
    views_total = views_since = loss_count = 0
    loss_sum = torch.zeros((), device=device)
    z = None
    order, order_epoch = None, -1

    def pictures(now: float) -> list | None:
        nonlocal last_pictures
        if now - last_pictures < PICTURES_EVERY_S:
            return None
        last_pictures = now
        shown = method.pictures(images[picture_rows])
        return [(name, t.detach().float().cpu()) for name, t in shown] if shown else None

    def report(now: float) -> TrainProgress:
        nonlocal last_report, views_since, loss_count
        elapsed = elapsed_before + now
        mean_loss = float(loss_sum) / loss_count
        if not math.isfinite(mean_loss):
            hint = " or a higher temperature" if hasattr(method.params, "temperature") else ""
            raise TrainingError(f"the loss became {mean_loss} at step {step}: training diverged. "
                                f"Try a lower learning rate (now {config.lr:g}){hint}.")
        history.append([step, round(elapsed, 3), mean_loss])
        fraction = fraction_done(elapsed)
        event = TrainProgress(step=step, epoch=max(0, step - 1) // steps_per_epoch, total_steps=total_steps,
                              fraction=fraction, loss=mean_loss,
                              views_per_second=views_since / max(1e-9, now - last_report), elapsed=elapsed,
                              eta=elapsed / fraction - elapsed if fraction > 0 else None,
                              health=embedding_health(z), lr=optimizer.param_groups[0]["lr"],
                              pictures=pictures(now), similarities=method.pair_similarities(z))
        last_report, views_since, loss_count = now, 0, 0
        loss_sum.zero_()
        return event

    while True:
        now = clock()
        if loss_count and now - last_report >= REPORT_EVERY_S:
            yield report(now)
        reason = stop_reason(elapsed_before + now)
        stop, due = distributed.any_rank((reason is not None, now - last_save >= checkpoint_every), device)
        if stop:
            reason = reason or "budget"  # another rank ran out of time first
            break
        if due:
            save(finished=False)
            last_save = now

        epoch, offset = divmod(step, steps_per_epoch)
        if epoch != order_epoch:  # one permutation per epoch, not per step (it is O(N) on the hot path)
            order, order_epoch = _epoch_order(n, config.seed, epoch), epoch
        idx = rows[order[(offset * world + rank) * batch:(offset * world + rank + 1) * batch].to(device)]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(config.lr, fraction_done(elapsed_before + now), config.warmup_fraction)
        try:
            views, targets = method.make_views(images[idx], labels[idx] if labels is not None else None, generator)
            views = tuning.inputs(views)
            with tuning.autocast():
                loss, z = model(views, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        except torch.OutOfMemoryError as exc:
            raise TrainingError(f"the device ran out of memory at batch size {config.batch_size}; "
                                f"try {max(2, config.batch_size // 2)} or a smaller backbone") from exc
        step += 1
        method.after_step(fraction_done(elapsed_before + clock()))
        views_since += views.shape[0] * world
        views_total += views.shape[0] * world
        loss_sum += loss.detach().float()
        loss_count += 1

    seconds = clock()
    if loss_count:
        yield report(seconds)
    yield TrainFinished(reason=reason, steps=step, seconds=elapsed_before + seconds,
                        views_per_second=views_total / max(1e-9, seconds),
                        checkpoint=save(finished=reason != "cancelled"), history=history)
