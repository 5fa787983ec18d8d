"""What the pipeline's stages yield: small frozen events that the command line prints and the app's pages draw.

A stage yields ``StageStarted`` first, then its own events; the train stage wraps each model's training events in
``TrainEvent``. Two more kinds come from the modules that make them: ``UmapProgress`` (core/project.py) while a UMAP
map is computed and ``MapSnapshot`` (core/map_history.py) while the SSL map forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .folder_defaults import FolderDefaults
from .runs import RunFolder
from .train import TrainFinished, TrainProgress


@dataclass(frozen=True)
class StageStarted:
    name: str  # load, a model's name (ssl, supervised), embed, score, color, audit, project, report
    text: str


@dataclass(frozen=True)
class DefaultsChosen:
    """The settings chosen from what the folder is (core/folder_defaults.py), once it is loaded."""

    defaults: FolderDefaults
    kept: tuple[str, ...]  # the folder's settings that the person's own choice replaced ('train.resolution'...)


@dataclass(frozen=True)
class TrainingPlanned:
    models: tuple[str, ...]  # what the train stage trains, in order: "ssl", then "supervised" when it can


@dataclass(frozen=True)
class TrainEvent:
    which: str  # the model: "ssl" or "supervised"
    event: TrainProgress | TrainFinished


@dataclass(frozen=True)
class SpaceReady:
    space: str
    embedding: np.ndarray
    metrics: dict | None


@dataclass(frozen=True)
class ClustersReady:
    """An unlabeled folder's k-means cluster per image (what its maps are colored by), before the maps."""

    ids: np.ndarray


@dataclass(frozen=True)
class ProjectionReady:
    space: str
    kind: str  # "pca" or "umap"
    coords: np.ndarray


@dataclass(frozen=True)
class PipelineFinished:
    run: RunFolder
    metrics: dict


@dataclass(frozen=True)
class TransferPlanned:
    probes: int  # probe points to compute (spaces x label fractions), for a progress bar
    finetunes: tuple[str, ...]  # the fine-tuning runs, by checkpoint name, in order
    selections: int = 0  # selection points to compute (strategies x small label fractions)


@dataclass(frozen=True)
class TransferPoint:
    kind: str  # "probe", "selection" or "finetune"
    curve: str  # the space (a probe point), the strategy (selection) or where fine-tuning started, "ssl" or "scratch"
    probe: str  # "knn" or "linear"; "finetune" for a fine-tuning point
    point: dict  # as the run folder stores it: fraction, labels, top1, and std (probe) or seconds (fine-tuning)

    def add_to(self, transfer: dict) -> None:
        """Put the point on its curve in ``transfer`` (the curves as the run folder stores them): the transfer
        stage and the Transfer page, which draws them as they come, fill theirs the same way."""
        if self.kind in ("probe", "selection"):
            transfer.setdefault(self.kind, {}).setdefault(self.curve, {}).setdefault(self.probe, []).append(
                self.point)
        else:
            transfer.setdefault("finetune", {}).setdefault(self.curve, []).append(self.point)


@dataclass(frozen=True)
class TransferFinished:
    run: RunFolder
    transfer: dict  # what the run folder stores: the curves, or {"error": why there are none}
