"""UI responsiveness: the longest gap between event-loop turns of the real main window while it works.

A 5 ms QTimer records the time between its own timeouts while the window (offscreen) opens a folder, trains
with the time budget given, and computes every map, warming UMAP up in the background from the start as the app
does. The same timer first runs a few seconds with no window as a control: on a busy machine the operating system
alone delays it, and that floor belongs to the machine, not to the app. It runs in a fresh process (``python -m
ssl_studio.bench.ui``) with its own settings, runs folder and image cache, so it neither inherits this process's
state nor touches the user's.

In-app training speed is measured in fresh windows with no timer (the 5 ms timer's wake-ups take the GIL from
training and cost it about a tenth), each followed by ``ssl-studio run`` on the same settings. Pairs alternate
(SPEED_PAIRS) and the row gives the median ratio: on this 2-core VM the same run's views/s varies by 10-15 % from
one run to the next, more than the difference being measured.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

from ssl_studio.core.data import cache_root

from .common import Table, source_root

TICK_MS = 5
SLOW_MS = 100  # the goal: no gap above this
IDLE_MS = 3000
LATE_MS = 50  # the watchdog samples the main thread once the timer is this late
MAP_POINTS = 20_000
FRAME_MS = 33  # a pan frame within this is 30 frames/s: interactive
SPEED_PAIRS = 3  # in-app then command-line training runs, alternating


def unavailable() -> str | None:
    """Why the measurement cannot run here, or None."""
    gui = Path(__file__).resolve().parent.parent / "gui"
    if not (gui / "main_window.py").is_file():
        return "ssl_studio/gui/main_window.py does not exist yet"
    try:
        import PySide6  # noqa: F401
    except ImportError as exc:
        return f"PySide6 cannot be imported: {exc}"
    return None


def measure_ui(table: Table, folder: Path, budget: float, limit: float) -> dict | None:
    """Figures, or None (with the reason printed) when there is no window to measure."""
    reason = unavailable()
    if reason:
        table.row("UI max gap", "skipped", "", reason)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ui.json"
        env = probe_environment(Path(tmp))
        figures = probe_process("gaps", folder, budget, limit, out, tmp, env)
        if figures["in_app_config"]:
            pairs = [_speed_pair(folder, budget, limit, figures["in_app_config"], env, Path(tmp) / f"speed-{i}")
                     for i in range(SPEED_PAIRS)]
            figures["speed_pairs"] = pairs
            figures["in_app_over_command_line"] = statistics.median(p["in_app"] / p["command_line"] for p in pairs)
    phases = ", ".join(f"{p} {ms:.0f}" for p, ms in figures["phase_max_gap_ms"].items())
    table.row("UI max gap (load, train, maps, transfer)", figures["max_gap_ms"], "ms",
              f"goal <= {SLOW_MS}; by phase: {phases}")
    table.row(f"UI gaps over {SLOW_MS} ms", figures["gaps_over_slow"], "",
              f"of {figures['ticks']} ticks in {figures['seconds']:.0f} s; p99 gap {figures['p99_gap_ms']:.0f} ms")
    table.row("control: max gap with no window, no work", figures["idle_max_gap_ms"], "ms",
              f"{figures['idle_seconds']:.0f} s; what other processes alone cost the timer")
    table.row("window shown and first painted", figures["first_paint_ms"], "ms", "before any work starts")
    for gap in figures["slowest"][:3]:
        table.row(f"  {gap['ms']:.0f} ms gap at {gap['at_s']:.1f} s ({gap['phase']})", "", "", gap["doing"])
    for stall in figures.get("stalled_in", [])[:3]:
        table.row("  main thread while the timer was late", stall["samples"], "x 50 ms", stall["where"])
    pairs = figures.get("speed_pairs")
    if pairs:
        each = "; ".join(f"{p['in_app']:,.0f}/{p['command_line']:,.0f}" for p in pairs)
        table.row("SSL training in the app / ssl-studio run", figures["in_app_over_command_line"], "x",
                  f"median of {len(pairs)} pairs (views/s {each}); goal >= 0.9")
        table.row("  in the app with the 5 ms timer running", figures["in_app_views_per_second"], "views/s",
                  "the gap measurement's own run: its timer's wake-ups cost training")
    drawn = figures["map"]
    table.row(f"{drawn['points']:,}-point map: set points + first draw", drawn["first_draw_ms"], "ms")
    table.row(f"{drawn['points']:,}-point map: pan frame (median)", drawn["pan_frame_ms_median"], "ms",
              f"worst {drawn['pan_frame_ms_max']:.1f} ms of {drawn['frames']}; goal <= {FRAME_MS} (30 frames/s)")
    return figures


def probe_environment(work: Path) -> dict:
    """The environment of a probe's fresh process: offscreen, this checkout; the image cache isolated under
    ``work`` (the folder is decoded, not read back), numba's the user's: a usual launch."""
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": source_root(),
            "SSL_STUDIO_CACHE_DIR": str(work / "cache"),
            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(cache_root() / "numba"))}


def probe_process(mode: str, folder: Path, budget: float, limit: float, out: Path, workdir: str,
                   env: dict) -> dict:
    Path(workdir).mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "ssl_studio.bench.ui", mode, str(folder), str(budget), str(limit),
                           str(out), workdir], env=env, capture_output=True, text=True)
    if done.returncode or not out.is_file():
        raise RuntimeError(f"the UI probe ({mode}) failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(out.read_text())


def _speed_pair(folder: Path, budget: float, limit: float, config: dict, env: dict, work: Path) -> dict:
    """In-app SSL views/s in a fresh window with no timer, then ssl-studio run's on the same settings."""
    work.mkdir()
    window = probe_process("training", folder, budget, limit, work / "training.json", str(work / "window"), env)
    if window["in_app_config"] != config:
        raise RuntimeError(f"the window trained with other settings the second time: {window['in_app_config']} "
                           f"against {config}")
    return {"in_app": window["in_app_views_per_second"],
            "command_line": command_line_views_per_second(folder, config, env, work / "cli-run")}


def _application(workdir: str):
    from ssl_studio.gui import settings
    from ssl_studio.gui.app import create_application

    app = create_application()
    settings.use_private_folder(workdir)
    return app


def _window():
    from ssl_studio.gui.main_window import MainWindow

    window = MainWindow(warm_up_umap=True)
    window.resize(1280, 820)
    return window


def _train(window, budget: float) -> None:
    page = window.train
    page.by_time.setChecked(True)
    page.time_budget.setValue(int(budget))
    window.go("train")
    page.start_button.click()


def _training_figures(window) -> dict:
    """In-app SSL views/s, and the settings it trained with as the run folder recorded them."""
    ssl = window.train.finished_events.get("ssl")
    return {"in_app_views_per_second": ssl.views_per_second if ssl else None,
            "in_app_config": window.session.run.read_settings().config.to_dict() if ssl else None}


def probe_training(folder: str, budget: float, limit: float, out: str, workdir: str) -> None:
    """Open the folder in a fresh window, train as a user would, and write in-app SSL views/s as JSON once the
    self-supervised model is done (the supervised one is left unfinished)."""
    from PySide6.QtCore import QTimer

    app = _application(workdir)
    window = _window()
    window.show()
    failed = []

    def train(_dataset) -> None:
        _train(window, budget)
        window.train.job.events.connect(lambda _events: "ssl" in window.train.finished_events and app.quit())

    window.data.datasetLoaded.connect(train)
    QTimer.singleShot(int(limit * 1000), lambda: (failed.append(f"training not finished after {limit:.0f} s"),
                                                  app.quit()))
    window.open_path(folder)
    app.exec()
    figures = _training_figures(window)
    window.close()
    if failed:
        raise SystemExit(failed[0])
    Path(out).write_text(json.dumps(figures))


def probe(folder: str, budget: float, limit: float, out: str, workdir: str) -> None:
    """Drive the main window the way its tests do (tests/gui/conftest.py) and write the gap figures as JSON."""
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest

    app = _application(workdir)

    gaps: dict[str, list[float]] = {}
    slow: list[dict] = []
    doing: dict = {}  # phase -> the label saying what the window is doing then
    state = {"phase": "idle", "last": time.perf_counter(), "error": None}

    def tick() -> None:
        now = time.perf_counter()
        gap = (now - state["last"]) * 1000
        state["last"] = now
        gaps.setdefault(state["phase"], []).append(gap)
        if gap > SLOW_MS and state["phase"] in doing:
            # What the window said it was doing when the gap ended: a lead to what blocked the event loop.
            slow.append({"ms": round(gap, 1), "phase": state["phase"], "at_s": round(now - start, 2),
                         "doing": doing[state["phase"]].text()})

    timer = QTimer(interval=TICK_MS, timeout=tick)
    timer.start()
    stalls: Counter = Counter()
    stop = threading.Event()
    watchdog = threading.Thread(target=_watch_main_thread, args=(state, stalls, stop), daemon=True)
    watchdog.start()
    # The control: the same timer with no window and no work shows what the machine alone does to it.
    QTimer.singleShot(IDLE_MS, app.quit)
    app.exec()

    window = _window()
    # The work starts once the window has painted, as when a user opens a folder: the first paint (style sheet,
    # fonts) is measured on its own and kept apart from the gaps during work.
    state.update(phase="show", last=time.perf_counter())
    shown = time.perf_counter()
    window.show()
    if not QTest.qWaitForWindowExposed(window):
        raise SystemExit("the main window was never exposed")
    app.processEvents()
    first_paint_ms = (time.perf_counter() - shown) * 1000
    window.compare.use_umap.setChecked(True)
    doing.update(load=window.data.progress_text, train=window.train.stage, maps=window.compare.status,
                 transfer=window.transfer.status)

    def train(_dataset) -> None:
        state["phase"] = "train"
        _train(window, budget)

    def maps(_run) -> None:
        state["phase"] = "maps"
        window.go("compare")

    def transfer(_run) -> None:  # the window starts the transfer curves once the maps are drawn
        state["phase"] = "transfer"
        window.go("transfer")

    def give_up() -> None:
        state["error"] = (f"not finished after {limit:.0f} s in phase {state['phase']}: "
                          f"{window.statusBar().currentMessage()!r}, compare page: {window.compare.status.text()!r}")
        app.quit()

    window.data.datasetLoaded.connect(train)
    window.train.trainingFinished.connect(maps)
    window.compare.comparisonFinished.connect(transfer)
    window.transfer.transferFinished.connect(lambda _run: app.quit())
    QTimer.singleShot(int(limit * 1000), give_up)
    state.update(phase="load", last=time.perf_counter())
    start = time.perf_counter()
    window.open_path(folder)
    app.exec()
    timer.stop()
    stop.set()
    watchdog.join()
    seconds = time.perf_counter() - start
    training = _training_figures(window)
    window.close()  # stops and joins the window's jobs
    if state["error"]:
        raise SystemExit(state["error"])
    idle = gaps.pop("idle")
    gaps.pop("show", None)
    work = sorted(g for phase in gaps.values() for g in phase)
    Path(out).write_text(json.dumps({
        "max_gap_ms": work[-1], "p99_gap_ms": work[int(0.99 * (len(work) - 1))],
        "gaps_over_slow": sum(g > SLOW_MS for g in work), "ticks": len(work), "seconds": seconds,
        "idle_max_gap_ms": max(idle), "idle_seconds": IDLE_MS / 1000, "tick_ms": TICK_MS,
        "first_paint_ms": first_paint_ms,
        "phase_max_gap_ms": {phase: max(g) for phase, g in gaps.items()}, "train_budget_seconds": budget,
        "slowest": sorted(slow, key=lambda g: -g["ms"])[:10],
        "stalled_in": [{"where": where, "samples": n} for where, n in stalls.most_common(8)],
        "map": _draw_and_pan(MAP_POINTS), **training}))


def command_line_views_per_second(folder: Path, config: dict, env: dict, out: Path) -> float:
    """The window's SSL training again, by `ssl-studio run` in a fresh process (its own first training, as the
    window's was): the command line's views/s on this machine, the figure in-app training is held to."""
    from ssl_studio.core.checkpoint import load_checkpoint
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.runs import RunFolder

    settings = TrainConfig.from_dict(config)
    args = [sys.executable, "-m", "ssl_studio", "run", str(folder), "--out", str(out), "--no-umap", "--no-transfer",
            "--method", settings.method, "--resolution", str(settings.resolution), "--seed", str(settings.seed)]
    args += ["--epochs", str(settings.epochs)] if settings.epochs else ["--time-budget", f"{settings.time_budget:g}"]
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ssl-studio run failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    meta = load_checkpoint(RunFolder(out).checkpoint("ssl"), with_tensors=False)[1]
    if meta["config"] != config:
        raise RuntimeError(f"ssl-studio run trained with other settings than the window: {meta['config']} "
                           f"against {config}")
    return meta["views_per_second"]


def _draw_and_pan(n: int, frames: int = 60) -> dict:
    """Milliseconds to show n points in one of the Compare page's maps, then per frame while panning it.

    Each frame moves the view by 1% and repaints synchronously, the work a drag asks for at every mouse move.
    """
    import numpy as np
    from PySide6.QtTest import QTest

    from ssl_studio.core.coloring import Coloring
    from ssl_studio.gui.scatter_map import ScatterMap

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    coords = rng.normal(scale=8, size=(10, 2))[labels] + rng.normal(size=(n, 2))
    view = ScatterMap("bench")
    view.resize(640, 640)
    view.show()
    # Until the window is exposed, repaint() paints nothing.
    if not QTest.qWaitForWindowExposed(view):
        raise RuntimeError("the map's window was never exposed, so nothing could be drawn")
    viewport = view.plot.viewport()
    start = time.perf_counter()
    view.set_points(coords, Coloring.by_class(labels, [str(k) for k in range(10)]))
    viewport.repaint()
    first = (time.perf_counter() - start) * 1000
    step = 0.01 * (coords[:, 0].max() - coords[:, 0].min())
    pan = []
    for i in range(frames):
        view.view_box.translateBy(x=step if i < frames // 2 else -step)
        start = time.perf_counter()
        viewport.repaint()
        pan.append((time.perf_counter() - start) * 1000)
    view.close()
    pan.sort()
    return {"points": n, "first_draw_ms": first, "pan_frame_ms_median": pan[len(pan) // 2],
            "pan_frame_ms_max": pan[-1], "frames": frames}


def _watch_main_thread(state: dict, stalls: Counter, stop: threading.Event) -> None:
    """While the timer is late, sample where the main thread is, every 50 ms.

    A slot or a paint running in Python shows up by name; the probe's own app.exec() line means the main thread
    was inside Qt's C++ loop: painting, or waiting for the GIL that a background thread holds.
    """
    main = threading.main_thread().ident
    while not stop.wait(0.05):
        if state["phase"] == "idle" or (time.perf_counter() - state["last"]) * 1000 < LATE_MS:
            continue
        frame = sys._current_frames().get(main)
        stack = traceback.extract_stack(frame)[-3:] if frame is not None else []
        if stack and stack[-1].name == "probe":
            stalls["Qt's C++ event loop (painting, or waiting for the GIL)"] += 1
        else:
            stalls[" < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))] += 1


if __name__ == "__main__":
    mode, folder, budget, limit, out, workdir = sys.argv[1:7]
    {"gaps": probe, "training": probe_training}[mode](folder, float(budget), float(limit), out, workdir)
