"""The one training loop, shared by the GUI, the command line and multi-process runs.

It is a generator of progress events so any caller (a Qt worker, a progress bar, a test) can drive it, watch it
and stop it between steps. The dataset lives on the training device as uint8 and is augmented there, batch by batch.
Under torchrun it shards each epoch's permutation by rank, wraps the method in DistributedDataParallel, agrees on
when to stop, and lets rank 0 alone write checkpoints.

``train`` composes small parts around its one step: the TrainingState a checkpoint holds and a resume restores,
Checkpoints (when and what to write), the Reporter (progress events, loss history, health), the StopRule (when to
stop, and the fraction done) and Batches (which rows each step takes).
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
from .errors import UserError
from .methods import Method
from .threads import ThreadTuner

REPORT_EVERY_S = 0.25
PICTURES_EVERY_S = 2.0  # how often a method that draws pictures (reconstructions) is asked for them
PICTURE_IMAGES = 6


class TrainingError(UserError):
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
    """The memory layout, precision and optimizer kernel of a training step on a device, kept where the bench
    showed a win.

    channels_last suits the convolutions of CUDA and oneDNN (CPU) alike. bf16 autocast is for CUDA's tensor cores
    and CPUs with native bf16: on this project's 2-core AVX-512 BF16 machine, small-cnn SimCLR steps took 74 ms in
    float32, 53 ms in channels_last, 36 ms with both (BENCHMARKS.md). The weights stay float32. AdamW's fused
    kernel (one pass over all the weights instead of a dozen ops per tensor) took its update from 2.7 to 1.4 ms.
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

    def optimizer(self, param_groups: list, lr: float, weight_decay: float) -> torch.optim.AdamW:
        fused = self.device.type in ("cpu", "cuda") or None  # None: torch's own choice where it has no fused kernel
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay, fused=fused)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    state = optimizer.state_dict()
    tensors = {f"optim.{idx}.{key}": value for idx, entry in state["state"].items()
               for key, value in entry.items() if torch.is_tensor(value)}
    return tensors, state["param_groups"]


def _restore_optimizer(optimizer, tensors: dict[str, torch.Tensor], param_groups: list) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]  # the state_dict's numbering
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            param = params[int(idx)]
            if value.shape == param.shape:  # the fused AdamW kernel walks the moments in their weight's memory layout
                value = torch.empty_like(param, dtype=value.dtype).copy_(value)
            state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


class StopRule:
    """When a run stops (cancelled, its epochs done, its time up) and how much of it is done, which drives the
    learning rate and a momentum schedule alike."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int, cancel: CancelToken) -> None:
        self.time = config.time_budget
        self.total_steps = config.epochs * steps_per_epoch if config.epochs else None
        self.cancel = cancel

    def fraction(self, step: int, elapsed: float) -> float:
        parts = [step / self.total_steps] if self.total_steps else []
        if self.time:
            parts.append(elapsed / self.time)
        return min(1.0, max(parts))

    def stop_reason(self, step: int, elapsed: float) -> str | None:
        if self.cancel.cancelled:
            return "cancelled"
        if self.total_steps and step >= self.total_steps:
            return "completed"
        if self.time and elapsed >= self.time:
            return "budget"
        return None


class TrainingState:
    """What a checkpoint holds and a resume restores: the weights, the optimizer, this rank's random generator,
    the step, the training time before this session and the loss history. ``clock`` times this session."""

    def __init__(self, method: Method, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                 rank: int) -> None:
        self.method, self.optimizer, self.generator, self.rank = method, optimizer, generator, rank
        self.step, self.elapsed_before, self.history = 0, 0.0, []
        self.views = 0  # this session's, on every rank together
        self.start_clock()

    def start_clock(self) -> None:
        """This session's time starts now: at its first step, not while the checkpoint was read."""
        self._start = time.perf_counter()

    def clock(self) -> float:
        return time.perf_counter() - self._start

    def leave_out_since(self, then: float) -> None:
        """Take the time since ``then`` (a reading of ``clock``) out of this session's time."""
        self._start += self.clock() - then

    def elapsed(self, now: float) -> float:
        return self.elapsed_before + now

    def restore(self, path: Path, config: TrainConfig) -> None:
        method = self.method
        tensors, meta = load_checkpoint(path)
        try:
            if (meta.get("method"), meta.get("config", {}).get("backbone")) != (method.name, config.backbone):
                raise TrainingError(f"{path.name} holds a {meta.get('method')} run, not {method.name}")
            load_state_into(method, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, method.name,
                            path)
            _restore_optimizer(self.optimizer, tensors, meta["optimizer_param_groups"])
            rank = self.rank
            self.generator.set_state(tensors.get(f"rng.{rank}", tensors["rng"]) if rank else tensors["rng"])
            step, elapsed_before, history = meta["step"], meta["elapsed"], meta["history"]
            if not (isinstance(step, int) and step >= 0 and isinstance(elapsed_before, (int, float))
                    and isinstance(history, list)):
                raise ValueError("its step, elapsed time or history has the wrong type")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            # A checkpoint that is readable but not one this loop wrote (edited, damaged) must not crash the app.
            raise CheckpointError(f"{path.name} cannot be resumed, it is damaged or was edited "
                                  f"({type(exc).__name__}: {exc})") from exc
        self.step, self.elapsed_before, self.history = step, elapsed_before, history


class Checkpoints:
    """Writes the training state every ``every`` seconds and at the end. Rank 0 writes; every rank must call
    ``save`` at the same step, since each sends its random state."""

    def __init__(self, path: Path | None, state: TrainingState, config: TrainConfig, extra_meta: dict | None,
                 every: float) -> None:
        self.path, self.state, self.config, self.extra_meta, self.every = path, state, config, extra_meta, every
        self._last = 0.0

    def due(self, now: float) -> bool:
        return now - self._last >= self.every

    def save(self, finished: bool, now: float | None = None) -> Path | None:
        if now is not None:
            self._last = now
        if self.path is None:
            return None
        state = self.state
        states = distributed.gather_states(state.generator.get_state())
        if state.rank != 0:
            return None
        opt_tensors, groups = _optimizer_tensors(state.optimizer)
        tensors = {**{f"model.{k}": v for k, v in state.method.state_dict().items()}, **opt_tensors,
                   "rng": states[0], **{f"rng.{r}": s for r, s in enumerate(states) if r}}
        seconds = state.clock()
        meta = {**(self.extra_meta or {}), "method": state.method.name, "config": self.config.to_dict(),
                "recipe": state.method.recipe.to_dict(), "step": state.step,
                "elapsed": state.elapsed(seconds), "history": state.history, "finished": finished,
                "views_per_second": state.views / max(1e-9, seconds), "optimizer_param_groups": groups,
                "versions": {"torch": torch.__version__}}
        return save_checkpoint(self.path, tensors, meta)


class Reporter:
    """Gathers the steps' losses and turns them into a TrainProgress every REPORT_EVERY_S: the mean loss (a
    non-finite one stops the run), views/s since the last report, the embedding's health, the method's pictures
    every PICTURES_EVERY_S and its pair similarities. Each report adds a row to the state's history."""

    def __init__(self, state: TrainingState, budget: StopRule, config: TrainConfig, steps_per_epoch: int,
                 images: torch.Tensor, rows: torch.Tensor) -> None:
        self.state, self.budget, self.config, self.steps_per_epoch = state, budget, config, steps_per_epoch
        self.images = images
        n = len(rows)
        # Spread over the images, as a folder is sorted by class; the same ones each time, to be seen improving.
        self.picture_rows = rows[torch.linspace(0, n - 1, min(n, PICTURE_IMAGES)).long().to(rows.device)]
        self._loss_sum = torch.zeros((), device=images.device)
        self._losses = self._views = 0
        self._z = None
        self._last = 0.0
        self._last_pictures = -PICTURES_EVERY_S

    def add(self, loss: torch.Tensor, z: torch.Tensor, views: int) -> None:
        self._loss_sum += loss.detach().float()
        self._losses += 1
        self._views += views
        self._z = z

    def due(self, now: float) -> bool:
        return self._losses > 0 and now - self._last >= REPORT_EVERY_S

    def pending(self) -> bool:
        return self._losses > 0

    def report(self, now: float) -> TrainProgress:
        state, method = self.state, self.state.method
        step, elapsed = state.step, state.elapsed(now)
        mean_loss = float(self._loss_sum) / self._losses
        if not math.isfinite(mean_loss):
            hint = " or a higher temperature" if hasattr(method.params, "temperature") else ""
            raise TrainingError(f"the loss became {mean_loss} at step {step}: training diverged. "
                                f"Try a lower learning rate (now {self.config.lr:g}){hint}.")
        state.history.append([step, round(elapsed, 3), mean_loss])
        fraction = self.budget.fraction(step, elapsed)
        event = TrainProgress(step=step, epoch=max(0, step - 1) // self.steps_per_epoch,
                              total_steps=self.budget.total_steps, fraction=fraction, loss=mean_loss,
                              views_per_second=self._views / max(1e-9, now - self._last), elapsed=elapsed,
                              eta=elapsed / fraction - elapsed if fraction > 0 else None,
                              health=embedding_health(self._z), lr=state.optimizer.param_groups[0]["lr"],
                              pictures=self._pictures(now), similarities=method.pair_similarities(self._z))
        self._last, self._views, self._losses = now, 0, 0
        self._loss_sum.zero_()
        return event

    def _pictures(self, now: float) -> list | None:
        if now - self._last_pictures < PICTURES_EVERY_S:
            return None
        self._last_pictures = now
        shown = self.state.method.pictures(self.images[self.picture_rows])
        return [(name, t.detach().float().cpu()) for name, t in shown] if shown else None


class Batches:
    """Which rows each step trains on: one seeded permutation per epoch, derived from (seed, epoch) alone so a
    resumed run visits the same batches it would have, sharded by rank."""

    def __init__(self, rows: torch.Tensor, seed: int, batch: int, steps_per_epoch: int, rank: int,
                 world: int) -> None:
        self.rows, self.seed, self.batch, self.steps_per_epoch = rows, seed, batch, steps_per_epoch
        self.rank, self.world = rank, world
        self._order, self._epoch = None, -1

    def at(self, step: int) -> torch.Tensor:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:  # one permutation per epoch, not per step (it is O(N) on the hot path)
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._order, self._epoch = torch.randperm(len(self.rows), generator=generator), epoch
        first = (offset * self.world + self.rank) * self.batch
        return self.rows[self._order[first:first + self.batch].to(self.rows.device)]


def _stepping_model(method: Method, config: TrainConfig, tuning: StepTuning, world: int) -> torch.nn.Module:
    """What a step calls: the method on its device, under DistributedDataParallel across processes, compiled if
    asked. The method itself stays the module the optimizer, the checkpoints and the reports see."""
    if config.sync_batchnorm and world > 1:
        if tuning.device.type != "cuda":
            raise TrainingError("synchronized batch norm needs GPUs (PyTorch has it for CUDA only); "
                                "run without --sync-batchnorm on CPU processes")
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    tuning.model(method)
    model = torch.nn.parallel.DistributedDataParallel(method) if world > 1 else method
    return torch.compile(model) if config.compile else model


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
    tuning = StepTuning(device)
    model = _stepping_model(method, config, tuning, world)
    optimizer = tuning.optimizer(method.param_groups(), config.lr, config.weight_decay)
    state = TrainingState(method, optimizer, torch.Generator().manual_seed(config.seed * 7919 + rank), rank)
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    if resume and checkpoint_path and checkpoint_path.exists():
        state.restore(checkpoint_path, config)

    n = len(rows)
    batch = min(config.batch_size, n // world)
    if batch < 2:
        raise TrainingError(f"{n} images are too few for {world} processes with batches of at least 2")
    steps_per_epoch = max(1, n // (batch * world))
    images = images.to(device, non_blocking=True)  # on the CPU: the same tensor, not a copy
    labels = labels.to(device) if labels is not None else None
    rows = rows.to(device)
    budget = StopRule(config, steps_per_epoch, cancel or CancelToken())
    batches = Batches(rows, config.seed, batch, steps_per_epoch, rank, world)
    checkpoints = Checkpoints(checkpoint_path, state, config, extra_meta, checkpoint_every)
    reporter = Reporter(state, budget, config, steps_per_epoch, images, rows)
    threads = ThreadTuner.for_device(device)  # torch's threads follow the free cores while it runs (core/threads.py)

    method.train()
    state.start_clock()
    while True:
        now = state.clock()
        if reporter.due(now):
            event = reporter.report(now)
            suspended = state.clock()
            yield event
            # What the consumer did meanwhile (the SSL map's snapshots: about 8 % of the time) is not training: left
            # in, it would take steps from the SSL model that the supervised baseline keeps.
            state.leave_out_since(suspended)
        reason = budget.stop_reason(state.step, state.elapsed(now))
        stop, due, elapsed = distributed.max_over_ranks((reason is not None, checkpoints.due(now),
                                                         state.elapsed(now)), device)
        if stop:
            reason = reason or "budget"  # another rank ran out of time first
            break
        if due:
            checkpoints.save(finished=False, now=now)

        for group in optimizer.param_groups:
            group["lr"] = lr_at(config.lr, budget.fraction(state.step, elapsed), config.warmup_fraction)
        idx = batches.at(state.step)
        try:  # the step
            views, targets = method.make_views(images[idx], labels[idx] if labels is not None else None,
                                               state.generator)
            views = tuning.inputs(views)
            with tuning.autocast():
                loss, z = model(views, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        except torch.OutOfMemoryError as exc:
            raise TrainingError(f"the device ran out of memory at batch size {config.batch_size}; "
                                f"try {max(2, config.batch_size // 2)} or a smaller backbone") from exc
        state.step += 1
        threads.step_done()
        method.after_step(budget.fraction(state.step, elapsed))  # the agreed clock: one schedule on every rank
        state.views += views.shape[0] * world
        reporter.add(loss, z, views.shape[0] * world)

    threads.restore()
    seconds = state.clock()
    if reporter.pending():
        yield reporter.report(seconds)
    yield TrainFinished(reason=reason, steps=state.step, seconds=state.elapsed(seconds),
                        views_per_second=state.views / max(1e-9, seconds),
                        checkpoint=checkpoints.save(finished=reason != "cancelled"), history=state.history)
