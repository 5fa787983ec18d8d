"""The whole experiment as a short list of stages, each a generator of events over one shared Experiment.

    load -> train (SSL, then the supervised baseline) -> embed -> score -> color -> audit -> project -> report
    -> transfer

The command line drives them all through ``run_pipeline``; the app runs ``train_models`` (the train stage),
``compare`` (embed to report) and ``transfer`` (accuracy against the number of labels) as three background jobs.
All write and read the same run folder (runs.py), so a run made in one opens in the other; what each stage yields is
in events.py. A new stage is one entry of ``STAGES`` (ARCHITECTURE.md, "Adding a stage").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import time

import numpy as np
import torch

from .. import __version__
from . import distributed
from .audit import audit_spaces
from .augment import Recipe
from .cancel import CancelToken
from .coloring import MAX_CLUSTERS, Coloring, cluster_ids
from .config import TrainConfig, resolve_device
from .curation import Curation, curate
from .data import ImageDataset, LoadProgress, iter_load
from .evaluate import evaluate_space, split_indices
from .events import (ClustersReady, DefaultsChosen, PipelineFinished, ProjectionReady, SpaceReady, StageStarted,
                     TrainEvent, TrainingPlanned, TransferFinished, TransferPlanned, TransferPoint)
from .folder_defaults import FolderFacts, Given, choose
from .label_selection import STRATEGIES
from .map_history import MapHistory, MapRecorder, MapSnapshot
from .methods import build_method, default_recipe
from .project import PROJECTIONS, UmapProgress, pca_2d
from .report import render_report
from .runs import RunError, RunFolder, Settings, finetune_name
from .selection_curves import SELECTION_SPACE, selection_curves, selection_fractions
from .spaces import BUILT_IN, SPACES, TITLES, SpaceInputs, load_backbone, run_spaces
from .train import TrainingError, TrainProgress, train
from .transfer import STARTS, TransferConfig, finetune, finetune_config, label_subset, probe_points
from .umap_process import UMAP


@dataclass
class LoadedRun:
    run: RunFolder
    config: TrainConfig
    recipe: Recipe
    data_root: Path
    paths: list[str]
    labels: np.ndarray | None
    class_names: list[str]
    embeddings: dict[str, np.ndarray]
    projections: dict[tuple[str, str], np.ndarray]
    metrics: dict
    history: dict[str, list]
    map_history: MapHistory | None = None
    clusters: np.ndarray | None = None  # an unlabeled run's k-means colors
    transfer: dict = field(default_factory=dict)  # the transfer curves, checked; {} when the run has none


@dataclass
class Experiment:
    """What the stages share: the inputs, and what each stage leaves for the next."""

    dataset: ImageDataset
    run: RunFolder
    config: TrainConfig
    recipe: Recipe
    cancel: CancelToken = field(default_factory=CancelToken)
    resume: bool = False
    use_umap: bool = True
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)
    coloring: Coloring | None = None  # what the maps are colored by
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # the latest projection of each space
    transfer: TransferConfig = field(default_factory=TransferConfig)
    audit_seconds: float | None = None  # how long the audit stage took, for metrics.json
    # A run of the same data, seed and baseline settings (a sweep's sibling) whose baselines this one takes.
    baselines: RunFolder | None = None
    shared: set[str] = field(default_factory=set)  # the spaces whose embedding (and maps) come from ``baselines``

    @property
    def split(self) -> dict:
        return self.run.read_split(len(self.dataset))

    @property
    def labels(self) -> np.ndarray | None:
        return self.dataset.labels.numpy() if self.dataset.labeled else None


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Experiment], Iterator]


@dataclass(frozen=True)
class ModelPlan:
    """One model the train stage trains: its checkpoint name, settings and augmentations."""

    which: str
    config: TrainConfig
    recipe: Recipe


def prepare_run(dataset: ImageDataset, out_dir: str | Path, config: TrainConfig, recipe: Recipe,
                defaults: dict | None = None, curation: Curation | None = None) -> RunFolder:
    """Create the run folder and record what the run is made of: settings (``defaults``, what was chosen from
    the folder, and the ``curation`` that made ``dataset`` a curated set, if any), images, evaluation split."""
    if len(dataset) < 2:  # refused before anything is written, so no empty run is left for the app to open
        raise TrainingError(f"training needs at least 2 images, and {dataset.root} has only {len(dataset)} "
                            "usable image")
    run = RunFolder.create(out_dir)
    labels = dataset.labels.numpy() if dataset.labeled else None
    split = None
    if labels is not None and len(dataset.class_names) < 2:
        # Every prediction would be right: 100% would only mislead, and a classifier has nothing to learn.
        split = {"error": f"the folder has only one class ({dataset.class_names[0]}); with nothing to tell apart "
                          "there is no supervised baseline either. Add one subfolder per class"}
    elif labels is not None:
        try:
            train_idx, test_idx = split_indices(labels, seed=config.seed)
            split = {"train": train_idx.tolist(), "test": test_idx.tolist()}
        except ValueError as exc:
            split = {"error": str(exc)}
    run.write_settings(dataset.root, dataset.resolution, config, recipe, __version__, defaults, curation)
    run.write_dataset(dataset.paths, labels, dataset.class_names, [vars(s) for s in dataset.skipped])
    run.write_split(split or {"error": "unlabeled folder: there are no labels to evaluate against"})
    return run


def planned_models(dataset: ImageDataset, split: dict, config: TrainConfig, recipe: Recipe) -> list[ModelPlan]:
    """SSL on the folder; then, when it has two classes or more and a held-out split, the supervised baseline
    with the same budget."""
    plans = [ModelPlan("ssl", config, recipe)]
    if dataset.labeled and "train" in split and len(dataset.class_names) >= 2:
        plans.append(ModelPlan("supervised", config.replace(method="supervised"), default_recipe("supervised")))
    return plans


def baseline_key(data_root: str | Path, config: TrainConfig) -> str:
    """What the baselines depend on: the data folder and the supervised baseline's settings (every training
    setting but the method's own; the untrained network and the pixels need less). Runs with one key share them."""
    return json.dumps([str(Path(data_root).resolve()), config.replace(method="supervised").to_dict()],
                      sort_keys=True)


def _baseline_source(exp: Experiment) -> RunFolder | None:
    """``exp.baselines`` when it was made from the same images, split and baseline settings, else None."""
    source = exp.baselines
    if source is None:
        return None
    try:
        stored = source.read_settings()
        same = baseline_key(stored.data_root, stored.config) == baseline_key(exp.dataset.root, exp.config) \
            and source.read_dataset().paths == exp.dataset.paths \
            and source.read_split(len(exp.dataset)) == exp.split
    except RunError:
        return None
    return source if same else None


def _same_weights(run: RunFolder, source: RunFolder, which: str) -> bool:
    """Whether the two runs' ``which`` checkpoints are one (shared), or neither has one (a space of no weights)."""
    try:
        return run.checkpoint_meta(which) == source.checkpoint_meta(which)
    except RunError:
        return False


def _finished(run: RunFolder, which: str) -> bool:
    try:
        return bool((run.checkpoint_meta(which) or {}).get("finished"))
    except RunError:
        return False


def train_stage(exp: Experiment) -> Iterator[TrainingPlanned | StageStarted | TrainEvent | MapSnapshot]:
    """Each planned model, on the training split only."""
    split = exp.split
    # Rows, not a copy: the images may be a memory-mapped cache of a large folder.
    idx = torch.tensor(split["train"]) if "train" in split else torch.arange(len(exp.dataset))
    plans = planned_models(exp.dataset, split, exp.config, exp.recipe)
    yield TrainingPlanned(tuple(plan.which for plan in plans))
    source = _baseline_source(exp)
    for plan in plans:
        if exp.resume and _finished(exp.run, plan.which):
            continue
        if plan.which != "ssl" and source is not None and _finished(source, plan.which):
            exp.run.share_checkpoint(source, plan.which)
            yield StageStarted(plan.which, f"{TITLES[plan.which]} baseline shared with {source.path.name} (same "
                                           "data, seed and settings): not trained again")
            continue
        # The SSL map forming: snapshots of a fixed subset between steps (0.3 s every 4 s on 2 cores, outside the
        # time budget: core/train.py leaves its consumer's time out).
        recorder = MapRecorder(exp.dataset.images, exp.labels, split, exp.config.seed,
                               resolve_device(exp.config.device),
                               exp.run.read_map_history(len(exp.dataset)) if exp.resume else None) \
            if plan.which == "ssl" else None
        yield StageStarted(plan.which, f"Training {TITLES[plan.which].lower()} ({plan.config.method}, "
                                       f"{plan.config.backbone}) on {len(idx)} images")
        torch.manual_seed(plan.config.seed)
        method = build_method(plan.config.method, plan.config.backbone, plan.recipe, params=plan.config.params,
                              num_classes=len(exp.dataset.class_names) or None, view_size=plan.config.view_size)
        for event in train(method, exp.dataset.images, exp.dataset.labels, plan.config, rows=idx,
                           cancel=exp.cancel, checkpoint_path=exp.run.checkpoint(plan.which), resume=exp.resume,
                           extra_meta={"class_names": exp.dataset.class_names}):
            yield TrainEvent(plan.which, event)
            if recorder and isinstance(event, TrainProgress) and recorder.due(event.elapsed):
                yield recorder.take(method.backbone, event.step, event.elapsed)
        if recorder:
            exp.run.write_map_history(recorder.history)
        if exp.cancel.cancelled:
            return


def embed_stage(exp: Experiment) -> Iterator[StageStarted]:
    yield StageStarted("embed", "Computing embeddings")
    inputs = SpaceInputs(exp.dataset.images, exp.run, exp.config, resolve_device(exp.config.device))
    source = _baseline_source(exp)
    shared = {space.name for space in BUILT_IN if space.baseline} if source is not None else set()
    for space in run_spaces(exp.run):
        exp.cancel.raise_if_cancelled()
        if space.name in shared and source.exists(source.embedding_name(space.name)) \
                and _same_weights(exp.run, source, space.name):
            exp.run.share_embedding(source, space.name)
            exp.embeddings[space.name] = exp.run.embeddings([space.name], len(exp.dataset))[space.name]
            exp.shared.add(space.name)
            continue
        x = space.compute(inputs)
        if x is not None:
            exp.embeddings[space.name] = x


def score_stage(exp: Experiment) -> Iterator[StageStarted | SpaceReady]:
    yield StageStarted("score", "Scoring each space with kNN and a linear probe")
    split = exp.split
    source = _baseline_source(exp) if exp.shared else None
    # A shared space is the same embedding on the same split: its sibling's scores are what scoring would give.
    scored = source.read_metrics().get("embeddings", {}) if source is not None else {}
    for space, x in exp.embeddings.items():
        exp.cancel.raise_if_cancelled()
        if space not in exp.shared:  # a linked file stays one file on disk
            exp.run.save_embedding(space, x)
        shared = space in exp.shared and isinstance(scored.get(space), dict)
        score = scored[space] if shared else _score_space(split, x, exp.labels)
        if score is not None:
            exp.scores[space] = score
        yield SpaceReady(space, x, score)


def _score_space(split: dict, x: np.ndarray, labels) -> dict | None:
    if "train" not in split:
        return None
    return evaluate_space(x, labels, np.asarray(split["train"]), np.asarray(split["test"]))


def _map_space(run: RunFolder, space: str, x: np.ndarray, kind: str, seed: int,
               cancel: CancelToken) -> Generator[UmapProgress, None, np.ndarray]:
    if kind == "pca":
        coords = pca_2d(x, seed=seed)
    else:
        coords = yield from UMAP.fit(x, cancel=cancel, label=space)  # UmapProgress events meanwhile
    run.save_projection(space, kind, coords)
    return coords


def color_stage(exp: Experiment) -> Iterator[StageStarted | ClustersReady]:
    """The maps' colors: the classes, or in an unlabeled folder k-means clusters, stored for the run's reopening."""
    if exp.labels is not None:
        exp.coloring = Coloring.by_class(exp.labels, exp.dataset.class_names)
        return
    yield StageStarted("color", "Clustering the images to color the maps (the folder has no labels)")
    clusters = cluster_ids(exp.embeddings, exp.config.seed)
    exp.run.save_clusters(clusters)
    exp.coloring = Coloring.by_cluster(clusters)
    yield ClustersReady(clusters)


def audit_stage(exp: Experiment) -> Iterator[StageStarted]:
    """Every space's audit (near-duplicates, outliers, likely wrong labels), written to audit.json."""
    yield StageStarted("audit", "Auditing each space: near-duplicates, outliers, likely wrong labels")
    start = time.perf_counter()
    split = exp.run.held_out_split(len(exp.dataset))
    clusters = exp.coloring.ids if exp.labels is None and exp.coloring else None
    exp.run.write_audit(audit_spaces(exp.embeddings, exp.dataset.paths, exp.labels, exp.dataset.class_names,
                                     clusters, split[1] if split else None, exp.cancel))
    exp.audit_seconds = round(time.perf_counter() - start, 2)


def project_stage(exp: Experiment) -> Iterator[StageStarted | UmapProgress | ProjectionReady]:
    yield StageStarted("project", "Drawing the maps (PCA now, UMAP next)")
    source = _baseline_source(exp) if exp.shared else None
    for kind in PROJECTIONS if exp.use_umap else ("pca",):
        for space, x in exp.embeddings.items():
            exp.cancel.raise_if_cancelled()
            if space in exp.shared and source.exists(source.projection_name(space, kind)):
                # The same embedding and seed: the sibling's map, as this run would draw it.
                exp.run.share_projection(source, space, kind)
                exp.maps[space] = exp.run.projections([space], [kind], len(exp.dataset))[space, kind]
            else:
                exp.maps[space] = yield from _map_space(exp.run, space, x, kind, exp.config.seed, exp.cancel)
            yield ProjectionReady(space, kind, exp.maps[space])


def report_stage(exp: Experiment) -> Iterator[StageStarted | PipelineFinished]:
    yield StageStarted("report", "Writing metrics and the report")
    dataset, run, split, labels = exp.dataset, exp.run, exp.split, exp.labels
    metrics = {
        "dataset": {"images": len(dataset), "classes": dataset.class_counts(), "skipped": len(dataset.skipped)},
        "embeddings": exp.scores,
        "train": {w: f for w in SPACES if (f := _train_figures(run, w)) is not None},
        "projection": "umap" if exp.use_umap else "pca",
        "audit_seconds": exp.audit_seconds,
    }
    if "error" in split:
        metrics["note"] = f"No accuracies: {split['error']}."
    run.write_metrics(metrics)
    space_titles = {space.name: space.title for space in run_spaces(run)}
    titles = {s: _title(space_titles[s], exp.scores.get(s)) for s in exp.maps}
    note = None if labels is not None else "Unlabeled folder: colored by k-means cluster of the SSL embedding."
    if labels is not None and "error" in split:
        note = metrics["note"]
    run.write_report(lambda tmp: render_report(tmp, exp.maps, exp.coloring.ids, exp.coloring.names,
                                                           titles, note=note))
    yield PipelineFinished(run, metrics)


def transfer_stage(exp: Experiment) -> Iterator[StageStarted | TransferPlanned | TransferPoint | TrainEvent
                                                 | TransferFinished]:
    """Accuracy against the number of labels: probes on each space's frozen features, then fine-tuning."""
    split, dataset, run, settings = exp.split, exp.dataset, exp.run, exp.transfer
    if "train" not in split:
        why = {"error": f"no transfer stage: {split['error']}"}
        run.write_transfer(why)
        yield StageStarted("transfer", why["error"][0].upper() + why["error"][1:] + ".")
        yield TransferFinished(run, why)
        return
    if not exp.embeddings:
        exp.embeddings = run.embeddings([s.name for s in run_spaces(run)], len(dataset))
    if not exp.embeddings:  # stopped before its comparison (or made before embeddings were kept): embed now
        yield from embed_stage(exp)
    yield StageStarted("transfer", "Measuring accuracy against the number of labels")
    labels, seed = exp.labels, exp.config.seed
    train_idx, test_idx = np.asarray(split["train"]), np.asarray(split["test"])
    starts = [s for s in STARTS if s != "ssl" or run.checkpoint("ssl").exists()]
    plan = [(k, f, s) for k, f in enumerate(settings.finetune_fractions) for s in starts]
    selecting = SELECTION_SPACE in exp.embeddings
    yield TransferPlanned(len(exp.embeddings) * len(settings.fractions),
                          tuple(finetune_name(s, f) for _, f, s in plan),
                          len(STRATEGIES) * len(selection_fractions(settings.fractions)) if selecting else 0)
    titles = {s.name: s.title for s in run_spaces(run) if s.name in exp.embeddings}
    result = {"classes": len(dataset.class_names), "train_images": len(train_idx), "test_images": len(test_idx),
              "seed": seed, "settings": settings.to_dict(), "titles": titles, "probe": {}, "finetune": {}}
    scored = exp.scores or run.read_metrics().get("embeddings", {})
    for fraction in settings.fractions:  # fraction by fraction, so every curve grows from the fewest labels on
        for space, x in exp.embeddings.items():
            exp.cancel.raise_if_cancelled()
            for probe, point in probe_points(x, labels, train_idx, test_idx, fraction, seed=seed,
                                             repeats=settings.repeats, scored=scored.get(space)).items():
                event = TransferPoint("probe", space, probe, point)
                event.add_to(result)
                yield event
    if selecting:  # which images to label, chosen in the SSL space, on the same curve
        result["selection_space"] = SELECTION_SPACE
        for strategy, probe, point in selection_curves(exp.embeddings[SELECTION_SPACE], labels, train_idx, test_idx,
                                                       settings.fractions, seed=seed, repeats=settings.repeats):
            exp.cancel.raise_if_cancelled()
            event = TransferPoint("selection", strategy, probe, point)
            event.add_to(result)
            yield event
    ssl_backbone = load_backbone(run, "ssl", exp.config.backbone).state_dict() if "ssl" in starts else None
    images, label_tensor = dataset.images, dataset.labels
    for k, fraction, start in plan:
        subset = label_subset(labels, train_idx, fraction, seed)
        name = finetune_name(start, fraction)
        yield StageStarted(name, f"Fine-tuning {STARTS[start]} on {fraction:.0%} of the labels ({len(subset)} "
                                 "images)")
        config = finetune_config(exp.config, settings, k, len(subset))
        events = finetune(images, label_tensor, subset, test_idx, config, len(dataset.class_names), ssl_backbone,
                          start, checkpoint_path=run.checkpoint(name), cancel=exp.cancel, resume=exp.resume,
                          meta={"fraction": fraction})
        point = yield from _as_train_events(name, events)
        if point is None:  # cancelled: the checkpoint stays, and resuming continues it
            exp.cancel.raise_if_cancelled()
        event = TransferPoint("finetune", start, "finetune", point)
        event.add_to(result)
        yield event
    run.write_transfer(result)
    _report_with_curves(exp, result, scored)
    yield TransferFinished(run, result)


def _as_train_events(which: str, events: Iterator):
    """Yield a training generator's events as TrainEvents; return what it returns."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        yield TrainEvent(which, event)


def _report_with_curves(exp: Experiment, transfer: dict, scored: dict) -> None:
    """report.png again, the transfer curves under the maps (the maps from disk when another job drew them)."""
    run, n = exp.run, len(exp.dataset)
    spaces = {s.name: s for s in run_spaces(run)}
    # UMAP over PCA where there are both: PROJECTIONS lists them in that order, and the later key wins.
    maps = exp.maps or {space: coords for (space, _), coords in run.projections(spaces, PROJECTIONS, n).items()}
    if not maps:
        return
    titles = {s: _title(spaces[s].title, scored.get(s)) for s in maps}
    run.write_report(lambda tmp: render_report(tmp, maps, exp.labels, exp.dataset.class_names, titles,
                                               transfer=transfer, spaces=spaces))


STAGES: tuple[Stage, ...] = (
    Stage("train", train_stage),
    Stage("embed", embed_stage),
    Stage("score", score_stage),
    Stage("color", color_stage),
    Stage("audit", audit_stage),
    Stage("project", project_stage),
    Stage("report", report_stage),
    Stage("transfer", transfer_stage),
)
TRAINING = ("train",)
COMPARISON = ("embed", "score", "color", "audit", "project", "report")
TRANSFER = ("transfer",)


def run_stages(exp: Experiment, names: tuple[str, ...]) -> Iterator:
    """The named stages in pipeline order; a cancelled experiment stops between stages."""
    for stage in STAGES:
        if stage.name in names:
            if exp.cancel.cancelled:
                return
            yield from stage.run(exp)


def train_models(dataset: ImageDataset, run: RunFolder, config: TrainConfig, recipe: Recipe, *,
                 cancel: CancelToken | None = None,
                 resume: bool = False) -> Iterator[TrainingPlanned | StageStarted | TrainEvent]:
    """The app's training job: SSL pretraining on the training split, then the supervised baseline."""
    yield from run_stages(Experiment(dataset, run, config, recipe, cancel or CancelToken(), resume), TRAINING)


def compare(dataset: ImageDataset, run: RunFolder, *, cancel: CancelToken | None = None,
            use_umap: bool = True) -> Iterator[StageStarted | SpaceReady | ClustersReady | UmapProgress
                                               | ProjectionReady | PipelineFinished]:
    """The app's comparison job: embed every image in each space, score, color, map, write it all."""
    settings = run.read_settings()
    exp = Experiment(dataset, run, settings.config, settings.recipe, cancel or CancelToken(), use_umap=use_umap)
    exp.cancel.raise_if_cancelled()
    yield from run_stages(exp, COMPARISON)


def transfer(dataset: ImageDataset, run: RunFolder, settings: TransferConfig | None = None, *,
             cancel: CancelToken | None = None,
             resume: bool = False) -> Iterator[StageStarted | TransferPlanned | TransferPoint | TrainEvent
                                               | TransferFinished]:
    """The transfer stage alone, on a run folder (the app's third job, and `ssl-studio transfer RUN_DIR`)."""
    stored = run.read_settings()
    if run.read_dataset().paths != dataset.paths:
        raise RunError(f"the images in {dataset.root} are not the ones the run in {run.path} used")
    exp = Experiment(dataset, run, stored.config, stored.recipe, cancel or CancelToken(), resume,
                     transfer=settings or TransferConfig())
    exp.cancel.raise_if_cancelled()
    yield from run_stages(exp, TRANSFER)


def as_trained(dataset: ImageDataset, stored: Settings) -> ImageDataset:
    """A saved run's data folder, read again, curated as the run was (CurationError when it no longer can be)."""
    curation = Curation.recorded(stored.curation)
    return dataset if curation is None else curate(dataset, curation)


def run_transfer(out_dir: str | Path, settings: TransferConfig | None = None, *, cancel: CancelToken | None = None,
                 resume: bool = False) -> Iterator:
    """The transfer stage on an existing run folder, any made since runs had a format, its images read again from
    the data folder its settings name."""
    cancel = cancel or CancelToken()
    run = RunFolder.open(out_dir)
    stored = run.read_settings()
    yield StageStarted("load", f"Loading {stored.data_root}")
    dataset = yield from iter_load(stored.data_root, stored.config.resolution, cancel=cancel)
    yield from transfer(as_trained(dataset, stored), run, settings, cancel=cancel, resume=resume)


def _train_figures(run: RunFolder, which: str) -> dict | None:
    meta = run.checkpoint_meta(which)
    if meta is None:
        return None
    return {"seconds": round(meta["elapsed"], 2), "steps": meta["step"],
            "views_per_second": round(meta.get("views_per_second", 0.0), 1), "finished": meta["finished"]}


def _title(title: str, score: dict | None) -> str:
    if not score:
        return title
    return f"{title}: kNN {score['knn_top1']:.1%}, linear {score['linear_top1']:.1%}"


def compare_imported(run: RunFolder, space: str, *, cancel: CancelToken | None = None,
                     use_umap: bool = True) -> Iterator[SpaceReady | UmapProgress | ProjectionReady]:
    """Score and map one space a person just imported into a finished run (spaces.import_space), adding its
    figures to the run's metrics, without computing the others again."""
    cancel = cancel or CancelToken()
    config = run.read_settings().config
    stored = run.read_dataset()
    n = len(stored.paths)
    x = run.load_imported(space, n)
    run.save_embedding(space, x)
    score = _score_space(run.read_split(n), x, stored.labels)
    yield SpaceReady(space, x, score)
    for kind in PROJECTIONS if use_umap else ("pca",):
        cancel.raise_if_cancelled()
        coords = yield from _map_space(run, space, x, kind, config.seed, cancel)
        yield ProjectionReady(space, kind, coords)
    metrics = run.read_metrics()
    if score is not None:
        metrics.setdefault("embeddings", {})[space] = score
        run.write_metrics(metrics)


def run_pipeline(data_dir: str | Path, out_dir: str | Path, config: TrainConfig, recipe: Recipe | None = None, *,
                 cancel: CancelToken | None = None, resume: bool = False, use_umap: bool = True,
                 transfer: TransferConfig | None = None, skip: tuple[str, ...] = (),
                 given: Given | None = None, curation: Curation | None = None,
                 baselines: RunFolder | None = None,
                 ) -> Iterator[StageStarted | LoadProgress | DefaultsChosen | TrainEvent | SpaceReady | ProjectionReady
                               | PipelineFinished]:
    """Everything, start to finish, less the stages named in ``skip``, on the folder's images with ``curation``'s
    marks applied when given. With ``resume`` an existing run folder's own settings (and curation) are used.
    With ``given`` (what the person chose) the settings they did not choose are the folder's
    (core/folder_defaults.py): its resolution, recipe and training settings, said in a DefaultsChosen event.
    ``baselines``: a run folder whose supervised baseline, untrained network and pixel space this run takes (linked,
    not trained again) when it was made from the same data, seed and baseline settings.

    Under torchrun every process trains; rank 0 alone decodes first (the others then read its cache), writes the
    run folder and runs the stages after training.
    """
    cancel = cancel or CancelToken()
    rank, world = distributed.world()
    if resume:
        stored = RunFolder.open(out_dir).read_settings()
        config, recipe = stored.config, stored.recipe
        curation = Curation.recorded(stored.curation)
    recipe = recipe or default_recipe(config.method)
    yield StageStarted("load", f"Loading {data_dir}")
    if rank:
        distributed.barrier()  # wait until rank 0 has decoded (and cached) the folder and written the run folder
    from_folder = given is not None and not resume
    resolution = None if from_folder and "resolution" not in given.train else config.resolution
    dataset = yield from iter_load(data_dir, resolution, cancel=cancel)
    if curation is not None:
        dataset = curate(dataset, curation)
    chosen = None
    if from_folder:
        defaults = choose(FolderFacts.of(dataset))
        config, recipe, kept = defaults.apply(config, recipe, given)
        config = config.replace(resolution=dataset.resolution)
        chosen = defaults.to_dict(kept)
        yield DefaultsChosen(defaults, tuple(kept))
    run = None
    if rank == 0:
        run = RunFolder.open(out_dir) if resume else prepare_run(dataset, out_dir, config, recipe, chosen, curation)
        distributed.barrier()  # the others load now
    distributed.barrier()  # every process has its images
    run = run or RunFolder.open(out_dir)
    if resume and run.read_dataset().paths != dataset.paths:
        raise RunError(f"the images in {data_dir} changed since the run in {out_dir} started; "
                       "start a new run instead of resuming")
    exp = Experiment(dataset, run, config, recipe, cancel, resume, use_umap, transfer=transfer or TransferConfig(),
                     baselines=baselines)
    if world > 1 and "transfer" not in skip:  # rank 0 runs the stages after training alone: no process group there
        skip = (*skip, "transfer")
        if rank == 0:
            yield StageStarted("transfer", f"No transfer stage under torchrun: run `ssl-studio transfer {out_dir}` "
                                           "after it")
    stages = tuple(stage.name for stage in STAGES if stage.name not in skip)
    yield from run_stages(exp, stages if rank == 0 else TRAINING)


def open_run(path: str | Path) -> LoadedRun:
    """Read a finished (or partly finished) run folder back, validating every file against the others."""
    run = RunFolder.open(path)
    settings = run.read_settings()
    stored = run.read_dataset()
    n = len(stored.paths)
    names = [space.name for space in run_spaces(run)]
    embeddings = run.embeddings(names, n)
    history = {which: curve for which in SPACES if (curve := run.loss_curve(which)) is not None}
    clusters = run.read_clusters(n, below=MAX_CLUSTERS)
    if clusters is None and stored.labels is None and embeddings.keys() & {"ssl", "pixels"}:
        clusters = cluster_ids(embeddings, settings.config.seed)  # made before clusters were stored: the same k-means
    return LoadedRun(run, settings.config, settings.recipe, settings.data_root, stored.paths, stored.labels,
                     stored.class_names, embeddings, run.projections(names, PROJECTIONS, n), run.read_metrics(),
                     history, run.read_map_history(n), clusters, run.read_transfer(names))
