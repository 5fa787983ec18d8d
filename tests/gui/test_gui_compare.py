"""Stage 4: the four maps, linked hover, selection and neighbours, space choice, export, and opening runs."""

import csv
import json
import os

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtWidgets import QScrollArea

from ssl_studio.core.project import UmapProgress
from ssl_studio.gui import settings

SPACES = ("ssl", "supervised", "untrained", "pixels")


def view_point(m, index) -> QPoint:
    """Where image ``index`` is drawn, in the map's viewport pixels."""
    return m.plot.mapFromScene(m.scene_pos_of(index))


def test_opening_a_run_fills_every_stage(window, drive, tiny_run):
    compare = drive.open_run(window, tiny_run)
    assert window.current_page() is compare
    for space in SPACES:
        m = compare.maps[space]
        assert m.has_points() and m.isVisible()
        assert "kNN" in m.title.text()
    assert compare.linked.coloring is not None and compare.legend.count() == 3
    assert set(window.train._curves) == {"ssl", "supervised"}  # the loss curves come back too
    assert window.session.dataset is not None and len(window.session.dataset) == len(compare.linked.paths)


def test_hover_highlights_the_same_image_in_every_map(window, drive, qtbot, tiny_run):
    compare = drive.open_run(window, tiny_run)
    source = compare.maps["ssl"]
    index = 5
    qtbot.mouseMove(source.plot.viewport(), view_point(source, index))
    qtbot.waitUntil(lambda: len(source.hover.data) == 1)
    for space in SPACES:
        hover = compare.maps[space].hover.data
        assert len(hover) == 1
        assert np.allclose([hover[0]["x"], hover[0]["y"]], compare.maps[space].coords[index])
    assert source.preview.isVisible()  # the thumbnail beside the point, in the map under the mouse only
    assert not compare.maps["pixels"].preview.isVisible()
    assert compare.linked.paths[index] in compare.inspector.text.text()


def test_a_dragged_rectangle_selects_in_every_map(window, drive, qtbot, tiny_run):
    compare = drive.open_run(window, tiny_run)
    compare.select_button.click()
    m = compare.maps["pixels"]
    x, y = m.coords[:, 0], m.coords[:, 1]
    rect = QRectF(float(np.median(x)), float(np.median(y)), float(x.max() - np.median(x)) + 1,
                  float(y.max() - np.median(y)) + 1)
    expected = np.flatnonzero((x >= rect.left()) & (y >= rect.top()))
    with qtbot.waitSignal(m.selected) as selected:
        m.view_box.rectSelected.emit(rect)
    assert sorted(selected.args[0]) == sorted(expected)
    assert compare.selection_bar.model.rowCount() == len(expected)
    for space in SPACES:
        assert sorted(compare.maps[space].selection_indices()) == sorted(expected)
    assert f"{len(expected)} image" in compare.selection_bar.label.text()
    compare.selection_bar.clear_button.click()
    assert all(len(compare.maps[s].selection_indices()) == 0 for s in SPACES)


def test_a_real_shift_drag_draws_the_selection(window, drive, qtbot, tiny_run):
    compare = drive.open_run(window, tiny_run)
    m = compare.maps["ssl"]
    viewport = m.plot.viewport()
    with qtbot.waitSignal(m.selected, timeout=5000) as selected:
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, QPoint(5, 5))
        for step in range(1, 11):
            qtbot.mouseMove(viewport, QPoint(5 + step * (viewport.width() - 10) // 10,
                                             5 + step * (viewport.height() - 10) // 10))
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                           QPoint(viewport.width() - 5, viewport.height() - 5))
    assert len(selected.args[0]) == len(m.coords)  # the whole view: every point


def test_clicking_a_point_shows_its_nearest_neighbours_in_each_space(window, drive, qtbot, tiny_run):
    compare = drive.open_run(window, tiny_run)
    m = compare.maps["supervised"]
    index = 7
    with qtbot.waitSignal(m.clicked) as clicked:
        qtbot.mouseClick(m.plot.viewport(), Qt.MouseButton.LeftButton, pos=view_point(m, index))
    assert clicked.args == [index]
    for space in SPACES:
        x = compare.embeddings[space]
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        sims = unit @ unit[index]
        sims[index] = -np.inf
        expected = np.argsort(-sims)[:8]
        model = compare.inspector.neighbour_models[space]
        shown = [model.dataset_index(r) for r in range(model.rowCount())]
        assert np.allclose(sims[shown], sims[expected])  # the 8 most similar (ties in any order)
        assert len(compare.maps[space].neighbours.data) == 8
        assert "same class" in compare.inspector.neighbour_rows[space][0].text()


def test_the_checkboxes_choose_which_maps_are_shown(window, drive, tiny_run):
    compare = drive.open_run(window, tiny_run)
    compare.show_boxes["pixels"].setChecked(False)
    compare.show_boxes["untrained"].setChecked(False)
    assert compare.visible_spaces() == ["ssl", "supervised"]
    assert not compare.maps["pixels"].isVisible() and compare.maps["ssl"].isVisible()


@pytest.fixture
def umap_window(qtbot, numba_cache, monkeypatch):
    """The window as the app makes it: UMAP on, warming up in its child process from the start. numba's cache is
    pytest's (see numba_cache); the UMAP process is stopped at the end, as the app does when it quits."""
    from ssl_studio.core.umap_process import UMAP
    from ssl_studio.gui.main_window import MainWindow

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(numba_cache))
    settings.save_json("use_umap", True)
    w = MainWindow(warm_up_umap=True)
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    yield w
    w.close()
    UMAP.stop()


def test_a_folder_large_enough_for_nn_descent_warms_umap_up_for_it(qtbot, monkeypatch, tmp_path):
    """Small maps need only the warm-up at start; NN-descent (18 s to compile) is compiled once a folder needs it."""
    import torch

    from ssl_studio.core import project
    from ssl_studio.core.data import ImageDataset
    from ssl_studio.core.umap_process import UMAP
    from ssl_studio.gui.main_window import MainWindow

    asked = []

    def warm_up(points, cancel):
        asked.append(points)
        yield from ()

    monkeypatch.setattr(UMAP, "warm_up", warm_up)
    w = MainWindow(warm_up_umap=True)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.umap_status.text() == "UMAP ready")

    def folder(n: int) -> ImageDataset:
        return ImageDataset(tmp_path, [f"{i}.png" for i in range(n)], torch.zeros(n, 3, 16, 16, dtype=torch.uint8),
                            None, [], [], 16)

    w.session.open_dataset(folder(project.APPROXIMATE_FROM - 1))
    w.session.open_dataset(folder(project.APPROXIMATE_FROM))
    qtbot.waitUntil(lambda: len(asked) == 2 and w.umap_status.text() == "UMAP ready")
    w.session.open_dataset(folder(project.APPROXIMATE_FROM + 1))  # compiled once per session
    assert asked == [0, project.APPROXIMATE_FROM]
    w.close()


@pytest.mark.slow
def test_umap_warms_up_then_replaces_every_pca_map(umap_window, drive, qtbot, tiny_folder, monkeypatch):
    """The real UMAP path: warm-up in the child process, fits there, each PCA map replaced by its UMAP map.

    The one slow GUI test: about 40 s with numba's cache warm, a minute or two cold (import umap and the JIT
    compile, on 2 cores); the timeouts allow for a busy machine."""
    from ssl_studio.core.umap_process import UMAP

    window = umap_window
    assert window.umap_status.text() == "UMAP: warming up…"
    qtbot.waitUntil(lambda: window.umap_status.text() != "UMAP: warming up…", timeout=300_000)
    assert window.umap_status.text() == "UMAP ready", window.umap_status.toolTip()
    child = UMAP.pid  # the warm-up ran in the UMAP process, which stays for the fits
    assert child not in (None, os.getpid())
    os.kill(child, 0)  # alive
    drive.open_folder(window, tiny_folder)
    compare = window.compare
    shown, draw = [], compare._projection_ready  # each map as drawn, in order (the real drawing still runs)
    monkeypatch.setattr(compare, "_projection_ready", lambda s, k, c: (shown.append((s, k)), draw(s, k, c)))
    drive.train_and_compare(window, timeout=300_000)
    assert UMAP.pid == child  # fitted by the warmed-up process
    run = compare.run.path
    for space in SPACES:
        assert shown.index((space, "pca")) < shown.index((space, "umap"))  # PCA at once, UMAP when it is ready
        umap_map = np.load(run / "projections" / f"{space}_umap.npy", allow_pickle=False)
        assert compare.kinds[space] == "umap" and np.array_equal(compare.maps[space].coords, umap_map)
        assert not np.allclose(umap_map, np.load(run / "projections" / f"{space}_pca.npy", allow_pickle=False))
    assert compare.legend.projection.text() == "Maps: UMAP"
    assert json.loads((run / "metrics.json").read_text())["projection"] == "umap"


def test_umap_progress_from_its_process_shows_in_the_status(window, drive, tiny_run):
    compare = drive.open_run(window, tiny_run)
    compare._on_events([UmapProgress("supervised", "neighbours")])
    assert "Supervised: finding neighbours" in compare.status.text()
    compare._on_events([UmapProgress("supervised", "layout", 50, 200)])
    assert "Supervised: laying out, 25%" in compare.status.text()


def test_export_writes_pictures_and_embeddings(window, drive, qtbot, tiny_run, tmp_path):
    compare = drive.open_run(window, tiny_run)
    out = tmp_path / "export"
    job = compare.export(out)
    with qtbot.waitSignal(job.ended, timeout=20_000):
        pass
    assert (out / "maps.png").stat().st_size > 1000
    assert (out / "maps.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    for space in SPACES:
        x = np.load(out / f"embedding_{space}.npy")
        assert x.shape == compare.embeddings[space].shape
        with open(out / f"embedding_{space}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows[0][:3] == ["path", "label", "e0"]
        assert len(rows) == len(x) + 1
        assert rows[1][0] == compare.linked.paths[0]
        assert np.isclose(float(rows[1][2]), x[0, 0], rtol=1e-4, atol=1e-6)
    assert "Exported" in compare.banner.text()


def test_an_unlabeled_folder_is_colored_by_cluster(window, drive, qtbot, flat_folder):
    drive.open_folder(window, flat_folder)
    compare = drive.train_and_compare(window)
    assert not compare.show_boxes["supervised"].isEnabled()  # no labels, no supervised baseline
    assert compare.visible_spaces() == ["ssl", "untrained", "pixels"]
    assert compare.linked.coloring is not None and compare.linked.coloring.names[0] == "cluster 1"
    assert "kNN" not in compare.maps["ssl"].title.text()
    assert "k-means" in compare.status.text()


def test_a_folder_that_is_not_a_run_gives_a_clear_message(window, qtbot, tmp_path):
    window.open_run(tmp_path)
    qtbot.waitUntil(lambda: bool(window.compare.banner.text()))
    assert "Could not open the run" in window.compare.banner.text()
    assert window.current_page() is window.compare


def test_a_run_whose_data_folder_is_gone_still_opens(window, drive, tiny_run, tmp_path):
    import json
    import shutil

    moved = tmp_path / "run"
    shutil.copytree(tiny_run, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "deleted-data")
    (moved / "config.json").write_text(json.dumps(config))
    compare = drive.open_run(window, moved)
    assert all(compare.maps[s].has_points() for s in SPACES)
    assert compare.linked.cache.images is None  # grey placeholders instead of thumbnails
    assert "could not be read" in compare.status.text()
    assert window.session.dataset is None


def test_clicking_a_neighbour_thumbnail_follows_it(window, drive, tiny_run):
    compare = drive.open_run(window, tiny_run)
    compare.linked.show_neighbours(3)
    strip = compare.inspector.neighbour_rows["ssl"][1]
    first = strip.model().dataset_index(0)
    strip.clicked.emit(strip.model().index(0))
    assert compare.linked.clicked_index == first


def test_one_class_says_why_there_is_no_supervised_baseline(window, drive, folder_factory):
    drive.open_folder(window, folder_factory(classes=("disk",), per_class=20, broken=False))
    compare = drive.train_and_compare(window)
    assert not compare.show_boxes["supervised"].isEnabled()
    assert "only one class" in compare.status.text()


def test_new_results_drop_the_last_hover_thumbnail_and_click(window, drive, qtbot, tiny_run):
    compare = drive.open_run(window, tiny_run)
    # A thumbnail that appears under the pointer makes its map see the pointer leave, which hides it again.
    qtbot.mouseMove(window.stages, QPoint(5, 5))
    compare.linked.show_neighbours(3)
    compare.linked.set_hover(3, "ssl")
    assert compare.maps["ssl"].preview.isVisible()
    drive.open_run(window, tiny_run)
    assert not compare.maps["ssl"].preview.isVisible()
    assert compare.linked.clicked_index == -1


def test_a_space_of_ones_own_is_added_beside_the_others_and_reopens(window, drive, qtbot, tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # the shared run stays as it is
    compare = drive.open_run(window, run)
    paths = list(compare.linked.paths)
    rows = np.load(run / "embeddings" / "pixels.npy")[::-1] * 2
    np.save(tmp_path / "mine.npy", rows)
    (tmp_path / "mine.csv").write_text("path\n" + "\n".join(reversed(paths)) + "\n")  # rows in an order of its own
    assert window.compare.can_add_space()
    with qtbot.waitSignal(compare.comparisonFinished, timeout=30_000):
        compare.add_space(tmp_path / "mine.npy", "My model")
    m = compare.maps["my-model"]
    assert m.has_points() and m.isVisible() and "kNN" in m.title.text()
    assert compare.visible_spaces() == [*SPACES, "my-model"]
    np.testing.assert_allclose(compare.embeddings["my-model"], np.load(run / "embeddings" / "pixels.npy") * 2)
    # Cosine kNN ignores the scale and the linear probe standardizes it away: the pixels' scores exactly.
    scores = json.loads((run / "metrics.json").read_text())["embeddings"]
    assert {k: scores["my-model"][k] for k in ("knn_top1", "linear_top1")} == \
        {k: scores["pixels"][k] for k in ("knn_top1", "linear_top1")}
    compare = drive.open_run(window, run)  # opened again, the space is still there
    assert compare.maps["my-model"].has_points()


def test_the_ssl_map_forming_plays_through_its_snapshots(window, drive, qtbot, tiny_run, tmp_path):
    import shutil

    import torch

    from ssl_studio.core.data import load_folder
    from ssl_studio.core.map_history import MapRecorder
    from ssl_studio.core.models import build_backbone
    from ssl_studio.core.pipeline import open_run
    from ssl_studio.core.runs import RunFolder

    # The tiny run trains for less than one snapshot interval: two more snapshots, of other networks, continue it.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    loaded = open_run(run)
    stored = RunFolder.open(run).read_map_history(len(loaded.paths))
    images = load_folder(loaded.data_root, loaded.config.resolution).images
    recorder = MapRecorder(images, None, {}, seed=0, device=torch.device("cpu"), resumed=stored, every_s=0.0)
    for k in (1, 2):
        torch.manual_seed(k)
        recorder.take(build_backbone(loaded.config.backbone), step=100 * k, seconds=10.0 * k)
    RunFolder.open(run).write_map_history(recorder.history)
    snapshots = recorder.snapshots
    assert len(snapshots) == len(stored.snapshots) + 2
    compare = drive.open_run(window, run)
    history = compare.history
    assert history.slider.maximum() == len(snapshots) - 1
    compare.forming_button.click()
    assert compare.views.currentWidget() is history and history.map.isVisible()
    last = history.slider.maximum()
    history.slider.setValue(0)
    np.testing.assert_allclose(history.map.coords, snapshots[0].coords, atol=1e-6)
    assert f"step {snapshots[0].step:,}" in history.caption.text()
    shown = []
    history.slider.valueChanged.connect(lambda value: shown.append((value, history.map.coords.copy())))
    history.play_button.click()
    qtbot.waitUntil(lambda: not history.play_button.isChecked(), timeout=10_000)  # it stops at the last one
    assert history.slider.value() == last and [value for value, _ in shown] == list(range(1, last + 1))
    for value, coords in shown:  # each snapshot in turn, and the last one stays
        np.testing.assert_allclose(coords, snapshots[value].coords, atol=1e-6)
    np.testing.assert_allclose(history.map.coords, snapshots[-1].coords, atol=1e-6)
    assert f"step {snapshots[-1].step:,}" in history.caption.text()


def test_training_and_computing_the_maps_fit_the_usual_window(window, drive, tiny_folder, qtbot):
    """The Train page's longest messages and the Compare page's busy toolbar: a window never has to grow for them
    (Qt widens a window to its minimum width, and does not narrow it back afterwards)."""
    drive.open_folder(window, tiny_folder)
    drive.tiny_training(window)
    with qtbot.waitSignal(window.compare.comparisonFinished, timeout=30_000):
        window.train.start_button.click()
        qtbot.waitUntil(lambda: not window.compare.busy.isHidden(), timeout=30_000)
        assert window.minimumSizeHint().width() <= 1280
    assert window.width() == 1280
    window.go("compare")
    area = window.compare.findChild(QScrollArea)  # and the page itself needs no sideways scrolling
    qtbot.waitUntil(area.isVisible)
    assert area.widget().minimumSizeHint().width() <= area.viewport().width()
