"""The bench's map measurement really paints: a repaint before the window is exposed paints nothing, fast."""

import pyqtgraph as pg

from ssl_studio.bench.ui import _draw_and_pan


def test_every_pan_frame_paints_the_view(qapp, monkeypatch):
    painted, frames = [], []
    paint = pg.ScatterPlotItem.paint
    monkeypatch.setattr(pg.ScatterPlotItem, "paint", lambda item, *a: (painted.append(len(item.data)), paint(item, *a))[1])
    view_paint = pg.GraphicsView.paintEvent
    monkeypatch.setattr(pg.GraphicsView, "paintEvent", lambda view, ev: (frames.append(ev), view_paint(view, ev))[1])
    figures = _draw_and_pan(500, frames=4)
    assert figures["points"] == 500 and figures["frames"] == 4
    # The first draw renders the points; each pan frame repaints the view (from the points' pixmap cache).
    assert 500 in painted and len(frames) >= 1 + 4
    assert 0 < figures["pan_frame_ms_median"] <= figures["pan_frame_ms_max"]


def test_the_scale_probe_times_every_interaction_of_a_filled_compare_page(qapp):
    from ssl_studio.bench.scale import probe_map

    figures = probe_map("3000", frames=4)
    assert figures["points"] == 3000 and figures["frames"] == 4
    assert 0 < figures["selected"] < 3000  # the rectangle holds part of the map
    for key in ("fill_ms", "pan_ms_median", "zoom_ms_median", "hover_ms_median", "query_ms_median", "select_ms",
                "neighbours_ms"):
        assert figures[key] > 0, key
    assert figures["pan_ms_median"] <= figures["pan_ms_max"] and figures["hover_ms_median"] <= figures["hover_ms_max"]
