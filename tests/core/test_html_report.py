"""report.html (ssl-studio export --format html): one self-contained file, opened in a real headless browser."""

import json
import shutil

import pytest

from ssl_studio.cli import main
from ssl_studio.core import html_report

from headless_chromium import Browser, find_chromium

POINT_ON_THE_SSL_MAP = """(() => {
  const points = Bokeh.documents[0].get_model_by_name('points-ssl');
  const views = []; const walk = (v) => { views.push(v); for (const c of (v.child_views ?? [])) walk(c); };
  for (const root of Bokeh.index.roots) walk(root);
  for (const figure of views.filter(v => v.model.type == 'Figure')) {
    const drawn = figure.renderer_views.get(points);
    if (drawn && drawn.glyph.sx && drawn.glyph.sx.length) {
      const box = figure.canvas_view.el.getBoundingClientRect();
      return [drawn.glyph.sx[0] + box.left, drawn.glyph.sy[0] + box.top];
    }
  }
  return null;
})()"""
SHOWN = """(() => {
  const found = {canvases: 0, thumbnails: 0}, plots = new Set();  // a plot draws on a stack of canvases
  const walk = (root) => root.querySelectorAll('*').forEach(el => {
    const box = el.getBoundingClientRect();
    if (el.tagName == 'CANVAS' && box.width >= 300) plots.add(`${box.left},${box.top}`);
    if (el.tagName == 'IMG' && el.src.startsWith('data:image/jpeg;base64,') && box.width > 0) found.thumbnails += 1;
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  found.canvases = plots.size;
  return found;
})()"""


def _export(run_dir, out):
    assert main(["export", str(run_dir), "--format", "html", str(out)]) == 0
    return (out / "report.html").read_text(encoding="utf-8")


@pytest.fixture
def labeled_run(finished_runs, tmp_path):
    data, run_dir = finished_runs[0]["labeled"]
    return data, run_dir


@pytest.mark.skipif(find_chromium() is None, reason="no chromium on this machine (Debian's `chromium` package; "
                                                   ".ci/run installs it): the report is not opened in a browser")
def test_the_report_opens_offline_in_chromium_with_maps_and_thumbnails_on_hover(labeled_run, tmp_path):
    _, run_dir = labeled_run
    _export(run_dir, tmp_path / "out")
    browser = Browser()
    try:
        browser.open((tmp_path / "out" / "report.html").as_uri())
        where = browser.wait_for(POINT_ON_THE_SSL_MAP)  # the plots have rendered their points
        assert browser.evaluate(SHOWN) == {"canvases": 4 + 1, "thumbnails": 0}  # 4 maps, the loss curves
        browser.move_mouse(*where)
        browser.wait_for(f"({SHOWN}).thumbnails == 1")
        # Only the file itself and data: URIs inside it: nothing went to a network, not even to localhost.
        assert browser.requests[0] == (tmp_path / "out" / "report.html").as_uri()
        assert all(url.startswith("data:") for url in browser.requests[1:])
    finally:
        browser.close()


def test_the_report_holds_the_tables_readings_settings_and_color_choices(labeled_run, tmp_path):
    _, run_dir = labeled_run
    page = _export(run_dir, tmp_path / "out")
    for text in ("Self-supervised (PCA): kNN", "linear probe", "By kNN, the self-supervised features",
                 "kNN mistakes", "file list sha256", "simclr", "Training loss",
                 "no transfer curves (the transfer stage did not run)"):
        assert text in page, text


def test_a_run_without_maps_or_its_images_still_gives_a_report_saying_what_is_missing(finished_runs, tmp_path):
    data, original = finished_runs[0]["unlabeled"]
    run_dir = tmp_path / "run"
    shutil.copytree(original, run_dir)
    shutil.rmtree(run_dir / "projections")
    page = _export(run_dir, tmp_path / "out")
    assert "no maps (the run was stopped before them" in page and "Training loss" in page
    assert "no accuracies" in page

    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "moved-away")  # the run's images are no longer where they were
    (run_dir / "config.json").write_text(json.dumps(config))
    shutil.copytree(original / "projections", run_dir / "projections")
    page = _export(run_dir, tmp_path / "out2")
    assert "no thumbnails (the run's data folder no longer holds its images)" in page
    assert "data:image/jpeg" not in page and "Self-supervised (PCA)" in page and "cluster 1" in page


def test_a_large_run_shows_a_seeded_sample_and_says_so(labeled_run, tmp_path, monkeypatch):
    _, run_dir = labeled_run
    monkeypatch.setattr(html_report, "MAX_POINTS", 10)
    page = _export(run_dir, tmp_path / "out")
    assert "a random sample of 10 of the run's 32 images (seed 0)" in page
    assert page.count("data:image/jpeg;base64,") == 10
