"""The embedding spaces compared side by side: each knows how it is computed and what it is called.

A space is one entry of ``BUILT_IN`` (ARCHITECTURE.md, "Adding a space"): the pipeline embeds, scores, maps and
stores every space whose ``compute`` returns an array, and the app draws one map for each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import load_checkpoint, load_state_into
from .config import TrainConfig
from .data import ImageDataset
from .embed import embed, pixel_features
from .models import build_backbone
from .runs import RunFolder
from .train import TrainingError


@dataclass(frozen=True)
class SpaceInputs:
    dataset: ImageDataset
    run: RunFolder
    config: TrainConfig
    device: torch.device


@dataclass(frozen=True)
class Space:
    name: str  # file names in the run folder, keys in metrics.json
    title: str
    compute: Callable[[SpaceInputs], np.ndarray | None]  # None: this run has no such space (no checkpoint)


def load_backbone(run: RunFolder, which: str, backbone_name: str) -> torch.nn.Module:
    """The backbone of a trained model in the run folder (``which``: the checkpoint's name, e.g. "ssl")."""
    tensors, _ = load_checkpoint(run.checkpoint(which))
    backbone = build_backbone(backbone_name)
    prefix = "model.backbone."
    load_state_into(backbone, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                    f"{which} backbone")
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
        return embed_with_retries(backbone, inputs.dataset.images, inputs.device, which)
    return compute


def untrained(inputs: SpaceInputs) -> np.ndarray:
    torch.manual_seed(inputs.config.seed)  # the very initial weights the SSL run started from
    return embed_with_retries(build_backbone(inputs.config.backbone), inputs.dataset.images, inputs.device,
                              "untrained")


def pixels(inputs: SpaceInputs) -> np.ndarray:
    return pixel_features(inputs.dataset.images)


BUILT_IN: tuple[Space, ...] = (
    Space("ssl", "Self-supervised", trained("ssl")),
    Space("supervised", "Supervised", trained("supervised")),
    Space("untrained", "Untrained network", untrained),
    Space("pixels", "Raw pixels", pixels),
)
SPACES = tuple(space.name for space in BUILT_IN)
TITLES = {space.name: space.title for space in BUILT_IN}
