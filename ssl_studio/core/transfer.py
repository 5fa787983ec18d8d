"""Transfer: what pretraining buys when labels are few (README, "Transfer").

Two measurements, both scored on the run's held-out 20 % (README, "How the numbers are made"):

* label-efficiency curves: for each space, a kNN and a linear probe (core/evaluate.py's, unchanged) fitted on only a
  fraction of the training split's labels, several seeded subsets for the small fractions;
* fine-tuning: the whole network, backbone plus a fresh linear head, trained with cross-entropy on a fraction of
  the labels through the one training loop, starting from the SSL backbone and from the very weights the SSL run
  started from, with the same budget, augmentations and seed.

A label subset is stratified and drawn from the training split only, with at least one image per class, so a
class with fewer images than the fraction asks for still has one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .cancel import CancelToken
from .checkpoint import CheckpointError, load_checkpoint
from .config import TrainConfig
from .embed import embed
from .evaluate import knn_top1, linear_probe_top1
from .methods import build_method, default_recipe
from .models import arrange_for
from .schema import check_settings, dataclass_from_dict, setting
from .train import TrainFinished, TrainProgress, train

PROBES = ("knn", "linear")
STARTS = {"ssl": "from the SSL weights", "scratch": "from scratch"}  # where a fine-tuning run starts
SMALL_FRACTION = 0.1  # fractions up to this one are drawn several times: a handful of labels varies a lot


def _fractions(default: tuple, label: str, help: str, flag: str = ""):
    return setting(default, label, help, minimum=0, above=True, maximum=1, flag=flag)


@dataclass(frozen=True)
class TransferConfig:
    """What the transfer stage measures; the run's own TrainConfig gives the backbone, batch size, seed, device."""

    fractions: tuple[float, ...] = _fractions((0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0), "Label fractions",
                                              "Label fractions of the probe curves, 1 being every training label.",
                                              flag="transfer-fractions")
    repeats: int = setting(5, "Repeats", f"Label subsets drawn at each fraction up to {SMALL_FRACTION:.0%} (one "
                           "above it).", minimum=1, maximum=1000, flag="transfer-repeats")
    finetune_fractions: tuple[float, ...] = _fractions((0.01, 0.1), "Fine-tuning fractions",
                                                       "Label fractions to fine-tune on.")
    # Optimizer steps of fine-tuning for each fraction (one value: the same for each), for SSL and for scratch alike:
    # the two starts get the very same steps however busy the machine is, and a small folder as many as a large one.
    # On a few labels more steps only overfit (README, "Transfer: what the default SSL run buys with 1 % of the
    # labels"). Epochs or seconds, when given, replace steps.
    finetune_steps: tuple[int, ...] = setting(
        (300,), "Fine-tuning steps", "Optimizer steps of each fine-tuning run: one value, or one per fine-tuning "
        "fraction.", minimum=1, unit="steps")
    finetune_epochs: tuple[int, ...] | None = setting(None, "Fine-tuning epochs", "Epochs of each fine-tuning run "
                                                      "instead of steps.", minimum=1, unit="epochs")
    finetune_budget: tuple[float, ...] | None = setting(
        None, "Fine-tuning seconds", "Seconds of each fine-tuning run instead of steps (on a busy machine the two "
        "starts may then make different numbers of steps).", minimum=0, above=True, unit="s")
    finetune_lr: float = setting(2e-3, "Fine-tuning learning rate", "Peak learning rate of fine-tuning.", minimum=0,
                                 above=True, maximum=1.0, log=True)

    def __post_init__(self) -> None:
        check_settings(self)
        if not self.fractions:
            raise ValueError("give at least one label fraction")
        for name in FINETUNE_BUDGETS:
            budget = getattr(self, name)
            if budget is not None and len(budget) not in (1, len(self.finetune_fractions)):
                raise ValueError(f"give one fine-tuning budget, or one per fine-tuning fraction "
                                 f"({len(self.finetune_fractions)}), not {len(budget)}")

    def budget(self) -> tuple[str, tuple]:
        """The fine-tuning budget that applies: seconds or epochs when given, else steps."""
        name = next(name for name in FINETUNE_BUDGETS if getattr(self, name) is not None)
        return FINETUNE_BUDGETS[name], getattr(self, name)

    def budget_of(self, k: int, labels: int, batch_size: int) -> tuple[float | None, int | None]:
        """(seconds, epochs) of the k-th fine-tuning fraction on ``labels`` images; steps become the epochs that make
        them (the training loop's epoch is labels // batch steps)."""
        unit, values = self.budget()
        value = values[min(k, len(values) - 1)]
        if unit == "seconds":
            return value, None
        if unit == "epochs":
            return None, value
        return None, math.ceil(value / max(1, labels // min(batch_size, labels)))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> TransferConfig:
        return dataclass_from_dict(cls, data, "transfer")


# The fine-tuning budget's fields, the first given applying (the command line's exclusive flags), and their units.
FINETUNE_BUDGETS = {"finetune_budget": "seconds", "finetune_epochs": "epochs", "finetune_steps": "steps"}


# --- label subsets ----------------------------------------------------------------------------------------------


def labels_per_class(counts, fraction: float, seed: int = 0) -> np.ndarray:
    """How many labeled images each class gives at ``fraction``: stratified, at least one, at most all.

    Each class gives floor(count * fraction); the rounding that is left is handed out by largest remainder (seeded
    order among ties), so the total is the fraction of all images where the at-least-one rule allows.
    """
    counts = np.asarray(counts, dtype=np.int64)
    ideal = np.round(counts * fraction, 9)  # 50 * 0.1 must be 5, not 4.999...
    n = np.floor(ideal).astype(np.int64)
    extra = int(np.floor(counts.sum() * fraction + 0.5 + 1e-9)) - int(n.sum())
    order = np.lexsort((np.random.default_rng(seed).random(len(counts)), -(ideal - n)))
    n[order[:max(0, extra)]] += 1
    return np.clip(n, 1, counts)


def label_subset(labels, train_idx, fraction: float, seed: int = 0, repeat: int = 0) -> np.ndarray:
    """Sorted dataset indices of the labeled images at ``fraction``: a stratified subset of ``train_idx``.

    Seeded by (seed, fraction, repeat): every space and the fine-tuning runs see the same subset for the same draw.
    """
    labels, train_idx = np.asarray(labels).ravel(), np.asarray(train_idx, dtype=np.int64)
    classes, inverse = np.unique(labels[train_idx], return_inverse=True)
    rng = np.random.default_rng([seed, round(fraction * 1_000_000), repeat])
    counts = np.bincount(inverse, minlength=len(classes))
    take = labels_per_class(counts, fraction, seed=int(rng.integers(2**32)))
    chosen = [rng.choice(train_idx[inverse == c], size=take[c], replace=False) for c in range(len(classes))]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def repeats_for(fraction: float, repeats: int) -> int:
    """Subsets drawn at ``fraction``: several for the small ones; at 100 % there is only one subset."""
    return repeats if fraction <= SMALL_FRACTION else 1


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); 0 for a single value."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


# --- frozen features --------------------------------------------------------------------------------------------


def probe_points(x, labels, train_idx, test_idx, fraction: float, *, seed: int = 0, repeats: int = 5,
                 scored: dict | None = None) -> dict[str, dict]:
    """kNN and linear probe on the labeled subsets at ``fraction``, scored on ``test_idx``.

    Returns {"knn" | "linear": {"fraction", "labels", "top1", "std", "repeats"}}; top1 is the mean over the subsets.
    ``scored``: the comparison's own {"knn_top1", "linear_top1"} for this space, which is the point at 100 % (the
    same probes on the same split), so it is not fitted again.
    """
    if fraction == 1 and scored and {"knn_top1", "linear_top1"} <= set(scored):
        return {probe: _point(1.0, len(train_idx), scored[f"{probe}_top1"], 0.0, repeats=1) for probe in PROBES}
    subsets = (label_subset(labels, train_idx, fraction, seed, r) for r in range(repeats_for(fraction, repeats)))
    return subset_points(x, labels, test_idx, fraction, subsets, seed=seed)


def subset_points(x, labels, test_idx, fraction: float, subsets, *, seed: int = 0) -> dict[str, dict]:
    """kNN and linear probe fitted on each labeled subset (dataset indices) in turn, scored on ``test_idx``: the
    mean and spread over the subsets, as {"knn" | "linear": {"fraction", "labels", "top1", "std", "repeats"}}."""
    x, labels, test_idx = np.asarray(x, dtype=np.float32), np.asarray(labels).ravel(), np.asarray(test_idx)
    scores: dict[str, list[float]] = {probe: [] for probe in PROBES}
    n = 0
    for subset in subsets:
        n = len(subset)
        args = (x[subset], labels[subset], x[test_idx], labels[test_idx])
        scores["knn"].append(knn_top1(*args))
        scores["linear"].append(linear_probe_top1(*args, seed=seed))
    return {probe: _point(fraction, n, *mean_std(values), repeats=len(values)) for probe, values in scores.items()}


def _point(fraction: float, labels: int, top1: float, std: float, **more) -> dict:
    return {"fraction": fraction, "labels": int(labels), "top1": round(top1, 6), "std": round(std, 6), **more}


# --- fine-tuning ------------------------------------------------------------------------------------------------


def finetune_config(run_config: TrainConfig, settings: TransferConfig, k: int, labels: int) -> TrainConfig:
    """The run's settings, as the supervised method with the k-th fine-tuning fraction's budget on ``labels``."""
    seconds, epochs = settings.budget_of(k, labels, run_config.batch_size)
    return run_config.replace(method="supervised", lr=settings.finetune_lr, time_budget=seconds, epochs=epochs)


def finetune(images: torch.Tensor, labels: torch.Tensor, subset: np.ndarray, test_idx: np.ndarray,
             config: TrainConfig, num_classes: int, ssl_state: dict[str, torch.Tensor] | None, start: str, *,
             checkpoint_path: Path, cancel: CancelToken, resume: bool = False,
             meta: dict | None = None) -> Iterator[TrainProgress | TrainFinished]:
    """Fine-tune backbone + fresh linear head on ``subset`` and score it on ``test_idx``; returns the point, or None
    when cancelled. ``start`` (a key of STARTS) "ssl" starts from ``ssl_state``, "scratch" from the seed's own
    weights, as the SSL run did.

    The head is drawn from the same seed either way, so the two starts differ by the backbone's weights alone.
    """
    method = finetune_method(config, num_classes, ssl_state, start)
    meta = {**(meta or {}), "start": start, "labels": len(subset)}
    resume = resume and _resumable(checkpoint_path, config, meta)
    idx = torch.from_numpy(subset)
    done = None
    for event in train(method, images[idx], labels[idx], config, cancel=cancel, checkpoint_path=checkpoint_path,
                       resume=resume, extra_meta={"transfer": meta}):
        done = event if isinstance(event, TrainFinished) else done
        yield event
    if done is None or done.reason == "cancelled":
        return None
    test = torch.from_numpy(np.asarray(test_idx, dtype=np.int64))
    return {"fraction": meta["fraction"], "labels": len(subset), "top1": round(classify_top1(
        method, images[test], labels[test]), 6), "seconds": round(done.seconds, 2), "steps": done.steps}


def finetune_method(config: TrainConfig, num_classes: int, ssl_state: dict[str, torch.Tensor] | None, start: str):
    """The supervised method (backbone + fresh linear head, cross-entropy) to fine-tune, drawn from the run's seed
    backbone first, as the train stage does: from scratch its backbone is the SSL run's starting point, and the
    head is the same whichever start."""
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}: one of {', '.join(STARTS)}")
    if start == "ssl" and ssl_state is None:
        raise ValueError("fine-tuning from the SSL weights needs them")
    torch.manual_seed(config.seed)
    method = build_method("supervised", config.backbone, default_recipe("supervised"), params=config.params,
                          num_classes=num_classes, view_size=config.view_size)
    if ssl_state is not None:
        # From scratch too: a run saved before the small CNN's layer order changed compares like with like.
        arrange_for(method.backbone, ssl_state)
    if start == "ssl":
        method.backbone.load_state_dict(ssl_state)
    return method


def _resumable(path: Path, config: TrainConfig, meta: dict) -> bool:
    """A checkpoint of this very fine-tuning run (same settings, same start and labels) can be continued."""
    try:
        stored = load_checkpoint(path, with_tensors=False)[1]
    except CheckpointError:
        return False
    return stored.get("config") == config.to_dict() and stored.get("transfer") == meta


def classify_top1(method, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 of backbone + head on full-size uint8 ``images`` (embed's batches, device and eval mode)."""
    features = torch.from_numpy(embed(method.backbone, images))
    head = method.head.to("cpu").eval()
    with torch.inference_mode():
        predicted = head(features).argmax(dim=1)
    return float((predicted == labels.cpu()).float().mean())


def best_probe(curves: dict, fraction: float) -> tuple[float, str] | None:
    """(top-1, probe name) of the better probe of a space at ``fraction``, or None if neither has that point."""
    found = [(p["top1"], name) for name, points in curves.items() for p in points if p["fraction"] == fraction]
    return max(found) if found else None


def reading(transfer: dict, titles: dict[str, str], saw_labels=()) -> str:
    """One plain sentence about the fewest labels: what each space reaches there with its better probe, and what
    fine-tuning reaches from each start. ``saw_labels``: spaces trained on every label, left out (not few-label)."""
    probe = {s: c for s, c in (transfer.get("probe") or {}).items() if s not in saw_labels}
    points = [p for curves in probe.values() for ps in curves.values() for p in ps]
    if not points:
        return ""
    fewest = min(points, key=lambda p: p["fraction"])
    fraction, labels = fewest["fraction"], fewest["labels"]
    classes = transfer.get("classes")
    per_class = f" (about {labels / classes:.2g} per class)" if isinstance(classes, int) and classes > 0 else ""
    reached = {s: best[0] for s, curves in probe.items() if (best := best_probe(curves, fraction))}
    order = sorted(reached, key=lambda s: s != "ssl")  # the self-supervised features first
    parts = [f"{titles.get(s, s).lower()} {reached[s]:.0%}" for s in order]
    if order[0] == "ssl":
        parts[0] = f"the {titles.get('ssl', 'ssl').lower()} features reach {reached['ssl']:.0%}"
    sentence = f"With {labels} labels{per_class}, " + ", ".join(parts) + " (the better of kNN and linear probe)"
    tuned = transfer.get("finetune") or {}
    at = {start: next((p["top1"] for p in tuned.get(start, []) if p["fraction"] == fraction), None) for start in STARTS}
    if None not in at.values():
        sentence += (f"; fine-tuned on them, the network reaches {at['ssl']:.0%} from the SSL weights and "
                     f"{at['scratch']:.0%} from scratch")
    return sentence + "."
