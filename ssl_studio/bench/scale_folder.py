"""The scale section's image folder: many small shapes PNGs, generated once in parallel and kept for later runs.

Generating 100k PNGs took 93 s on 2 cores and 156 MB of files (394 MB on disk in 4 KB blocks), so the folder is
kept under the system's temp folder (``ssl-studio-bench/``) and reused while it is complete; a marker file, written
last, says it is.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ssl_studio.core.samples import SHAPES, make_shapes

SOURCE_PX = 64
_MARKER = ".complete.json"  # hidden: the loader ignores it


def bench_folder_root() -> Path:
    return Path(tempfile.gettempdir()) / "ssl-studio-bench"


def shapes_folder(n_images: int, root: Path | None = None, workers: int | None = None) -> tuple[Path, dict]:
    """A folder of at least ``n_images`` shapes PNGs (SOURCE_PX px, 8 class folders), and what making it cost.

    The figures say whether the folder was reused, and when it was generated, in how many seconds and bytes.
    """
    per_class = math.ceil(n_images / len(SHAPES))
    root = root or bench_folder_root()
    target = root / f"shapes-{per_class * len(SHAPES)}-{SOURCE_PX}px"
    marker = target / _MARKER
    if marker.is_file():
        return target, {**json.loads(marker.read_text()), "reused": True}
    shutil.rmtree(target, ignore_errors=True)  # an interrupted earlier attempt
    workers = workers or os.cpu_count() or 1
    parts = min(workers, per_class)
    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".shapes-"))
    try:
        counts = [per_class // parts + (k < per_class % parts) for k in range(parts)]
        with ProcessPoolExecutor(parts, mp_context=multiprocessing.get_context("spawn")) as pool:
            # Each part has its own seed: the parts are different images, and the same ones on every machine.
            list(pool.map(make_shapes, [staging / str(k) for k in range(parts)], counts, [SOURCE_PX] * parts,
                          range(parts)))
        for shape in SHAPES:
            (staging / shape).mkdir()
            for k in range(parts):
                for file in (staging / str(k) / shape).iterdir():
                    file.rename(staging / shape / f"{k}-{file.name}")
        for k in range(parts):
            shutil.rmtree(staging / str(k))
        figures = {"images": per_class * len(SHAPES), "resolution": SOURCE_PX, "processes": parts,
                   "generate_seconds": time.perf_counter() - start,
                   "bytes": sum(f.stat().st_size for shape in SHAPES for f in (staging / shape).iterdir())}
        (staging / _MARKER).write_text(json.dumps(figures))
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, {**figures, "reused": False}
