"""Scale: opening a folder of 100k images, and the Compare page with 100k points in each of its four maps.

Each measurement runs in a fresh process (``python -m ssl_studio.bench.scale ingest|map ...``) so that its peak
resident memory (``ru_maxrss``) is its own: the parent reads the child's figures from a JSON file. The ingest child
opens the folder with ``core.data.load_folder`` into an empty image cache (decode + write the memory-mapped cache),
a second child opens it again from that cache (the reopen). The map child fills a real Compare page, offscreen, with
synthetic clustered maps and embeddings, and times what a user does: pan and zoom a map, hover a point (the
highlight in all four maps, the thumbnail and the inspector, repainted), select a tenth of the points, and click
for nearest neighbours.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssl_studio.core.data import _MAX_PROCESSES
from ssl_studio.core.threads import usable_cores

from .common import Table, source_root
from .scale_folder import SOURCE_PX, shapes_folder

RESOLUTIONS = (32, 64)
FRAME_MS = 50  # the goal for a pan frame of a 100k-point map
EMBEDDING_DIM = 256  # the small CNN's; neighbours cost grows with it
_MB = 1 << 20
_CLEAR_REFS = Path("/proc/self/clear_refs")


def measure_scale(table: Table, n_images: int, map_points: int, folder_root: Path | None = None,
                  gloo_epochs: int = 3) -> dict:
    folder, made = shapes_folder(n_images, folder_root)
    figures: dict = {"folder": {**made, "path": str(folder)}}
    if made["reused"]:
        table.row(f"{made['images']:,} PNGs ({SOURCE_PX} px) for the scale rows", "reused", "",
                  f"generated earlier in {made['generate_seconds']:.0f} s, {made['bytes'] / _MB:.0f} MB; {folder}")
    else:
        table.row(f"generate {made['images']:,} PNGs ({SOURCE_PX} px)", made["images"] / made["generate_seconds"],
                  "images/s", f"{made['generate_seconds']:.0f} s on {made['processes']} processes, "
                              f"{made['bytes'] / _MB:.0f} MB; kept in {folder}")
    with tempfile.TemporaryDirectory(prefix="ssl-studio-scale-") as tmp:
        for px in RESOLUTIONS:
            cache = Path(tmp) / f"cache-{px}"
            first = _child("ingest", str(folder), str(px), str(cache), "")
            again = _child("ingest", str(folder), str(px), str(cache), "")
            if again["stage"] != "cache":
                raise RuntimeError(f"the second open at {px} px did not come from the cache")
            figures[f"ingest_{px}"] = {"first": first, "reopen": again}
            n = first["images"]
            table.row(f"open {n:,} images at {px} px: decode + write cache", n / first["seconds"], "images/s",
                      f"{first['seconds']:.1f} s; {first['processes']} decoding process(es)")
            if px == RESOLUTIONS[0]:  # what the loader chose beside the other choice: one process or a pool
                other = 1 if first["processes"] > 1 else max(2, min(usable_cores(), _MAX_PROCESSES))
                versus = figures[f"ingest_{px}"]["other_processes"] = _child(
                    "ingest", str(folder), str(px), str(Path(tmp) / "versus"), str(other))
                pool = f", largest decoding process {versus['children_peak_mb']:.0f} MB" if other > 1 else ""
                table.row(f"  the same on {other} decoding process(es)", n / versus["seconds"], "images/s",
                          f"{versus['seconds']:.1f} s; peak {versus['peak_mb']:.0f} MB{pool}")
            pool = f"; largest decoding process {first['children_peak_mb']:.0f} MB" if first["processes"] > 1 else ""
            table.row(f"  peak resident memory (cache file {first['cache_mb']:.0f} MB)", first["peak_mb"], "MB",
                      f"{first['peak_mb'] - first['before_mb']:.0f} MB above the {first['before_mb']:.0f} MB "
                      f"before opening{pool}")
            table.row("  reopen from the cache (fresh process)", again["seconds"], "s",
                      f"peak {again['peak_mb']:.0f} MB, {again['peak_mb'] - again['before_mb']:.0f} MB above before")
            rss = again["epoch_rss_mb"]
            table.row("  an epoch of batches of 256 from the mapped cache", again["epoch_seconds"], "s",
                      f"then resident: {rss.get('RssAnon', 0):.0f} MB own, {rss.get('RssFile', 0):.0f} MB of "
                      "mapped files (the OS can drop those)" if rss else "")
        if gloo_epochs:
            figures["gloo"] = _gloo_views_per_second(Path(tmp), gloo_epochs)
            one, two = figures["gloo"][1], figures["gloo"][2]
            table.row("training loop, 1 CPU process (torchrun, gloo)", one, "views/s", "SimCLR, small CNN, 1 thread")
            table.row("  2 CPU processes (torchrun, gloo)", two, "views/s",
                      f"{two / one:.2f}x; each process 1 thread, negatives gathered across both")
    if map_points:
        drawn = _child("map", str(map_points))
        figures["map"] = drawn
        k = f"{drawn['points'] // 1000}k"
        table.row(f"Compare page, 4 maps x {k} points: fill", drawn["fill_ms"], "ms", "show_loaded + first paint")
        table.row(f"  pan frame, one {k}-point map (median)", drawn["pan_ms_median"], "ms",
                  f"worst {drawn['pan_ms_max']:.1f} of {drawn['frames']}; goal <= {FRAME_MS}")
        table.row("  zoom frame (median)", drawn["zoom_ms_median"], "ms", f"worst {drawn['zoom_ms_max']:.1f}")
        table.row("  hover: nearest point + 4 maps repainted (median)", drawn["hover_ms_median"], "ms",
                  f"worst {drawn['hover_ms_max']:.1f}; the spatial-index query alone {drawn['query_ms_median']:.2f}")
        table.row(f"  select {drawn['selected']:,} points in all 4 maps", drawn["select_ms"], "ms", "repainted")
        table.row("  click: 8 neighbours in each of 4 spaces", drawn["neighbours_ms"], "ms",
                  f"{drawn['dim']}-d embeddings, repainted")
    return figures


def _gloo_views_per_second(tmp: Path, epochs: int = 3) -> dict[int, float]:
    """The SSL training's own views/s under `torchrun --nproc-per-node N -m ssl_studio run`, N = 1 and 2, on
    2,400 generated images: what DDP on CPU processes adds or costs on this machine."""
    from ssl_studio.core.runs import RunFolder
    from ssl_studio.core.samples import make_shapes

    data = make_shapes(tmp / "gloo-data", per_class=300, size=32)
    env = {**os.environ, "PYTHONPATH": source_root(), "OMP_NUM_THREADS": "1",
           "SSL_STUDIO_CACHE_DIR": str(tmp / "gloo-cache")}
    figures = {}
    for n in (1, 2):
        out = tmp / f"gloo-run-{n}"
        done = subprocess.run(["torchrun", "--standalone", "--nproc-per-node", str(n), "-m", "ssl_studio", "run",
                               str(data), "--out", str(out), "--epochs", str(epochs), "--device", "cpu",
                               "--no-umap"], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"torchrun with {n} process(es) failed: {done.stderr.strip()[-2000:]}")
        figures[n] = RunFolder.open(out).read_metrics()["train"]["ssl"]["views_per_second"]
    return figures


def _child(*args: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": source_root(),
               "SSL_STUDIO_CACHE_DIR": str(Path(tmp) / "cache")}
        done = subprocess.run([sys.executable, "-m", "ssl_studio.bench.scale", *args, str(out)], env=env,
                              capture_output=True, text=True)
        if done.returncode or not out.is_file():
            raise RuntimeError(f"the scale probe {args[0]} failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        return json.loads(out.read_text())


def _peak_mb(who=resource.RUSAGE_SELF) -> float:
    """The high-water mark of resident memory; for this process, since _reset_peak when Linux allows it."""
    if who == resource.RUSAGE_SELF and _CLEAR_REFS.exists():
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return resource.getrusage(who).ru_maxrss / (_MB if sys.platform == "darwin" else 1024)


def _reset_peak() -> float:
    """Start the high-water mark again from here (importing torch peaks above what a load adds); resident MB now."""
    if _CLEAR_REFS.exists():
        _CLEAR_REFS.write_text("5")  # Linux: 5 resets VmHWM to the current resident size
    return _peak_mb()


def probe_ingest(folder: str, px: str, cache: str, processes: str = "") -> dict:
    """Open the folder at px into the cache folder; ``processes`` forces how many decode (default: the loader's)."""
    import torch

    from ssl_studio.core import data

    sizes = [p.stat().st_size for p in data.scan_folder(folder)[0]]
    chosen = int(processes) if processes else data._decode_processes(sizes)
    data._decode_processes = lambda _sizes: chosen
    before = _reset_peak()
    start = time.perf_counter()
    stages = set()
    load = data.iter_load(folder, int(px), cache_dir=cache)
    while True:
        try:
            stages.add(next(load).stage)
        except StopIteration as stop:
            dataset = stop.value
            break
    seconds = time.perf_counter() - start
    figures = {"images": len(dataset), "resolution": int(px), "seconds": seconds, "before_mb": before,
               "peak_mb": _peak_mb(), "children_peak_mb": _peak_mb(resource.RUSAGE_CHILDREN),
               "stage": "cache" if "cache" in stages else "decoding",
               "processes": chosen, "cache_mb": dataset.images.numel() / _MB}
    # An epoch's worth of training batches gathered from the mapped cache: the pages read are the file's
    # (the OS can drop them again), while this process's own memory stays what a batch needs.
    start = time.perf_counter()
    for batch in torch.randperm(len(dataset)).split(256):
        dataset.images[batch].float()
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    resident = {k: int(status.split(f"{k}:")[1].split()[0]) / 1024 for k in ("RssAnon", "RssFile") if k in status}
    return {**figures, "epoch_seconds": time.perf_counter() - start, "epoch_rss_mb": resident}


def probe_map(points: str, frames: int = 40) -> dict:
    """Fill a Compare page with four maps of ``points`` synthetic points and time pan, zoom, hover, select, click."""
    import numpy as np
    from PySide6.QtCore import QRectF
    from PySide6.QtTest import QTest

    from ssl_studio.core.augment import Recipe
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.spaces import SPACES
    from ssl_studio.core.pipeline import LoadedRun
    from ssl_studio.core.runs import RunFolder
    from ssl_studio.gui.app import create_application
    from ssl_studio.gui.compare import ComparePage

    app = create_application()
    n = int(points)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    names = [f"class {k}" for k in range(10)]
    projections, embeddings = {}, {}
    for space in SPACES:
        projections[(space, "umap")] = (rng.normal(scale=8, size=(10, 2))[labels]
                                        + rng.normal(size=(n, 2))).astype(np.float32)
        embeddings[space] = (rng.normal(size=(10, EMBEDDING_DIM))[labels]
                             + rng.normal(size=(n, EMBEDDING_DIM))).astype(np.float32)
    run = RunFolder.create(tempfile.mkdtemp(prefix="ssl-studio-map-probe-"))  # empty: no imported spaces
    loaded = LoadedRun(run, TrainConfig(), Recipe(), Path("/nonexistent"), [f"{names[k]}/{i}.png"
                       for i, k in enumerate(labels)], labels, names, embeddings, projections, {}, {})
    page = ComparePage()
    page.resize(1280, 820)
    page.show()
    if not QTest.qWaitForWindowExposed(page):
        raise RuntimeError("the Compare page was never exposed, so nothing could be drawn")

    def timed(action) -> float:
        """Milliseconds of ``action`` and of the repaints it asks for (Qt repaints only what changed)."""
        start = time.perf_counter()
        action()
        app.processEvents()
        return (time.perf_counter() - start) * 1000

    def fill() -> None:
        page.show_loaded(loaded, None)
        app.processEvents()
        for each in page.maps.values():
            each.plot.viewport().repaint()

    fill_ms = timed(fill)
    m = page.maps["ssl"]
    viewport = m.plot.viewport()
    coords = m.coords
    step = 0.01 * float(coords[:, 0].max() - coords[:, 0].min())

    def frames_of(move) -> list[float]:
        times = []
        for i in range(frames):
            move(i)
            start = time.perf_counter()
            viewport.repaint()
            times.append((time.perf_counter() - start) * 1000)
        return sorted(times)

    pan = frames_of(lambda i: m.view_box.translateBy(x=step if i < frames // 2 else -step))
    zoom = frames_of(lambda i: m.view_box.scaleBy((0.97, 0.97) if i < frames // 2 else (1 / 0.97, 1 / 0.97)))

    hover, query = [], []
    for index in rng.integers(0, n, frames):
        pos = m.scene_pos_of(int(index))
        start = time.perf_counter()
        found = m.point_at(pos)
        query.append((time.perf_counter() - start) * 1000)
        hover.append(timed(lambda: m.hovered.emit(found)))
    hover.sort()
    query.sort()

    x, y = coords[:, 0], coords[:, 1]
    lo_x, hi_x = np.quantile(x, [0.3, 0.62])
    lo_y, hi_y = np.quantile(y, [0.3, 0.62])
    rect = QRectF(float(lo_x), float(lo_y), float(hi_x - lo_x), float(hi_y - lo_y))
    select = timed(lambda: m.view_box.rectSelected.emit(rect))
    neighbours = timed(lambda: page.linked.show_neighbours(int(rng.integers(n))))
    page.close()
    shutil.rmtree(run.path, ignore_errors=True)
    return {"points": n, "frames": frames, "fill_ms": fill_ms, "pan_ms_median": pan[len(pan) // 2],
            "pan_ms_max": pan[-1], "zoom_ms_median": zoom[len(zoom) // 2], "zoom_ms_max": zoom[-1],
            "hover_ms_median": hover[len(hover) // 2], "hover_ms_max": hover[-1],
            "query_ms_median": query[len(query) // 2], "selected": len(page.linked.selection), "select_ms": select,
            "neighbours_ms": neighbours, "dim": EMBEDDING_DIM}


if __name__ == "__main__":
    kind, *args, out = sys.argv[1:]
    figures = probe_ingest(*args) if kind == "ingest" else probe_map(*args)
    Path(out).write_text(json.dumps(figures))
