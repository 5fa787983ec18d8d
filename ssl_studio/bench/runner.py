"""Runs the sections in order, prints the table and writes the JSON: the body of `python -m ssl_studio.bench`."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ssl_studio.core.atomic import write_json_atomic
from ssl_studio.core.samples import SHAPES, make_shapes, sample_folder
from ssl_studio.core.transfer import TransferConfig

from .audit import measure_audit
from .augment import VIEW_PX, measure_augment
from . import gpu
from .busy import measure_busy
from .common import Table, cuda_available, load_average, machine
from .elsewhere import measure_elsewhere
from .ingest import measure_ingest
from .projection import measure_projection
from .quality import measure_quality
from .scale import RESOLUTIONS, measure_scale
from .selection import measure_selection
from .training import StepPlan, measure_training, step_ratios
from .transfer import measure_transfer
from .ui import measure_sweep_ui, measure_ui
from .workspace import measure_workspace

SECTIONS = ("ingest", "augment", "train", "busy", "project", "ui", "transfer", "elsewhere", "select", "audit",
            "workspace", "quality", "scale")
# scale generates 100k images the first time and takes minutes more: only when asked for (--only scale).
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "scale")
NEEDS_IMAGES = {"augment", "train", "busy", "ui"}  # these use the folder the ingest section generates


@dataclass(frozen=True)
class Sizes:
    images: int = 5000
    augment_batch: int = 256
    augment_rounds: int = 10
    loader_batches: int = 12
    train: dict = field(default_factory=lambda: {
        ("small-cnn", "cpu"): StepPlan(batch=256, steps=6, loop_seconds=10),
        ("resnet18", "cpu"): StepPlan(batch=64, steps=2, loop_seconds=15),
        ("small-cnn", "cuda"): StepPlan(batch=512, steps=20, loop_seconds=10),
        ("resnet18", "cuda"): StepPlan(batch=512, steps=20, loop_seconds=10),
    })
    ratio_rounds: int = 6  # rounds of the methods' steps timed in alternation (views/s against SimCLR's)
    busy_seconds: float = 20  # training time budget of each run beside another program and quiet
    busy_rounds: int = 2
    umap_points: int = 10_000
    umap_dim: int = 256
    ui_images: int = 5000  # the ingest folder when as large, else a smaller one of its own
    ui_train_seconds: float = 15  # per model (SSL, then the supervised baseline)
    quality_budgets: tuple[float, ...] = (30, 60, 120)
    scale_images: int = 100_000  # generated once, then kept in the system's temp folder (scale_folder.py)
    scale_map_points: int = 100_000  # per map, four maps
    scale_gloo_epochs: int = 3  # SSL training under torchrun with 1, then 2 CPU processes (0: skip)
    transfer_images: int = 10_000
    transfer: TransferConfig = TransferConfig()  # the stage's default settings
    elsewhere_images: int = 10_000  # embedded by `ssl-studio embed`, and the run whose report.html is weighed
    select_images: int = 10_000
    select_budget: int = 100
    audit_images: int = 10_000
    workspace_runs: int = 500


FULL = Sizes()
QUICK = Sizes(images=2000, augment_rounds=5, loader_batches=6, train={
    ("small-cnn", "cpu"): StepPlan(batch=128, steps=2, loop_seconds=2),
    ("resnet18", "cpu"): StepPlan(batch=8, steps=1, loop_seconds=1),
    ("small-cnn", "cuda"): StepPlan(batch=512, steps=10, loop_seconds=5),
    ("resnet18", "cuda"): StepPlan(batch=512, steps=10, loop_seconds=5),
}, ratio_rounds=2, busy_seconds=8, busy_rounds=1, umap_points=5000, umap_dim=128, ui_images=800, ui_train_seconds=5,
   quality_budgets=(), scale_images=20_000, scale_map_points=20_000, transfer_images=2000,
   transfer=TransferConfig(finetune_epochs=(20,)), elsewhere_images=2000)


def run(sizes: Sizes, sections=DEFAULT_SECTIONS, json_path: Path | None = None, table: Table | None = None,
        quick: bool = False) -> dict:
    """Measure the chosen sections in order; a section that fails is reported and the others still run."""
    table = table or Table()
    devices = ["cpu"] + (["cuda"] if cuda_available() else [])
    report: dict = {"machine": machine(), "quick": quick, "sizes": _jsonable(sizes), "skipped": {}, "errors": {},
                    "section_seconds": {}}
    m = report["machine"]
    table.print(f"SSL Studio bench ({'quick' if quick else 'full'}) - {m['cpu_count']} CPUs ({m['cpu_model']}), "
                f"torch {m['torch']} with {m['torch_threads']} threads, devices: {', '.join(devices)}"
                + (f" ({m['cuda']})" if m["cuda"] else ""))
    table.print(f"load average at start {m['load_average']}: above {m['cpu_count']} means other processes competed")
    started = time.perf_counter()
    dataset = None
    with tempfile.TemporaryDirectory(prefix="ssl-studio-bench-") as tmp:
        work = Path(tmp)

        def section(name: str, title: str, measure) -> None:
            table.section(title)
            wall, cpu = time.perf_counter(), _cpu_seconds()
            try:
                measure()
            except Exception as exc:
                traceback.print_exc()
                report["errors"][name] = f"{type(exc).__name__}: {exc}"
                table.row(name, "error", "", report["errors"][name])
            # CPU seconds (this process and its children) barely change when other processes compete; wall does.
            report["section_seconds"][name] = {"wall": time.perf_counter() - wall, "cpu": _cpu_seconds() - cpu}
            table.row(f"({name}: {report['section_seconds'][name]['wall']:.0f} s wall, "
                      f"{report['section_seconds'][name]['cpu']:.0f} s CPU)", "")

        def ingest():
            nonlocal dataset
            report["ingest"], dataset = measure_ingest(table, sizes.images, work)

        def augment():
            report["augment"] = measure_augment(table, dataset.images, sizes.augment_batch, sizes.augment_rounds,
                                                sizes.loader_batches)
            report["augment_speedup_vs_torchvision"] = report["augment"]["speedup_per_core"]

        def train():
            images = F.interpolate(dataset.images.float(), size=VIEW_PX, mode="bilinear", antialias=True)
            images = images.round_().clamp_(0, 255).to(torch.uint8)
            report["train"] = measure_training(table, images, dataset.labels, devices, sizes.train)
            report["train_views_per_second"] = {k: v["loop_views_per_second"] for k, v in report["train"].items()}
            plan = sizes.train[("small-cnn", "cpu")]
            report["train_vs_simclr"] = step_ratios(table, images, dataset.labels, plan.batch, sizes.ratio_rounds)

        def busy():
            report["busy"] = measure_busy(table, dataset.root, sizes.busy_seconds, sizes.busy_rounds)
            report["busy_over_quiet"] = {name: f["busy_over_quiet"] for name, f in report["busy"].items()}

        def project():
            report["projection"] = measure_projection(table, sizes.umap_points, sizes.umap_dim)
            cold, warm = report["projection"]["umap"]["cold"], report["projection"]["umap"]["warm"]
            report["umap_seconds"] = {"cold": cold["import"] + cold["fit"], "warm": warm["fit"]}

        def ui():
            folder = dataset.root
            if sizes.ui_images < len(dataset):
                folder = make_shapes(work / "ui-images", per_class=math.ceil(sizes.ui_images / len(SHAPES)), size=64)
            figures = measure_ui(table, folder, sizes.ui_train_seconds, limit=1200)
            report["ui"] = figures
            report["ui_sweep"] = measure_sweep_ui(table, folder, sizes.ui_train_seconds, limit=1800)
            report["ui_max_gap_ms"] = figures["max_gap_ms"] if figures else None
            report["in_app_over_command_line"] = figures.get("in_app_over_command_line") if figures else None
            if figures is None:
                report["skipped"]["ui"] = "the main window is not available (see the table)"

        def transfer():
            report["transfer"] = measure_transfer(table, sizes.transfer_images, work, sizes.transfer)
            report["transfer_seconds"] = report["transfer"]["seconds"]

        def elsewhere():
            report["elsewhere"] = measure_elsewhere(table, sizes.elsewhere_images, work)

        def select():
            report["select"] = measure_selection(table, sizes.select_images, sizes.select_budget)
            report["select_seconds"] = report["select"]["seconds"]

        def audit():
            report["audit"] = measure_audit(table, sizes.audit_images)
            report["audit_seconds"] = report["audit"]["seconds"]

        def workspace():
            report["workspace"] = measure_workspace(table, sizes.workspace_runs, work)

        def quality():
            if not sizes.quality_budgets:
                table.row("quality per time", "skipped", "", "full run only")
                report["skipped"]["quality"] = "full run only"
                return
            folders = {name: sample_folder(name) for name in ("shapes", "digits")}
            report["quality"] = measure_quality(table, folders, sizes.quality_budgets, work / "quality-cache")

        def scale():
            figures = report["scale"] = measure_scale(table, sizes.scale_images, sizes.scale_map_points,
                                                               gloo_epochs=sizes.scale_gloo_epochs)
            report["scale_ingest"] = {}
            for px in RESOLUTIONS:
                first, reopen = figures[f"ingest_{px}"]["first"], figures[f"ingest_{px}"]["reopen"]
                report["scale_ingest"][px] = {"images_per_second": first["images"] / first["seconds"],
                                              "peak_rss_mb": first["peak_mb"], "reopen_seconds": reopen["seconds"]}
            if "map" in figures:
                report["map_pan_frame_ms"] = figures["map"]["pan_ms_median"]
                report["map_hover_ms"] = figures["map"]["hover_ms_median"]

        steps = {"ingest": ("Ingest", ingest), "augment": ("Augmentation (SimCLR recipe)", augment),
                 "train": ("Training throughput (views/s of core.train.train; phase split timed by hand)", train),
                 "busy": ("Training beside another program (views/s beside one CPU-bound process / quiet)", busy),
                 "project": ("Projection", project), "ui": ("UI responsiveness (main window, offscreen)", ui),
                 "transfer": ("Transfer stage (probe curves and fine-tuning, time added to a run)", transfer),
                 "elsewhere": ("Taking a run elsewhere (embed new images, report.html)", elsewhere),
                 "select": ("Which images to label (core/label_selection, each strategy)", select),
                 "audit": ("The audit of a space (core/audit: duplicates, outliers, wrong labels)", audit),
                 "workspace": ("Runs table (core/workspace: small finished runs listed, then grouped by seed)",
                               workspace),
                 "quality": ("Quality per time (each method's defaults, kNN top-1 on held-out 20%)", quality),
                 "scale": (f"Scale ({sizes.scale_images:,} images; maps of {sizes.scale_map_points:,} points)",
                           scale)}
        wanted = set(sections) | ({"ingest"} if NEEDS_IMAGES & set(sections) else set())
        for name in SECTIONS:
            if name not in wanted:
                continue
            if name in NEEDS_IMAGES and dataset is None:
                table.section(steps[name][0])
                report["skipped"][name] = "no images: the ingest section failed"
                table.row(name, "skipped", "", report["skipped"][name])
                continue
            section(name, *steps[name])

    report["seconds"] = time.perf_counter() - started
    report["load_average_at_end"] = load_average()
    table.print(f"\ndone in {report['seconds']:.0f} s; load average at end {report['load_average_at_end']}")
    if json_path is not None:
        write_json_atomic(json_path, report)
        table.print(f"figures written to {json_path}")
    return report


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _jsonable(sizes: Sizes) -> dict:
    plans = {f"{b}/{d}": vars(p) for (b, d), p in sizes.train.items()}
    return {**{k: v for k, v in vars(sizes).items() if k not in ("train", "transfer")}, "train": plans,
            "transfer": sizes.transfer.to_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssl_studio.bench", description="Measure SSL Studio beside its alternatives, in one process run.")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes: about 3 minutes on 2 cores (scale: 20k images and points, not 100k)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--only", metavar="SECTIONS", help=f"comma-separated subset of: {', '.join(SECTIONS)} "
                                                           "(default: all but scale)")
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU check alone (needs CUDA; about 5 minutes on one GPU): views/s of every method on "
                             "both backbones, an epoch of ResNet-18 SimCLR on 50k 32 px images with torch.compile off "
                             "and on, the demo's time")
    parser.add_argument("--dry-run", action="store_true", help="with --gpu: print its plan and stop (no GPU needed)")
    args = parser.parse_args(argv)
    if args.dry_run and not args.gpu:
        parser.error("--dry-run goes with --gpu")
    if args.gpu:
        if args.only or args.quick:
            parser.error("--gpu runs its own plan: leave out --only and --quick")
        return gpu.main(args.json, args.dry_run)
    sections = DEFAULT_SECTIONS
    if args.only:
        sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown section(s): {', '.join(unknown)} (choose from {', '.join(SECTIONS)})")
    report = run(QUICK if args.quick else FULL, sections, args.json, quick=args.quick)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
