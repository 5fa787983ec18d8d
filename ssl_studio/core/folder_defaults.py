"""Settings chosen from what a folder's images are (grey or colour, their size, how many), each with its reason.

The choice is a set of changes to the schema's own settings (Recipe and TrainConfig fields), so it is shown by the
same controls and stored as the same JSON; a setting the person chose (a control they moved, a flag they gave)
always wins over the folder's. The rules come from a study on folders of different kinds (README, "Defaults"):
each holds on every folder it was measured on, none is fitted to one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from .augment import Recipe
from .config import TrainConfig

# The resolution a folder is decoded at unless the person picks one, whatever its images' size. Past it, more pixels
# cost a CPU more time per step than they teach in a few minutes; smaller images are enlarged to it: the small CNN
# halves its map four times, and grey photos at their own 28 px lost 1.1 points of SSL kNN and 2.3 of supervised in a
# quiet 120 s run (README, "Defaults").
RESOLUTION = 32
GREY_SAMPLE = 512  # images looked at to tell grey from colour
GREY_TOLERANCE = 3  # channel spread (of 255) still counted as grey: a grey JPEG's colour planes round unevenly


@dataclass(frozen=True)
class FolderFacts:
    """What the choice looks at. ``side``: the files' shorter side in pixels (before decoding), None if unknown."""

    images: int
    classes: int
    grey: bool
    side: int | None

    @classmethod
    def of(cls, dataset) -> FolderFacts:
        """The facts of an ImageDataset (core/data.py)."""
        return cls(len(dataset), len(dataset.class_names), is_grey(dataset.images), dataset.side)

    def describe(self) -> str:
        """'grey, 28 px, 10,000 images, 10 classes'."""
        parts = ["grey" if self.grey else "colour"]
        if self.side is not None:
            parts.append(f"{self.side} px")
        parts.append(f"{self.images:,} image{'s' * (self.images != 1)}")
        parts.append(f"{self.classes} classes" if self.classes else "no classes")
        return ", ".join(parts)


def is_grey(images: torch.Tensor, sample: int = GREY_SAMPLE) -> bool:
    """True when every pixel of (up to ``sample``, evenly spread) uint8 images (N,3,H,W) has equal channels, within
    GREY_TOLERANCE: an RGB file of grey pixels is grey."""
    if len(images) == 0:
        return False
    rows = torch.linspace(0, len(images) - 1, min(sample, len(images))).round().long().unique()
    x = images[rows].to(torch.int16)  # rows of a memory-mapped cache: only these are read
    spread = x.amax(dim=1) - x.amin(dim=1)
    return bool(spread.max() <= GREY_TOLERANCE)


@dataclass(frozen=True)
class Rule:
    """One decision: the settings it changes (Recipe and TrainConfig fields) and why, in plain words."""

    reason: str
    recipe: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)

    def settings(self) -> list[str]:
        return [f"recipe.{name}" for name in self.recipe] + [f"train.{name}" for name in self.train]


@dataclass(frozen=True)
class Given:
    """What the person chose explicitly, which the folder's choice never changes: TrainConfig and Recipe field
    names, and ``whole_recipe`` when they chose a recipe outright (a preset)."""

    train: frozenset[str] = frozenset()
    recipe: frozenset[str] = frozenset()
    whole_recipe: bool = False

    def wins(self, setting: str) -> bool:
        kind, name = setting.split(".", 1)
        return name in self.train if kind == "train" else (self.whole_recipe or name in self.recipe)

    @classmethod
    def of(cls, settings) -> Given:
        """From settings named as FolderDefaults.changed names them ('train.lr', 'recipe.hue')."""
        split = [s.split(".", 1) for s in settings]
        return cls(frozenset(name for kind, name in split if kind == "train"),
                   frozenset(name for kind, name in split if kind == "recipe"))

    def to_dict(self) -> dict:
        return {"train": sorted(self.train), "recipe": sorted(self.recipe), "whole_recipe": self.whole_recipe}

    @classmethod
    def from_dict(cls, data: dict) -> Given:
        return cls(frozenset(data["train"]), frozenset(data["recipe"]), bool(data["whole_recipe"]))


@dataclass(frozen=True)
class FolderDefaults:
    facts: FolderFacts
    rules: tuple[Rule, ...]

    @property
    def recipe_changes(self) -> dict:
        return {k: v for rule in self.rules for k, v in rule.recipe.items()}

    @property
    def train_changes(self) -> dict:
        return {k: v for rule in self.rules for k, v in rule.train.items()}

    def reasons(self) -> list[str]:
        return [rule.reason for rule in self.rules]

    def apply(self, config: TrainConfig, recipe: Recipe, given: Given = Given()) -> tuple[TrainConfig, Recipe,
                                                                                           list[str]]:
        """``config`` and ``recipe`` with the folder's settings, but those in ``given``; and the settings the
        folder chose that ``given`` kept ('train.resolution', 'recipe.jitter_p'...)."""
        kept = [s for rule in self.rules for s in rule.settings() if given.wins(s)]
        train = {k: v for k, v in self.train_changes.items() if f"train.{k}" not in kept}
        changes = {k: v for k, v in self.recipe_changes.items() if f"recipe.{k}" not in kept}
        return config.replace(**train), recipe.replace(**changes), kept

    def changed(self, train: dict | None = None, recipe: dict | None = None) -> list[str]:
        """The folder's settings that ``train`` or ``recipe`` (what the person has now, by field name) set
        otherwise."""
        return [f"{kind}.{name}" for kind, now, chosen in (("train", train, self.train_changes),
                                                            ("recipe", recipe, self.recipe_changes))
                if now is not None for name, value in chosen.items() if now.get(name, value) != value]

    def to_dict(self, kept: list[str] = ()) -> dict:
        """As config.json stores it: the facts, each rule's reason and settings, and which the person kept."""
        return {"facts": dataclasses.asdict(self.facts),
                "rules": [{"reason": r.reason, "recipe": r.recipe, "train": r.train} for r in self.rules],
                "kept": list(kept)}


def choose(facts: FolderFacts) -> FolderDefaults:
    """The settings for a folder with these facts, each rule with its reason."""
    rules = []
    resolution = RESOLUTION
    if facts.side is not None and facts.side < RESOLUTION:
        rules.append(Rule(f"Images are {facts.side} px: enlarged to {resolution} px, which the small network's "
                          "four halvings need (at their own size they lost accuracy).", train={"resolution": resolution}))
    elif facts.side is not None and facts.side > RESOLUTION:
        rules.append(Rule(f"Images are {facts.side} px: decoded at {RESOLUTION} px, where a few minutes of "
                          "training on a CPU learn the most.", train={"resolution": resolution}))
    if facts.grey:
        # Saturation, hue and grayscale leave a grey pixel as it is: off, the preview and the recipe say what
        # training does. Brightness and contrast do change grey images, and they matter: with every colour jitter
        # off (and 28 px), SSL kNN on grey photos fell from 82.9 to 75.9 % (README, "Defaults").
        rules.append(Rule("Grey images: saturation, hue and grayscale are off (they change nothing there).",
                          recipe={"saturation": 0.0, "hue": 0.0, "grayscale_p": 0.0}))
        # With no colour to vary, blur is what makes two views differ in their detail (SimCLR's ImageNet recipe blurs
        # half the views; its CIFAR recipe dropped blur for colour images). Quiet 120 s runs of the grey photos: kNN
        # 83.0 -> 83.9 %, linear probe 87.8 -> 88.6 %; the silhouettes gained too (README, "Defaults"). Sigma up to
        # 1 px: the views are 24 px.
        rules.append(Rule("Grey images: half the views are blurred, so that with no colour to vary two views still "
                          "differ in detail and the network must match shapes.",
                          recipe={"blur_p": 0.5, "blur_sigma": (0.1, 1.0)}))
        # SimCLR's full jitter strength (0.8; its CIFAR recipe halves it) for the two changes a grey pixel has: in
        # 120 s of training, the grey photos' kNN rose a point (83.1 -> 84.2 %, three seeds), the silhouettes held
        # (95.9 -> 96.1 %; README, "Defaults").
        rules.append(Rule("Grey images: brightness and contrast jitter at full strength (up to ±80 %): with no "
                          "colour to vary, tone is what a view can change.",
                          recipe={"brightness": 0.8, "contrast": 0.8}))
    return FolderDefaults(facts, tuple(rules))
