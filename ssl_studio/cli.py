"""Command line: `ssl-studio inspect`, `ssl-studio run`, `ssl-studio sweep`, `ssl-studio transfer`, `ssl-studio embed`, `ssl-studio
export`, `ssl-studio select`, `ssl-studio audit`, `ssl-studio runs`, and the GUI when given no command.

It drains the same core generators the GUI runs in its workers; only the way progress is shown differs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import typing
from pathlib import Path

from . import __version__
from .core.audit import audit_run
from .core.cancel import CancelToken, Cancelled
from .core import distributed
from .core.augment import Recipe
from .core.config import DEVICES, Budget, TrainConfig, resolve_device
from .core.curation import Curation
from .core.data import LoadProgress, iter_load
from .core.errors import EXPECTED_ERRORS
from .core.folder_defaults import Given
from .core.label_next import link_folder, pick_from_run, write_csv
from .core.label_selection import STRATEGIES
from .core.methods import default_recipe, method_class, method_names, recipe_presets
from .core.events import (DefaultsChosen, PipelineFinished, SpaceReady, StageStarted, TrainEvent, TransferFinished, TransferPlanned,
                          TransferPoint)
from .core.new_images import embed_folder, write_embedded
from .core.pipeline import run_pipeline, run_transfer
from .core.run_export import FORMATS, ExportProgress, export_run
from .core.runs import AUDIT, CONFIG, CURATION
from .core.schema import described_fields, field_types, fields_by_name, info
from .core.selection_curves import selection_reading
from .core.spaces import SPACES, TITLES, TRAINED_ON_LABELS
from .core.train import TrainFinished
from .core.transfer import FINETUNE_BUDGETS, STARTS, TransferConfig, reading
from .core.sweep import (PlannedRun, Queue, RunEnded, RunStarted, Sweep, SweepError, estimate, expand, parse_vary,
                         run_queue)
from .core.workspace import METRICS, SUMMARY, summarize

COMMANDS = ("inspect", "run", "sweep", "transfer", "embed", "export", "select", "audit", "runs")
TOP = 5  # entries of each list `ssl-studio audit` prints


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssl-studio",
        description="See what self-supervised learning does. With no command (or with a folder) the app opens.",
        epilog="ssl-studio [DATA_DIR | RUN_DIR] opens the app, on that folder of images or run folder if given; "
               "Ctrl-C or kill closes it as its window's close button does. "
               "'ssl-studio COMMAND --help' gives a command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands")

    inspect = sub.add_parser("inspect", help="list the images, classes and unusable files of a folder")
    inspect.add_argument("data_dir", type=Path)
    inspect.add_argument("--json", action="store_true", help="print a JSON summary instead of text")

    run = sub.add_parser("run", help="SSL pretraining, supervised baseline, embeddings, maps and metrics")
    run.add_argument("data_dir", type=Path)
    run.add_argument("--out", type=Path, required=True, help="run folder to write (created if missing)")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted run in --out from its last checkpoint, with its own settings")
    _add_run_flags(run)
    run.add_argument("--curation", type=Path, metavar="CURATION.json",
                     help=f"train on the curated set: the images this file (a run's {CURATION}) excludes are left "
                          f"out, those it relabels count in their new class; {CONFIG} records it")

    sweep = sub.add_parser("sweep", help="many runs, one after another from a queue in the workspace: methods x the "
                                         "values of one or two settings x seeds (the run flags set the rest)",
                           epilog="Runs with the same data, seed and settings but the method's share one supervised "
                                  "baseline, untrained network and pixel space. At the end the groups of runs that "
                                  f"differ only by seed are written to WORKSPACE/{SUMMARY} with their verdict.")
    sweep.add_argument("data_dir", type=Path, nargs="?")
    sweep.add_argument("--out", type=Path, metavar="WORKSPACE", help="folder of the sweep's run folders and queue")
    sweep.add_argument("--methods", type=_names, metavar="M1,M2",
                       help=f"methods to try ({', '.join(method_names(self_supervised=True))}; default --method's)")
    sweep.add_argument("--vary", action="append", default=[], metavar="SETTING=V1,V2",
                       help="a setting and its values (repeat for a second): any training setting, a method's own "
                            "(temperature=0.2,0.5) or the recipe's (flip_p=0,0.5; a pair as crop_scale=0.2:1,0.5:1)")
    sweep.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds of each setting: --seed, --seed + 1, "
                                                                         "... (default 1)")
    sweep.add_argument("--resume", type=Path, metavar="WORKSPACE",
                       help="continue the queue in WORKSPACE (its cancelled run from its checkpoint)")
    sweep.add_argument("--print-commands", action="store_true",
                       help="print one `ssl-studio run` line per run (for a SLURM array or GNU parallel) instead of "
                            f"running them; `ssl-studio runs WORKSPACE` then gathers them (each trains its own "
                            "baselines)")
    _add_run_flags(sweep)

    again = sub.add_parser("transfer", help="the transfer stage alone, on an existing run folder (its images are "
                                            "read again from the data folder it was made from)")
    again.add_argument("run_dir", type=Path)
    again.add_argument("--resume", action="store_true",
                       help="continue interrupted fine-tuning runs from their checkpoints")
    _add_transfer_flags(again)

    embed = sub.add_parser("embed", help="new images embedded with a run's network, decoded as the run decoded its "
                                         "own folder: OUT.npy, one row per usable image, and OUT.csv of their paths")
    embed.add_argument("run_dir", type=Path)
    embed.add_argument("folder", type=Path, help="folder of images (class subfolders give each row a class)")
    embed.add_argument("--out", type=Path, required=True, metavar="FILE.npy", help="array to write (and FILE.csv)")
    embed.add_argument("--space", default="ssl", choices=list(SPACES), help="which network (default ssl)")
    embed.add_argument("--device", default="auto", choices=list(DEVICES), help="where to run it (default auto)")

    export = sub.add_parser("export", help="a run's embeddings for other tools: TensorBoard's projector, FiftyOne, "
                                           "CSV", formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="formats, and how to open them:\n" + "\n".join(
                                f"  {name:<10} {f.title}: {f.opens}" for name, f in FORMATS.items()))
    export.add_argument("run_dir", type=Path)
    export.add_argument("--format", required=True, choices=list(FORMATS))
    export.add_argument("out", type=Path, help="folder to write (created if missing)")

    choose = sub.add_parser("select", help="which images to label next: a strategy's picks in a run's space, among "
                                           "its training split (every image of an unlabeled folder)")
    choose.add_argument("run_dir", type=Path)
    choose.add_argument("--budget", type=int, required=True, metavar="N", help="how many images to label")
    choose.add_argument("--strategy", choices=list(STRATEGIES), default="typical",
                        help="; ".join(f"{name}: {how}" for name, how in STRATEGIES.items()) + " (default typical)")
    choose.add_argument("--space", default="ssl", help="the space whose embeddings choose (default ssl)")
    choose.add_argument("--out", type=Path, required=True, help="CSV file to write: rank, path")
    choose.add_argument("--links", type=Path, metavar="DIR",
                        help="also a folder of the picked images (hard links; copies where links fail)")

    audit = sub.add_parser("audit", help="what each space of a run finds wrong with the images: near-duplicates "
                                         "(and those across the train / held-out split), outliers, likely wrong "
                                         f"labels; written to the run folder's {AUDIT}")
    audit.add_argument("run_dir", type=Path)
    audit.add_argument("--json", action="store_true", help="print the whole audit as JSON instead of the counts and "
                                                           "the top of each list")
    audit.add_argument("--space", action="append", metavar="S",
                       help="audit this space only (repeat for several; default every space of the run)")

    table = sub.add_parser("runs", help=f"the runs of a workspace (a folder of run folders) as a table, and those "
                                        f"differing only by seed grouped with their spread (written to {SUMMARY})")
    table.add_argument("workspace", type=Path)
    table.add_argument("--json", action="store_true", help="print the runs, groups and verdict as JSON")
    return parser


def _add_run_flags(run) -> None:
    """The flags of one run's settings: budget, training, the methods' own, augmentation, maps, transfer."""
    budget = run.add_mutually_exclusive_group()  # the flag given says the unit; with neither, the default budget
    budget_defaults = Budget().config_values()  # time_budget: 120, epochs: None
    for f in described_fields(Budget):
        if f.name in budget_defaults:
            _add_setting(budget, f, field_types(Budget)[f.name], _help(info(f).help, budget_defaults[f.name]))
    _add_settings(run, TrainConfig, choices={"method": method_names(self_supervised=True)}, skip=budget_defaults)
    params = run.add_argument_group("method settings (each applies to the methods named in its help)")
    for name, fields in _method_settings().items():
        methods, f = next(iter(fields)), next(iter(fields.values()))
        defaults = {method: f"{field.default:g}" for method, field in fields.items()}
        said = (f"{', '.join(defaults)}; default {defaults[methods]}" if len(set(defaults.values())) == 1
                else "; ".join(f"{method} default {value}" for method, value in defaults.items()))
        _add_setting(params, f, field_types(method_class(methods).Params)[name], f"{info(f).help} ({said})")
    recipe = run.add_argument_group("augmentation (the method's own recipe, or --recipe's; each flag changes one "
                                    "setting of it)")
    recipe.add_argument("--recipe", choices=list(recipe_presets()), help="start from this recipe (the Augment "
                                                                          "page's presets)")
    _add_settings(recipe, Recipe, defaults=False)
    run.add_argument("--no-umap", action="store_true", help="PCA maps only (faster)")
    run.add_argument("--no-transfer", action="store_true",
                     help="skip the transfer stage (accuracy against the number of labels, and fine-tuning)")
    _add_transfer_flags(run.add_argument_group("transfer stage"))


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _numbers(kind: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}")
    return parse


def _add_transfer_flags(group) -> None:
    budgets = group.add_mutually_exclusive_group()  # the first of FINETUNE_BUDGETS given applies: one flag of them
    for f in described_fields(TransferConfig):
        kind = field_types(TransferConfig)[f.name]
        _add_setting(budgets if f.name in FINETUNE_BUDGETS else group, f, kind, _help(info(f).help, f.default))


def transfer_config_from_args(args) -> TransferConfig:
    return TransferConfig(**_given(args, TransferConfig))


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
        return {"inspect": _inspect, "run": _run, "sweep": _sweep, "transfer": _transfer, "embed": _embed,
                "export": _export, "select": _select, "audit": _audit, "runs": _runs}[args.command](args)
    except EXPECTED_ERRORS as exc:
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
    _print_skipped(dataset.skipped, sys.stdout)
    return 0


def _runs(args) -> int:
    return _show_workspace(args.workspace, args.json)


def _show_workspace(workspace: Path, as_json: bool) -> int:
    """The runs table, the groups and the verdict (summarize writes them to the workspace's summary.json)."""
    rows, summary = summarize(workspace)
    if as_json:
        print(json.dumps({"runs": [row.to_dict() for row in rows], **summary}, indent=2, ensure_ascii=False))
        return 0
    spaces = sorted({space for row in rows for space in row.scores},  # the built-in spaces first, in their order
                    key=lambda space: (SPACES.index(space) if space in SPACES else len(SPACES), space))
    print(f"{workspace}: {len(rows)} run(s)")
    header = ["run", "state", "method", "backbone", "recipe", "budget", "seed", "date", "train s", "views/s",
              *(f"{space} kNN/lin" for space in spaces), "1% transfer"]
    lines = [header] + [[
        row.name, row.state, *(_cell(v) for v in (row.method, row.backbone, row.recipe, row.budget, row.seed,
                                                   row.date, row.seconds, row.views_per_second)),
        *(_pair(row.scores.get(space)) for space in spaces), _percent(row.transfer_1pct)] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    for row in rows:
        if row.reason:
            print(f"{row.name}: {row.reason}")
    for group in summary["groups"]:
        settings = ", ".join(f"{k}={v}" for k, v in group["settings"].items()) or "(one group)"
        print(f"\n{settings}: {', '.join(group['runs'])}")
        for name in METRICS:
            if name in group["metrics"]:
                m = group["metrics"][name]
                std = f" ± {m['std']:.1%}" if m["std"] is not None else ""
                print(f"  {name:<14} {m['mean']:.1%}{std}  ({', '.join(f'{v:.1%}' for v in m['values'])})")
    print(f"\n{summary['verdict']}")
    return 0


def _cell(value) -> str:
    return "-" if value is None else str(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _pair(score: dict | None) -> str:
    return "-" if not score else f"{_percent(score.get('knn_top1'))}/{_percent(score.get('linear_top1'))}"


def _print_skipped(skipped, file) -> None:
    if skipped:
        print(f"skipped {len(skipped)} file(s):", file=file)
        for s in skipped:
            print(f"  {s.path}: {s.reason}", file=file)


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


def _add_setting(parser, f, kind: type, help: str, choices=None) -> None:
    """One flag for a described setting; its value stays None unless given, so the dataclass keeps its default."""
    meta = info(f)
    flag = _flag(f)
    if meta.group:  # "Up to ± this factor." says what it changes only beside its group's name
        help = f"{meta.group}: {help[:1].lower()}{help[1:]}"
    help = help.replace("%", "%%")  # argparse formats help with %
    if kind is bool:
        parser.add_argument(flag, action="store_true", default=None, help=help)
    elif typing.get_origin(kind) is tuple:  # comma-separated numbers
        each = typing.get_args(kind)
        metavar = "MIN,MAX" if Ellipsis not in each else ("N,..." if each[0] is int else "X,...")
        parser.add_argument(flag, type=_numbers(each[0]), default=None, help=help, metavar=metavar)
    else:
        parser.add_argument(flag, type=kind, choices=choices, default=None, help=help,
                            metavar=None if choices else f.name.upper())


def _flag(f) -> str:
    return "--" + (info(f).flag or f.name.replace("_", "-"))


def _dest(f) -> str:
    return (info(f).flag or f.name).replace("-", "_")


def _help(text: str, default) -> str:
    """A setting's help and, when it has one, its default as the flag would be written."""
    if default is None or isinstance(default, bool):
        return text
    shown = ",".join(f"{v:g}" for v in default) if isinstance(default, tuple) else (
        f"{default:g}" if isinstance(default, (int, float)) else default)
    return f"{text} (default {shown})"


def _add_settings(parser, cls, choices: dict[str, list[str]] | None = None, skip=(), defaults: bool = True) -> None:
    """A flag for each described field of ``cls`` but those in ``skip``; ``defaults``: say each field's own."""
    types = field_types(cls)
    for f in described_fields(cls):
        if f.name in skip:
            continue
        meta = info(f)
        options = (choices or {}).get(f.name) or (list(meta.choices()) if meta.choices else None)
        _add_setting(parser, f, types[f.name], _help(meta.help, f.default if defaults else None), options)


def _given(args, cls, skip=()) -> dict:
    """The described fields of ``cls`` whose flags were given, by field name."""
    return {f.name: getattr(args, _dest(f)) for f in described_fields(cls)
            if f.name not in skip and getattr(args, _dest(f), None) is not None}


def _method_settings() -> dict[str, dict[str, object]]:
    """Every self-supervised method's own settings by name: each method that has it, with its field. Methods
    share a name only with the same label, help and range (one flag); their defaults may differ."""
    found: dict[str, dict[str, object]] = {}
    for method in method_names(self_supervised=True):
        for f in described_fields(method_class(method).Params):
            found.setdefault(f.name, {})[method] = f
    return found


def _general_config(args) -> TrainConfig:
    """The TrainConfig of the flags but the method's own settings."""
    budget = Budget.given(args.time_budget, args.epochs)
    return TrainConfig(**_given(args, TrainConfig, skip=budget.config_values()), **budget.config_values())


def _params_given(args) -> dict:
    return {name: getattr(args, name) for name in _method_settings() if getattr(args, name) is not None}


def config_from_args(args) -> TrainConfig:
    """The TrainConfig the flags describe; a method setting given for a method without it is refused."""
    config, params = _general_config(args), _params_given(args)
    own = {f.name for f in described_fields(config.params)}
    if set(params) - own:
        flags = ", ".join("--" + name.replace("_", "-") for name in sorted(set(params) - own))
        raise ValueError(f"{flags} does not apply to --method {config.method}")
    return config.replace(params=config.params.from_dict({**config.params.to_dict(), **params},
                                                         f"{config.method} method"))


def given_from_args(args) -> Given:
    """The settings the flags chose, which the folder's defaults leave as they are."""
    return Given(frozenset(_given(args, TrainConfig)), frozenset(_given(args, Recipe)), args.recipe is not None)


def defaults_text(chosen: DefaultsChosen, given: Given) -> str:
    """The folder's choice as `ssl-studio run` prints it: the facts, each reason, and what a flag kept instead."""
    defaults = chosen.defaults
    lines = [f"Defaults for this folder ({defaults.facts.describe()}):"]
    lines += [f"  {reason}" for reason in defaults.reasons()] or ["  the method's own settings suit it."]
    folder = {**{f"train.{k}": v for k, v in defaults.train_changes.items()},
              **{f"recipe.{k}": v for k, v in defaults.recipe_changes.items()}}
    for setting in chosen.kept:
        kind, name = setting.split(".", 1)
        f = fields_by_name(TrainConfig if kind == "train" else Recipe)[name]
        flag = "--recipe" if kind == "recipe" and name not in given.recipe else "--" + (
            info(f).flag or name.replace("_", "-"))
        lines.append(f"  {flag} given: it wins over the folder's {info(f).title.lower()} {folder[setting]:g}.")
    return "\n".join(lines)


def recipe_from_args(args, method: str) -> Recipe | None:
    """The recipe the flags describe (``method``'s own, or --recipe's, with the flags' changes); None when no flag
    touches it."""
    given = _given(args, Recipe)
    if args.recipe is None and not given:
        return None
    return (recipe_presets()[args.recipe] if args.recipe else default_recipe(method)).replace(**given)


class _Progress:
    """Shows a pipeline's events on stderr: a line per stage, a progress bar, the figures as they come."""

    def __init__(self, given: Given | None = None) -> None:
        self.given = given or Given()
        self.bar = None
        self.finished: PipelineFinished | None = None
        self.transfer: TransferFinished | None = None

    def close_bar(self) -> None:
        if self.bar:
            self.bar.close()
            self.bar = None

    def show(self, event) -> None:
        if isinstance(event, StageStarted):
            self.close_bar()
            print(event.text, file=sys.stderr)
        elif isinstance(event, DefaultsChosen):
            self.close_bar()
            print(defaults_text(event, self.given), file=sys.stderr)
        elif isinstance(event, LoadProgress) and event.total:
            self.bar = self.bar or _bar("loading", event.total)
            self.bar.n = event.done
            self.bar.refresh()
        elif isinstance(event, TrainEvent) and not isinstance(event.event, TrainFinished):
            p = event.event
            self.bar = self.bar or _bar(event.which, 100.0)
            self.bar.n = round(100 * p.fraction, 1)
            self.bar.set_postfix(loss=f"{p.loss:.3f}", views_s=f"{p.views_per_second:.0f}",
                                 health=f"{p.health:.2f}" if p.health == p.health else "-", refresh=False)
            self.bar.refresh()
        elif isinstance(event, SpaceReady) and event.metrics:
            print(f"  {event.space:<11} kNN {event.metrics['knn_top1']:.1%}  "
                  f"linear {event.metrics['linear_top1']:.1%}", file=sys.stderr)
        elif isinstance(event, TransferPlanned):
            self.bar = _bar("probes", event.probes + event.selections)
        elif isinstance(event, TransferPoint) and event.probe == "knn" and self.bar:
            self.bar.update(1)  # one kNN and one linear point per space and fraction
        elif isinstance(event, TransferPoint) and event.kind == "finetune":
            self.close_bar()
            p = event.point
            print(f"  fine-tuned {STARTS[event.curve]}: {p['top1']:.1%} with {p['labels']} labels "
                  f"({p['steps']} steps, {p['seconds']:.0f} s)", file=sys.stderr)
        elif isinstance(event, PipelineFinished):
            self.finished = event
        elif isinstance(event, TransferFinished):
            self.transfer = event
            titles = {**TITLES, **event.transfer.get("titles", {})}
            for sentence in (reading(event.transfer, titles, saw_labels=TRAINED_ON_LABELS),
                             selection_reading(event.transfer, titles)):
                if sentence:
                    print(sentence, file=sys.stderr)


def _drain(events, progress: _Progress, cancel: CancelToken, quiet: bool = False) -> None:
    # Ctrl-C asks the loop to stop at the next step, so the last checkpoint is written before exiting.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        for event in events:
            if not quiet:
                progress.show(event)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close_bar()


def _run(args) -> int:
    config = config_from_args(args)
    recipe = recipe_from_args(args, config.method)
    settings = transfer_config_from_args(args)
    given = given_from_args(args)
    curation = Curation.read(args.curation) if args.curation is not None else None
    cancel, progress = CancelToken(), _Progress(given)
    # Under torchrun: join its process group; the other processes train and stay quiet, rank 0 reports.
    distributed.init_from_env(resolve_device(config.device))
    rank = distributed.world()[0]
    try:
        _drain(run_pipeline(args.data_dir, args.out, config, recipe, cancel=cancel, resume=args.resume,
                            use_umap=not args.no_umap, transfer=settings, curation=curation,
                            skip=("transfer",) if args.no_transfer else (), given=given), progress, cancel,
               quiet=rank > 0)
    except Cancelled:
        pass
    finally:
        distributed.shutdown()
    if rank:
        return 130 if cancel.cancelled else 0
    finished = progress.finished
    if finished is None or cancel.cancelled:
        print(f"ssl-studio: stopped; the last checkpoint is in {args.out} (continue with --resume)", file=sys.stderr)
        return 130
    print(f"done: {finished.run.report_path}", file=sys.stderr)
    if "note" in finished.metrics:
        print(finished.metrics["note"], file=sys.stderr)
    return 0


def sweep_from_args(args) -> Sweep:
    """The sweep the flags describe, every run's settings checked (SweepError naming a bad one)."""
    config = _general_config(args)
    methods = args.methods or (config.method,)
    recipe = recipe_presets()[args.recipe] if args.recipe else None
    return Sweep(args.data_dir, config, methods, tuple(parse_vary(text, methods) for text in args.vary), args.seeds,
                 _params_given(args), recipe, _given(args, Recipe),
                 None if args.no_transfer else transfer_config_from_args(args), not args.no_umap,
                 given=given_from_args(args))


def run_command(data_dir: Path, out: Path, run: PlannedRun, transfer: TransferConfig | None,
                use_umap: bool) -> list[str]:
    """`ssl-studio run` with the flags that give this run's settings (those not at their defaults)."""
    config, method = run.config, run.config.method
    words = ["ssl-studio", "run", str(data_dir), "--out", str(out)]
    budget = ("epochs", config.epochs) if config.epochs is not None else ("time_budget", config.time_budget)
    given = run.given or Given()  # flagged even at their defaults: the folder's choice leaves them as they are
    words += _flags(TrainConfig, {**config.to_dict(), "params": None}, TrainConfig(method=method).to_dict(),
                    keep={"method", *given.train}, skip={"params", "epochs", "time_budget"})
    words += [_flag(fields_by_name(TrainConfig)[budget[0]]), _text(budget[1])]
    words += _flags(config.params, config.params.to_dict(), type(config.params)().to_dict())
    words += _flags(Recipe, run.recipe.to_dict(), default_recipe(method).to_dict(),
                    keep=fields_by_name(Recipe) if given.whole_recipe else given.recipe)
    if transfer is None:
        words.append("--no-transfer")
    else:
        words += _flags(TransferConfig, transfer.to_dict(), TransferConfig().to_dict())
    if not use_umap:
        words.append("--no-umap")
    return words


def _flags(cls, values: dict, defaults: dict, keep=(), skip=()) -> list[str]:
    words = []
    for name, f in fields_by_name(cls).items():
        value = values[name]
        if name in skip or (value == defaults[name] and name not in keep) or value is None or value is False:
            continue
        words += [_flag(f)] if value is True else [_flag(f), _text(value)]
    return words


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _sweep(args) -> int:
    if args.resume is not None:
        if args.data_dir is not None or args.out is not None:
            raise SweepError("--resume WORKSPACE continues the queue there with its own settings: give no data "
                             "folder and no --out")
        return _run_queue(args.resume)
    if args.data_dir is None or args.out is None:
        raise SweepError("give a data folder and --out WORKSPACE (or --resume WORKSPACE)")
    sweep = sweep_from_args(args)
    runs = expand(sweep)
    if args.print_commands:
        for run in runs:
            words = run_command(args.data_dir.resolve(), (args.out / run.name).resolve(), run, sweep.transfer,
                                sweep.use_umap)
            print(shlex.join(words))
        print(f"{len(runs)} run(s); each line trains its own baselines. `ssl-studio runs {args.out}` gathers "
              "the results as they land there.", file=sys.stderr)
        return 0
    resolution = sweep.config.resolution if "resolution" in sweep.given.train else None  # as its runs decode it
    dataset = _load(iter_load(args.data_dir, resolution), quiet=False)  # a bad folder stops it here
    print(estimate(runs, sweep, labeled=dataset.labeled and len(dataset.class_names) >= 2).text(), file=sys.stderr)
    Queue(args.out).add(sweep, runs)
    return _run_queue(args.out)


def _run_queue(workspace: Path) -> int:
    cancel, progress = CancelToken(), _Progress()
    failed = []

    def shown(events):
        for event in events:
            if isinstance(event, RunStarted):
                progress.close_bar()
                print(f"\n[{event.number}] {event.name}" + (" (resumed)" if event.resumed else "")
                      + f", {event.left} more queued", file=sys.stderr)
            elif isinstance(event, RunEnded) and event.state == "failed":
                progress.close_bar()
                failed.append(event)
                print(f"{event.name} failed: {event.reason}; the queue goes on", file=sys.stderr)
            yield event
    try:
        _drain(shown(run_queue(workspace, cancel=cancel)), progress, cancel)
    except Cancelled:
        pass
    if cancel.cancelled:
        print(f"ssl-studio: stopped; the current run keeps its checkpoint and the rest stay queued (continue with "
              f"`ssl-studio sweep --resume {workspace}`)", file=sys.stderr)
        return 130
    print(file=sys.stderr)
    _show_workspace(workspace, as_json=False)
    for event in failed:
        print(f"failed: {event.name}: {event.reason}", file=sys.stderr)
    return 1 if failed else 0


def _transfer(args) -> int:
    settings = transfer_config_from_args(args)
    cancel, progress = CancelToken(), _Progress()
    try:
        _drain(run_transfer(args.run_dir, settings, cancel=cancel, resume=args.resume), progress, cancel)
    except Cancelled:
        pass
    if progress.transfer is None or cancel.cancelled:
        print(f"ssl-studio: stopped; continue with `ssl-studio transfer {args.run_dir} --resume`", file=sys.stderr)
        return 130
    if "error" not in progress.transfer.transfer:
        run = progress.transfer.run
        print(f"done: {run.transfer_path}, {run.report_path}", file=sys.stderr)
    return 0


def _embed(args) -> int:
    from .api import open_run

    run = open_run(args.run_dir)
    if args.out.suffix != ".npy":  # refused before the folder is decoded
        raise ValueError(f"--out {args.out} must end in .npy")
    embedded = _load(embed_folder(run.loaded, args.folder, args.space, args.device), quiet=False)
    out, rows = write_embedded(embedded, args.out)
    _print_skipped(embedded.skipped, sys.stderr)
    print(f"done: {len(embedded.paths)} images embedded in the {args.space} space of {run.path}: "
          f"{out} ({embedded.features.shape[0]} x {embedded.features.shape[1]}), paths in {rows}", file=sys.stderr)
    return 0


def _export(args) -> int:
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    bar, shown = None, None
    gen = export_run(args.run_dir, args.format, args.out, cancel=cancel)
    try:
        while True:
            event = next(gen)
            what = "exporting" if isinstance(event, ExportProgress) else "loading"
            if event.total:
                if what != shown:  # reading the run's images (for the sprite sheet), then writing the export
                    if bar:
                        bar.close()
                    bar, shown = _bar(what, event.total), what
                bar.total, bar.n = event.total, event.done
                bar.refresh()
    except StopIteration as stop:
        out = stop.value
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar:
            bar.close()
    print(f"done: {FORMATS[args.format].title} export in {out}; open it with "
          f"{FORMATS[args.format].opens.replace('OUT', str(out))}", file=sys.stderr)
    return 0


def _select(args) -> int:
    picks = pick_from_run(args.run_dir, args.budget, args.strategy, args.space)
    write_csv(args.out, picks.files)
    print(f"done: {len(picks.files)} images to label next ({args.strategy}, in the {args.space} space) in "
          f"{args.out}", file=sys.stderr)
    if args.links:
        copied = link_folder(args.links, picks.files)
        print(f"      and in {args.links}" + (f" ({copied} copied: no link possible)" if copied else ""),
              file=sys.stderr)
    return 0


def _audit(args) -> int:
    found = audit_run(args.run_dir, args.space)
    if args.json:
        print(json.dumps(found, indent=1, ensure_ascii=False))
        return 0
    if found["no_label_audit"]:
        print(f"no label audit: {found['no_label_audit']}")
    for space, lists in found["spaces"].items():
        print(f"{space}: {len(lists['duplicates'])} near-duplicate pairs ({len(lists['leaks'])} across the split), "
              f"{len(lists['outliers'])} outliers" + ("" if found["no_label_audit"] else
                                                       f", {len(lists['mislabeled'])} likely wrong labels"))
        for a, b in lists["duplicates"][:TOP]:
            print(f"  duplicate  {a}  {b}" + ("  (across the split)" if [a, b] in lists["leaks"] else ""))
        for path in lists["outliers"][:TOP]:
            print(f"  outlier    {path}")
        for path in lists["mislabeled"][:TOP]:
            print(f"  label?     {path}  (neighbours say {lists['suggested'][path]})")
    print(f"done: the whole audit, most suspicious first, in {args.run_dir / AUDIT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
