"""File ▸ Export ▸ TensorBoard Projector…, FiftyOne… and Model (ONNX)…: a background job with progress and Cancel."""

import json
import threading

from PIL import Image

from ssl_studio.core import run_export
from ssl_studio.core.model_export import FILES
from ssl_studio.core.projector_export import CONFIG


def export_actions(window):
    return {action.text(): action for action in window.export_menu.actions()}


def test_the_export_menu_offers_each_format(window, drive, tiny_run):
    assert list(export_actions(window)) == ["&Maps and embeddings (PNG, SVG, CSV, NPY)…", "TensorBoard Projector…",
                                            "FiftyOne…", "Model (ONNX)…",
                                            "Report (HTML)…"]
    assert window.export_run_to("projector", "/nonexistent") is None  # nothing to export before a run
    assert "Nothing to export yet" in window.statusBar().currentMessage()


def test_projector_export_from_the_app(window, drive, qtbot, tiny_run, tiny_folder, tmp_path):
    drive.open_run(window, tiny_run)
    assert window.session.dataset is not None  # its data folder was read again: the sprite comes from memory
    out = tmp_path / "projector"
    job = window.export_run_to("projector", out)
    assert window.export_bar.isVisible() and window.export_bar.cancel_button.isEnabled()
    with qtbot.waitSignal(job.succeeded, timeout=20_000):
        pass
    assert (out / CONFIG).read_text().count("embeddings {") == 4
    n = len(window.session.dataset)
    assert len((out / "metadata.tsv").read_text().splitlines()) == n + 1
    assert Image.open(out / "sprite.png").width >= 32
    qtbot.waitUntil(lambda: not window.export_bar.isVisible())
    text = window.compare.banner.text()
    assert "TensorBoard Projector export written to" in text and f"tensorboard --logdir {out}" in text
    assert window.current_page() is window.compare


def test_fiftyone_export_from_the_app_and_its_cancel(window, drive, qtbot, tiny_run, tmp_path, monkeypatch):
    drive.open_run(window, tiny_run)
    job = window.export_run_to("fiftyone", tmp_path / "fiftyone")
    assert window.export_run_to("projector", tmp_path / "other") is None  # one export at a time
    with qtbot.waitSignal(job.succeeded, timeout=20_000):
        pass
    info = json.loads((tmp_path / "fiftyone" / "export.json").read_text())
    assert info["labeled"] and info["spaces"] == ["ssl", "supervised", "untrained", "pixels"]
    assert "load_in_fiftyone.py" in window.compare.banner.text()

    # The next export waits, as a large one would, until Cancel has been pressed.
    pressed = threading.Event()
    monkeypatch.setattr(run_export, "open_run", lambda path, real=run_export.open_run: pressed.wait(10) and real(path))
    job = window.export_run_to("fiftyone", tmp_path / "cancelled")
    with qtbot.waitSignal(job.cancelled, timeout=20_000):
        window.export_bar.cancel_button.click()
        pressed.set()
    assert "was cancelled" in window.compare.banner.text()
    assert window.export_bar.isHidden()


def test_model_export_from_the_app(window, drive, qtbot, tiny_run, tmp_path):
    drive.open_run(window, tiny_run)
    out = tmp_path / "model"
    job = window.export_run_to("onnx", out)
    with qtbot.waitSignal(job.succeeded, timeout=60_000):
        pass
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert "Model (ONNX) export written to" in window.compare.banner.text()
    assert "MODEL_CARD.md" in window.compare.banner.text()
