"""The whole experiment as generators of events: folder -> SSL + supervised training -> four spaces -> maps.

The command line drains ``run_pipeline``; the GUI runs ``train_models`` and ``compare`` as separate jobs. Both write
and read the same run folder (see runs.py), so a run made in one opens in the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from .augment import Recipe
from .cancel import CancelToken
from .checkpoint import CheckpointError, load_checkpoint, load_state_into
from .config import TrainConfig, resolve_device
from .data import ImageDataset, LoadProgress, iter_load
from .embed import SPACES, embed, pixel_features
from .evaluate import evaluate_space, kmeans_labels, split_indices
from .methods import build_method, default_recipe
from .models import build_backbone
from .project import pca_2d, umap_2d
from .report import render_report
from .runs import FORMAT, RunError, RunFolder
from .train import TrainFinished, TrainingError, TrainProgress, train

SPACE_TITLES = {"ssl": "Self-supervised", "supervised": "Supervised", "untrained": "Untrained network",
                "pixels": "Raw pixels"}


@dataclass(frozen=True)
class StageStarted:
    name: str  # load, ssl, supervised, embed, evaluate, project, report
    text: str


@dataclass(frozen=True)
class TrainEvent:
    which: str  # "ssl" or "supervised"
    event: TrainProgress | TrainFinished


@dataclass(frozen=True)
class SpaceReady:
    space: str
    embedding: np.ndarray
    metrics: dict | None


@dataclass(frozen=True)
class ProjectionReady:
    space: str
    kind: str  # "pca" or "umap"
    coords: np.ndarray


@dataclass(frozen=True)
class PipelineFinished:
    run: RunFolder
    metrics: dict


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


def _seeded(seed: int):
    torch.manual_seed(seed)
    return seed


def prepare_run(dataset: ImageDataset, out_dir: str | Path, config: TrainConfig, recipe: Recipe) -> RunFolder:
    """Create the run folder and record what the run is made of: settings, images, evaluation split."""
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
    run.write_json("config.json", {
        "format": FORMAT, "version": __version__,
        "data": {"root": str(dataset.root), "resolution": dataset.resolution},
        "train": config.to_dict(), "recipe": recipe.to_dict()})
    run.write_json("dataset.json", {
        "paths": dataset.paths, "labels": labels.tolist() if labels is not None else None,
        "class_names": dataset.class_names, "skipped": [vars(s) for s in dataset.skipped]})
    run.write_json("split.json", split or {"error": "unlabeled folder: there are no labels to evaluate against"})
    return run


def _read_split(run: RunFolder, n: int) -> dict:
    """split.json, checked: indices that are not whole numbers in range would crash training or scoring."""
    split = run.read_json("split.json")
    if "train" in split and not all(isinstance(part, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in part)
            for part in (split["train"], split.get("test"))):
        raise RunError(f"split.json in {run.path} is not valid (train and test must list image numbers "
                       f"from 0 to {n - 1})")
    return split


def _train_indices(run: RunFolder, n: int) -> torch.Tensor:
    split = _read_split(run, n)
    return torch.tensor(split["train"]) if "train" in split else torch.arange(n)


def _has_baseline(dataset: ImageDataset, run: RunFolder) -> bool:
    return dataset.labeled and "train" in _read_split(run, len(dataset)) and len(dataset.class_names) >= 2


def _finished(path: Path) -> bool:
    try:
        return bool(load_checkpoint(path, with_tensors=False)[1].get("finished"))
    except CheckpointError:
        return False


def train_models(dataset: ImageDataset, run: RunFolder, config: TrainConfig, recipe: Recipe, *,
                 cancel: CancelToken | None = None, resume: bool = False) -> Iterator[StageStarted | TrainEvent]:
    """SSL pretraining on the training split, then the supervised baseline with the same budget when labeled."""
    cancel = cancel or CancelToken()
    idx = _train_indices(run, len(dataset))
    images = dataset.images[idx]
    labels = dataset.labels[idx] if dataset.labeled else None
    jobs = [("ssl", config, recipe)]
    if _has_baseline(dataset, run):
        jobs.append(("supervised", config.replace(method="supervised"), default_recipe("supervised")))
    for which, job_config, job_recipe in jobs:
        path = run.checkpoint(which)
        if resume and _finished(path):
            continue
        yield StageStarted(which, f"Training {SPACE_TITLES[which].lower()} ({job_config.method}, "
                                  f"{job_config.backbone}) on {len(images)} images")
        _seeded(job_config.seed)
        method = build_method(job_config.method, job_config.backbone, job_recipe,
                              num_classes=len(dataset.class_names) or None, temperature=job_config.temperature,
                              view_size=job_config.view_size)
        for event in train(method, images, labels, job_config, cancel=cancel, checkpoint_path=path,
                           resume=resume, extra_meta={"class_names": dataset.class_names}):
            yield TrainEvent(which, event)
        if cancel.cancelled:
            return


def load_backbone(run: RunFolder, which: str, backbone_name: str) -> torch.nn.Module:
    tensors, meta = load_checkpoint(run.checkpoint(which))
    backbone = build_backbone(backbone_name)
    prefix = "model.backbone."
    load_state_into(backbone, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                    f"{which} backbone")
    return backbone


def _train_figures(run: RunFolder, which: str) -> dict | None:
    if not run.checkpoint(which).exists():
        return None
    meta = load_checkpoint(run.checkpoint(which), with_tensors=False)[1]
    return {"seconds": round(meta["elapsed"], 2), "steps": meta["step"],
            "views_per_second": round(meta.get("views_per_second", 0.0), 1), "finished": meta["finished"]}


def _embed_in_memory(backbone, images, device, space: str) -> np.ndarray:
    """Embed, retrying with smaller batches when the device runs out of memory (no setting for the user to lower)."""
    batch = 512
    while True:
        try:
            return embed(backbone, images, batch_size=batch, device=device)
        except torch.OutOfMemoryError as exc:
            if batch <= 8:
                raise TrainingError(f"the device ran out of memory computing the {space} embeddings, even {batch} "
                                    "images at a time; free memory on it or run on the CPU (--device cpu)") from exc
            batch //= 4
            if device.type == "cuda":
                torch.cuda.empty_cache()


def compare(dataset: ImageDataset, run: RunFolder, *, cancel: CancelToken | None = None,
            use_umap: bool = True) -> Iterator[StageStarted | SpaceReady | ProjectionReady | PipelineFinished]:
    """Embed every image in each space, score the spaces on the held-out split, map them to 2-D, write it all."""
    cancel = cancel or CancelToken()
    config = _stored_settings(run)[0]
    device = resolve_device(config.device)
    split = _read_split(run, len(dataset))
    labels = dataset.labels.numpy() if dataset.labeled else None

    yield StageStarted("embed", "Computing embeddings")
    spaces: dict[str, np.ndarray] = {}
    for space in SPACES:
        cancel.raise_if_cancelled()
        if space == "pixels":
            spaces[space] = pixel_features(dataset.images)
            continue
        if space == "untrained":
            _seeded(config.seed)  # the same initial weights the SSL run started from
            backbone = build_backbone(config.backbone)
        elif run.checkpoint(space).exists():
            backbone = load_backbone(run, space, config.backbone)
        else:
            continue
        spaces[space] = _embed_in_memory(backbone.to(device), dataset.images, device, space)

    yield StageStarted("evaluate", "Scoring each space with kNN and a linear probe")
    scores = {}
    for space, x in spaces.items():
        cancel.raise_if_cancelled()
        run.save_array(run.embedding_name(space), x)
        if "train" in split:
            scores[space] = evaluate_space(x, labels, np.asarray(split["train"]), np.asarray(split["test"]))
        yield SpaceReady(space, x, scores.get(space))

    yield StageStarted("project", "Drawing the maps (PCA now, UMAP next)")
    maps = {}
    for kind in ("pca", "umap") if use_umap else ("pca",):
        for space, x in spaces.items():
            cancel.raise_if_cancelled()
            maps[space] = pca_2d(x, seed=config.seed) if kind == "pca" else umap_2d(x, cancel=cancel)
            run.save_array(run.projection_name(space, kind), maps[space])
            yield ProjectionReady(space, kind, maps[space])

    yield StageStarted("report", "Writing metrics and the report")
    metrics = {
        "dataset": {"images": len(dataset), "classes": dataset.class_counts(), "skipped": len(dataset.skipped)},
        "embeddings": scores,
        "train": {w: f for w in ("ssl", "supervised") if (f := _train_figures(run, w)) is not None},
        "projection": "umap" if use_umap else "pca",
    }
    if "error" in split:
        metrics["note"] = f"No accuracies: {split['error']}."
    run.write_json("metrics.json", metrics)
    colors = labels if labels is not None else kmeans_labels(spaces.get("ssl", spaces["pixels"]),
                                                             n_clusters=min(8, len(dataset)), seed=config.seed)
    names = dataset.class_names or [f"cluster {i + 1}" for i in range(int(colors.max()) + 1)]
    titles = {s: _title(s, scores.get(s)) for s in maps}
    note = None if labels is not None else "Unlabeled folder: colored by k-means cluster of the SSL embedding."
    if labels is not None and "error" in split:
        note = metrics["note"]
    run.write_with("report.png", lambda tmp: render_report(tmp, maps, colors, names, titles, note=note))
    yield PipelineFinished(run, metrics)


def _title(space: str, score: dict | None) -> str:
    if not score:
        return SPACE_TITLES[space]
    return f"{SPACE_TITLES[space]}: kNN {score['knn_top1']:.1%}, linear {score['linear_top1']:.1%}"


def run_pipeline(data_dir: str | Path, out_dir: str | Path, config: TrainConfig, recipe: Recipe | None = None, *,
                 cancel: CancelToken | None = None, resume: bool = False,
                 use_umap: bool = True) -> Iterator[StageStarted | LoadProgress | TrainEvent | SpaceReady
                                                    | ProjectionReady | PipelineFinished]:
    """Everything, start to finish. With ``resume`` an existing run folder's own settings are used."""
    cancel = cancel or CancelToken()
    if resume:
        config, recipe, _ = _stored_settings(RunFolder.open(out_dir))
    recipe = recipe or default_recipe(config.method)
    yield StageStarted("load", f"Loading {data_dir}")
    dataset = yield from iter_load(data_dir, config.resolution, cancel=cancel)
    run = RunFolder.open(out_dir) if resume else prepare_run(dataset, out_dir, config, recipe)
    if resume and run.read_json("dataset.json").get("paths") != dataset.paths:
        raise RunError(f"the images in {data_dir} changed since the run in {out_dir} started; "
                       "start a new run instead of resuming")
    yield from train_models(dataset, run, config, recipe, cancel=cancel, resume=resume)
    if cancel.cancelled:
        return
    yield from compare(dataset, run, cancel=cancel, use_umap=use_umap)


def _stored_settings(run: RunFolder) -> tuple[TrainConfig, Recipe, Path]:
    stored = run.read_json("config.json")
    try:
        return (TrainConfig.from_dict(stored["train"]), Recipe.from_dict(stored["recipe"]),
                Path(stored["data"]["root"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"config.json in {run.path} is not valid: {exc}") from exc


def _is_curve(history) -> bool:
    """[[step, elapsed seconds, loss], ...] as the training loop records it."""
    return isinstance(history, list) and all(
        isinstance(point, list) and len(point) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point) for point in history)


def open_run(path: str | Path) -> LoadedRun:
    """Read a finished (or partly finished) run folder back, validating every file against the others."""
    run = RunFolder.open(path)
    config, recipe, data_root = _stored_settings(run)
    dataset = run.read_json("dataset.json")
    paths, labels, class_names = dataset.get("paths"), dataset.get("labels"), dataset.get("class_names")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or \
            not isinstance(class_names, list) or \
            (labels is not None and (not isinstance(labels, list) or len(labels) != len(paths)
                                     or not all(isinstance(v, int) and 0 <= v < len(class_names) for v in labels))):
        raise RunError(f"dataset.json in {path} is not valid (paths, labels and class names disagree)")
    n = len(paths)
    embeddings = {s: run.load_array(run.embedding_name(s), rows=n) for s in SPACES
                  if run.exists(run.embedding_name(s))}
    projections = {(s, k): run.load_array(run.projection_name(s, k), rows=n, cols=2)
                   for s in SPACES for k in ("pca", "umap") if run.exists(run.projection_name(s, k))}
    history = {}
    for which in ("ssl", "supervised"):
        if run.checkpoint(which).exists():
            try:
                history[which] = load_checkpoint(run.checkpoint(which), with_tensors=False)[1].get("history", [])
            except CheckpointError as exc:
                raise RunError(str(exc)) from exc
            if not _is_curve(history[which]):  # the app plots it: a malformed one would fail inside a view
                raise RunError(f"{which}.safetensors in {path} holds no valid loss curve")
    metrics = run.read_json("metrics.json") if run.exists("metrics.json") else {}
    return LoadedRun(run, config, recipe, data_root, paths, np.asarray(labels) if labels is not None else None,
                     class_names, embeddings, projections, metrics, history)
