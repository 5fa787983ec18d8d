"""Label these next on the Compare page: a typed budget, the picks as the selection (thumbnails and maps), the
export, and a budget the pool cannot hold refused with the core's message; for an unlabeled folder too."""

import csv
import os

import numpy as np

from ssl_studio.core.label_next import pick_from_run


def pick(qtbot, compare, budget, strategy="typical", space="ssl"):
    panel = compare.label_next
    panel.budget.setValue(budget)
    panel.strategy.setCurrentText(strategy)
    panel.space.setCurrentIndex(panel.space.findData(space))
    with qtbot.waitSignal(panel.picked, timeout=20_000):
        panel.pick_button.click()
    return panel


def test_the_picks_become_the_selection_and_export_as_csv_and_links(window, drive, qtbot, tiny_run, tiny_folder,
                                                                    tmp_path):
    compare = drive.open_run(window, tiny_run)
    panel = pick(qtbot, compare, 6, "coverage", "untrained")
    expected = pick_from_run(tiny_run, 6, "coverage", "untrained")
    assert np.array_equal(panel.picks, expected.indices)
    assert np.array_equal(compare.linked.selection, expected.indices)
    assert compare.selection_bar.model.rowCount() == 6 and "Selection: 6 image" in compare.selection_bar.label.text()
    assert panel.result.text().startswith("6 images of the training split picked by coverage in Untrained")
    compare.grab().save("/tmp/labelsel/label_next.png")
    written = panel.export(tmp_path / "out")
    rows = list(csv.DictReader(written[0].open(encoding="utf-8")))
    assert [r["path"] for r in rows] == [str(f) for f in expected.files]
    assert all(str(f).startswith(str(tiny_folder)) for f in expected.files)
    linked = sorted((tmp_path / "out" / "label_next").iterdir())
    assert len(linked) == 6 and all(os.path.samefile(a, b) for a, b in zip(linked, expected.files))
    assert "Exported 6 images to label" in compare.banner.text()


def test_an_unlabeled_folder_picks_among_all_its_images_and_refuses_more(window, drive, qtbot, flat_folder):
    drive.open_folder(window, flat_folder)
    compare = drive.train_and_compare(window)
    panel = pick(qtbot, compare, 21)
    assert panel.picks is None and compare.linked.selection.size == 0
    assert compare.banner.text() == ("Could not pick the images to label: a budget of 21 images is more than the "
                                     "20 images of the folder")
    panel = pick(qtbot, compare, 20)
    assert sorted(panel.picks.tolist()) == list(range(20))
    assert panel.result.text().startswith("20 images of the folder picked by typical in Self-supervised")
