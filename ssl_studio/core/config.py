"""Training settings as a frozen, JSON-round-trippable dataclass, and device selection.

Every field that a person may set describes itself (core/schema.py): the Train page and the command line are
generated from these descriptions. A method's own settings (SimCLR's temperature, ...) live in its parameter
dataclass, kept under ``params``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .methods import MethodParams, method_class, registered
from .models import BACKBONES
from .schema import check_settings, dataclass_from_dict, same_setting, setting

DEVICES = ("auto", "cpu", "cuda", "mps")


def _method_titles() -> dict[str, str]:
    return {name: cls.title for name, cls in registered().items()}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``time_budget`` (seconds) and ``epochs`` both bound it; None means unbounded (the app and
    the command line choose one of them through a :class:`Budget`)."""

    method: str = setting("simclr", "Method", "The training objective.", choices=_method_titles)
    backbone: str = setting("small-cnn", "Backbone", "The network that turns an image into an embedding.",
                            choices=lambda: BACKBONES)
    epochs: int | None = setting(None, "Epochs", "Passes over the training images for each model.", minimum=1,
                                 maximum=10_000, in_form=False)
    time_budget: float | None = setting(120.0, "Time budget", "Seconds of training for each model.", minimum=0,
                                        above=True, step=30, unit="s", decimals=0, in_form=False)
    # Small batches: on a CPU the cost is per view, so 64 gives twice the updates of 128 for the same time; over
    # 15 epochs of shapes that was 39.4% kNN against 32.9% (README, "Defaults").
    batch_size: int = setting(64, "Batch size", "Images per step. Contrastive methods like large batches (more "
                              "negatives); on a CPU smaller batches give more updates in the same time.",
                              minimum=2, maximum=8192, step=32)
    lr: float = setting(2e-3, "Learning rate", "Peak learning rate (AdamW, warm-up then cosine decay).",
                        minimum=1e-6, maximum=1.0, log=True)
    # 0.05, as in the AdamW recipes of DINO and MAE: with batch norm after every convolution the decay shrinks the
    # weights, which raises the effective learning rate (van Laarhoven 2017), and a few minutes of training learn
    # more. Against 1e-4, over 2-3 seeds of 120 s runs, SSL kNN rose on every folder measured: grey photos 84.2 ->
    # 84.5 %, silhouettes 95.9 -> 96.4, grey shapes 91.4 -> 91.8, colour shapes 90.2 -> 92.0, colour textures held
    # at 99.5 (README, "Defaults").
    weight_decay: float = setting(0.05, "Weight decay", "AdamW's weight decay.", minimum=0.0, maximum=1.0,
                                  log=True, advanced=True)
    warmup_fraction: float = setting(0.05, "Warm-up", "Share of the budget over which the learning rate rises "
                                     "from 0 to its peak.", minimum=0.0, maximum=0.5, step=0.01, advanced=True)
    resolution: int = setting(32, "Resolution", "Side of the images in pixels, as decoded.", minimum=8,
                              maximum=512, in_form=False)
    # Views are rendered smaller than the images: at 0.75 a view has 56% of the pixels, so training is nearly
    # twice as fast; and a network trained on random crops sees objects larger than in the full image, so
    # evaluating on full-size images suits it (Touvron et al. 2019, FixRes).
    view_fraction: float = setting(0.75, "View size", "Side of the augmented views as a share of the resolution: "
                                   "smaller views train faster.", minimum=0.25, maximum=1.0, step=0.05,
                                   advanced=True)
    device: str = setting("auto", "Device", "auto picks a GPU when there is one.",
                          choices=lambda: dict.fromkeys(DEVICES, ""))
    # torch.compile the training step. On this project's CPU: 31 s of compiling, then 1.17x the steps per second,
    # so it is off by default; it is meant for GPUs (unmeasured there). On a CPU it needs a C++ compiler.
    compile: bool = setting(False, "Compile", "torch.compile the training step: slower to start, faster steps "
                            "(worth it on a GPU).", advanced=True)
    sync_batchnorm: bool = setting(False, "Sync batch norm", "Under torchrun with several GPUs: batch-norm "
                                   "statistics over the global batch instead of each GPU's share.", in_form=False)
    # numpy and scikit-learn take seeds in [0, 2**32); the loop's seed * 100_003 + epoch stays in torch's range.
    seed: int = setting(0, "Seed", "Seeds the weights, the batches and the split.", minimum=0, maximum=2**32 - 1)
    params: MethodParams | None = None  # the method's own settings; None: its defaults

    def __post_init__(self) -> None:
        if isinstance(self.method, str) and self.method in registered() and self.params is None:
            object.__setattr__(self, "params", method_class(self.method).Params())
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.method, str) or self.method not in registered():
            method_class(str(self.method))  # raises, naming the choices
        check_settings(self)
        if not isinstance(self.params, method_class(self.method).Params):
            raise ValueError(f"the {self.method} method's settings must be "
                             f"{method_class(self.method).Params.__name__}, not {type(self.params).__name__}")
        if self.epochs is None and self.time_budget is None:
            raise ValueError("give a time budget or a number of epochs")

    @property
    def view_size(self) -> int:
        return max(8, round(self.resolution * self.view_fraction))

    def replace(self, **changes) -> TrainConfig:
        if "method" in changes and "params" not in changes and changes["method"] != self.method:
            changes["params"] = None  # another method: its own defaults
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, saved_run: bool = False) -> TrainConfig:
        """``saved_run``: the settings a run folder recorded, whose missing method settings are older than them
        (MethodParams.SAVED_WITHOUT); elsewhere (the app's own settings, a sweep) a missing one takes its default."""
        if not isinstance(data, dict):
            raise ValueError(f"training settings must be a JSON object, not {type(data).__name__}")
        data = dict(data)
        method = data.get("method", cls.method)
        if not isinstance(method, str):
            raise ValueError("training setting 'method' must be a string")
        params = data.pop("params", None)
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise ValueError(f"the {method} method's settings must be a JSON object")
        method_params = method_class(method).Params
        if saved_run:
            params = {**method_params.SAVED_WITHOUT, **params}
        if "temperature" in data:  # runs made before methods had their own settings kept SimCLR's at the top
            temperature = data.pop("temperature")
            if "temperature" in {f.name for f in dataclasses.fields(method_params)}:
                params = {"temperature": temperature, **params}
        config = dataclass_from_dict(cls, data, "training")
        return config.replace(params=method_params.from_dict(params, f"{method} method"))


BUDGET_UNITS = {"time": "Time", "epochs": "Epochs"}


@dataclass(frozen=True)
class Budget:
    """How long each model trains, as the Train page and the command line choose it: seconds or epochs.

    A TrainConfig keeps the chosen one and None for the other; a Budget keeps both, so switching loses neither.
    """

    unit: str = setting("time", "Budget", "Train each model for a time or for a number of epochs.",
                        choices=lambda: BUDGET_UNITS, in_form=False)
    time_budget: float = same_setting(TrainConfig, "time_budget")
    epochs: int = same_setting(TrainConfig, "epochs", 20)

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def given(cls, time_budget: float | None = None, epochs: int | None = None) -> Budget:
        """Epochs when given, else time (the command line's two exclusive flags); the defaults for the rest."""
        values = {k: v for k, v in (("time_budget", time_budget), ("epochs", epochs)) if v is not None}
        return cls(unit="epochs" if epochs is not None else "time", **values)

    @classmethod
    def of(cls, config: TrainConfig, rest: Budget | None = None) -> Budget:
        """The budget ``config`` trains with (epochs when it has them); the value not chosen comes from ``rest``."""
        rest = rest or cls()
        if config.epochs is not None:
            return cls("epochs", rest.time_budget, config.epochs)
        return cls("time", config.time_budget, rest.epochs)

    def config_values(self) -> dict:
        """TrainConfig's ``time_budget`` and ``epochs``: the chosen one, None for the other."""
        return {"time_budget": self.time_budget if self.unit == "time" else None,
                "epochs": self.epochs if self.unit == "epochs" else None}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Budget:
        return dataclass_from_dict(cls, data, "budget")


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
