"""The GPU check, `python -m ssl_studio.bench --gpu`: what one GPU does with the loop, in about 5 minutes.

Rows: views/s of every method on both backbones (core.train.train with a short time budget; on CUDA its steps run
in channels_last with bf16 autocast, StepTuning), an epoch of ResNet-18 SimCLR on 50,000 generated 32 px images
with torch.compile off and on (two epochs each: the first pays for warm-up and compiling, the second is the
figure), and the demo's own settings (core/demo.py) through the whole pipeline, timed by stage. Without CUDA it
refuses; ``--dry-run`` prints the plan anywhere. Training speed does not depend on what the pixels show, so the
50,000 images are seeded noise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ssl_studio.core import demo
from ssl_studio.core.atomic import write_json_atomic
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.events import StageStarted
from ssl_studio.core.methods import build_method, method_names
from ssl_studio.core.models import BACKBONES
from ssl_studio.core.pipeline import run_pipeline
from ssl_studio.core.samples import make_shapes, sample_folder
from ssl_studio.core.train import StepTuning, TrainFinished, train
from ssl_studio.core.transfer import TransferConfig

from .common import Table, cuda_available, machine


@dataclass(frozen=True)
class GpuPlan:
    batch: int = 512
    step_seconds: float = 3.0  # the loop's time budget for each method on each backbone
    images: int = 50_000
    px: int = 32
    compile: bool = True  # the epochs again with torch.compile
    demo_folder: str | None = None  # the demo's Shapes sample when None
    demo_epochs: int | None = None  # the demo's own when None
    demo_umap: bool = True
    demo_transfer: TransferConfig = demo.TRANSFER

    def rows(self) -> list[str]:
        """What will be measured, in order."""
        rows = [f"{m}/{b}: views/s, {self.step_seconds:g} s at batch {self.batch}" for b in BACKBONES
                for m in method_names()]
        rows += [f"simclr/resnet18: 2 epochs of {self.images:,} images at {self.px} px, torch.compile "
                 f"{'off' if not compiled else 'on'}" for compiled in ((False, True) if self.compile else (False,))]
        rows.append(f"the demo ({demo.CONFIG.epochs if self.demo_epochs is None else self.demo_epochs} epochs of "
                    f"{self.demo_folder or demo.SAMPLE}, SSL and supervised, maps with "
                    f"{'UMAP' if self.demo_umap else 'PCA'}, transfer curves)")
        return rows

    def estimate_seconds(self) -> float:
        """A rough bound, so the plan can be checked against 5 minutes: setup per method, compiling ~60 s,
        the demo ~100 s (UMAP's first compile in a fresh process on the GPU machine's CPU)."""
        methods = len(method_names()) * len(BACKBONES) * (self.step_seconds + 1.5)
        return methods + 20 + (80 if self.compile else 0) + (100 if self.demo_umap else 40)


PLAN = GpuPlan()


def no_gpu_reason() -> str | None:
    if cuda_available():
        return None
    return (f"--gpu needs a CUDA GPU, and torch {torch.__version__} sees none (torch.cuda.is_available() is False; "
            f"built for CUDA {torch.version.cuda or '-'}). `--gpu --dry-run` prints the plan without one.")


def print_plan(table: Table, plan: GpuPlan) -> None:
    table.section(f"GPU check plan (about {plan.estimate_seconds() / 60:.1f} min on one GPU)")
    for row in plan.rows():
        table.print(f"  {row}")


def main(json_path: Path | None, dry_run: bool, table: Table | None = None) -> int:
    """The plan, then (unless ``dry_run``) its figures; 2 without a GPU, with the reason."""
    table = table or Table()
    print_plan(table, PLAN)
    if dry_run:
        return 0
    reason = no_gpu_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    report = {"machine": machine(), "gpu": measure_gpu(table, PLAN)}
    if json_path is not None:
        write_json_atomic(json_path, report)
        table.print(f"figures written to {json_path}")
    return 0


def measure_gpu(table: Table, plan: GpuPlan = PLAN, device: str = "cuda") -> dict:
    """Every row of the plan on ``device`` (the tests run a tiny plan on the CPU)."""
    tuning = StepTuning(torch.device(device))
    table.section(f"GPU check on {torch.cuda.get_device_name(0) if device == 'cuda' else device}: "
                  f"channels_last {tuning.channels_last}, bf16 autocast {tuning.bf16}")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (plan.images, 3, plan.px, plan.px), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (plan.images,), generator=gen)
    figures: dict = {"plan": asdict(plan), "device": device, "channels_last": tuning.channels_last,
                     "bf16": tuning.bf16, "views_per_second": {}, "epoch_seconds": {}}
    for backbone in BACKBONES:
        for name in method_names():
            config = TrainConfig(method=name, backbone=backbone, time_budget=plan.step_seconds,
                                 batch_size=plan.batch, resolution=plan.px, device=device)
            done = _train(config, images, labels)
            figures["views_per_second"][f"{name}/{backbone}"] = done.views_per_second
            table.row(f"{name}/{backbone}", done.views_per_second, "views/s", f"{done.steps} steps")
    for compiled in (False, True) if plan.compile else (False,):
        config = TrainConfig(method="simclr", backbone="resnet18", epochs=2, time_budget=None, batch_size=plan.batch,
                             resolution=plan.px, device=device, compile=compiled)
        first, second = _epoch_seconds(_train(config, images, labels))
        key = f"compile {'on' if compiled else 'off'}"
        figures["epoch_seconds"][key] = {"first": first, "second": second}
        table.row(f"simclr/resnet18 epoch, {plan.images:,} x {plan.px} px, {key}", second, "s",
                  f"the first epoch {first:.1f} s (warm-up{', compiling' if compiled else ''})")
    figures["demo"] = _demo(table, plan, device)
    return figures


def _train(config: TrainConfig, images: torch.Tensor, labels: torch.Tensor) -> TrainFinished:
    torch.manual_seed(0)
    method = build_method(config.method, config.backbone, params=config.params, num_classes=10,
                          view_size=config.view_size)
    return next(e for e in train(method, images, labels, config) if isinstance(e, TrainFinished))


def _epoch_seconds(done: TrainFinished) -> tuple[float, float]:
    """The first and second epochs' seconds of a 2-epoch run, from its history ([step, elapsed, loss] per report);
    exact to a report's interval (0.25 s)."""
    half = done.steps // 2
    at_half = next(elapsed for step, elapsed, _ in done.history if step >= half)
    return at_half, done.seconds - at_half


def _demo(table: Table, plan: GpuPlan, device: str) -> dict:
    config = replace(demo.CONFIG, device=device,
                     epochs=demo.CONFIG.epochs if plan.demo_epochs is None else plan.demo_epochs)
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ssl-studio-gpu-demo-") as tmp:
        folder = Path(plan.demo_folder) if plan.demo_folder else sample_folder(demo.SAMPLE)
        started = last = time.perf_counter()
        stage = "load"
        for event in run_pipeline(folder, Path(tmp) / "run", config, demo.RECIPE, use_umap=plan.demo_umap,
                                  transfer=plan.demo_transfer):
            if isinstance(event, StageStarted):
                now = time.perf_counter()
                stages[stage] = stages.get(stage, 0.0) + now - last
                stage, last = event.name, now
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - last
    total = now - started
    table.row("the demo's settings, start to finish", total, "s",
              ", ".join(f"{name} {seconds:.1f}" for name, seconds in stages.items()))
    return {"seconds": total, "stages": stages}


def tiny_plan(work: Path) -> GpuPlan:
    """The plan at sizes a CPU runs in seconds: what the tests use to check the rows' bookkeeping."""
    folder = make_shapes(work / "demo-shapes", per_class=4, size=32)
    return GpuPlan(batch=8, step_seconds=0.2, images=64, px=16, compile=False, demo_folder=str(folder),
                   demo_epochs=1, demo_umap=False, demo_transfer=TransferConfig(fractions=(0.5, 1.0), repeats=1,
                                                                                finetune_fractions=(0.5,),
                                                                                finetune_steps=(1,)))
