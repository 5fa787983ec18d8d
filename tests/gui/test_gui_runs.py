"""The Runs page: a workspace of tiny run folders listed, sorted, filtered, noted, opened and moved to the trash, and
its seed groups charted with the verdict, all checked against the run folders and hand-computed figures."""

import json
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ssl_studio.core import runs
from ssl_studio.core.runs import RunFolder
from ssl_studio.gui.runs_page import RunsPage
from ssl_studio.gui.seed_groups import axis_range
from workspaces import make_run


@pytest.fixture
def workspace(tmp_path):
    """lr 0.001 at seeds 0-2 (kNN 80, 82, 84 %), lr 0.002 at seeds 0-2 (kNN 70, 71, 72 %), one VICReg run on another
    folder (kNN 60 %) and a damaged run."""
    ws = tmp_path / "ws"
    for seed, knn, linear in ((0, 0.80, 0.6), (1, 0.82, 0.7), (2, 0.84, 0.8)):
        make_run(ws, f"a{seed}", seed=seed, lr=1e-3, knn=knn, linear=linear, transfer=0.5 + 0.02 * seed)
    for seed, knn in ((0, 0.70), (1, 0.71), (2, 0.72)):
        make_run(ws, f"b{seed}", seed=seed, lr=2e-3, knn=knn, linear=0.5)
    make_run(ws, "c0", method="vicreg", knn=0.60, linear=0.4, data="/data/digits")
    (ws / "bad").mkdir()
    (ws / "bad" / runs.CONFIG).write_text("{not json")
    return ws


def listed(qtbot, page, action):
    with qtbot.waitSignal(page.listed, timeout=10_000):
        action()


@pytest.fixture
def page(window, workspace, qtbot):
    window.go("runs")
    listed(qtbot, window.page("runs"), lambda: window.page("runs").open_workspace(workspace))
    return window.page("runs")


def cell(page, name, key):
    model = page.model
    row = next(i for i, r in enumerate(model.rows) if r.name == name)
    return model.index(row, model.column(key))


def text(page, name, key):
    return cell(page, name, key).data()


def test_the_table_lists_every_run_with_the_values_of_its_folder(page, workspace):
    assert sorted(page.visible_names()) == ["a0", "a1", "a2", "b0", "b1", "b2", "bad", "c0"]
    assert page.count.text() == "8 runs" and page.stack.currentIndex() == 1
    for name in ("a0", "a2", "b1", "c0"):
        settings = RunFolder(workspace / name).read_settings()
        ssl = RunFolder(workspace / name).read_metrics()["embeddings"]["ssl"]
        assert text(page, name, "method") == settings.config.method
        assert text(page, name, "seed") == str(settings.config.seed)
        assert text(page, name, "data") == settings.data_root.name
        assert text(page, name, "ssl_knn") == f"{100 * ssl['knn_top1']:.1f}%"
        assert text(page, name, "ssl_linear") == f"{100 * ssl['linear_top1']:.1f}%"
        assert (text(page, name, "state"), text(page, name, "budget")) == ("finished", "30 s")
    assert (text(page, "a2", "transfer_1pct"), text(page, "b1", "transfer_1pct")) == ("54.0%", "")
    assert text(page, "a0", "pixels_knn") == "30.0%" and text(page, "a0", "seconds") == "30.5 s"
    assert text(page, "a0", "views_per_second") == "812"
    # The damaged run is a row with its reason, the rest of it empty.
    assert text(page, "bad", "state") == "damaged" and text(page, "bad", "method") == ""
    assert "config.json" in text(page, "bad", "reason") and "not valid JSON" in text(page, "bad", "reason")
    assert "not valid JSON" in cell(page, "bad", "state").data(Qt.ItemDataRole.ToolTipRole)
    page.select("bad")
    assert "damaged: config.json" in page.detail.text() and not page.open_run_button.isEnabled()


def test_sorting_and_filtering_change_the_visible_rows(page):
    page.table.sortByColumn(page.model.column("ssl_knn"), Qt.SortOrder.AscendingOrder)
    assert page.visible_names() == ["c0", "b0", "b1", "b2", "a0", "a1", "a2", "bad"]  # no figure: last
    page.table.sortByColumn(page.model.column("ssl_knn"), Qt.SortOrder.DescendingOrder)
    assert page.visible_names() == ["a2", "a1", "a0", "b2", "b1", "b0", "c0", "bad"]  # last either way
    page.table.sortByColumn(page.model.column("name"), Qt.SortOrder.DescendingOrder)
    assert page.visible_names() == ["c0", "bad", "b2", "b1", "b0", "a2", "a1", "a0"]
    page.set_filter("method", "vicreg")
    assert page.visible_names() == ["c0"] and page.count.text() == "1 of 8 runs"
    page.set_filter("method", None)
    page.set_filter("state", "damaged")
    assert page.visible_names() == ["bad"]
    page.set_filter("state", None)
    page.set_filter("data", "/data/shapes")
    assert page.visible_names() == ["b2", "b1", "b0", "a2", "a1", "a0"]
    assert [page.filters["data"].itemText(i) for i in range(3)] == ["All data folders", "digits", "shapes"]


def test_a_note_is_written_to_the_run_folder_and_read_back(page, workspace, qtbot):
    index = page.proxy.mapFromSource(cell(page, "a1", "note"))
    assert page.proxy.flags(index) & Qt.ItemFlag.ItemIsEditable
    assert not page.proxy.flags(page.proxy.mapFromSource(cell(page, "a1", "method"))) & Qt.ItemFlag.ItemIsEditable
    assert page.proxy.setData(index, "best so far\nkeep")
    assert RunFolder(workspace / "a1").read_note() == "best so far\nkeep"
    listed(qtbot, page, page.refresh_button.click)
    assert text(page, "a1", "note") == "best so far keep"
    assert cell(page, "a1", "note").data(Qt.ItemDataRole.EditRole) == "best so far\nkeep"


def test_open_makes_the_session_hold_the_run(page, workspace, tiny_run, window, qtbot):
    shutil.copytree(tiny_run, workspace / "real")
    listed(qtbot, page, page.refresh)
    page.select("real")
    assert page.open_run_button.isEnabled()
    with qtbot.waitSignal(window.runOpened, timeout=20_000):
        page.open_run_button.click()
    assert window.session.run.path == workspace / "real"
    assert window.current_page() is window.compare


def test_delete_asks_then_moves_the_folder_to_the_trash(page, workspace, trash, monkeypatch, qtbot):
    asked, answers = [], [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *args: (asked.append(args[2]), answers.pop(0))[1])
    page.select("b1")
    page.trash_button.click()  # No: nothing moves
    assert (workspace / "b1").is_dir() and "b1" in page.visible_names()
    listed(qtbot, page, page.trash_button.click)
    assert len(asked) == 2 and "Move b1" in asked[1]
    assert not (workspace / "b1").exists() and (trash / "b1" / runs.CONFIG).is_file()
    assert "b1" not in page.visible_names() and page.count.text() == "7 runs"


def test_compare_refuses_runs_of_two_folders_and_unfinished_runs_saying_why(page, workspace, qtbot):
    make_run(workspace, "stopped")  # settings and no metrics nor checkpoint: it failed before training saved anything
    listed(qtbot, page, page.refresh)
    page.table.sortByColumn(page.model.column("name"), Qt.SortOrder.AscendingOrder)  # the words name them in order
    page.select("a0")
    assert not page.compare_button.isEnabled()  # two runs, no fewer
    with qtbot.assertNotEmitted(page.compareRunsRequested):
        page.select("a0", "c0")
        assert page.compare_button.isEnabled()
        page.compare_button.click()
        assert page.banner.text() == ("a0 and c0 are runs of different data folders (/data/shapes, /data/digits): "
                                      "Run vs run compares two runs of the same images.")
        page.select("bad", "stopped")
        page.compare_button.click()
        assert page.banner.text() == ("bad is damaged. stopped is failed. Only finished runs have the maps Run vs "
                                      "run compares.")
    with qtbot.waitSignal(page.compareRunsRequested) as requested:
        page.select("a0", "a1")
        menu = {action.text(): action for action in page.table.actions()}  # the right-click menu
        assert menu["Compare these two runs"].isEnabled() and not menu["Open run"].isEnabled()
        menu["Compare these two runs"].trigger()
    assert requested.args == [str(workspace / "a0"), str(workspace / "a1")]
    assert page.banner.isHidden()


def test_the_groups_chart_and_sentence_show_the_seed_groups(page, workspace):
    knn, linear, transfer = (page.groups.plots[m] for m in ("ssl_knn", "ssl_linear", "transfer_1pct"))
    # best first: lr 0.001 (80, 82, 84), lr 0.002 (70, 71, 72), VICReg on digits (60)
    assert knn.means() == pytest.approx([0.82, 0.71, 0.60])
    assert linear.means() == pytest.approx([0.70, 0.50, 0.40])
    assert transfer.means() == pytest.approx([0.52])  # only the first group has the reading
    assert sorted(knn.seeds.data["y"]) == pytest.approx([0.60, 0.70, 0.71, 0.72, 0.80, 0.82, 0.84])
    # 60 to 84 %: the axis runs from 50 to 90 % in steps of 10, the bars stand on 50 %
    assert knn.bars.opts["y0"] == pytest.approx(0.5)
    assert [label for _, label in knn.getAxis("left")._tickLevels[0]] == ["50%", "60%", "70%", "80%", "90%"]
    assert knn.spread.opts["height"] == pytest.approx([0.04, 0.02, 0.0])  # twice the sample std, none for one seed
    assert page.groups.table.item(0, 2).text() == "82.0 ± 2.0 % (80.0, 82.0, 84.0)"
    assert page.groups.table.item(2, 2).text() == "60.0 % (60.0)"
    # VICReg has no temperature, so it differs too: said in the tooltip, implied by the method in the words
    assert page.groups.table.item(0, 0).text() == "data=/data/shapes, lr=0.001, method=simclr"
    assert page.groups.table.item(0, 0).toolTip().endswith(
        "method=simclr, params.rotation_task=0.5, params.temperature=0.5")
    assert [knn.getAxis("bottom")._tickLevels[0][k][1] for k in range(3)] == [
        "shapes, 0.001, simclr", "shapes, 0.002, simclr", "digits, 0.002, vicreg"]
    # lead 82 - 71 = 11 points, spread 2 + 1 = 3 points
    assert page.verdict.text() == ("data=/data/shapes, lr=0.001, method=simclr leads data=/data/shapes, lr=0.002, "
                                   "method=simclr by 11.0 points of SSL kNN, more than the seeds' spread (3.0 points) "
                                   "at 3 seeds.")
    written = json.loads((workspace / "summary.json").read_text())
    assert [g["runs"] for g in written["groups"]] == [["a0", "a1", "a2"], ["b0", "b1", "b2"], ["c0"]]
    assert written["verdict"] == page.verdict.text()


def test_a_run_added_to_the_workspace_appears_and_file_open_workspace_opens_another(page, workspace, window, qtbot,
                                                                                    monkeypatch, tmp_path):
    with qtbot.waitSignal(page.listed, timeout=10_000):  # the folder watcher, no click
        make_run(workspace, "d0", knn=0.9, linear=0.9)
    assert "d0" in page.visible_names()
    other = tmp_path / "other"
    make_run(other, "x0", knn=0.5, linear=0.5)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(other))
    open_workspace = next(a for a in window.menuBar().actions()[0].menu().actions() if "workspace" in a.text())
    listed(qtbot, page, open_workspace.trigger)
    assert page.visible_names() == ["x0"] and page.workspace == other
    assert page.verdict.text().startswith("Fewer than two groups")


def test_a_missing_workspace_shows_why_and_an_empty_one_says_where_runs_go(qtbot, tmp_path):
    page = RunsPage()
    qtbot.addWidget(page)
    listed(qtbot, page, lambda: page.open_workspace(tmp_path / "nowhere"))
    assert page.stack.currentIndex() == 0 and f"{tmp_path / 'nowhere'} does not exist yet" in page.empty.text.text()
    (tmp_path / "file").write_text("not a folder")
    listed(qtbot, page, lambda: page.open_workspace(tmp_path / "file"))
    assert page.empty.text.text() == f"The workspace could not be read: {tmp_path / 'file'} is not a folder"
    (tmp_path / "empty").mkdir()
    listed(qtbot, page, lambda: page.open_workspace(tmp_path / "empty"))
    assert page.stack.currentIndex() == 0 and f"{tmp_path / 'empty'} holds none yet" in page.empty.text.text()


def test_the_groups_axis_is_round_and_close_enough_to_tell_seeds_apart():
    assert axis_range([0.97, 0.99, 0.992]) == pytest.approx((0.96, 1.0, 0.01))  # 97 and 99 % visibly apart
    assert axis_range([0.60, 0.84]) == pytest.approx((0.5, 0.9, 0.1))  # 0.01-0.05 steps would need more than 5
    assert axis_range([0.1, 0.9]) == (0.0, 1.0, 0.25)  # most of the range: from 0
    assert axis_range([]) == (0.0, 1.0, 0.25)
