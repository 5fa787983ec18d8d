"""Run against run: two runs of one folder (or two moments of one run) aligned, linked and colored as the core
computes them, the moved-most list, the refusal of two folders, and room for the maps with every panel open."""

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from ssl_studio.core.alignment import final_side, versus
from ssl_studio.core.map_history import MapHistory, MapSnapshot
from ssl_studio.core.runs import RunFolder
from ssl_studio.gui.scatter_map import MIN_HEIGHT_PX
from ssl_studio.gui.versus_page import MOVED_SHOWN


def _run(folder, out, method, tmp_path_factory):
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.pipeline import run_pipeline

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_STUDIO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        config = TrainConfig(method=method, epochs=1, time_budget=None, batch_size=8, device="cpu", seed=3)
        for _ in run_pipeline(folder, out, config, use_umap=False, skip=("transfer",)):
            pass
    return out


@pytest.fixture(scope="module")
def second_run(tiny_folder, tmp_path_factory):
    """Another finished run of tiny_run's folder: another method, another seed."""
    return _run(tiny_folder, tmp_path_factory.mktemp("second") / "vicreg", "vicreg", tmp_path_factory)


@pytest.fixture(scope="module")
def other_folder_run(tmp_path_factory):
    """A finished run of another folder."""
    from ssl_studio.core.samples import make_shapes

    folder = make_shapes(tmp_path_factory.mktemp("other") / "shapes", per_class=4, size=20, seed=2)
    return _run(folder, tmp_path_factory.mktemp("otherrun") / "run", "simclr", tmp_path_factory)


def _compare(page, qtbot):
    with qtbot.waitSignal(page.compared, timeout=20_000) as shown:
        page.compare_button.click()
    return shown.args[0]


def _point(m, index) -> QPoint:
    return m.plot.mapFromScene(m.scene_pos_of(index))


def test_two_runs_aligned_and_colored_as_the_core_computes(window, qtbot, tiny_run, second_run):
    window.go("versus")
    page = window.page("versus")
    page.pick_runs(tiny_run, second_run)
    _compare(page, qtbot)
    expected = versus(final_side(tiny_run), final_side(second_run))
    first, second = page.grid.maps["first"], page.grid.maps["second"]
    np.testing.assert_allclose(first.coords, expected.coords_a)
    np.testing.assert_allclose(second.coords, expected.coords_b)
    assert page.linked.paths == expected.paths
    # Five bands of a fifth each, from the agreement the core computed (a small epsilon: 0.2 * 5 == 1.0 exactly).
    bands = np.minimum(np.floor(expected.agreement * 5 + 1e-9), 4).astype(int)
    np.testing.assert_array_equal(first.coloring.ids, bands)
    np.testing.assert_array_equal(second.coloring.ids, bands)
    assert page.legend.count() == 5
    k = min(20, len(expected.paths) - 1)
    assert f"{expected.agreement.mean():.0%}" in page.summary.text()

    model = page.moved.model()
    rows = [model.dataset_index(r) for r in range(model.rowCount())]
    assert rows == list(expected.moved[:MOVED_SHOWN])
    assert np.all(np.diff(expected.agreement[rows]) >= 0)  # least kept first
    first_caption = model.data(model.index(0), Qt.ItemDataRole.DisplayRole)
    assert first_caption == f"{round(expected.agreement[rows[0]] * k)} of {k}"

    page.legend.color_by.setCurrentIndex(page.legend.color_by.findData("class"))
    np.testing.assert_array_equal(first.coloring.ids, expected.labels)


def test_hover_and_neighbours_are_linked_across_both_maps(window, qtbot, tiny_run, second_run):
    window.go("versus")
    page = window.page("versus")
    page.pick_runs(tiny_run, second_run)
    result = _compare(page, qtbot)
    first, second = page.grid.maps["first"], page.grid.maps["second"]
    index = 4
    qtbot.mouseMove(first.plot.viewport(), _point(first, index))
    qtbot.waitUntil(lambda: len(second.hover.data) == 1)
    hover = second.hover.data[0]
    np.testing.assert_allclose([hover["x"], hover["y"]], result.coords_b[index])
    assert page.linked.paths[index] in page.inspector.text.text()

    moved = page.moved
    top = int(result.moved[0])
    qtbot.mouseClick(moved.viewport(), Qt.MouseButton.LeftButton, pos=moved.visualRect(moved.model().index(0)).center())
    assert page.linked.clicked_index == top
    for m, side, rows in ((first, result.a, result.rows_a), (second, result.b, result.rows_b)):
        near = side.neighbours(rows).of(top)
        framed = np.column_stack([m.neighbours.data["x"], m.neighbours.data["y"]])
        np.testing.assert_allclose(framed, m.coords[near])
        assert page.inspector.neighbour_models[m.space].dataset_index(0) == near[0]


def test_two_runs_selected_on_the_runs_page_open_run_against_run(window, qtbot, tiny_run, second_run, tmp_path):
    workspace = tmp_path / "workspace"
    shutil.copytree(tiny_run, workspace / "simclr-seed3")
    shutil.copytree(second_run, workspace / "vicreg-seed3")
    runs = window.page("runs")
    window.go("runs")
    with qtbot.waitSignal(runs.listed, timeout=10_000):
        runs.open_workspace(workspace)
    runs.table.sortByColumn(runs.model.column("name"), Qt.SortOrder.AscendingOrder)  # the upper row is the first
    runs.select("simclr-seed3", "vicreg-seed3")
    page = window.page("versus")
    with qtbot.waitSignal(page.compared, timeout=20_000) as compared:
        runs.compare_button.click()
    assert window.current_page() is page
    assert (page.first_run.currentData(), page.second_run.currentData()) == (str(workspace / "simclr-seed3"),
                                                                            str(workspace / "vicreg-seed3"))
    result, expected = compared.args[0], versus(final_side(tiny_run), final_side(second_run))
    assert (result.a.run, result.b.run) == (workspace / "simclr-seed3", workspace / "vicreg-seed3")
    np.testing.assert_allclose(result.agreement, expected.agreement)


def test_runs_of_two_folders_are_refused_with_the_reason(window, qtbot, tiny_run, other_folder_run):
    window.go("versus")
    page = window.page("versus")
    page.pick_runs(tiny_run, other_folder_run)
    with qtbot.waitSignal(page.refused, timeout=20_000) as refused:
        page.compare_button.click()
    assert "same images" in refused.args[0] and "Pick two runs of one folder" in refused.args[0]
    assert "same images" in page.banner.text()
    assert page.result is None


def test_two_moments_of_one_run(window, qtbot, tiny_run, tmp_path):
    # A copy of the run whose map history holds two hand-made snapshots of its 36 images in two groups of 18 far
    # apart: the second is the first turned, scaled and shifted, with image 0 (first group) and 35 (second) swapped.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    rng = np.random.default_rng(0)
    first = np.concatenate([rng.normal(size=(18, 2)), rng.normal(size=(18, 2)) + 10]).astype(np.float32)
    t = np.radians(40)
    later = 2 * first @ np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) + 5
    later[[0, 35]] = later[[35, 0]]
    indices = np.arange(36)
    RunFolder(run).write_map_history(MapHistory(indices, (MapSnapshot(10, 4.0, first, None),
                                                          MapSnapshot(20, 8.0, later.astype(np.float32), None))))
    window.go("versus")
    page = window.page("versus")
    page.pick_moments(run, 0, 1)
    assert page.first_moment.isVisible() and not page.second_run.isVisible()
    assert page.first_moment.count() == 2 and page.first_moment.itemText(1).startswith("8 s")
    result = _compare(page, qtbot)
    paths = RunFolder(run).read_dataset().paths
    assert page.linked.paths == [paths[i] for i in indices]
    np.testing.assert_allclose(page.grid.maps["first"].coords, first, atol=1e-6)
    off = np.linalg.norm(page.grid.maps["second"].coords - first, axis=1)
    assert off[1:35].max() < 1e-4 < off[[0, 35]].min()  # turned back: the images that stayed line up exactly
    assert set(result.moved[:2]) == {0, 35}
    # A swapped image's 20 neighbours were its group's 17 others and 3 of the other group; now it sits among the
    # other group: at most those 3 and 3 of its own group are kept. Every other image lost only the one swapped
    # away from its group (19 of 20).
    assert result.agreement[[0, 35]].max() <= 0.3 and np.all(result.agreement[1:35] == 0.95)


def _settle():
    for _ in range(3):
        QApplication.sendPostedEvents()
        QApplication.processEvents()


def test_every_map_keeps_its_room_with_every_panel_open(window, drive, qtbot, tiny_run, second_run):
    window.resize(1280, 800)
    compare = drive.open_run(window, tiny_run)
    compare.explanation.set_expanded(True, remember=False)
    compare.linked.set_selection(np.arange(30))
    compare.linked.show_neighbours(0)
    _settle()
    heights = {space: m.plot.height() for space, m in compare.maps.items() if m.isVisible()}
    assert len(heights) == 4 and min(heights.values()) >= MIN_HEIGHT_PX >= 220, heights

    window.go("versus")
    page = window.page("versus")
    page.explanation.set_expanded(True, remember=False)
    page.pick_runs(tiny_run, second_run)
    _compare(page, qtbot)
    page.linked.set_selection(np.arange(30))
    page.linked.show_neighbours(0)
    _settle()
    assert window.height() == 800
    heights = [m.plot.height() for m in page.grid.maps.values()]
    assert min(heights) >= 220, heights
    assert page.scroll_area.verticalScrollBar().maximum() > 0  # the panels scroll rather than squeeze the maps


def test_the_compare_page_opens_run_against_run_on_its_run(window, drive, tiny_run):
    compare = drive.open_run(window, tiny_run)
    compare.versus_button.click()
    page = window.page("versus")
    assert window.current_page() is page
    assert page.first_run.currentData() == str(window.session.run.path)
    assert window.session.run.path.resolve() == tiny_run.resolve()
