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

import gc
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
SWEEP_METHODS = ("simclr", "byol")  # the sweep the window trains while its gaps are measured, one seed each


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


def measure_sweep_ui(table: Table, folder: Path, budget: float, limit: float) -> dict | None:
    """The gaps while File > New sweep… trains SWEEP_METHODS on ``folder`` (``budget`` s each) to the end."""
    reason = unavailable()
    if reason:
        table.row("UI max gap while a sweep trains", "skipped", "", reason)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        figures = probe_process("sweep", folder, budget, limit, Path(tmp) / "sweep.json", tmp,
                                probe_environment(Path(tmp)))
    worst = max(figures["phase_max_gap_ms"].items(), key=lambda item: item[1])
    table.row(f"UI max gap while a sweep trains ({figures['runs']} runs, {budget:g} s each)", figures["max_gap_ms"],
              "ms", f"goal <= {SLOW_MS}; worst in '{worst[0]}'; p99 {figures['p99_gap_ms']:.0f} ms, "
                    f"{figures['gaps_over_slow']} over {SLOW_MS} ms of {figures['ticks']} ticks in "
                    f"{figures['seconds']:.0f} s; no window, no work: {figures['idle_max_gap_ms']:.0f} ms")
    for gap in figures["slowest"][:3]:
        table.row(f"  {gap['ms']:.0f} ms gap at {gap['at_s']:.1f} s", "", "", gap["doing"])
    for stall in figures["stalled_in"][:3]:
        table.row("  while the timer was late", stall["samples"], "x 50 ms", stall["where"])
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


class Heartbeat:
    """A TICK_MS timer on the GUI thread recording the time between its timeouts, per phase, with what the window
    said it was doing when a gap over SLOW_MS ended and where the main thread was while the timer was late."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: dict[str, list[float]] = {}
        self.slow: list[dict] = []
        self.doing: dict = {}  # phase -> the label saying what the window is doing then
        self.state = {"phase": "idle", "last": time.perf_counter()}
        self.start = time.perf_counter()
        self.stalls: Counter = Counter()
        self.collections: list[dict] = []  # the cycle collector's runs of over LATE_MS: it holds the GIL throughout
        self._collecting = 0.0
        gc.callbacks.append(self._collection)
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=_watch_main_thread, args=(self.state, self.stalls, self._stop),
                                          daemon=True)
        self._timer = QTimer(interval=TICK_MS, timeout=self._tick)
        self._timer.start()
        self._watchdog.start()

    def enter(self, phase: str) -> None:
        """Gaps from now on count under ``phase``; the first one is measured from now."""
        self.state.update(phase=phase, last=time.perf_counter())

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = (now - self.state["last"]) * 1000
        self.state["last"] = now
        phase = self.state["phase"]
        self.gaps.setdefault(phase, []).append(gap)
        if gap > SLOW_MS and phase in self.doing:
            # What the window said it was doing when the gap ended: a lead to what blocked the event loop.
            self.slow.append({"ms": round(gap, 1), "phase": phase, "at_s": round(now - self.start, 2),
                              "doing": self.doing[phase].text()})

    def _collection(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._collecting = now
        elif (ms := (now - self._collecting) * 1000) > LATE_MS:
            self.collections.append({"ms": round(ms, 1), "at_s": round(now - self.start, 2),
                                     "generation": info["generation"], "collected": info["collected"],
                                     "thread": threading.current_thread().name})

    def stop(self) -> None:
        gc.callbacks.remove(self._collection)
        self._timer.stop()
        self._stop.set()
        self._watchdog.join()

    def figures(self, seconds: float) -> dict:
        """The gaps of every phase but the control (idle) and the first paint (show), pooled."""
        gaps = {phase: g for phase, g in self.gaps.items() if phase not in ("idle", "show")}
        work = sorted(g for phase in gaps.values() for g in phase)
        idle = self.gaps.get("idle", [0.0])
        return {"max_gap_ms": work[-1], "p99_gap_ms": work[int(0.99 * (len(work) - 1))],
                "gaps_over_slow": sum(g > SLOW_MS for g in work), "ticks": len(work), "seconds": seconds,
                "idle_max_gap_ms": max(idle), "idle_seconds": IDLE_MS / 1000, "tick_ms": TICK_MS,
                "phase_max_gap_ms": {phase: max(g) for phase, g in gaps.items()},
                "slowest": sorted(self.slow, key=lambda g: -g["ms"])[:10],
                "stalled_in": [{"where": where, "samples": n} for where, n in self.stalls.most_common(8)],
                "slow_collections": sorted(self.collections, key=lambda c: -c["ms"])[:10]}


def _control(app) -> None:
    """The heartbeat's control: IDLE_MS with no window and no work shows what the machine alone does to it."""
    from PySide6.QtCore import QTimer

    QTimer.singleShot(IDLE_MS, app.quit)
    app.exec()


def _shown_window(heartbeat: Heartbeat):
    """The main window, shown and painted (phase "show"): the work starts once it has painted, as when a user
    opens a folder, so the first paint (style sheet, fonts) is measured on its own, apart from the gaps during
    work. Returns the window and the first paint's milliseconds."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    window = _window()
    heartbeat.enter("show")
    shown = time.perf_counter()
    window.show()
    if not QTest.qWaitForWindowExposed(window):
        raise SystemExit("the main window was never exposed")
    QApplication.processEvents()
    return window, (time.perf_counter() - shown) * 1000


def _work(app, heartbeat: Heartbeat, window, folder: str, limit: float, give_up) -> float:
    """Open ``folder`` (phase "load") and run the event loop until the work quits it, or ``give_up`` after
    ``limit`` seconds; the seconds it took."""
    from PySide6.QtCore import QTimer

    QTimer.singleShot(int(limit * 1000), give_up)
    heartbeat.enter("load")
    start = time.perf_counter()
    window.open_path(folder)
    app.exec()
    heartbeat.stop()
    return time.perf_counter() - start


def probe(folder: str, budget: float, limit: float, out: str, workdir: str) -> None:
    """Drive the main window the way its tests do (tests/gui/conftest.py) and write the gap figures as JSON."""
    app = _application(workdir)
    heartbeat = Heartbeat()
    _control(app)
    window, first_paint_ms = _shown_window(heartbeat)
    window.compare.use_umap.setChecked(True)
    heartbeat.doing.update(load=window.data.progress_text, train=window.train.stage, maps=window.compare.status,
                           transfer=window.transfer.status)
    error = []

    def train(_dataset) -> None:
        heartbeat.enter("train")
        _train(window, budget)

    def maps(_run) -> None:
        heartbeat.enter("maps")
        window.go("compare")

    def transfer(_run) -> None:  # the window starts the transfer curves once the maps are drawn
        heartbeat.enter("transfer")
        window.go("transfer")

    def give_up() -> None:
        error.append(f"not finished after {limit:.0f} s in phase {heartbeat.state['phase']}: "
                     f"{window.statusBar().currentMessage()!r}, compare page: {window.compare.status.text()!r}")
        app.quit()

    window.data.datasetLoaded.connect(train)
    window.train.trainingFinished.connect(maps)
    window.compare.comparisonFinished.connect(transfer)
    window.transfer.transferFinished.connect(lambda _run: app.quit())
    seconds = _work(app, heartbeat, window, folder, limit, give_up)
    training = _training_figures(window)
    window.close()  # stops and joins the window's jobs
    if error:
        raise SystemExit(error[0])
    Path(out).write_text(json.dumps({**heartbeat.figures(seconds), "first_paint_ms": first_paint_ms,
                                     "train_budget_seconds": budget, "map": _draw_and_pan(MAP_POINTS), **training}))


def probe_sweep(folder: str, budget: float, limit: float, out: str, workdir: str, seeds: int = 1) -> None:
    """File > New sweep… in the main window: SWEEP_METHODS at ``seeds`` seeds, ``budget`` seconds each, UMAP on,
    the Train page watching the queue, until the sweep is done; the gaps by the stage the Train page names. The
    sweep's workspace is ``workdir``/runs (the app's runs folder there)."""
    app = _application(workdir)
    heartbeat = Heartbeat()
    _control(app)
    window, _first_paint_ms = _shown_window(heartbeat)
    window.compare.use_umap.setChecked(True)
    error = []

    def stage(_events=None) -> None:
        # A phase per stage the Train page names ("Step 1 of 2: ...", "Scoring ..."), its run's number dropped.
        text = window.train.stage.text()
        phase = text.split(":")[0] if text.startswith("Step") else " ".join(text.split()[:2])
        if phase != heartbeat.state["phase"]:
            heartbeat.state["phase"] = phase
            heartbeat.doing[phase] = window.train.stage

    def sweep(_dataset) -> None:
        page = window.train
        page.by_time.setChecked(True)
        page.time_budget.setValue(int(budget))
        dialog = window.new_sweep_dialog()
        for name, box in dialog.methods.items():
            box.setChecked(name in SWEEP_METHODS)
        dialog.seeds.setValue(seeds)
        heartbeat.enter("sweep starting")
        dialog.start_button.click()
        page.job.events.connect(stage)

    def give_up() -> None:
        error.append(f"the sweep was not done after {limit:.0f} s: {window.train.stage.text()!r}")
        app.quit()

    window.data.datasetLoaded.connect(sweep)
    window.train.sweepFinished.connect(lambda _finished: app.quit())
    seconds = _work(app, heartbeat, window, folder, limit, give_up)
    window.close()
    if error:
        raise SystemExit(error[0])
    Path(out).write_text(json.dumps({**heartbeat.figures(seconds), "train_budget_seconds": budget,
                                     "runs": len(SWEEP_METHODS) * seeds}))


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

    A slot or a paint running in Python shows up by name; a probe's own app.exec() line means the main thread
    was inside Qt's C++ loop: painting, or waiting for the GIL that a background thread holds.
    """
    main = threading.main_thread().ident
    woke = time.perf_counter()
    while not stop.wait(0.05):
        late = time.perf_counter() - woke > 0.25  # this thread could not run either: someone held the GIL
        woke = time.perf_counter()
        if state["phase"] == "idle" or (time.perf_counter() - state["last"]) * 1000 < LATE_MS:
            continue
        frames = sys._current_frames()
        if late:  # the others' stacks now: the holder is likely still at the line that held it
            for ident, frame in frames.items():
                if ident not in (main, threading.get_ident()):
                    stack = traceback.extract_stack(frame)[-4:]
                    stalls["GIL held? " + " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                                                     for f in reversed(stack))] += 1
        frame = frames.get(main)
        stack = traceback.extract_stack(frame)[-3:] if frame is not None else []
        if stack and stack[-1].name == "_work":  # its app.exec() line
            stalls["Qt's C++ event loop (painting, or waiting for the GIL)"] += 1
        else:
            stalls[" < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))] += 1


if __name__ == "__main__":
    mode, folder, budget, limit, out, workdir, *seeds = sys.argv[1:]  # seeds: a sweep's, 1 unless given
    probes = {"gaps": probe, "training": probe_training, "sweep": probe_sweep}
    probes[mode](folder, float(budget), float(limit), out, workdir, *map(int, seeds))
