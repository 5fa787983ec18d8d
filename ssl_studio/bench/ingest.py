"""Ingest: decode a generated folder of PNGs into the uint8 tensor cache, then open it again from that cache."""

from __future__ import annotations

import math
import time
from pathlib import Path

from ssl_studio.core.data import ImageDataset, load_folder
from ssl_studio.core.samples import SHAPES, make_shapes

from .common import Table

SOURCE_PX = 64  # the augmentation section crops these 64 px sources to 32 px views


def measure_ingest(table: Table, n_images: int, workdir: Path, cache_rounds: int = 3) -> tuple[dict, ImageDataset]:
    """Figures, and the decoded dataset (64 px) that the later sections train and augment on."""
    start = time.perf_counter()
    folder = make_shapes(workdir / "images", per_class=math.ceil(n_images / len(SHAPES)), size=SOURCE_PX)
    generated = time.perf_counter() - start
    cache = workdir / "cache"

    start = time.perf_counter()
    dataset = load_folder(folder, SOURCE_PX, cache_dir=cache)
    first = time.perf_counter() - start
    again = float("inf")
    for _ in range(cache_rounds):
        start = time.perf_counter()
        load_folder(folder, SOURCE_PX, cache_dir=cache)
        again = min(again, time.perf_counter() - start)

    n = len(dataset)
    figures = {"images": n, "resolution": SOURCE_PX, "generate_seconds": generated, "decode_seconds": first,
               "decode_images_per_second": n / first, "cache_seconds": again, "cache_images_per_second": n / again,
               "cache_speedup": first / again}
    table.row(f"decode {n} PNGs ({SOURCE_PX} px) + write cache", n / first, "images/s", f"{first:.2f} s")
    table.row("open again from the cache", n / again, "images/s", f"{again:.3f} s, best of {cache_rounds}")
    table.row("cache speedup", first / again, "x", "first open / second open")
    return figures, dataset
