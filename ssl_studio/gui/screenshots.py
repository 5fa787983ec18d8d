"""Drive the real app through the demo flow and save a PNG per stage: `python -m ssl_studio.gui.screenshots OUT_DIR`.

By default the one-click demo fills the pages (the Shapes sample, the demo's epochs, recipe and transfer settings):
its captions are grabbed on the way (demo-*.png), then every page (0-start ... 5-transfer; 4-maps colored by class,
4-compare with a point hovered, lassoed and clicked, 5-mistakes colored by each space's kNN mistakes, 5-transfer
with a point hovered) and every page's "How this works" panel open (explain-*.png). With --folder, --sample,
--budget, --epochs or --method the pages are filled by hand instead, with those settings. Settings and the run
folder live in a temporary directory, so the user's own are never touched.

Options: --budget SECONDS (time per model; default: the app's default), --sample shapes|digits, --folder DIR
(any folder instead of a sample), --epochs N (instead of a time budget), --method NAME (default: the app's),
--demo-epochs N (the demo, shorter: for a quick look), --no-umap, --size WxH. --workspace DIR instead grabs only the
Runs page on that folder of runs: 6-runs (the table, the first run whose name has --select in it selected) and
6-runs-groups (the seed groups' charts).

--versus FIRST SECOND: only the Run against run page on two finished runs of one folder (9-versus.png, the image
that moved most clicked and hovered, and explain-versus.png).

--audit RUN: only the Compare page's Audit tab on a copy of that finished run (8-audit.png): the SSL space's
near-duplicate pairs, the maps colored by each space's pairs, the first pair across the split hovered (ringed on
every map) and excluded, the first suspect label relabelled as its suggestion.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _wait(app, condition, timeout: float, what: str) -> None:
    """Run the event loop until condition() holds; the app stays live meanwhile (workers deliver their events)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def _pump(app, seconds: float) -> None:
    """Run the event loop for a while, so that what was just set (highlights, a layout) is drawn before a grab."""
    deadline = time.monotonic() + seconds
    _wait(app, lambda: time.monotonic() >= deadline, seconds + 1, "the event loop")


def _save(window, out: Path, name: str) -> Path:
    """Grab the window and save it as a small PNG: 256 colors, chosen by octree so that the small class-color
    swatches and points keep their hue (median cut merged them with the large grey areas)."""
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    for _ in range(3):  # let pending layouts (status bar, splitters) settle before the grab
        QApplication.processEvents()
    path = out / f"{name}.png"
    raw = out / f".{name}.raw.png"
    window.grab().save(str(raw))
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                      dither=Image.Dither.NONE).save(path, optimize=True)
    raw.unlink()
    print(f"saved {path}", file=sys.stderr)
    return path


def _pick_demo_points(compare) -> tuple[int, str]:
    """A point deep inside its class in the SSL map, and a lasso around its neighbourhood there, selected: the
    selection then shows where those images land in every other space."""
    space = "ssl" if compare.maps["ssl"].has_points() else next(s for s, m in compare.maps.items() if m.has_points())
    coords = compare.maps[space].coords
    coloring = compare.linked.coloring
    colors = coloring.ids if coloring is not None else np.zeros(len(coords), dtype=np.int64)
    # The class whose points sit closest together in this map, and its most central point.
    spread = [coords[colors == k].std(axis=0).sum() if (colors == k).any() else np.inf
              for k in range(int(colors.max()) + 1)]
    members = np.flatnonzero(colors == int(np.argmin(spread)))
    center = np.median(coords[members], axis=0)
    point = int(members[np.argmin(((coords[members] - center) ** 2).sum(axis=1))])
    near = np.argsort(((coords - coords[point]) ** 2).sum(axis=1))[:max(60, len(coords) // 40)]
    radius = float(np.sqrt(((coords[near] - coords[point]) ** 2).sum(axis=1).max()))
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    wobble = 1 + 0.12 * np.sin(3 * angles)  # a hand-drawn loop rather than a circle
    loop = coords[point] + radius * wobble[:, None] * np.c_[np.cos(angles), np.sin(angles)]
    compare.lasso_button.click()
    compare.maps[space].view_box.lassoSelected.emit(loop)
    return point, space


def _hover_first_point(app, page) -> None:
    """Move the mouse onto the fewest-labels point of the SSL curve, and wait for its exact figures to show."""
    from PySide6.QtCore import QPointF
    from PySide6.QtTest import QTest

    if "ssl" not in page.probe_plot.series:
        return
    _pump(app, 0.5)  # the page was just shown: lay the charts out before mapping a point onto the screen
    spot = page.probe_plot.series["ssl"][1].points()[0]
    scene = page.probe_plot.vb.mapViewToScene(QPointF(spot.pos().x(), spot.pos().y()))
    QTest.mouseMove(page.charts.viewport(), page.charts.mapFromScene(scene))
    _wait(app, lambda: page.hover.text(), 10, "the hovered point's figures")


def _through_the_demo(app, window, out: Path, epochs: int | None) -> None:
    """Click the Data page's demo button and grab its captions: demo-augment, demo-train (the SSL run half done,
    its similarity histogram live), demo-transfer (the maps done, the curves filling in) and demo-done."""
    demo = window.demo
    if epochs:
        demo.settings = dataclasses.replace(demo.settings, config=demo.settings.config.replace(epochs=epochs))
    ended = []
    demo.finished.connect(ended.append)
    window.data.demo_button.click()
    _wait(app, lambda: ended or (demo.step == "augment" and window.augment.redraws > 0), 600, "the demo's views")
    _save(window, out, "demo-augment")
    train = window.train
    _wait(app, lambda: ended or (demo.step == "train" and train._current == "ssl" and train.progress.value() >= 500),
          7200, "the demo's training")
    _save(window, out, "demo-train")
    _wait(app, lambda: ended or (demo.step == "transfer" and window.transfer.probe_plot.series), 7200,
          "the demo's maps")
    _save(window, out, "demo-transfer")
    _wait(app, lambda: ended, 7200, "the demo's transfer curves")
    if ended != [True]:
        raise RuntimeError(f"the demo stopped: {window.demo_bar.caption.text()}")
    _save(window, out, "demo-done")
    print(f"demo: {demo.map_seconds:.1f} s from the click to the finished maps, {demo.seconds:.1f} s to the "
          "transfer curves", file=sys.stderr)
    window.demo_bar.close_button.click()


def _by_hand(app, window, args) -> None:
    """Open the data, preview it, train with the given settings and wait for the maps, saving 1-data to 3-train."""
    out = args.out
    if args.folder:
        window.open_path(args.folder)
    else:
        window.open_sample(args.sample)
    _wait(app, lambda: window.session.dataset is not None, 600, "the data to load")
    window.data.grid.scrollToTop()
    _save(window, out, "1-data")

    if args.method:  # before the Augment page, which previews the method's own views
        combo = window.train.control("method")
        combo.setCurrentIndex(combo.findData(args.method))
        if combo.currentData() != args.method:
            raise ValueError(f"unknown method {args.method!r}")
    window.data.next.click()
    window.augment.next_sample()
    _wait(app, lambda: window.augment.redraws > 0, 10, "the augmentation preview")
    _save(window, out, "2-augment")

    window.augment.next.click()
    page = window.train
    page.control("device").setCurrentText("auto")
    if args.epochs:
        page.by_epochs.setChecked(True)
        page.epochs.setValue(args.epochs)
    elif args.budget:
        page.by_time.setChecked(True)
        page.time_budget.setValue(args.budget)
    if not page.start():
        raise RuntimeError(f"training did not start: {page.banner.text()}")
    # Mid-way through the supervised baseline (or the SSL run when there is none), both curves are visible.
    _wait(app, lambda: page._models or not page.is_running(), 600, "the training plan")
    last = page._models[-1] if page._models else None
    _wait(app, lambda: (page._current == last and page.progress.value() >= 500) or not page.is_running(),
          3600, "training")
    _save(window, out, "3-train")

    finished = []
    window.compare.comparisonFinished.connect(finished.append)
    _wait(app, lambda: finished or (not page.is_running() and page.banner.text()), 3600, "the maps")
    if not finished:
        raise RuntimeError(f"training stopped: {page.banner.text()}")


def _runs_page(app, window, out: Path, workspace: Path, select: str) -> None:
    page = window.page("runs")
    listed = []
    page.listed.connect(lambda: listed.append(True))
    window.go("runs")
    page.open_workspace(workspace)
    _wait(app, lambda: listed and not page.is_running(), 60, "the workspace's runs")
    page.select(*[name for name in page.visible_names() if select and select in name][:1])
    _save(window, out, "6-runs")
    page.tabs.setCurrentIndex(1)
    _save(window, out, "6-runs-groups")
    print(f"verdict: {page.verdict.text()}", file=sys.stderr)


def _versus(app, window, out: Path, first: Path, second: Path) -> None:
    page = window.page("versus")
    window.go("versus")
    page.pick_runs(first, second)
    outcome = []
    page.compared.connect(outcome.append)
    page.refused.connect(outcome.append)
    page.compare_button.click()
    _wait(app, lambda: outcome, 600, "run against run")
    if isinstance(outcome[0], str):
        raise RuntimeError(outcome[0])
    moved = int(outcome[0].moved[0])
    page.linked.show_neighbours(moved)
    page.linked.set_hover(moved, "second")
    _pump(app, 0.5)
    _save(window, out, "9-versus")
    page.explanation.set_expanded(True, remember=False)
    _save(window, out, "explain-versus")
    page.explanation.set_expanded(False, remember=False)


def _audit(app, window, out: Path, run: Path, scratch: Path) -> None:
    from ssl_studio.core.runs import CURATION

    copy = scratch / run.name  # the marks are written into the run folder: never into the person's own
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(CURATION))
    opened = []
    window.runOpened.connect(opened.append)
    window.open_run(copy)
    compare = window.compare
    _wait(app, lambda: opened and compare.audit.audit is not None, 600, "the run and its audit")
    panel = compare.audit
    compare.side.setCurrentWidget(panel)
    compare.legend.color_by.setCurrentIndex(compare.legend.color_by.findData("duplicates"))
    panel.kind.setCurrentIndex(panel.kind.findData("mislabeled"))
    panel.space.setCurrentIndex(panel.space.findData("ssl"))
    panel.grid.item(0).setSelected(True)  # the likeliest wrong label, relabelled as its neighbours suggest
    panel.relabel_button.click()
    panel.kind.setCurrentIndex(panel.kind.findData("duplicates"))
    entries = [panel.grid.item(r) for r in range(panel.grid.count())]
    pair = next((e for e in entries if "across the split" in e.text()), entries[0])
    pair.setSelected(True)
    panel.exclude_button.click()
    panel.grid.scrollToItem(pair)
    panel.grid.itemEntered.emit(pair)
    _pump(app, 0.5)
    _save(window, out, "8-audit")
    print(f"audit counts: {panel.counts.text()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssl_studio.gui.screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sample", default="shapes", choices=("shapes", "digits"))
    parser.add_argument("--folder", type=Path, help="use this folder instead of a sample dataset")
    parser.add_argument("--budget", type=int, help="seconds of training per model (default: the app's default)")
    parser.add_argument("--epochs", type=int, help="train for this many epochs instead")
    parser.add_argument("--method", help="the self-supervised method (default: the app's)")
    parser.add_argument("--demo-epochs", type=int, help="the demo with this many epochs instead of its own")
    parser.add_argument("--no-umap", action="store_true")
    parser.add_argument("--size", default="1280x820")
    parser.add_argument("--workspace", type=Path, help="grab only the Runs page, on this folder of runs")
    parser.add_argument("--select", default="", help="with --workspace: select the first run with this in its name")
    parser.add_argument("--versus", nargs=2, type=Path, metavar=("FIRST", "SECOND"),
                        help="only Run against run, on these two run folders")
    parser.add_argument("--audit", type=Path, metavar="RUN", help="only the Audit tab, on a copy of this run folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))

    from . import settings
    from .app import create_application

    scratch = Path(tempfile.mkdtemp(prefix="ssl-studio-screenshots-"))
    app = create_application()
    settings.use_private_folder(scratch)
    settings.save_json("use_umap", not args.no_umap)

    from .main_window import MainWindow
    from .workers import Job

    window = MainWindow(warm_up_umap=not args.no_umap)
    window.resize(width, height)
    window.show()
    try:
        _pump(app, 1)
        if args.workspace:
            _runs_page(app, window, args.out, args.workspace, args.select)
            return 0
        if args.versus:
            _versus(app, window, args.out, *args.versus)
            return 0
        if args.audit:
            _audit(app, window, args.out, args.audit, scratch)
            return 0
        _save(window, args.out, "0-start")

        transferred = []
        window.transfer.transferFinished.connect(transferred.append)
        if args.folder or args.sample != "shapes" or args.budget or args.epochs or args.method:
            _by_hand(app, window, args)
        else:
            _through_the_demo(app, window, args.out, args.demo_epochs)
            for number, name in enumerate(("data", "augment", "train"), 1):
                window.go(name)
                # The demo leaves its explanations open; these show the page itself (explain-*.png the panel).
                window.current_page().explanation.set_expanded(False, remember=False)
                _save(window, args.out, f"{number}-{name}")
        window.train.next.click()
        compare = window.compare
        _save(window, args.out, "4-maps")  # the maps colored by class, before a selection greys the rest
        point, space = _pick_demo_points(compare)
        compare.linked.show_neighbours(point)
        compare.linked.set_hover(point, space)
        _pump(app, 0.5)
        _save(window, args.out, "4-compare")
        metrics = {s: compare.scores.get(s) for s in compare.maps}
        print(f"scores: {metrics}", file=sys.stderr)

        if "mistakes" in compare.color_by.available:
            compare.selection_bar.clear_button.click()
            compare.legend.color_by.setCurrentIndex(compare.legend.color_by.findData("mistakes"))
            _wait(app, lambda: compare.color_by.job is None or not compare.color_by.job.running, 600,
                  "the kNN mistakes")
            _save(window, args.out, "5-mistakes")
        transfer = window.transfer
        _wait(app, lambda: transferred or not transfer.is_running(), 3600, "the transfer curves")
        window.go("transfer")
        _hover_first_point(app, transfer)
        _save(window, args.out, "5-transfer")
        print(f"transfer: {transfer.reading.text()}", file=sys.stderr)
        for name in ("data", "augment", "train", "compare", "transfer"):
            window.go(name)
            page = window.current_page()
            page.explanation.set_expanded(True, remember=False)
            _save(window, args.out, f"explain-{name}")
            page.explanation.set_expanded(False, remember=False)
    finally:
        window.close()
        Job.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
