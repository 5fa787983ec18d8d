"""Training objectives: each a small module around a pure loss function."""

from __future__ import annotations

from ..augment import PRESETS, Recipe
from ..models import build_backbone
from .base import Method
from .rotation import RotationPrediction, rotation_loss
from .simclr import SimCLR, info_nce
from .supervised import Supervised

METHODS = ("simclr", "rotation", "supervised")
SSL_METHODS = ("simclr", "rotation")


def default_recipe(method: str) -> Recipe:
    return PRESETS["simclr" if method == "simclr" else method]


def build_method(name: str, backbone_name: str, recipe: Recipe | None = None, *, num_classes: int | None = None,
                 temperature: float = 0.2, view_size: int | None = None) -> Method:
    """``view_size``: side of the augmented views in pixels (None: the images' own size)."""
    backbone = build_backbone(backbone_name)
    recipe = recipe or default_recipe(name)
    if name == "simclr":
        return SimCLR(backbone, recipe, view_size, temperature=temperature)
    if name == "rotation":
        return RotationPrediction(backbone, recipe, view_size)
    if name == "supervised":
        if not num_classes or num_classes < 2:
            raise ValueError("the supervised baseline needs at least two classes")
        return Supervised(backbone, recipe, num_classes, view_size)
    raise ValueError(f"unknown method '{name}' (choose from {', '.join(METHODS)})")


__all__ = ["METHODS", "SSL_METHODS", "Method", "SimCLR", "RotationPrediction", "Supervised", "build_method",
           "default_recipe", "info_nce", "rotation_loss"]
