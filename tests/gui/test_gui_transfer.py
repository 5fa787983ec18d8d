"""Stage 5: the transfer curves, filled in live by a background job, read back from a run, hovered, exported."""

import csv
import json
import shutil
import threading

from PIL import Image
from PySide6.QtCore import QPointF, Qt

from ssl_studio.core.events import TransferPlanned, TransferPoint
from ssl_studio.core.selection_curves import selection_reading
from ssl_studio.core.spaces import TITLES
from ssl_studio.core.transfer import TransferConfig

SPACES = ("ssl", "supervised", "untrained", "pixels")


def points_drawn(plot) -> int:
    return sum(len(line.xData) for line, _, _ in plot.series.values() if line.xData is not None)


def copy_of(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_opening_a_run_shows_its_curves_and_the_reading(window, drive, tiny_run, tiny_transfer):
    drive.open_run(window, tiny_run)
    page = window.transfer
    window.go("transfer")
    assert window.current_page() is page and window.stages.item(4).text().endswith("✓")
    assert set(page.probe_plot.series) == set(SPACES) and set(page.finetune_plot.series) == {"ssl", "scratch"}
    assert points_drawn(page.probe_plot) == 4 * len(tiny_transfer.fractions)
    assert points_drawn(page.finetune_plot) == 2 * len(tiny_transfer.finetune_fractions)
    assert page.reading.text().startswith("With ") and "self-supervised features reach" in page.reading.text()
    page.knn.setChecked(True)
    assert page.probe_plot.titleLabel.text.startswith("kNN")
    expected = json.loads((tiny_run / "transfer.json").read_text())["probe"]["ssl"]["knn"]
    line = page.probe_plot.series["ssl"][0]
    assert sorted(line.yData.tolist()) == sorted(p["top1"] for p in expected)


def test_the_page_fills_in_live_and_saves_the_curves(window, drive, qtbot, tiny_run, tmp_path):
    run = copy_of(tiny_run, tmp_path)
    (run / "transfer.json").unlink()
    drive.open_run(window, run)
    page = window.transfer
    assert not page.probe_plot.series and page.start_button.isEnabled()
    window.session.transfer_settings = TransferConfig(fractions=(0.2, 1.0), repeats=2, finetune_fractions=(1.0,), finetune_epochs=(2,))
    seen = []
    with qtbot.waitSignal(page.transferFinished, timeout=60_000):
        page.start_button.click()
        assert page.cancel_button.isEnabled() and not page.start_button.isEnabled()
        page.job.events.connect(lambda _: seen.append((points_drawn(page.probe_plot),
                                                       points_drawn(page.finetune_plot))))
    # Probe points were on screen while the fine-tuning had yet to report.
    assert any(probes > 0 and tuned == 0 for probes, tuned in seen)
    assert points_drawn(page.probe_plot) == 4 * 2 and points_drawn(page.finetune_plot) == 2
    saved = json.loads((run / "transfer.json").read_text())
    assert saved["finetune"]["ssl"][0]["steps"] == page.data["finetune"]["ssl"][0]["steps"]
    assert "transfer.json" in page.status.text() and window.stages.item(4).text().endswith("✓")


def test_hovering_a_point_gives_its_exact_figures(window, drive, qtbot, tiny_run):
    drive.open_run(window, tiny_run)
    window.go("transfer")
    page = window.transfer
    _, dots, _ = page.finetune_plot.series["ssl"]
    spot = dots.points()[0]
    scene = page.finetune_plot.vb.mapViewToScene(QPointF(spot.pos().x(), spot.pos().y()))
    qtbot.mouseMove(page.charts.viewport(), page.charts.mapFromScene(scene))
    qtbot.waitUntil(lambda: "Fine-tuned from SSL:" in page.hover.text())
    assert "top-1 with" in spot.data() and "steps" in spot.data()
    # Every curve's point on that spot is given, one line each (on the tiny run the two curves coincide).
    shared = [p.data() for _, other, _ in page.finetune_plot.series.values() for p in other.points()
              if (p.pos().x(), p.pos().y()) == (spot.pos().x(), spot.pos().y())]
    assert sorted(page.hover.text().splitlines()) == sorted(shared) and spot.data() in shared


def test_export_writes_png_svg_and_csv(window, drive, tiny_run, tiny_transfer, tmp_path):
    drive.open_run(window, tiny_run)
    window.go("transfer")
    page = window.transfer
    written = page.export(tmp_path / "out")
    assert [p.name for p in written] == ["transfer.png", "transfer.svg", "transfer.csv"]
    assert Image.open(written[0]).width > 300
    assert "<svg" in written[1].read_text()
    rows = list(csv.DictReader(written[2].open()))
    assert len(rows) == 4 * 2 * len(tiny_transfer.fractions) + 2 * len(tiny_transfer.finetune_fractions)
    assert {r["measure"] for r in rows} == {"knn", "linear", "finetune"}
    assert all(0 <= float(r["top1"]) <= 1 for r in rows)
    assert "Exported 3 files" in page.banner.text()


def test_cancel_stops_the_fine_tuning_and_offers_to_resume(window, drive, qtbot, tiny_run, tmp_path):
    drive.open_run(window, copy_of(tiny_run, tmp_path))
    window.go("transfer")
    page = window.transfer
    window.session.transfer_settings = TransferConfig(fractions=(1.0,), finetune_fractions=(1.0,), finetune_budget=(600.0,))
    page.start_button.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Fine-tuning"), timeout=30_000)
    with qtbot.waitSignal(page.job.cancelled, timeout=10_000):
        page.cancel_button.click()
    assert page.resume_button.isVisible() and page.start_button.isEnabled()
    assert (tmp_path / "run" / "finetune_ssl_100pct.safetensors").is_file()


def test_new_data_while_the_curves_are_measured_leaves_the_page_empty(window, drive, qtbot, tiny_run, tiny_folder,
                                                                      tmp_path, monkeypatch):
    from ssl_studio.gui import transfer_page

    # A point the job had made before new data cleared the page is delivered after it, as on a busy machine.
    cleared = threading.Event()
    point = TransferPoint("probe", "ssl", "knn", {"fraction": 0.5, "labels": 4, "top1": 0.5, "std": 0.0})

    def late_point(*args, **kwargs):
        yield TransferPlanned(probes=1, finetunes=())
        cleared.wait(10)
        yield point

    monkeypatch.setattr(transfer_page, "transfer", late_point)
    drive.open_run(window, copy_of(tiny_run, tmp_path))
    page = window.transfer
    page.start_button.click()
    job = page.job
    with qtbot.waitSignal(job.ended, timeout=20_000):
        drive.open_folder(window, tiny_folder)
        cleared.set()
    assert page.stack.currentIndex() == 0 and not page.probe_plot.series and page.data == {}
    assert not page.resume_button.isVisible()


def test_an_unlabeled_folder_says_why_there_is_no_transfer_stage(window, drive, qtbot, flat_folder):
    drive.open_folder(window, flat_folder)
    drive.tiny_training(window)
    with qtbot.waitSignal(window.transfer.transferFinished, timeout=60_000):
        window.train.start_button.click()
    assert "No transfer stage: unlabeled folder" in window.transfer.reading.text()
    assert not window.transfer.probe_plot.series and not window.transfer.can_export()


def test_each_curve_is_titled_and_colored_as_its_space_describes_it(window, drive, tiny_run):
    from ssl_studio.core.runs import RunFolder
    from ssl_studio.core.spaces import FINETUNED, run_spaces

    drive.open_run(window, tiny_run)
    page = window.transfer
    spaces = {space.name: space for space in run_spaces(RunFolder.open(tiny_run))}
    drawn = {key: (line.name(), line.opts["pen"].color().name()) for key, (line, _, _) in
             page.probe_plot.series.items()}
    assert drawn == {name: (spaces[name].curve_title, spaces[name].color) for name in SPACES}
    assert drawn["supervised"][0] == "Supervised (all labels)"  # it saw every label: a reference curve
    tuned = {key: (line.name(), line.opts["pen"].color().name()) for key, (line, _, _) in
             page.finetune_plot.series.items()}
    assert tuned == {start: (curve.title, curve.color) for start, curve in FINETUNED.items()}


def test_each_selection_strategy_gets_a_dashed_curve_and_the_reading_says_what_it_buys(window, drive, qtbot,
                                                                                      tiny_run, tmp_path):
    drive.open_run(window, copy_of(tiny_run, tmp_path))
    window.go("transfer")
    page = window.transfer
    window.session.transfer_settings = TransferConfig(fractions=(0.1, 1.0), repeats=2, finetune_fractions=())
    with qtbot.waitSignal(page.transferFinished, timeout=60_000):
        page.start_button.click()
    strategies = ("random", "typical", "coverage")
    assert set(page.probe_plot.series) == set(SPACES) | {f"selection:{s}" for s in strategies}
    saved = json.loads((tmp_path / "run" / "transfer.json").read_text())
    for strategy in strategies:
        line, _, _ = page.probe_plot.series[f"selection:{strategy}"]
        assert line.opts["pen"].style() == Qt.PenStyle.DashLine
        assert line.yData.tolist() == [saved["selection"][strategy]["linear"][0]["top1"]]
    assert page.probe_plot.series["ssl"][0].opts["pen"].style() == Qt.PenStyle.SolidLine
    assert selection_reading(saved, TITLES) in page.reading.text() and "label-free random draw" in page.reading.text()
    page.knn.setChecked(True)
    line, _, _ = page.probe_plot.series["selection:typical"]
    assert line.yData.tolist() == [saved["selection"]["typical"]["knn"][0]["top1"]]
    rows = list(csv.DictReader(page.export(tmp_path / "out")[2].open()))
    assert [(r["measure"], float(r["top1"])) for r in rows if r["curve"] == "ssl, coverage picks"] == [
        (probe, saved["selection"]["coverage"][probe][0]["top1"]) for probe in ("knn", "linear")]
    page.grab().save("/tmp/labelsel/transfer_page.png")
