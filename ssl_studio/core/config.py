"""Training settings as a frozen, JSON-round-trippable dataclass, and device selection."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def dataclass_from_dict(cls, data: dict, what: str):
    """Build a frozen dataclass from JSON data, refusing unknown keys and wrong types with a clear message."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} settings must be a JSON object, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(unknown)}")
    values = {name: _coerce(value, hints[name], f"{what} setting '{name}'") for name, value in data.items()}
    return cls(**values)


def _coerce(value, hint, what: str):
    """Check one JSON value against a field's type hint (str, bool, int, float, X | None, tuple[...])."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{what} must be a list of {len(args)} numbers")
        return tuple(_coerce(v, a, what) for v, a in zip(value, args))
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ValueError(f"{what} must be {'true or false' if hint is bool else 'a string'}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise ValueError(f"{what} must be a finite number")
    if hint is int:
        if value != int(value):
            raise ValueError(f"{what} must be a whole number")
        return int(value)
    return float(value)


def _finite(value: int | float) -> bool:
    # JSON integers have no size limit, and math.isfinite raises OverflowError past the float range.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``time_budget`` (seconds) and ``epochs`` both bound it; None means unbounded."""

    method: str = "simclr"
    backbone: str = "small-cnn"
    epochs: int | None = None
    time_budget: float | None = 120.0
    # Small batches: on a CPU the cost is per view, so 64 gives twice the updates of 128 for the same time; over
    # 15 epochs of shapes that was 39.4% kNN against 32.9% (README, "Defaults").
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    # SimCLR's CIFAR value; over 15 and 30 epochs of shapes it edged out 0.2 (49.6 vs 48.8, 49.0 vs 47.3 kNN).
    temperature: float = 0.5
    warmup_fraction: float = 0.05
    resolution: int = 32
    # Views are rendered smaller than the images: at 0.75 a view has 56% of the pixels, so training is nearly
    # twice as fast; and a network trained on random crops sees objects larger than in the full image, so
    # evaluating on full-size images suits it (Touvron et al. 2019, FixRes).
    view_fraction: float = 0.75
    device: str = "auto"
    # torch.compile the training step. On this project's CPU: 31 s of compiling, then 1.17x the steps per second,
    # so it is off by default; it is meant for GPUs (unmeasured there). On a CPU it needs a C++ compiler.
    compile: bool = False
    seed: int = 0

    def validate(self) -> None:
        from .methods import METHODS
        from .models import BACKBONES

        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}' (choose from {', '.join(METHODS)})")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone '{self.backbone}' (choose from {', '.join(BACKBONES)})")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device '{self.device}' (choose from {', '.join(DEVICES)})")
        if self.epochs is None and self.time_budget is None:
            raise ValueError("give a time budget or a number of epochs")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("epochs must be at least 1")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError("the time budget must be more than 0 seconds")
        if self.batch_size < 2:
            raise ValueError("the batch size must be at least 2")
        if not 0 < self.lr < 10:
            raise ValueError("the learning rate must be between 0 and 10")
        if self.weight_decay < 0:
            raise ValueError("weight decay cannot be negative")
        if not 0.01 <= self.temperature <= 10:
            raise ValueError("the temperature must be between 0.01 and 10")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError("the warm-up fraction must be in [0, 1)")
        if not 8 <= self.resolution <= 512:
            raise ValueError("the resolution must be between 8 and 512 pixels")
        if not 0.25 <= self.view_fraction <= 1:
            raise ValueError("the view size must be between 25% and 100% of the resolution")
        # numpy and scikit-learn take seeds in [0, 2**32); the training loop's seed * 100_003 + epoch stays in
        # torch's 64-bit range.
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"the seed must be between 0 and {2**32 - 1}")

    @property
    def view_size(self) -> int:
        return max(8, round(self.resolution * self.view_fraction))

    def __post_init__(self) -> None:
        self.validate()

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return dataclass_from_dict(cls, data, "training")


def available_devices() -> list[str]:
    """The device choices that can work on this machine, 'auto' first."""
    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = available_devices()[-1] if len(available_devices()) > 2 else "cpu"
    if name not in DEVICES:
        raise ValueError(f"unknown device '{name}' (choose from {', '.join(DEVICES)})")
    if name not in available_devices():
        raise ValueError(f"device '{name}' is not available on this machine (available: cpu"
                         + "".join(f", {d}" for d in available_devices()[2:]) + ")")
    return torch.device(name)
