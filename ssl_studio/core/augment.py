"""Augmentation recipes applied to whole batches with per-sample random parameters.

torchvision's random transforms draw one set of parameters per call, so a batch would get one crop for every
image; SSL needs a different crop, jitter and blur for every view. Here all geometry (crop, flip, rotation) is one
affine warp per sample through ``grid_sample``, and all colour work is per-sample arithmetic on the batch, so a
batch of any size is a handful of tensor ops on whatever device holds it. The GUI preview calls this same function.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .schema import check_settings, dataclass_from_dict, setting

# ITU-R BT.601 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def _chance(default: float, group: str, help: str):
    return setting(default, "Probability", help, minimum=0.0, maximum=1.0, group=group)


def _strength(default: float, label: str, help: str, maximum: float = 1.0):
    return setting(default, label, help, minimum=0.0, maximum=maximum, group="Color jitter")


@dataclass(frozen=True)
class Recipe:
    """Probabilities (``*_p``) and strengths of each augmentation. Crop and flip apply to every view.

    Each field's group is its box on the Augment page; a pair is a (minimum, maximum) range drawn from uniformly.
    """

    crop_scale: tuple[float, float] = setting(
        (0.2, 1.0), "Scale", "Share of the image's area each view crops (min, max) before resizing back. Small "
        "crops force the network to match parts to wholes.", minimum=0.05, maximum=1.0, group="Crop")
    crop_ratio: tuple[float, float] = setting((3 / 4, 4 / 3), "Aspect ratio", "Width/height of the crop (min, max).",
                                              minimum=0.25, maximum=4.0, group="Crop")
    flip_p: float = _chance(0.5, "Flip", "Chance of a horizontal flip.")
    jitter_p: float = _chance(0.8, "Color jitter", "Chance a view gets its colors jittered. SimCLR found color "
                                                   "jitter essential: without it, color alone tells views apart.")
    brightness: float = _strength(0.4, "Brightness", "Up to ± this factor.")
    contrast: float = _strength(0.4, "Contrast", "Up to ± this factor.")
    saturation: float = _strength(0.4, "Saturation", "Up to ± this factor.")
    hue: float = _strength(0.1, "Hue", "Up to ± this fraction of the color wheel.", maximum=0.5)
    grayscale_p: float = _chance(0.2, "Grayscale", "Chance a view loses its color entirely.")
    blur_p: float = _chance(0.0, "Blur", "Chance of a Gaussian blur.")
    blur_sigma: tuple[float, float] = setting((0.1, 2.0), "Sigma", "Blur strength (min, max).", minimum=0.1,
                                              maximum=5.0, unit="px", group="Blur")
    rotate_p: float = _chance(0.0, "Rotation", "Chance of a random rotation.")
    rotate_degrees: float = setting(0.0, "Degrees", "Up to ± this angle.", minimum=0.0, maximum=180.0,
                                    group="Rotation")
    solarize_p: float = _chance(0.0, "Solarize", "Chance of inverting every pixel above the threshold.")
    solarize_threshold: float = setting(0.5, "Threshold", "Brightness above which pixels are inverted.",
                                        minimum=0.0, maximum=1.0, group="Solarize")

    def __post_init__(self) -> None:
        check_settings(self)

    def replace(self, **changes) -> Recipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        return dataclass_from_dict(cls, data, "augmentation")


# The identity recipe: the images as they are (each method's own recipe lives in its module).
NO_AUGMENTATION = Recipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)


def augment(images: torch.Tensor, recipe: Recipe, generator: torch.Generator | None = None,
            out_size: int | None = None) -> torch.Tensor:
    """Return one augmented view per image: uint8 (B,3,H,W) in, float (B,3,S,S) in [0, 1] out, same device.

    Random parameters are drawn on the CPU from ``generator`` so a seed gives the same views on every device.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    batch = images.shape[0]
    size = out_size or images.shape[-1]
    x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    if batch == 0:
        return x.new_zeros(0, 3, size, size)

    def uniform(lo, hi):
        return torch.rand(batch, generator=generator) * (hi - lo) + lo

    def coin(p):
        return torch.rand(batch, generator=generator) < p

    x = _warp(x, recipe, size, uniform, coin)
    dev = x.device

    jitter = coin(recipe.jitter_p)
    factors = [torch.where(jitter, uniform(1 - s, 1 + s), torch.ones(batch))
               for s in (recipe.brightness, recipe.contrast, recipe.saturation)]
    hue = torch.where(jitter, uniform(-recipe.hue, recipe.hue), torch.zeros(batch))
    b, c, s = (f.to(dev).view(-1, 1, 1, 1) for f in factors)
    x = (x * b).clamp_(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * c + mean).clamp_(0, 1)
    gray = _gray(x)
    x = ((x - gray) * s + gray).clamp_(0, 1)
    x = _rotate_hue(x, hue.to(dev))

    g = coin(recipe.grayscale_p).to(dev).view(-1, 1, 1, 1)
    x = torch.where(g, _gray(x).expand_as(x), x)

    blur = coin(recipe.blur_p)
    if blur.any():
        sigma = torch.where(blur, uniform(*recipe.blur_sigma), torch.zeros(batch))
        x = _blur(x, sigma.to(dev))

    sol = coin(recipe.solarize_p)
    if sol.any():
        x = torch.where(sol.to(dev).view(-1, 1, 1, 1) & (x >= recipe.solarize_threshold), 1 - x, x)
    return x


def _warp(x, recipe, size, uniform, coin):
    """Random resized crop, horizontal flip and rotation as one affine resampling per sample."""
    batch = x.shape[0]
    area = uniform(*recipe.crop_scale)
    log_lo, log_hi = math.log(recipe.crop_ratio[0]), math.log(recipe.crop_ratio[1])
    ratio = torch.exp(uniform(log_lo, log_hi))
    # Crop width/height as fractions of the side; clamp keeps the crop inside the image as torchvision does.
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (uniform(0, 1) * 2 - 1) * (1 - w)
    cy = (uniform(0, 1) * 2 - 1) * (1 - h)
    flip = torch.where(coin(recipe.flip_p), -1.0, 1.0)
    angle = torch.where(coin(recipe.rotate_p), uniform(-recipe.rotate_degrees, recipe.rotate_degrees),
                        torch.zeros(batch)) * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([
        torch.stack([w * flip * cos, -h * sin, cx], dim=1),
        torch.stack([w * flip * sin, h * cos, cy], dim=1),
    ], dim=1).to(x.device)
    grid = F.affine_grid(theta, [batch, 3, size, size], align_corners=False)
    # Downsampling a large crop by more than 2x aliases; pre-shrink the source so bilinear taps stay adjacent.
    if x.shape[-1] > 2 * size:
        x = F.interpolate(x, size=(2 * size, 2 * size), mode="bilinear", antialias=True, align_corners=False)
    # Without rotation a crop never leaves the image, and "border" padding is the cheaper kernel (~2x on CPU).
    padding = "reflection" if recipe.rotate_p > 0 else "border"
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _rotate_hue(x: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Shift hue by ``hue`` turns as a rotation about the grey axis: a per-sample 3x3 matrix, no HSV round trip."""
    angle = hue * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    k = 1 / 3
    sq = math.sqrt(1 / 3)
    # Rodrigues' rotation about the (1,1,1)/sqrt(3) axis.
    m = torch.stack([
        cos + k * (1 - cos), k * (1 - cos) - sq * sin, k * (1 - cos) + sq * sin,
        k * (1 - cos) + sq * sin, cos + k * (1 - cos), k * (1 - cos) - sq * sin,
        k * (1 - cos) - sq * sin, k * (1 - cos) + sq * sin, cos + k * (1 - cos),
    ], dim=1).view(-1, 3, 3)
    batch, channels, height, width = x.shape
    return torch.bmm(m.to(x.dtype), x.reshape(batch, channels, -1)).view_as(x).clamp_(0, 1)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma (0 = untouched), as one grouped convolution per axis."""
    batch, channels, height, width = x.shape
    radius = max(1, min(height, width) // 10)
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    safe = sigma.clamp(min=1e-3).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets / safe) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = torch.where((sigma > 0).view(-1, 1), kernel, (offsets == 0).to(x.dtype))
    kernel = kernel.repeat_interleave(channels, dim=0)  # one kernel per (sample, channel) group
    y = x.reshape(1, batch * channels, height, width)
    y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    y = F.conv2d(y, kernel.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return y.view(batch, channels, height, width)
