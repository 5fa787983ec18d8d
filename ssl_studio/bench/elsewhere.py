"""Taking a run elsewhere: `ssl-studio embed` of a new folder (a fresh process, a cold image cache), and the size
and time of report.html for a run of that folder."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from ssl_studio.core.cancel import drain
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.pipeline import run_pipeline
from ssl_studio.core.run_export import export_run
from ssl_studio.core.samples import SHAPES, make_shapes

from .common import Table, source_root

PX = 32
# A short training: the embedding's speed does not depend on how well the network was trained.
CONFIG = TrainConfig(time_budget=2.0, batch_size=64, resolution=PX, device="cpu")


def measure_elsewhere(table: Table, n_images: int, workdir: Path) -> dict:
    small = make_shapes(workdir / "elsewhere-train", per_class=25, size=PX, seed=1)
    run_dir = workdir / "elsewhere-run"
    list(run_pipeline(small, run_dir, CONFIG, use_umap=False, skip=("transfer",)))
    folder = make_shapes(workdir / "elsewhere-new", per_class=math.ceil(n_images / len(SHAPES)), size=PX, seed=2)
    n = len(list(folder.glob("*/*.png")))

    env = {**os.environ, "SSL_STUDIO_CACHE_DIR": str(workdir / "elsewhere-cold-cache"), "PYTHONPATH": source_root()}
    start, cpu = time.perf_counter(), _children_cpu_seconds()
    subprocess.run([sys.executable, "-m", "ssl_studio", "embed", str(run_dir), str(folder), "--out",
                    str(workdir / "embedded.npy"), "--device", "cpu"], env=env, check=True, capture_output=True)
    embed_seconds, embed_cpu = time.perf_counter() - start, _children_cpu_seconds() - cpu
    # CPU seconds barely change when other processes compete for the cores; wall seconds do.
    table.row(f"ssl-studio embed {n:,} new {PX} px images", embed_seconds, "s",
              f"{n / embed_seconds:,.0f} images/s, {embed_cpu:.0f} s CPU; a fresh process, a cold image cache "
              "(aim: under 20 s)")

    big_run = workdir / "elsewhere-big-run"
    list(run_pipeline(folder, big_run, CONFIG, use_umap=False, skip=("transfer",)))
    start = time.perf_counter()
    out = drain(export_run(big_run, "html", workdir / "report"))
    report_seconds = time.perf_counter() - start
    megabytes = (out / "report.html").stat().st_size / 1e6
    table.row(f"report.html of a {n:,}-image run", megabytes, "MB",
              f"written in {report_seconds:.1f} s with thumbnails (aim: under 25 MB)")
    return {"images": n, "embed_seconds": embed_seconds, "embed_cpu_seconds": embed_cpu,
            "embed_images_per_second": n / embed_seconds,
            "report_megabytes": megabytes, "report_seconds": report_seconds}


def _children_cpu_seconds() -> float:
    t = os.times()
    return t.children_user + t.children_system
