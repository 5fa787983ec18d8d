"""Command line: `ssl-studio inspect`, `ssl-studio run`, and the GUI when given no command.

It drains the same core generators the GUI runs in its workers; only the way progress is shown differs.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from .core.cancel import CancelToken, Cancelled
from .core.checkpoint import CheckpointError
from .core.config import DEVICES, TrainConfig
from .core.data import DataError, LoadProgress, iter_load
from .core.methods import SSL_METHODS
from .core.models import BACKBONES
from .core.pipeline import PipelineFinished, SpaceReady, StageStarted, TrainEvent, run_pipeline
from .core.runs import RunError
from .core.train import TrainFinished, TrainingError

COMMANDS = ("inspect", "run")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssl-studio",
        description="See what self-supervised learning does. With no command (or with a folder) the app opens.")
    sub = parser.add_subparsers(dest="command", required=True)

    inspect = sub.add_parser("inspect", help="list the images, classes and unusable files of a folder")
    inspect.add_argument("data_dir", type=Path)
    inspect.add_argument("--json", action="store_true", help="print a JSON summary instead of text")

    defaults = TrainConfig()
    run = sub.add_parser("run", help="SSL pretraining, supervised baseline, embeddings, maps and metrics")
    run.add_argument("data_dir", type=Path)
    run.add_argument("--out", type=Path, required=True, help="run folder to write (created if missing)")
    run.add_argument("--method", choices=SSL_METHODS, default=defaults.method)
    run.add_argument("--backbone", choices=BACKBONES, default=defaults.backbone)
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help=f"seconds of training per model (default {defaults.time_budget:g})")
    budget.add_argument("--epochs", type=int, help="train for this many epochs instead of a time budget")
    run.add_argument("--batch-size", type=int, default=defaults.batch_size)
    run.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    run.add_argument("--temperature", type=float, default=defaults.temperature, help="InfoNCE temperature")
    run.add_argument("--resolution", type=int, default=defaults.resolution, metavar="PX")
    run.add_argument("--device", choices=DEVICES, default=defaults.device)
    run.add_argument("--seed", type=int, default=defaults.seed)
    run.add_argument("--compile", action="store_true",
                     help="torch.compile the training step: slower to start, faster steps (worth it on a GPU)")
    run.add_argument("--no-umap", action="store_true", help="PCA maps only (faster)")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted run in --out from its last checkpoint, with its own settings")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        from .gui.app import main as gui_main  # Qt only when the app is wanted

        return gui_main(argv)
    args = _parser().parse_args(argv)
    # A file name that is not valid UTF-8 reaches Python as lone surrogates, which a strict UTF-8 terminal
    # refuses; printed as \udcXX escapes instead (valid inside JSON strings too, decoding to the same name).
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        return _inspect(args) if args.command == "inspect" else _run(args)
    except (DataError, RunError, CheckpointError, TrainingError, ValueError) as exc:
        print(f"ssl-studio: error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("ssl-studio: stopped", file=sys.stderr)
        return 130


def _inspect(args) -> int:
    dataset = _load(iter_load(args.data_dir), quiet=args.json)
    summary = {"images": len(dataset), "classes": dataset.class_counts(),
               "skipped": [{"path": s.path, "reason": s.reason} for s in dataset.skipped]}
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    print(f"{dataset.root}: {len(dataset)} images, "
          + (f"{len(dataset.class_names)} classes" if dataset.labeled else "unlabeled (no class subfolders)"))
    for name, count in summary["classes"].items():
        print(f"  {name:<24} {count}")
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} file(s):")
        for s in dataset.skipped:
            print(f"  {s.path}: {s.reason}")
    return 0


def _load(gen, quiet: bool):
    """Drain a loading generator, showing its progress on stderr unless quiet; return its dataset."""
    bar = None
    try:
        while True:
            event = next(gen)
            if not quiet and event.total:
                bar = bar or _bar("loading", event.total)
                bar.n = event.done
                bar.refresh()
    except StopIteration as stop:
        return stop.value
    finally:
        if bar:
            bar.close()


def _bar(desc: str, total: float):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")


def _run(args) -> int:
    time_budget = None if args.epochs is not None else (
        TrainConfig().time_budget if args.time_budget is None else args.time_budget)
    config = TrainConfig(method=args.method, backbone=args.backbone, epochs=args.epochs,
                         time_budget=time_budget, batch_size=args.batch_size, lr=args.lr,
                         temperature=args.temperature, resolution=args.resolution, device=args.device,
                         compile=args.compile, seed=args.seed)
    cancel = CancelToken()
    # Ctrl-C asks the loop to stop at the next step, so the last checkpoint is written before exiting.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    bar, finished = None, None
    try:
        for event in run_pipeline(args.data_dir, args.out, config, cancel=cancel, resume=args.resume,
                                  use_umap=not args.no_umap):
            if isinstance(event, StageStarted):
                if bar:
                    bar.close()
                    bar = None
                print(event.text, file=sys.stderr)
            elif isinstance(event, LoadProgress) and event.total:
                bar = bar or _bar("loading", event.total)
                bar.n = event.done
                bar.refresh()
            elif isinstance(event, TrainEvent) and not isinstance(event.event, TrainFinished):
                p = event.event
                bar = bar or _bar(event.which, 100.0)
                bar.n = round(100 * p.fraction, 1)
                bar.set_postfix(loss=f"{p.loss:.3f}", views_s=f"{p.views_per_second:.0f}",
                                health=f"{p.health:.2f}" if p.health == p.health else "-", refresh=False)
                bar.refresh()
            elif isinstance(event, SpaceReady) and event.metrics:
                print(f"  {event.space:<11} kNN {event.metrics['knn_top1']:.1%}  "
                      f"linear {event.metrics['linear_top1']:.1%}", file=sys.stderr)
            elif isinstance(event, PipelineFinished):
                finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar:
            bar.close()
    if finished is None:
        print(f"ssl-studio: stopped; the last checkpoint is in {args.out} (continue with --resume)", file=sys.stderr)
        return 130
    print(f"done: {finished.run.path}/report.png", file=sys.stderr)
    if "note" in finished.metrics:
        print(finished.metrics["note"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
