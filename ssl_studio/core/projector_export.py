"""A run as a folder that TensorBoard's Embedding Projector opens (`tensorboard --logdir FOLDER`, Projector tab).

The projector reads projector_config.pbtxt from the log folder: one ``embeddings`` entry per space, each a TSV of
vectors (one row per image), sharing one metadata TSV (path, class, split; a header row since it has several
columns) and one sprite sheet: the images in a square grid filled row by row, at most 8192 x 8192 pixels.
Paths in the config are relative to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .atomic import write_atomic, write_bytes_atomic
from .cancel import CancelToken

SPRITE_LIMIT = 8192  # the projector's largest sprite sheet, in pixels a side
CONFIG = "projector_config.pbtxt"


def sprite_cell(n_images: int, resolution: int) -> int:
    """Side of one image in the sprite sheet: the working resolution, smaller when the grid would not fit."""
    return max(1, min(resolution, SPRITE_LIMIT // math.ceil(math.sqrt(n_images))))


def sprite_sheet(images: torch.Tensor) -> Image.Image:
    """uint8 (N, 3, R, R) images in a square grid, row by row, each shrunk to sprite_cell(N, R)."""
    n, cell = len(images), sprite_cell(len(images), images.shape[-1])
    side = math.ceil(math.sqrt(n))
    sheet = Image.new("RGB", (side * cell, side * cell))
    for i in range(n):
        tile = Image.fromarray(images[i].permute(1, 2, 0).contiguous().numpy())
        if cell != tile.width:
            tile = tile.resize((cell, cell), Image.Resampling.LANCZOS)
        sheet.paste(tile, ((i % side) * cell, (i // side) * cell))
    return sheet


def _tsv_field(text: str) -> str:
    # A tab or newline inside a file name would shift every column after it.
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def metadata_tsv(paths: list[str], classes: list[str], splits: list[str]) -> str:
    rows = ["path\tclass\tsplit"] + [f"{_tsv_field(p)}\t{_tsv_field(c)}\t{s}" for p, c, s in zip(paths, classes, splits)]
    return "\n".join(rows) + "\n"


def config_text(spaces: list[str], cell: int | None) -> str:
    entries = []
    for space in spaces:
        sprite = (f'  sprite {{\n    image_path: "sprite.png"\n    single_image_dim: {cell}\n'
                  f"    single_image_dim: {cell}\n  }}\n") if cell else ""
        entries.append(f'embeddings {{\n  tensor_name: "{space}"\n  tensor_path: "{space}/tensors.tsv"\n'
                       f'  metadata_path: "metadata.tsv"\n{sprite}}}\n')
    return "".join(entries)


def write_projector(folder: str | Path, embeddings: dict[str, np.ndarray], paths: list[str], classes: list[str],
                    splits: list[str], images: torch.Tensor | None = None, *,
                    cancel: CancelToken | None = None) -> Iterator[str]:
    """Write the projector folder, yielding each space as its tensors are written; ``images`` (uint8, in the
    same order) make the sprite sheet, without them points show as dots."""
    cancel = cancel or CancelToken()
    folder = Path(folder)
    for space, x in embeddings.items():
        cancel.raise_if_cancelled()
        text = "\n".join("\t".join(f"{v:.6g}" for v in row) for row in x) + "\n"
        write_bytes_atomic(folder / space / "tensors.tsv", text.encode())
        yield space
    write_bytes_atomic(folder / "metadata.tsv", metadata_tsv(paths, classes, splits).encode("utf-8",
                                                                                           "surrogateescape"))
    cell = None
    if images is not None:
        cancel.raise_if_cancelled()
        cell = sprite_cell(len(images), images.shape[-1])
        write_atomic(folder / "sprite.png", lambda tmp: sprite_sheet(images).save(tmp, format="PNG"))
    write_bytes_atomic(folder / CONFIG, config_text(list(embeddings), cell).encode())
