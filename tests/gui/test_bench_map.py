"""The bench's map measurement really paints: a repaint before the window is exposed paints nothing, fast."""

import pyqtgraph as pg

from ssl_studio.bench.ui import _draw_and_pan


def test_every_pan_frame_paints_the_points(qapp, monkeypatch):
    painted = []
    paint = pg.ScatterPlotItem.paint
    monkeypatch.setattr(pg.ScatterPlotItem, "paint", lambda item, *a: (painted.append(item), paint(item, *a))[1])
    figures = _draw_and_pan(500, frames=4)
    assert figures["points"] == 500 and figures["frames"] == 4
    # The map has 4 scatter items (points, selection, neighbours, hover); the first draw and each frame paint them.
    assert len(painted) >= 4 * (1 + 4)
    assert 0 < figures["pan_frame_ms_median"] <= figures["pan_frame_ms_max"]
