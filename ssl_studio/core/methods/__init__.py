"""Training objectives, one module each, found by the registry: nothing else lists them.

Importing this package imports every module in it; each defines a :class:`Method` subclass that registers itself
(ARCHITECTURE.md, "Adding a method").
"""

from __future__ import annotations

import importlib
import pkgutil

from ..augment import NO_AUGMENTATION, Recipe
from ..models import build_backbone
from .base import Method, MethodParams, registered, unregister
from .simclr import COLOR_BLIND_RECIPE

# The recipe that hides color, under a name of its own: several methods start from it, and so does the demo.
SHAPE_OVER_COLOR = "shape-over-color"


def discover() -> None:
    """Import every module of this package, so each method in it registers."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def method_class(name: str) -> type[Method]:
    methods = registered()
    if name not in methods:
        raise ValueError(f"unknown method '{name}' (choose from {', '.join(methods)})")
    return methods[name]


def method_names(*, self_supervised: bool | None = None) -> list[str]:
    """Every method's name, in menu order; ``self_supervised`` keeps only those that do (not) need labels."""
    return [name for name, cls in registered().items()
            if self_supervised is None or cls.needs_labels != self_supervised]


def default_recipe(method: str) -> Recipe:
    return method_class(method).default_recipe


def recipe_presets() -> dict[str, Recipe]:
    """Each method's own recipe, one that hides color, then none at all: the Augment page's presets."""
    return {**{name: cls.default_recipe for name, cls in registered().items()}, SHAPE_OVER_COLOR: COLOR_BLIND_RECIPE,
            "none": NO_AUGMENTATION}


def preset_titles() -> dict[str, str]:
    return {**{name: cls.title for name, cls in registered().items()},
            SHAPE_OVER_COLOR: "Shape over color (any hue, half grey)", "none": "None (original images)"}


def build_method(name: str, backbone_name: str, recipe: Recipe | None = None, *, params: MethodParams | None = None,
                 num_classes: int | None = None, view_size: int | None = None) -> Method:
    """``view_size``: side of the augmented views in pixels (None: the images' own size)."""
    cls = method_class(name)
    if params is not None and not isinstance(params, cls.Params):
        raise ValueError(f"the {name} method takes {cls.Params.__name__}, not {type(params).__name__}")
    return cls(build_backbone(backbone_name), recipe or cls.default_recipe, view_size, params, num_classes)


discover()

__all__ = ["Method", "MethodParams", "build_method", "default_recipe", "discover", "method_class", "method_names",
           "preset_titles", "recipe_presets", "registered", "unregister", "SHAPE_OVER_COLOR"]
