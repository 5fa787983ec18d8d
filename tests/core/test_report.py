import numpy as np
import pytest
from PIL import Image

from ssl_studio.core.report import PAD, PALETTE, PANEL, render_report


def rgb(hex_color):
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


def has_color(pixels, hex_color, tolerance=12):
    return bool(np.any(np.abs(pixels.astype(int) - rgb(hex_color)).max(axis=-1) <= tolerance))


def two_class_maps(n=200):
    # Each class stacked on one spot: overlapping translucent dots reach the class color itself.
    labels = np.repeat([0, 1], n // 2)
    coords = np.where(labels[:, None] == 0, [0.0, 0.0], [5.0, 5.0])
    return coords, labels


def test_report_is_a_png_with_one_panel_per_space_in_class_colors(tmp_path):
    coords, labels = two_class_maps()
    maps = {"ssl": coords, "pixels": coords[::-1].copy()}
    titles = {"ssl": "SSL: kNN 91.0%, linear 93.5%", "pixels": "Raw pixels: kNN 40.0%, linear 41.0%"}
    path = render_report(tmp_path / "report.png", maps, labels, ["cat", "dog"], titles)

    assert path == tmp_path / "report.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(path)
    assert image.format == "PNG" and image.width == 2 * PAD + 2 * PANEL + PAD and image.height > PANEL + 2 * PAD
    pixels = np.asarray(image.convert("RGB"))
    second_panel = pixels[:, PAD + PANEL + PAD :]  # right of the short legend: the dots alone
    assert has_color(second_panel, PALETTE[0]) and has_color(second_panel, PALETTE[1])
    assert not has_color(pixels, PALETTE[2]), "no third class, no third color"
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"], "no temporary file is left behind"


def test_unlabeled_report_has_no_legend_and_a_note(tmp_path):
    coords, labels = two_class_maps()
    labeled = Image.open(render_report(tmp_path / "a.png", {"ssl": coords}, labels, ["a", "b"], {}))
    plain = Image.open(render_report(tmp_path / "b.png", {"ssl": coords}, None, [], {}))
    noted = Image.open(render_report(tmp_path / "c.png", {"ssl": coords}, None, [], {}, note="k-means colors"))
    assert plain.height < labeled.height and plain.height < noted.height
    assert has_color(np.asarray(plain.convert("RGB")), PALETTE[0])
    assert not has_color(np.asarray(plain.convert("RGB")), PALETTE[1])


def test_degenerate_maps_still_render(tmp_path):
    nan_map = np.full((10, 2), np.nan)
    constant = np.ones((10, 2))
    mixed = np.vstack([np.ones((5, 2)), np.full((5, 2), np.inf)])
    labels = np.arange(10) % 3
    maps = {"a": nan_map, "b": constant, "c": mixed}
    path = render_report(tmp_path / "report.png", maps, labels, ["x", "y", "z"], {"a": "a long title " * 8})
    assert Image.open(path).width == 2 * PAD + 3 * PANEL + 2 * PAD
    empty = render_report(tmp_path / "empty.png", {"ssl": np.zeros((0, 2))}, None, [], {})
    assert Image.open(empty).width == 2 * PAD + PANEL


def test_report_refuses_labels_that_do_not_match_the_points(tmp_path):
    with pytest.raises(ValueError, match="labels"):
        render_report(tmp_path / "r.png", {"ssl": np.zeros((5, 2))}, np.zeros(4, dtype=int), ["a"], {})


def test_report_overwrites_and_writes_png_whatever_the_suffix(tmp_path):
    coords, labels = two_class_maps(20)
    target = tmp_path / "report.tmp"  # the run folder may hand over a temporary name
    target.write_bytes(b"old")
    render_report(target, {"ssl": coords}, labels, ["a", "b"], {"ssl": "SSL"})
    assert Image.open(target).format == "PNG"


def test_report_needs_a_map(tmp_path):
    with pytest.raises(ValueError, match="a report needs at least one map"):
        render_report(tmp_path / "r.png", {}, None, [], {})


def test_the_transfer_charts_draw_each_curve_as_its_space_describes_it(tmp_path):
    from ssl_studio.core.spaces import FINETUNED, Space

    coords, _ = two_class_maps()
    point = {"fraction": 0.5, "labels": 10, "top1": 0.5, "std": 0.0, "seconds": 1.0}
    curves = {"probe": {"mine": {"linear": [point, {**point, "labels": 20, "top1": 0.9}]}},
              "finetune": {"scratch": [point, {**point, "labels": 20, "top1": 0.7}]}}
    mine = Space("mine", "Mine", "Mine", lambda inputs: None, color="#00c8c8")
    path = render_report(tmp_path / "r.png", {"ssl": coords}, None, [], {}, transfer=curves, spaces={"mine": mine})
    charts = np.asarray(Image.open(path).convert("RGB"))[PAD + PANEL + 40:]  # under the map
    assert has_color(charts, mine.color) and has_color(charts, FINETUNED["scratch"].color)
    assert not has_color(charts, PALETTE[0])  # the map's dots stay above
