"""A one-image summary of a run: the maps side by side, colored by class, with titles and a legend; under them, when
the run has them, the transfer curves (accuracy against the number of labels, core/transfer.py).

Pillow only, so a headless run needs no plotting library. Drawn at 2x and downsampled: Pillow's
shapes are not antialiased, and this is the cheapest way to round dots and smooth text.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import write_atomic
from .coloring import PALETTE, draw_order
from .spaces import FINETUNED, Space

# The transfer charts, as report.png and the Transfer page title them.
CHART_TITLES = {"linear": "Linear probe on frozen features", "knn": "kNN on frozen features",
                "finetune": "Fine-tuning the whole network"}

PANEL = 360  # side of one map, in output pixels
CHART_HEIGHT = 260  # one transfer chart, axes included
PAD = 20  # outer margin and the gap between panels
_SS = 2  # supersampling factor
_TITLE_GAP = 6
_INSET = 14  # keeps the outermost dots inside their panel frame
_TITLE_SIZE, _TEXT_SIZE, _NOTE_SIZE = 15, 13, 13
_INK, _MUTED, _FRAME, _PANEL_BG = "#222222", "#666666", "#d0d0d0", "#fafafa"
_DOT_ALPHA = 200  # overlapping dots stay readable as density


def render_report(path, maps: dict, labels, class_names, titles: dict, note: str | None = None,
                  transfer: dict | None = None, spaces: dict[str, Space] | None = None) -> Path:
    """Write a PNG: one square panel per space (in ``maps`` order), a legend and an optional note.

    ``labels`` (N,) index ``class_names`` and pick colors from ``PALETTE``; None draws every point in
    one color without a legend. ``titles`` maps a space to its heading (a missing one shows the
    space's name). ``transfer`` (the run's transfer curves) adds a row of charts under the maps, each space's
    line named and colored as ``spaces`` describes it. The file is written atomically.
    """
    if not maps:
        raise ValueError("a report needs at least one map")
    labels = None if labels is None else np.asarray(labels, dtype=np.int64).ravel()
    for space, coords in maps.items():
        shape = np.shape(coords)
        if len(shape) != 2 or shape[1] != 2:
            raise ValueError(f"map {space!r} has shape {shape}; expected (N, 2)")
        if labels is not None and shape[0] != len(labels):
            raise ValueError(f"map {space!r} has {shape[0]} points but there are {len(labels)} labels")
    title_font = _font(_TITLE_SIZE)
    text_font = _font(_TEXT_SIZE)

    width = 2 * PAD + len(maps) * PANEL + (len(maps) - 1) * PAD
    title_lines = [_wrap(titles.get(space, space), title_font, PANEL) for space in maps]
    title_height = max(len(lines) for lines in title_lines) * _line_height(title_font)
    legend = _legend_rows(class_names, text_font, width - 2 * PAD) if labels is not None else []
    note_lines = _wrap(note, text_font, width - 2 * PAD) if note else []
    charts = _charts(transfer, spaces or {}) if transfer else []
    chart_block = (_line_height(title_font) + CHART_HEIGHT + 3 * _line_height(text_font) + PAD) if charts else 0
    height = (
        PAD + title_height + _TITLE_GAP + PANEL + PAD
        + len(legend) * _line_height(text_font) + (PAD // 2 if legend else 0)
        + chart_block
        + len(note_lines) * _line_height(text_font) + (PAD // 2 if note_lines else 0)
    )  # fmt: skip

    image = Image.new("RGB", (width * _SS, height * _SS), "white")
    draw = ImageDraw.Draw(image, "RGBA")
    for i, (space, coords) in enumerate(maps.items()):
        left = PAD + i * (PANEL + PAD)
        _text_block(draw, (left, PAD), title_lines[i], title_font, _INK)
        _panel(draw, left, PAD + title_height + _TITLE_GAP, np.asarray(coords, dtype=np.float64), labels)

    y = PAD + title_height + _TITLE_GAP + PANEL + PAD
    swatch = _TEXT_SIZE * 0.4  # radius of a legend dot
    for row in legend:
        x = PAD
        for k, name, column in row:
            cy = y + _line_height(text_font) / 2
            draw.ellipse(_scaled((x, cy - swatch, x + 2 * swatch, cy + swatch)), fill=PALETTE[k % len(PALETTE)])
            draw.text(_scaled((x + 2 * swatch + 5, y)), name, fill=_INK, font=text_font)
            x += column
        y += _line_height(text_font)
    if charts:
        y += PAD // 2 if legend else 0
        chart_width = (width - 2 * PAD - (len(charts) - 1) * PAD) / len(charts)
        for i, (title, series) in enumerate(charts):
            _chart(draw, PAD + i * (chart_width + PAD), y, chart_width, title, series, title_font, text_font)
        y += chart_block
    if note_lines:
        _text_block(draw, (PAD, y + (PAD // 2 if legend else 0)), note_lines, text_font, _MUTED)

    final = image.resize((width, height), Image.Resampling.LANCZOS)
    return write_atomic(path, lambda tmp: final.save(tmp, format="PNG"))


def _panel(draw: ImageDraw.ImageDraw, left: int, top: int, coords: np.ndarray, labels) -> None:
    draw.rectangle(_scaled((left, top, left + PANEL, top + PANEL)), fill=_PANEL_BG, outline=_FRAME, width=_SS)
    finite = np.all(np.isfinite(coords), axis=1)
    if not finite.any():
        return
    points = coords[finite]
    # One scale for both axes: distances on a UMAP/PCA map mean the same in x and y.
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = float((hi - lo).max())
    scale = (PANEL - 2 * _INSET) / span if span > 0 else 0.0  # constant coordinates land in the middle
    center = (lo + hi) / 2
    xs = left + PANEL / 2 + (points[:, 0] - center[0]) * scale
    ys = top + PANEL / 2 - (points[:, 1] - center[1]) * scale  # y grows upwards on a map
    colors = _dot_colors(labels[finite] if labels is not None else np.zeros(len(points), dtype=np.int64))
    # Fewer points, bigger dots: about 4 px across at 200 points, 2.5 px at 20k.
    r = float(np.clip(2.2 * (2000 / len(points)) ** 0.2, 1.2, 4.0)) * _SS
    for j in draw_order(len(points)):
        x, y = xs[j] * _SS, ys[j] * _SS
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colors[j])


def _charts(transfer: dict, spaces: dict[str, Space]) -> list[tuple[str, list]]:
    """(title, [(name, color, [(labels, top1, spread), ...]), ...]) for each chart the curves make."""
    charts = []
    probe = transfer.get("probe") or {}
    for key in ("linear", "knn"):
        series = [(spaces[space].curve_title if space in spaces else space,
                   spaces[space].color if space in spaces else _MUTED,
                   [(p["labels"], p["top1"], p["std"]) for p in curves[key]])
                  for space, curves in probe.items() if curves.get(key)]
        if series:
            charts.append((CHART_TITLES[key], series))
    tuned = transfer.get("finetune") or {}
    series = [(FINETUNED[start].title, FINETUNED[start].color, [(p["labels"], p["top1"], 0.0) for p in points])
              for start, points in tuned.items() if points]
    if series:
        charts.append((CHART_TITLES["finetune"], series))
    return charts


def _chart(draw, left: float, top: float, width: float, title: str, series: list, title_font, text_font) -> None:
    """Top-1 against the number of labels (log scale), one line per series with its spread as error bars."""
    _text_block(draw, (left, top), [title], title_font, _INK)
    top += _line_height(title_font)
    axis_left, plot_w, plot_h = left + 40, width - 50, CHART_HEIGHT - 22
    draw.rectangle(_scaled((axis_left, top, axis_left + plot_w, top + plot_h)), fill=_PANEL_BG, outline=_FRAME,
                   width=_SS)
    xs = [x for _, _, points in series for x, _, _ in points]
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    lo, hi = (lo - 0.3, hi + 0.3) if hi - lo < 0.6 else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))

    def at(labels: float, top1: float) -> tuple[float, float]:
        return axis_left + (math.log10(labels) - lo) / (hi - lo) * plot_w, top + (1 - top1) * plot_h

    for pct in (0, 25, 50, 75, 100):
        y = top + (1 - pct / 100) * plot_h
        draw.line(_scaled((axis_left, y, axis_left + plot_w, y)), fill=_FRAME, width=1)
        draw.text(_scaled((axis_left - 6, y)), f"{pct}%", fill=_MUTED, font=text_font, anchor="rm")
    for k in range(math.floor(lo), math.ceil(hi) + 1):
        for mult in (1, 2, 5):
            tick = mult * 10**k
            if lo <= math.log10(tick) <= hi:
                x = at(tick, 0)[0]
                draw.line(_scaled((x, top + plot_h, x, top + plot_h + 4)), fill=_MUTED, width=_SS)
                draw.text(_scaled((x, top + plot_h + 5)), f"{tick:,}", fill=_MUTED, font=text_font, anchor="mt")
    for _, color, points in series:
        xy = [at(x, y) for x, y, _ in points]
        if len(xy) > 1:
            draw.line([v * _SS for p in xy for v in p], fill=color, width=2 * _SS)
        for (x, y, spread), (px, py) in zip(points, xy):
            if spread > 0:
                draw.line(_scaled((px, at(x, y + spread)[1], px, at(x, y - spread)[1])), fill=color, width=_SS)
            draw.ellipse(_scaled((px - 3, py - 3, px + 3, py + 3)), fill=color)
    y = top + plot_h + 5 + _line_height(text_font)
    _text_block(draw, (left + 40, y), ["labeled images (log scale) · top-1 on the held-out 20 %"], text_font, _MUTED)
    x, y = axis_left, y + _line_height(text_font)
    for name, color, _ in series:  # the legend, in up to two rows
        item = 18 + text_font.getlength(name) / _SS + 14
        if x > axis_left and x + item > left + width:
            x, y = axis_left, y + _line_height(text_font)
        draw.line(_scaled((x, y + 8, x + 14, y + 8)), fill=color, width=3 * _SS)
        draw.text(_scaled((x + 18, y)), name, fill=_INK, font=text_font)
        x += item


def _dot_colors(labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    rgba = [(*_hex_to_rgb(h), _DOT_ALPHA) for h in PALETTE]
    return [rgba[k % len(rgba)] for k in labels.tolist()]


def _legend_rows(class_names, font, max_width: int) -> list[list[tuple[int, str, float]]]:
    """Legend items in a grid of equal columns: (class index, name, column width in output pixels)."""
    if not class_names:
        return []
    column = _TEXT_SIZE * 0.8 + 5 + max(font.getlength(name) for name in class_names) / _SS + 18
    per_row = max(1, int(max_width // column))
    items = [(k, name, column) for k, name in enumerate(class_names)]
    return [items[i : i + per_row] for i in range(0, len(items), per_row)]


def _wrap(text: str, font, max_width: int) -> list[str]:
    """Greedy word wrap to ``max_width`` output pixels; explicit newlines are kept."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) / _SS > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _text_block(draw, origin, lines, font, fill) -> None:
    x, y = origin
    for line in lines:
        draw.text(_scaled((x, y)), line, fill=fill, font=font)
        y += _line_height(font)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size * _SS)


def _line_height(font) -> int:
    return round(font.size / _SS * 1.45)


def _scaled(box) -> tuple[float, ...]:
    return tuple(v * _SS for v in box)


def _hex_to_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
