"""Decode image files into square uint8 arrays, or say why a file cannot be used.

Kept apart from data.py, with nothing heavier than PIL and numpy, because it is what the decoding processes import.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class Unusable(Exception):
    """A file that cannot become a training image; str(self) is the reason shown to the user."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # 16/32-bit grayscale: PIL's own convert clips to 0..255, turning most photos white.
        a = np.asarray(img, dtype=np.float32)
        if img.mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255
        elif img.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def decode(path: str | Path, nbytes: int, resolution: int) -> np.ndarray:
    """One file -> (R, R, 3) uint8, or Unusable with the reason."""
    if nbytes == 0:
        raise Unusable("empty file")
    try:
        with Image.open(path) as img:
            # PIL raises above twice its limit but only warns above it, and warnings cannot be made errors
            # thread-safely; so the limit is checked here too, from the header, before a pixel is decoded.
            w, h, limit = *img.size, Image.MAX_IMAGE_PIXELS
            if limit and w * h > limit:
                raise Unusable(f"decompression bomb: {w}x{h} pixels, more than the {limit:,} allowed")
            if img.format == "JPEG":
                img.draft("RGB", (resolution, resolution))  # decode at 1/2..1/8 scale directly: much faster
            img = _to_rgb(ImageOps.exif_transpose(img))
    except Unusable:
        raise
    except Image.DecompressionBombError as e:
        raise Unusable(f"decompression bomb: {e}") from None
    except PermissionError:
        raise Unusable("permission denied") from None
    except UnidentifiedImageError:
        raise Unusable("not an image (unrecognised file content)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # PIL reports damage as OSError, SyntaxError ("broken PNG file") or ValueError, depending on format.
        msg = str(e)
        if "truncated" in msg.lower():
            raise Unusable("truncated file") from None
        raise Unusable(f"corrupt or unsupported image: {msg}") from None
    except Exception as e:  # a decoder bug must not take the whole folder down
        raise Unusable(f"could not decode: {type(e).__name__}: {e}") from None
    w, h = img.size
    s = min(w, h)
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    img = img.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.asarray(img)


def shorter_side(path: str | Path) -> int | None:
    """The image's shorter side in pixels, from its header alone (EXIF rotation does not change it); None when the
    file cannot be read."""
    try:
        with Image.open(path) as img:
            return min(img.size)
    except Exception:  # an unreadable file says nothing about the others; decoding gives its reason
        return None


def decode_chunk(paths: list[str | Path], sizes: list[int], resolution: int) -> tuple[np.ndarray, list[str | None]]:
    """Decode files in order: the usable ones stacked as (M, 3, R, R) uint8, and per file None or its skip reason."""
    images, reasons = [], []
    for path, nbytes in zip(paths, sizes):
        try:
            images.append(decode(path, nbytes, resolution))
            reasons.append(None)
        except Unusable as e:
            reasons.append(str(e))
    if not images:
        return np.empty((0, 3, resolution, resolution), np.uint8), reasons
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)), reasons
