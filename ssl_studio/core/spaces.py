"""The embedding spaces compared side by side: each knows how it is computed and how it is shown (its titles and
its color, which report.png, the pages and the command line all take from here).

A space is one entry of ``BUILT_IN`` (ARCHITECTURE.md, "Adding a space"): the pipeline embeds, scores, maps and
stores every space whose ``compute`` returns an array, and the app draws one map for each. A run can also hold
spaces a person brings, the embeddings of any model of theirs (``import_space``): listed in the run folder
(core/runs.py), they are scored, mapped and compared like the built-in ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, load_state_into
from .coloring import PALETTE
from .config import TrainConfig
from .embed import embed, pixel_features
from .models import build_backbone
from .runs import RunFolder
from .train import TrainingError


@dataclass(frozen=True)
class SpaceInputs:
    images: torch.Tensor  # uint8 (N, 3, R, R): the run's own images, or new ones embedded with the run
    run: RunFolder
    config: TrainConfig
    device: torch.device


@dataclass(frozen=True)
class Space:
    name: str  # names its files in the run folder, its key in the metrics
    title: str
    short: str  # for a check box or a column heading
    compute: Callable[[SpaceInputs], np.ndarray | None]  # None: this run has no such space (no checkpoint)
    trained_on_labels: bool = False  # its features saw every training label: no few-label figure (core/transfer.py)
    color: str = "#555555"  # its curves, on the Train and Transfer pages and in report.png
    # It depends on the data, the seed and the settings but the method's: a sweep's runs that agree on those share
    # it (core/pipeline.py's baseline_key), computed once.
    baseline: bool = False

    @property
    def curve_title(self) -> str:
        """Its name on a transfer chart: a space that saw every label is a reference there, not a few-label result."""
        return self.title + (" (all labels)" if self.trained_on_labels else "")


@dataclass(frozen=True)
class Curve:
    """How a fine-tuning curve is shown (a space's own curves show as the space does)."""

    title: str
    color: str


def load_backbone(run: RunFolder, which: str, backbone_name: str) -> torch.nn.Module:
    """The backbone of a trained model in the run folder (``which``: the checkpoint's name, e.g. "ssl")."""
    tensors, _ = load_checkpoint(run.checkpoint(which))
    backbone = build_backbone(backbone_name)
    prefix = "model.backbone."
    load_state_into(backbone, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                    f"{which} backbone", run.checkpoint(which))
    return backbone


def embed_with_retries(backbone, images, device, space: str) -> np.ndarray:
    """Embed, retrying with smaller batches when the device runs out of memory (no setting for the user to lower)."""
    batch = 512
    while True:
        try:
            return embed(backbone.to(device), images, batch_size=batch, device=device)
        except torch.OutOfMemoryError as exc:
            if batch <= 8:
                raise TrainingError(f"the device ran out of memory computing the {space} embeddings, even {batch} "
                                    "images at a time; free memory on it or run on the CPU (--device cpu)") from exc
            batch //= 4
            if device.type == "cuda":
                torch.cuda.empty_cache()


def trained(which: str) -> Callable[[SpaceInputs], np.ndarray | None]:
    """The backbone of the run's ``which`` checkpoint, when the run has one."""
    def compute(inputs: SpaceInputs) -> np.ndarray | None:
        if not inputs.run.checkpoint(which).exists():
            return None
        backbone = load_backbone(inputs.run, which, inputs.config.backbone)
        return embed_with_retries(backbone, inputs.images, inputs.device, which)
    return compute


def untrained(inputs: SpaceInputs) -> np.ndarray:
    torch.manual_seed(inputs.config.seed)  # the very initial weights the SSL run started from
    return embed_with_retries(build_backbone(inputs.config.backbone), inputs.images, inputs.device,
                              "untrained")


def pixels(inputs: SpaceInputs) -> np.ndarray:
    return pixel_features(inputs.images)


BUILT_IN: tuple[Space, ...] = (
    Space("ssl", "Self-supervised", "SSL", trained("ssl"), color=PALETTE[0]),
    Space("supervised", "Supervised", "Supervised", trained("supervised"), trained_on_labels=True, color=PALETTE[1],
          baseline=True),
    Space("untrained", "Untrained network", "Untrained", untrained, color=PALETTE[7], baseline=True),
    Space("pixels", "Raw pixels", "Pixels", pixels, color=PALETTE[2], baseline=True),
)
SPACES = tuple(space.name for space in BUILT_IN)
TITLES = {space.name: space.title for space in BUILT_IN}
COLORS = {space.name: space.color for space in BUILT_IN}
TRAINED_ON_LABELS = tuple(space.name for space in BUILT_IN if space.trained_on_labels)
# Where fine-tuning started (core/transfer.py's STARTS): the SSL weights keep the SSL space's color.
FINETUNED = {"ssl": Curve("Fine-tuned from SSL", COLORS["ssl"]),
             "scratch": Curve("Fine-tuned from scratch", PALETTE[3])}
_IMPORTED_COLORS = [c for c in PALETTE if c not in {*COLORS.values(), *(curve.color for curve in FINETUNED.values())}]



def _imported(name: str) -> Callable[[SpaceInputs], np.ndarray]:
    return lambda inputs: inputs.run.load_imported(name, len(inputs.images))


def imported_spaces(run: RunFolder) -> list[Space]:
    """The spaces a person added to this run, checked (a tampered list is refused naming the file)."""
    return [Space(name, title, title, _imported(name), color=_IMPORTED_COLORS[k % len(_IMPORTED_COLORS)])
            for k, (name, title) in enumerate(run.read_imported(reserved=SPACES))]


def run_spaces(run: RunFolder) -> tuple[Space, ...]:
    """Every space of this run: the built-in ones, then those a person added."""
    return BUILT_IN + tuple(imported_spaces(run))


def import_space(run: RunFolder, title: str, array: np.ndarray, run_paths: list[str],
                 row_paths: list[str] | None = None) -> Space:
    """Add the embeddings of another model as a space of this run.

    ``array`` holds one row per image, in the run's image order (``run_paths``), or in the order of
    ``row_paths`` (image paths relative to the data folder, as the run lists them), which is then matched.
    """
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] < 1 or array.dtype.kind not in "fiu":
        raise ValueError(f"the embeddings must be a 2-D array of numbers (one row per image), not {array.dtype} "
                         f"of shape {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValueError(f"{bad} row(s) of the embeddings hold NaN or infinite values")
    if row_paths is not None:
        if len(row_paths) != len(array):
            raise ValueError(f"the paths list {len(row_paths)} images but the embeddings have {len(array)} rows")
        where = {path: i for i, path in enumerate(row_paths)}
        missing = [p for p in run_paths if p not in where]
        if missing:
            raise ValueError(f"{len(missing)} of the run's {len(run_paths)} images have no row, for example "
                             f"{', '.join(missing[:3])}")
        array = array[[where[p] for p in run_paths]]
    elif len(array) != len(run_paths):
        raise ValueError(f"the embeddings have {len(array)} rows but the run has {len(run_paths)} images; give "
                         "one row per image in the run's order, or a CSV of the rows' image paths")
    existing = run.read_imported(reserved=SPACES)
    name = _unique_name(title, {name for name, _ in existing} | set(SPACES))
    run.add_imported(name, title, array, existing)
    return imported_spaces(run)[-1]


def read_embedding_file(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """An .npy of embeddings (no pickle), and the image paths of its rows when a CSV of the same name lies beside
    it (one path per line, relative to the data folder; a first line "path" is a header)."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path.name} is not a readable .npy array ({exc})") from exc
    rows = path.with_suffix(".csv")
    if not rows.is_file():
        return array, None
    lines = [line.split(",")[0].strip() for line in rows.read_text(encoding="utf-8",
                                                                   errors="surrogateescape").splitlines()]
    return array, [line for i, line in enumerate(lines) if line and not (i == 0 and line == "path")]


def _unique_name(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-")[:30] or "imported"
    base = base if base[0].isalnum() else f"x{base}"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name
