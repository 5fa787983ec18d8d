"""What every training objective provides to the one training loop, and the registry that finds them.

A method is one module in this package (ARCHITECTURE.md, "Adding a method"): a :class:`Method` subclass with a
``name`` registers itself when its module is imported, and ``methods/__init__.py`` imports every module here.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import Recipe, augment
from ..models import mlp_head
from ..schema import check_settings, dataclass_from_dict

_REGISTRY: dict[str, type[Method]] = {}
SIMILARITY_PAIRS = 256  # images whose similarities are reported: enough for a histogram, a few microseconds


@dataclass(frozen=True)
class MethodParams:
    """A method's own settings: subclass it with :func:`ssl_studio.core.schema.setting` fields.

    ``SAVED_WITHOUT``: settings added after runs were first saved, each with the value a run saved without it
    trained with (a run saves every setting, so a missing one is older than the setting)."""

    SAVED_WITHOUT: ClassVar[dict] = {}

    def __post_init__(self) -> None:
        check_settings(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, what: str = "method") -> MethodParams:
        return dataclass_from_dict(cls, data, what)


class Method(nn.Module):
    """A backbone plus whatever heads (and target networks) an objective needs.

    ``make_views`` turns a uint8 batch into network inputs and targets (no gradients, so it can be timed and run
    apart); ``forward`` returns ``(loss, embedding)`` where the embedding is what the loss acts on, used for the
    collapse reading. ``forward`` is the only thing DistributedDataParallel wraps.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str] = ""  # one sentence for tooltips and --help
    order: ClassVar[int] = 100  # place in menus: lower first
    needs_labels: ClassVar[bool] = False
    default_recipe: ClassVar[Recipe] = Recipe()
    Params: ClassVar[type[MethodParams]] = MethodParams
    view_names: ClassVar[tuple[str, ...]] = ("view",)  # what each group of make_views' output is, for previews

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    def __init__(self, backbone: nn.Module, recipe: Recipe, view_size: int | None = None,
                 params: MethodParams | None = None, num_classes: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.recipe = recipe
        self.view_size = view_size
        self.params = params if params is not None else self.Params()

    def augment(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return augment(images, self.recipe, generator, out_size=self.view_size)

    @torch.no_grad()
    def make_views(self, images: torch.Tensor, labels: torch.Tensor | None,
                   generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """What the optimizer trains: everything that takes gradients (a momentum target network does not)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def after_step(self, progress: float) -> None:
        """Run after each optimizer step; ``progress`` is the fraction of the run done (steps or time budget)."""

    @torch.no_grad()
    def preview(self, images: torch.Tensor, generator: torch.Generator | None) -> list[tuple[str, torch.Tensor]]:
        """What the network is shown for each image, as (name, views) columns: ``make_views`` split per image."""
        views, _ = self.make_views(images, torch.zeros(len(images), dtype=torch.long, device=images.device),
                                   generator)
        groups = views.shape[0] // len(images)
        names = self.view_names if len(self.view_names) == groups else [f"view {i + 1}" for i in range(groups)]
        return list(zip(names, views.chunk(groups)))

    @torch.no_grad()
    def pictures(self, images: torch.Tensor) -> list[tuple[str, torch.Tensor]] | None:
        """Images the app shows live while training (for example reconstructions), or None."""
        return None

    @torch.no_grad()
    def pair_similarities(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Cosine similarities in the embedding ``forward`` returned, of positive pairs and of negatives, for the
        Train page's histogram; None for a method that does not compare two views of an image (TwoViewMethod)."""
        return None


class TwoViewMethod(Method):
    """A method that compares two augmented views of each image: SimCLR and the joint-embedding family.

    ``projector_widths``: (hidden, output) of the MLP projector it puts on the backbone, or None for none.
    """

    view_names = ("view 1", "view 2")
    projector_widths: ClassVar[tuple[int, int] | None] = None

    def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None) -> None:
        super().__init__(backbone, recipe, view_size, params)
        if self.projector_widths is not None:
            self.projector = mlp_head(backbone.feature_dim, *self.projector_widths)

    @torch.no_grad()
    def make_views(self, images, labels, generator):
        return torch.cat([self.augment(images, generator), self.augment(images, generator)]), None

    @torch.no_grad()
    def pair_similarities(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Of each image's two views (positive pairs) and of views of two different images (negatives), for up to
        SIMILARITY_PAIRS images; ``z`` holds view 1 of every image, then view 2, as ``make_views`` orders them."""
        if z.shape[0] < 4 or z.shape[0] % 2:
            return None
        z1, z2 = (F.normalize(half[:SIMILARITY_PAIRS].float().flatten(1), dim=1) for half in z.detach().chunk(2))
        # A batch is a random draw, so each image's neighbour in it is a random other image.
        return (z1 * z2).sum(1).cpu(), (z1 * z2.roll(1, 0)).sum(1).cpu()

    def project(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The projections of all the views, then of view 1 and of view 2 of every image."""
        z = self.projector(self.backbone(views))
        return z, *z.chunk(2)


def in_float32(loss):
    """Run a loss function in float32, also inside the training step's bf16 autocast: batch statistics
    (variances, cross-correlations) and small differences of similarities need more than bf16's 8 mantissa bits."""

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        device = next(a for a in args if torch.is_tensor(a)).device
        with torch.autocast(device.type, enabled=False):
            return loss(*(a.float() if torch.is_tensor(a) else a for a in args), **kwargs)

    return wrapper


def registered() -> dict[str, type[Method]]:
    return dict(sorted(_REGISTRY.items(), key=lambda item: (item[1].order, item[0])))


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
