"""Each page's "How this works" (Page.explain): the plain words, and the small figure drawn beside them.

The words are written for someone who has not met self-supervised learning; every term is said in words where it
first appears. The figures are drawn here (QPainter, pyqtgraph); the Train page's histogram is live.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

from ssl_studio.core.augment import Recipe
from ssl_studio.core.methods import Method
from ssl_studio.core.spaces import COLORS

from .colors import class_color
from .images import to_pixmap

INK, MUTED, ACCENT = QColor("#2b3140"), QColor("#5b6270"), QColor("#3558d6")
POSITIVE, NEGATIVE = "#2e7d32", "#8a90a0"  # the positive pair and the negatives: in the formula and the histogram
FIGURE_WIDTH = 340


def _painter(widget: QWidget) -> QPainter:
    painter = QPainter(widget)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont(widget.font())
    font.setPointSizeF(8.5)
    painter.setFont(font)
    return painter


def _arrow(painter: QPainter, start: QPointF, end: QPointF, color: QColor = MUTED) -> None:
    painter.setPen(QPen(color, 1.4))
    painter.drawLine(start, end)
    direction = end - start
    length = max(1e-6, (direction.x() ** 2 + direction.y() ** 2) ** 0.5)
    ux, uy = direction.x() / length, direction.y() / length
    head = QPainterPath(end)
    head.lineTo(end - QPointF(7 * ux - 3.5 * uy, 7 * uy + 3.5 * ux))
    head.lineTo(end - QPointF(7 * ux + 3.5 * uy, 7 * uy - 3.5 * ux))
    head.closeSubpath()
    painter.fillPath(head, color)


# --- 1 · Data -------------------------------------------------------------------------------------------------------
DATA = (
    "<b>What the images are for.</b> Self-supervised learning (SSL) trains a network on the images alone: it never "
    "sees a label. The labels (one subfolder per class) are used for two things only: to train the <i>supervised "
    "baseline</i>, the same network taught the answers, for comparison; and to score each result. For the scores, "
    "a fixed 20 % of the images is <b>held out</b>: no network trains on them, and every accuracy on the Compare "
    "page is measured on them. A folder without subfolders works too: it gets no baseline and no scores, and its "
    "maps are colored by groups found in the images.")


class SplitFigure(QWidget):
    """The 80 / 20 split: what learns from which part."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFixedSize(FIGURE_WIDTH, 92)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = _painter(self)
        w = self.width() - 2
        cut = round(w * 0.8)
        for x, width, color, text in ((1, cut, "#dfe6fb", "80 %  training"), (1 + cut, w - cut, "#fde7cf", "20 %")):
            painter.setPen(QPen(QColor("#8a90a0"), 1))
            painter.setBrush(QColor(color))
            painter.drawRect(QRectF(x, 6, width, 26))
            painter.setPen(INK)
            painter.drawText(QRectF(x, 6, width, 26), Qt.AlignmentFlag.AlignCenter, text)
        painter.setPen(MUTED)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        painter.drawText(QRectF(1, 38, cut - 8, 54), flags, "SSL learns from these without their labels; the "
                                                           "baseline learns from them with labels")
        painter.drawText(QRectF(cut + 5, 38, w - cut - 4, 54), flags, "held out: only to score")
        painter.end()


# --- 2 · Augment ----------------------------------------------------------------------------------------------------
def ignored(recipe: Recipe) -> list[str]:
    """What a network trained on views made with ``recipe`` is taught to ignore, in words."""
    items = []
    lo, hi = recipe.crop_scale
    if lo < 1:
        items.append(f"<b>where the object is and how big it looks</b>: each view is a crop of {lo:.0%} to "
                     f"{hi:.0%} of the image, resized")
    if recipe.flip_p:
        items.append(f"<b>left and right</b>: {recipe.flip_p:.0%} of views are mirrored")
    if recipe.jitter_p:
        changed = [n for n in ("brightness", "contrast", "saturation") if getattr(recipe, n)]
        if recipe.hue:
            changed.append("the hue (any hue at all)" if recipe.hue >= 0.5 else "the hue")
        if changed:
            listed = ", ".join(changed[:-1]) + (" and " if len(changed) > 1 else "") + changed[-1]
            items.append(f"<b>lighting and color</b>: {listed} change in {recipe.jitter_p:.0%} of views")
    if recipe.grayscale_p:
        items.append(f"<b>color itself</b>: {recipe.grayscale_p:.0%} of views are grey")
    if recipe.blur_p:
        items.append(f"<b>fine detail</b>: {recipe.blur_p:.0%} of views are blurred")
    if recipe.rotate_p and recipe.rotate_degrees:
        items.append(f"<b>tilt</b> up to ±{recipe.rotate_degrees:.0f}°: {recipe.rotate_p:.0%} of views are turned")
    if recipe.solarize_p:
        items.append(f"<b>which parts are bright</b>: {recipe.solarize_p:.0%} of views have their bright pixels "
                     "inverted")
    return items


def augment_text(method: type[Method], recipe: Recipe) -> str:
    if len(method.view_names) == 2:
        intro = ("<b>Two views of one image.</b> Each training image is altered twice at random; the two results, "
                 "its <i>views</i>, are what the network sees. It learns to give both views of an image nearly the "
                 "same <i>embedding</i> (the list of numbers it computes for an image), and other images different "
                 "ones. ")
    else:
        intro = f"<b>{method.title}.</b> {method.summary} Each image is first altered at random by this recipe. "
    items = ignored(recipe)
    if not items:
        return intro + ("This recipe changes nothing: the views are the image itself, and the network can tell "
                        "them apart by their pixels alone, learning little. Add crops and color changes.")
    return (intro + "Whatever the recipe changes, the network learns to <b>ignore</b>; what no change touches (on "
            "Shapes, the shape) is what it learns to recognise. This recipe teaches it to ignore:<ul "
            "style='margin:2px 0 0 -20px'>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"
            "Colors carry nothing on Shapes, so ignoring them is right there; where color tells the classes apart "
            "(flowers), keep color changes light.")


class ViewsFigure(QWidget):
    """One of the previewed images, the first two things made of it, and (two-view methods) their embeddings pulled
    together while other images are pushed away."""

    SIZE = 52

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFixedSize(FIGURE_WIDTH, 150)
        self._image = None
        self._views: list[tuple[str, object]] = []
        self._pairs = True

    def set_images(self, image: torch.Tensor, views: list[tuple[str, torch.Tensor]], pairs: bool) -> None:
        """``views``: (name, view) of this image, as the method makes them; ``pairs``: the method pulls two views of
        one image together."""
        self._image = to_pixmap(image, self.SIZE + 8)
        self._views = [(name, to_pixmap(view, self.SIZE)) for name, view in views[:2]]
        self._pairs = pairs
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = _painter(self)
        if self._image is None:
            painter.setPen(MUTED)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open data to see its views here")
            painter.end()
            return
        s = self.SIZE
        painter.drawPixmap(0, 36, self._image)
        painter.setPen(MUTED)
        painter.drawText(QRectF(0, 36 + s + 10, s + 8, 16), Qt.AlignmentFlag.AlignCenter, "an image")
        tops = (4, 150 - s - 18)
        for (name, pixmap), top in zip(self._views, tops):
            _arrow(painter, QPointF(s + 12, 66), QPointF(100, top + s / 2))
            painter.drawPixmap(104, top, pixmap)
            painter.setPen(MUTED)
            painter.drawText(QRectF(104, top + s + 1, s, 14), Qt.AlignmentFlag.AlignCenter, name)
        if self._pairs and len(self._views) == 2:
            space = QRectF(206, 8, 132, 134)
            painter.setPen(QPen(QColor("#d6d9e0"), 1))
            painter.setBrush(QColor("#ffffff"))
            painter.drawRoundedRect(space, 6, 6)
            painter.setPen(MUTED)
            painter.drawText(QRectF(206, 10, 132, 14), Qt.AlignmentFlag.AlignCenter, "embeddings")
            for top in tops:
                _arrow(painter, QPointF(104 + s + 4, top + s / 2), QPointF(236, 76 + (top - 70) / 14))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(POSITIVE))
            for x, y in ((242, 72), (252, 80)):
                painter.drawEllipse(QPointF(x, y), 5, 5)
            painter.setBrush(QColor(NEGATIVE))
            for x, y in ((318, 36), (322, 118), (286, 128), (312, 78)):
                painter.drawEllipse(QPointF(x, y), 4, 4)
            painter.setPen(QColor(POSITIVE))
            painter.drawText(QRectF(212, 88, 90, 28), Qt.TextFlag.TextWordWrap, "pulled together")
            painter.setPen(MUTED)
            painter.drawText(QRectF(262, 44, 72, 28), Qt.TextFlag.TextWordWrap, "other images")
        painter.end()


# --- 3 · Train ------------------------------------------------------------------------------------------------------
def _z(index: str, color: str) -> str:
    return f"<span style='color:{color}'><b>z</b><sub>{index}</sub></span>"


FORMULA = (
    "<table cellspacing=0 cellpadding=0 style='font-size:13pt; font-family:serif; margin:4px 0'><tr>"
    "<td valign=middle rowspan=2>ℓ<sub>i</sub> = −log&nbsp;</td>"
    f"<td align=center style='border-bottom:1px solid #2b3140; padding:0 4px'>exp(sim({_z('i', POSITIVE)}, "
    f"{_z('j', POSITIVE)}) / τ)</td></tr><tr>"
    f"<td align=center style='padding:0 4px'>Σ<sub>k≠i</sub> exp(sim({_z('i', POSITIVE)}, {_z('k', NEGATIVE)}) "
    "/ τ)</td></tr></table>")


def train_text(method: type[Method]) -> str:
    closing = ("<br>A second task rides along (the <i>Rotation task</i> setting; 0 turns it off): both views of half "
               "the pairs are turned by the same 90, 180 or 270 degrees, and a small head must tell which, so the "
               "network keeps how an object stands.") if method.name == "simclr" else (
        f"<br>The method chosen now, <b>{method.title}</b>, has a loss of its own: {method.summary}")
    rows = [(f"{_z('i', POSITIVE)}, {_z('j', POSITIVE)}", "the embeddings of the two views of one image: the "
             "<b>positive pair</b>"),
            (_z("k", NEGATIVE), "every other view of the batch; all but one come from other images: the "
             "<b>negatives</b>"),
            ("sim", "cosine similarity: 1 for the same direction, 0 unrelated, −1 opposite"),
            ("τ", "the temperature, a setting: lower makes the loss look harder at the negatives most like the "
             "positive"),
            ("−log", "near 0 when the pair is far more alike than every negative; the loss is its average over "
             "the views")]
    table = "".join(f"<tr><td style='padding-right:8px' align=right>{name}</td><td>{text}</td></tr>"
                    for name, text in rows)
    return (
        "<b>What SimCLR learns from: the InfoNCE loss.</b> A batch of N images gives 2N views; each view must pick "
        "its partner out of the batch:" + FORMULA + f"<table cellspacing=0 cellpadding=1>{table}</table>"
        "The histogram shows the batch being trained, live: as the network learns, the <span style='color:"
        f"{POSITIVE}'>pairs</span> move toward 1 and <span style='color:{NEGATIVE}'>other images</span> stay lower. "
        "If both crowd at 1, every image looks the same to the network: a collapse." + closing)


class SimilarityHistogram(pg.PlotWidget):
    """Cosine similarities of the batch being trained: the positive pairs against the negatives, as shares."""

    BINS = np.linspace(-1.0, 1.0, 41)
    # The y axis's top moves in these steps, not with every batch: each new range regenerates the axis's ticks
    # and labels in Python on the GUI thread, which training's Python waits on.
    CEILINGS = (0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="w")
        self.setFixedSize(FIGURE_WIDTH, 190)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setXRange(-1, 1, padding=0.02)
        self.setLabel("bottom", "cosine similarity")
        self.setLabel("left", "share of pairs")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.addLegend(offset=(6, 4), labelTextSize="8pt")
        self.curves = {}
        for key, name, color in (("negatives", "two different images", NEGATIVE),
                                 ("positives", "two views of one image", POSITIVE)):
            fill = QColor(color)
            fill.setAlpha(90)
            self.curves[key] = self.plot(name=name, stepMode="center", fillLevel=0, brush=fill,
                                         pen=pg.mkPen(color, width=1.5))
        self.placeholder = pg.TextItem("live while a two-view method trains", color=MUTED, anchor=(0.5, 0.5))
        self.addItem(self.placeholder, ignoreBounds=True)
        self.placeholder.setPos(0, 0.3)
        self.ceiling = None
        self.clear_similarities()

    def set_similarities(self, positives, negatives) -> None:
        tallest = 0.0
        for key, values in (("positives", positives), ("negatives", negatives)):
            values = np.asarray(values, dtype=np.float64)
            counts = np.histogram(np.clip(values, -1, 1), bins=self.BINS)[0] / max(1, len(values))
            self.curves[key].setData(self.BINS, counts)
            tallest = max(tallest, float(counts.max()))
        self._show_up_to(next(c for c in self.CEILINGS if c >= min(1.0, tallest * 1.05)))
        self.placeholder.hide()

    def clear_similarities(self) -> None:
        for curve in self.curves.values():
            curve.setData(self.BINS, np.zeros(len(self.BINS) - 1))
        self._show_up_to(1.0)
        self.placeholder.show()

    def _show_up_to(self, ceiling: float) -> None:
        if ceiling != self.ceiling:
            self.ceiling = ceiling
            self.setYRange(0, ceiling, padding=0)


# --- 4 · Compare ----------------------------------------------------------------------------------------------------
COMPARE = (
    "<b>Reading a map.</b> Each dot is an image; images whose embeddings are alike sit close together (UMAP or PCA "
    "squeeze an embedding's many numbers into two). Only closeness means something: not the axes, not the distance "
    "between far-apart groups. The color is the class, which the self-supervised network never saw: where colors "
    "form islands of their own, it has learned what tells the classes apart. Raw pixels are the floor: on Shapes "
    "they group images by color, not shape.<br><b>kNN accuracy</b>: each held-out image gets the class most of its "
    "20 most similar training images have (in the full embedding, not on the map); the score is how often that is "
    "right. <b>Linear probe</b>: a classifier that may only draw straight boundaries (logistic regression) learns "
    "the classes from the training images' embeddings; its score on the held-out images says whether flat cuts "
    "separate the classes.")


class MapReadingFigure(QWidget):
    """A held-out image among three classes: its nearest training images vote (kNN), a straight cut (linear probe)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFixedSize(FIGURE_WIDTH, 150)
        rng = np.random.default_rng(3)
        centers = np.array([[52.0, 42.0], [160.0, 70.0], [70.0, 112.0]])
        self.points = np.clip(np.concatenate([c + rng.normal(scale=12, size=(14, 2)) for c in centers]), 8, 198)
        self.classes = np.repeat(np.arange(3), 14)
        self.query = np.array([134.0, 84.0])

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = _painter(self)
        painter.setPen(QPen(QColor("#d6d9e0"), 1))
        painter.setBrush(QColor("#ffffff"))
        painter.drawRoundedRect(QRectF(0.5, 0.5, 206, 149), 6, 6)
        # The linear probe's cut between the orange class and the rest.
        painter.setPen(QPen(ACCENT, 1.4, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(128, 4), QPointF(100, 146))
        nearest = np.argsort(((self.points - self.query) ** 2).sum(axis=1))[:5]
        painter.setPen(QPen(QColor("#b0b5c0"), 1))
        for i in nearest:
            painter.drawLine(QPointF(*self.query), QPointF(*self.points[i]))
        painter.setPen(Qt.PenStyle.NoPen)
        for (x, y), k in zip(self.points, self.classes):
            painter.setBrush(class_color(int(k)))
            painter.drawEllipse(QPointF(x, y), 3.6, 3.6)
        painter.setBrush(QColor("#ffffff"))
        painter.setPen(QPen(INK, 2))
        painter.drawEllipse(QPointF(*self.query), 5.5, 5.5)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        painter.setPen(INK)
        painter.drawText(QRectF(214, 4, 126, 70), flags, "○ a held-out image: its nearest training images vote "
                                                         "for its class (kNN)")
        painter.setPen(ACCENT)
        painter.drawText(QRectF(214, 80, 126, 70), flags, "- - a straight cut between classes (linear probe)")
        painter.end()


# --- 5 · Transfer ---------------------------------------------------------------------------------------------------
TRANSFER = (
    "<b>What pretraining buys when labels are few.</b> Images are cheap, labels are not. Each curve is the accuracy "
    "on the held-out 20 % when only some of the training images keep their labels: how many is the horizontal "
    "axis, on a log scale (10, 100 and 1,000 labels are equally far apart).<br><b>Frozen features</b> (left): the "
    "network is not changed; a kNN or a linear probe, as on the Compare page, learns the classes from the labeled "
    "images' embeddings alone. A curve that starts high means a few labels per class are enough: the embedding "
    "already groups the classes. Up to 10 % of the labels, several random sets of labeled images are drawn; the "
    "bars show how much the score changes from one set to another. The supervised baseline learned from every "
    "label, so its curve says <i>(all labels)</i>: it is a reference, not a few-label result.<br><b>Which images "
    "to label</b> (dashed): instead of drawing the labeled images at random, a strategy picks them from the "
    "self-supervised embedding without seeing a label: <i>typical</i> takes the most central image of each of N "
    "clusters, <i>coverage</i> the image farthest from those already picked, <i>random</i> is the label-free draw "
    "they are measured against. Label these next, on the Compare page, picks for a budget of your own.<br>"
    "<b>Fine-tuning</b> (right): the whole network, with a new last layer that names the classes, learns from the "
    "labeled images, once starting from the self-supervised weights and once from the random weights those started "
    "from (<i>from scratch</i>), with the same budget and augmentations. The gap between the two is what "
    "self-supervised learning gave the network before it saw a single label.")


class TransferCurvesFigure(QWidget):
    """Two made-up curves on a log axis of labels: SSL's features high from the first labels, raw pixels low."""

    CURVES = ((COLORS["ssl"], "self-supervised", (0.52, 0.66, 0.78, 0.84)),
              (COLORS["pixels"], "raw pixels", (0.16, 0.22, 0.30, 0.34)))

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFixedSize(FIGURE_WIDTH, 150)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = _painter(self)
        left, top, right, bottom = 34.0, 8.0, 206.0, 124.0
        painter.setPen(QPen(QColor("#d6d9e0"), 1))
        painter.setBrush(QColor("#ffffff"))
        painter.drawRoundedRect(QRectF(0.5, 0.5, 214, 149), 6, 6)
        _arrow(painter, QPointF(left, bottom), QPointF(right, bottom))
        _arrow(painter, QPointF(left, bottom), QPointF(left, top))
        painter.setPen(MUTED)
        for k, text in enumerate(("10", "100", "1,000")):
            x = left + 16 + k * 70
            painter.drawText(QRectF(x - 20, bottom + 2, 40, 12), Qt.AlignmentFlag.AlignCenter, text)
        painter.drawText(QRectF(left, bottom + 13, right - left, 12), Qt.AlignmentFlag.AlignCenter, "labels")
        painter.save()
        painter.translate(12, (top + bottom) / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-50, -6, 100, 12), Qt.AlignmentFlag.AlignCenter, "accuracy")
        painter.restore()

        def at(k: int, y: float) -> QPointF:
            return QPointF(left + 16 + k * 140 / 3, bottom - y * (bottom - top))

        for color, _, ys in self.CURVES:
            painter.setPen(QPen(QColor(color), 2))
            painter.drawPolyline([at(k, y) for k, y in enumerate(ys)])
            painter.setBrush(QColor(color))
            for k, y in enumerate(ys):
                painter.drawEllipse(at(k, y), 2.5, 2.5)
        # The gap at the fewest labels: what pretraining bought.
        low, high = at(0, self.CURVES[1][2][0]), at(0, self.CURVES[0][2][0])
        _arrow(painter, low - QPointF(-6, 4), high + QPointF(6, 4), INK)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        y = 4.0
        for color, name, _ in self.CURVES:
            painter.setPen(QColor(color))
            painter.drawText(QRectF(222, y, 118, 30), flags, f"— {name}")
            y += 18
        painter.setPen(INK)
        painter.drawText(QRectF(222, y + 8, 118, 100), flags, "↑ at a handful of labels: what pretraining "
                                                              "bought; far right: every label")
        painter.end()


# --- Runs -----------------------------------------------------------------------------------------------------------
RUNS = (
    "<b>Many runs, compared honestly.</b> A <i>workspace</i> is a folder of run folders: the app's runs folder, or "
    "any folder opened with File › Open workspace. Each row is one run, read from its small files only, so hundreds "
    "list at once; a run that cannot be read is listed as <i>damaged</i> with the reason. Runs whose settings are "
    "the same except the <b>seed</b> (the random starting point) form a <b>group</b>. The same settings at another "
    "seed give a slightly different accuracy, so one run says little: the <i>Seed groups</i> tab shows each group's "
    "mean (the bar), every seed (the points) and their sample standard deviation (the whisker). The sentence above "
    "the table calls the best group's lead over the next real only when it is larger than the two groups' standard "
    "deviations added together; with one seed there is no spread to compare it with, so no difference is shown. "
    "The groups are also written to <tt>summary.json</tt> in the workspace.")
