"""The Audit view on the Compare page: the audit's entries ranked in the grid, marks from the grid and from the maps'
selection with undo (saved in the run folder), Color by the audit, the audit computed in a job when the run has
none, the export, and "Train again without them" training a run on the curated set."""

import csv
import json
import shutil

import numpy as np

from ssl_studio.core.curation import Mark
from ssl_studio.core.runs import RunFolder


def copy_run(tiny_run, tmp_path):
    """A copy of the tiny run to write marks into (the session's run stays as made)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def planted_audit(run) -> tuple[dict, list[str]]:
    """An audit.json naming images chosen here, so the grid's order and the maps' colors are known."""
    index = RunFolder(run).read_dataset()
    p, names = index.paths, index.class_names
    audit = {"no_label_audit": None, "spaces": {
        "ssl": {"duplicates": [[p[0], p[1]], [p[2], p[9]]], "leaks": [[p[2], p[9]]], "outliers": [p[5]],
                "mislabeled": [p[7], p[3]], "suggested": {p[7]: names[2], p[3]: names[1]}},
        "pixels": {"duplicates": [], "leaks": [], "outliers": [p[4], p[6]], "mislabeled": [p[8]],
                   "suggested": {p[8]: names[0]}}}}
    RunFolder(run).write_audit(audit)
    return audit, p


def open_audit(drive, qtbot, window, run):
    compare = drive.open_run(window, run)
    qtbot.waitUntil(lambda: compare.audit.audit is not None, timeout=20_000)
    compare.side.setCurrentWidget(compare.audit)
    return compare, compare.audit


def show(panel, kind, space="ssl"):
    panel.kind.setCurrentIndex(panel.kind.findData(kind))
    panel.space.setCurrentIndex(panel.space.findData(space))
    return [(panel.grid.item(r).data(0x0100), panel.grid.item(r).text()) for r in range(panel.grid.count())]


def test_the_grid_ranks_the_audit_and_marks_from_it_and_from_a_selection_with_undo(window, drive, qtbot, tiny_run,
                                                                                tmp_path):
    run = copy_run(tiny_run, tmp_path)
    _, p = planted_audit(run)
    compare, panel = open_audit(drive, qtbot, window, run)
    names = compare.linked.class_names
    label = [names[int(i)] for i in compare.linked.labels]
    assert show(panel, "duplicates") == [([0, 1], "1"), ([2, 9], "2. across the split")]
    assert show(panel, "outliers", "pixels") == [([4], f"1. {label[4]}"), ([6], f"2. {label[6]}")]
    assert show(panel, "mislabeled") == [([7], f"1. {label[7]} → {names[2]}"), ([3], f"2. {label[3]} → {names[1]}")]
    assert "<b>SSL</b>: 2 pairs (1 across the split) · 1 outliers · 2 labels" in panel.counts.text()
    assert "<b>Pixels</b>: 0 pairs · 2 outliers · 1 labels" in panel.counts.text()
    compare.grab().save(str(tmp_path / "audit.png"))

    panel.grid.item(1).setSelected(True)  # the second suspect: its suggestion is the class to relabel as
    assert panel.relabel_to.currentText() == names[1]
    panel.relabel_button.click()
    show(panel, "duplicates")
    panel.grid.item(1).setSelected(True)
    panel.exclude_button.click()  # of a pair, the second image
    compare.linked.set_selection(np.array([5, 6]))
    exclude = next(a for a in panel.selection_button.menu().actions() if a.text() == "Exclude")
    exclude.trigger()
    assert panel.curation.marks == [Mark("relabel", (p[3],), names[1]), Mark("exclude", (p[9],)),
                                    Mark("exclude", (p[5], p[6]))]
    assert RunFolder(run).read_curation().marks == panel.curation.marks
    assert panel.marks.count() == 3 and panel.marks.item(0).text().startswith("Exclude 2 image(s)")
    assert panel.marks_title.text() == "<b>Marks</b>: 3 excluded, 1 relabelled"

    panel.undo_button.click()
    assert panel.curation.marks == [Mark("relabel", (p[3],), names[1]), Mark("exclude", (p[9],))]
    assert json.loads((run / "curation.json").read_text())["marks"][-1] == {
        "action": "exclude", "paths": [p[9]], "label": None}

    panel.export(tmp_path / "out")
    rows = list(csv.reader((tmp_path / "out" / "curation.csv").open(encoding="utf-8")))
    assert rows == [["path", "action", "new_label"], [p[3], "relabel", names[1]], [p[9], "exclude", ""]]
    tree = sorted(str(f.relative_to(tmp_path / "out" / "curated")) for f in
                  (tmp_path / "out" / "curated").rglob("*.png"))
    assert len(tree) == len(p) - 1 and f"{names[1]}/{p[3].split('/', 1)[1]}" in tree and p[9] not in tree


def test_hovering_an_entry_shows_it_and_color_by_shows_each_space_findings(window, drive, qtbot, tiny_run,
                                                                           tmp_path):
    run = copy_run(tiny_run, tmp_path)
    _, p = planted_audit(run)
    compare, panel = open_audit(drive, qtbot, window, run)
    show(panel, "mislabeled")
    panel.grid.itemEntered.emit(panel.grid.item(0))
    assert p[7] in compare.inspector.text.text()
    compare.legend.color_by.setCurrentIndex(compare.legend.color_by.findData("outliers"))
    assert np.flatnonzero(compare.grid.coloring_of("ssl").ids).tolist() == [5]
    assert np.flatnonzero(compare.grid.coloring_of("pixels").ids).tolist() == [4, 6]
    compare.legend.color_by.setCurrentIndex(compare.legend.color_by.findData("duplicates"))
    assert compare.grid.coloring_of("ssl").ids[[0, 1, 2, 9]].tolist() == [1, 1, 2, 2]
    assert "0 flagged" in compare.grid.notes["pixels"] and "4 flagged" in compare.grid.notes["ssl"]


def test_hovering_a_duplicate_pair_rings_both_images_in_every_map_and_leaving_clears_them(window, drive, qtbot,
                                                                                     tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    planted_audit(run)
    compare, panel = open_audit(drive, qtbot, window, run)
    show(panel, "duplicates")
    panel.grid.itemEntered.emit(panel.grid.item(1))  # images 2 and 9
    for space, m in compare.maps.items():
        ringed = sorted(map(tuple, np.column_stack([m.hover.data["x"], m.hover.data["y"]]).tolist()))
        assert ringed == sorted(map(tuple, m.coords[[2, 9]].tolist())), space
    assert compare.linked.paths[2] in compare.inspector.text.text()
    qtbot.mouseMove(panel.grid.viewport())
    qtbot.mouseMove(panel.counts)  # the mouse leaves the grid: no entry hovered any more
    qtbot.waitUntil(lambda: all(len(m.hover.data) == 0 for m in compare.maps.values()))


def test_a_run_without_an_audit_is_audited_in_a_job(window, drive, qtbot, tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    (run / "audit.json").unlink(missing_ok=True)
    compare = drive.open_run(window, run)
    qtbot.waitUntil(lambda: compare.audit.audit is not None, timeout=30_000)
    assert set(compare.audit.audit["spaces"]) == set(compare.embeddings)
    assert RunFolder(run).read_audit(compare.linked.paths) == compare.audit.audit


def test_train_again_trains_a_run_without_the_excluded_images(window, drive, qtbot, tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    _, p = planted_audit(run)
    compare, panel = open_audit(drive, qtbot, window, run)
    show(panel, "outliers", "pixels")
    panel.grid.selectAll()
    panel.exclude_button.click()
    drive.tiny_training(window)
    with qtbot.waitSignal(window.compare.comparisonFinished, timeout=60_000) as done:
        panel.train_button.click()
    new = done.args[0]
    assert new.path != run
    assert new.read_dataset().paths == [q for q in p if q not in (p[4], p[6])]
    recorded = new.read_settings().curation
    assert recorded["file"] == str(run / "curation.json") and recorded["marks"] == [
        {"action": "exclude", "paths": [p[4], p[6]], "label": None}]


def test_a_run_without_labels_says_why_it_has_no_label_audit(window, drive, qtbot, tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    audit, _ = planted_audit(run)
    audit["no_label_audit"] = "the folder has no labels (no class subfolders)"
    RunFolder(run).write_audit(audit)
    compare, panel = open_audit(drive, qtbot, window, run)
    assert "No label audit: the folder has no labels (no class subfolders)." in panel.counts.text()
    kinds = list(panel.kind.itemData(i) for i in range(panel.kind.count()))
    assert not panel.kind.model().item(kinds.index("mislabeled")).isEnabled()
    legend = compare.legend.color_by
    assert not legend.model().item(legend.findData("mislabeled")).isEnabled()
    assert legend.model().item(legend.findData("outliers")).isEnabled()


def test_export_names_the_files_gone_from_the_data_folder_and_writes_no_tree(window, drive, qtbot, tiny_run,
                                                                            tiny_folder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_folder, data)
    run = copy_run(tiny_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["data"]["root"] = str(data)
    (run / "config.json").write_text(json.dumps(config))
    _, p = planted_audit(run)
    compare, panel = open_audit(drive, qtbot, window, run)
    show(panel, "outliers")
    panel.grid.selectAll()
    panel.exclude_button.click()
    (data / p[8]).unlink()  # the folder changes after the run was opened
    assert panel.export(tmp_path / "out") == []
    assert f"1 image(s) are no longer in the data folder {data}: {p[8]}" in compare.banner.text()
    assert not (tmp_path / "out" / "curated").exists() and not (tmp_path / "out" / "curation.csv").exists()
