"""Training throughput per method, backbone and device: the loop's own views/s, and where a step's time goes.

core.train.train gives the real figure. It does not expose its phases, so a few steps are also timed here by hand,
with the loop's own StepTuning (channels_last and bf16 autocast on CUDA) and a device sync between phases.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import build_method, method_names
from ssl_studio.core.models import BACKBONES
from ssl_studio.core.train import StepTuning, TrainFinished, train

from .common import Table, clock

PHASES = ("augment", "forward", "backward", "optimizer")
OLDER_ORDER = "simclr, older layer order"  # the small CNN as runs saved before 2026-12-07 have it (core/models.py)
SHORT = {"augment": "aug", "forward": "fwd", "backward": "bwd", "optimizer": "opt"}


@dataclass(frozen=True)
class StepPlan:
    batch: int  # images per step (a SimCLR step makes 2 views of each, rotation 4)
    steps: int  # steps timed by hand for the split, after one warm-up step
    loop_seconds: float  # time budget given to core.train.train


def _optimizer(tuning: StepTuning, method):
    """The loop's own optimizer (fused AdamW where there is a kernel) at the default weight decay."""
    return tuning.optimizer(method.param_groups(), lr=1e-3, weight_decay=TrainConfig().weight_decay)


def phase_split(method, images: torch.Tensor, labels: torch.Tensor, batch: int, steps: int,
                device: torch.device) -> tuple[dict[str, float], int]:
    """Median seconds per phase over ``steps`` steps (after one warm-up step), and views per step."""
    tuning = StepTuning(device)
    tuning.model(method)
    method.train()
    optimizer = _optimizer(tuning, method)
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    for step in range(steps + 1):
        idx = torch.randint(len(images), (batch,), generator=gen).to(device)
        t0 = clock(device)
        views, targets = method.make_views(images[idx], labels[idx], gen)
        views = tuning.inputs(views)
        t1 = clock(device)
        with tuning.autocast():
            loss, _ = method(views, targets)
        t2 = clock(device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = clock(device)
        optimizer.step()
        method.after_step(step / (steps + 1))  # a momentum target's update counts with the optimizer's
        t4 = clock(device)
        if step:
            for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[phase].append(seconds)
    return {p: statistics.median(t) for p, t in times.items()}, views.shape[0]


def train_to_end(method, images, labels, config: TrainConfig) -> TrainFinished:
    for event in train(method, images, labels, config):
        if isinstance(event, TrainFinished):
            return event
    raise RuntimeError("core.train.train ended without a TrainFinished event")


def measure_training(table: Table, images: torch.Tensor, labels: torch.Tensor, devices: list[str],
                     plans: dict[tuple[str, str], StepPlan], methods=None) -> dict:
    """images: uint8 (N, 3, R, R) at training resolution; a backbone is measured on the devices it has a plan for."""
    num_classes = int(labels.max()) + 1
    results = {}
    for device_name in devices:
        device = torch.device(device_name)
        on_device = (images.to(device), labels.to(device))
        for backbone in BACKBONES:
            plan = plans.get((backbone, device.type))
            if plan is None:
                continue
            for method_name in methods or method_names():
                key = f"{method_name}/{backbone}/{device.type}"
                config = TrainConfig(method=method_name, backbone=backbone, time_budget=plan.loop_seconds,
                                     batch_size=plan.batch, resolution=images.shape[-1], device=device.type)
                torch.manual_seed(0)
                method = build_method(method_name, backbone, params=config.params, num_classes=num_classes,
                                      view_size=config.view_size)
                split, views = phase_split(method, *on_device, plan.batch, plan.steps, device)
                done = train_to_end(method, images, labels, config)
                step = sum(split.values())
                results[key] = {"batch": plan.batch, "view_px": config.view_size, "views_per_step": views,
                                "seconds_per_step": split,
                                "split_views_per_second": views / step, "loop_views_per_second": done.views_per_second,
                                "loop_steps": done.steps, "loop_seconds": done.seconds}
                shares = " ".join(f"{SHORT[p]} {split[p] / step:.0%}" for p in PHASES)
                table.row(key, done.views_per_second, "views/s",
                          f"loop {done.steps} steps; b={plan.batch} ({views} views of {config.view_size} px): "
                          f"{shares}, {step:.3g} s/step")
    return results


def step_ratios(table: Table, images: torch.Tensor, labels: torch.Tensor, batch: int, rounds: int, steps: int = 3,
                backbone: str = "small-cnn") -> dict:
    """Every method's training step on the CPU, timed in alternation (best of ``rounds`` rounds of ``steps`` steps):
    load that changes during the section hits every method alike, so views/s against SimCLR's can be trusted. On
    the small CNN, SimCLR with its layers in the older order (normalize, then pool) is timed with them."""
    device = torch.device("cpu")
    tuning = StepTuning(device)
    gen = torch.Generator().manual_seed(0)
    setups = {}
    view_size = TrainConfig(resolution=images.shape[-1]).view_size  # as the loop renders them
    older = OLDER_ORDER if backbone == "small-cnn" else None
    for name in (*method_names(), *([older] if older else [])):
        torch.manual_seed(0)
        method = build_method("simclr" if name == older else name, backbone, num_classes=int(labels.max()) + 1,
                              view_size=view_size)
        if name == older:
            method.backbone.arrange(pool_first=False)
        tuning.model(method)
        method.train()
        setups[name] = (method, _optimizer(tuning, method))
    best, views = dict.fromkeys(setups, float("inf")), {}
    for round_ in range(rounds + 1):  # the first round warms up
        for name, (method, optimizer) in setups.items():
            t0 = clock(device)
            for _ in range(steps):
                idx = torch.randint(len(images), (batch,), generator=gen)
                v, targets = method.make_views(images[idx], labels[idx], gen)
                with tuning.autocast():
                    loss, _ = method(tuning.inputs(v), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                method.after_step(0.5)
            if round_:
                best[name] = min(best[name], (clock(device) - t0) / steps)
            views[name] = v.shape[0]
    results = {}
    for name in setups:
        ratio = views[name] / best[name] / (views["simclr"] / best["simclr"])
        results[name] = {"seconds_per_step": best[name], "views_per_second": views[name] / best[name],
                         "images_per_second": batch / best[name], "vs_simclr": ratio}
        table.row(f"{name}/{backbone}/cpu in alternation", ratio, "x simclr",
                  f"{views[name] / best[name]:,.0f} views/s, {batch / best[name]:,.0f} images/s, best of {rounds}")
    return results
