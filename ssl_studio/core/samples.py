"""Sample datasets generated offline, so the app can be tried (and tested) without bringing images.

"shapes" is built to show what SSL is for: each image's color is random and independent of its class, so raw
pixels group by color while a good representation groups by shape.
"""

from __future__ import annotations

import colorsys
import math
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ssl_studio.core.data import cache_root

SAMPLES = ("shapes", "digits")
# Part of the folder name: bump it when a generator changes so old copies are not reused.
_VERSION = 1
_SUPERSAMPLE = 4  # draw 4x larger and downsample: antialiased edges for every shape


def _regular(n: int, phase: float = 0.0) -> list[tuple[float, float]]:
    return [(math.cos(phase + 2 * math.pi * k / n), math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _star() -> list[tuple[float, float]]:
    radii = [1.0 if k % 2 == 0 else 0.45 for k in range(10)]  # alternate tips and inner corners
    angles = [-math.pi / 2 + math.pi * k / 5 for k in range(10)]
    return [(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles)]


def _cross(w: float = 0.33) -> list[tuple[float, float]]:
    return [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]


def _heart() -> list[tuple[float, float]]:
    points = []
    for k in range(64):
        t = 2 * math.pi * k / 64
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((16 * math.sin(t) ** 3 / 17, -y / 17 + 0.1))  # the classic heart curve, y pointing down
    return points


# Unit outlines centred on the origin; circle and ring are drawn as ellipses.
_OUTLINES = {
    "square": _regular(4, math.pi / 4),
    "triangle": _regular(3, -math.pi / 2),
    "star": _star(),
    "cross": _cross(),
    "hexagon": _regular(6),
    "heart": _heart(),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "heart")


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(h, s, v))


def _draw(shape: str, size: int, rng: random.Random) -> Image.Image:
    big = size * _SUPERSAMPLE
    dark = rng.random() < 0.5
    # Muted background of any brightness; a strong foreground hue with enough contrast against it.
    bg = _rgb(rng.random(), rng.uniform(0, 0.35), rng.uniform(0.05, 0.35) if dark else rng.uniform(0.7, 0.95))
    fg = _rgb(rng.random(), rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0) if dark else rng.uniform(0.35, 0.7))
    r = rng.uniform(0.2, 0.42) * big
    cx, cy = rng.uniform(r, big - r), rng.uniform(r, big - r)
    angle = rng.uniform(0, 2 * math.pi)
    img = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(img)
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
        if shape == "ring":
            ri = 0.55 * r
            draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=bg)
    else:
        c, s = math.cos(angle), math.sin(angle)
        draw.polygon([(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in _OUTLINES[shape]], fill=fg)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def make_shapes(out_dir, per_class: int = 300, size: int = 64, seed: int = 0) -> Path:
    """Write <out_dir>/<shape>/NNNN.png for 8 shapes; the same seed gives the same pixels."""
    out = Path(out_dir)
    rng = random.Random(seed)
    for shape in SHAPES:
        (out / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            _draw(shape, size, rng).save(out / shape / f"{i:04d}.png")
    return out


def make_digits(out_dir) -> Path:
    """Write scikit-learn's bundled 8x8 digits (1797 images) as 32x32 PNGs in class folders 0..9."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: works offline

    out = Path(out_dir)
    digits = load_digits()
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        folder = out / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        gray = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), "L")
        gray.resize((32, 32), Image.Resampling.BICUBIC).convert("RGB").save(folder / f"{i:04d}.png")
    return out


_BUILDERS = {"shapes": make_shapes, "digits": make_digits}


def sample_folder(name: str, cache_dir=None) -> Path:
    """The folder of sample `name`, generated on first use under the cache (or cache_dir)."""
    if name not in SAMPLES:
        raise ValueError(f"Unknown sample dataset {name!r}; choose one of: {', '.join(SAMPLES)}.")
    base = Path(cache_dir) if cache_dir is not None else cache_root() / "samples"
    target = base / f"{name}-v{_VERSION}"
    if target.is_dir():
        return target
    base.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a crash or a second process never leaves a half-written folder there.
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{name}-"))
    try:
        _BUILDERS[name](tmp)
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():  # anything but losing the race to another process is a real error
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
