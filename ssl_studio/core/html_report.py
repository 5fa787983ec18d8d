"""report.html: one self-contained file anyone can open offline, the run's maps, figures and settings inside.

Bokeh's standalone output, because it is made for exactly this: ``file_html`` with INLINE resources puts BokehJS,
the styles and the data in the one file (no server, no request), its plots pan and zoom, its hover tooltips take
HTML (a thumbnail as a data URI), and the WebGL backend draws tens of thousands of points smoothly. A run of more
than MAX_POINTS images shows a seeded sample of them and says so, which keeps a 10k-image report under 25 MB.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import torch
from bokeh.embed import file_html
from bokeh.layouts import column, gridplot, row
from bokeh.models import ColumnDataSource, CustomJS, Div, HoverTool, Select
from bokeh.plotting import figure
from bokeh.resources import INLINE
from PIL import Image

from .atomic import write_bytes_atomic
from .coloring import Coloring
from .model_export import file_list_hash
from .pipeline import LoadedRun
from .spaces import COLORS, FINETUNED, TRAINED_ON_LABELS, run_spaces
from .transfer import reading

MAX_POINTS = 10_000
THUMB = 32  # thumbnail side in pixels (JPEG): about 1 KB each
MAP_SIDE = 340
_TOOLS = "pan,wheel_zoom,box_zoom,reset"


def write_html_report(loaded: LoadedRun, out: str | Path, images: torch.Tensor | None = None) -> Path:
    """OUT/report.html for the run; ``images`` (uint8, in the run's order) give the hover thumbnails."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    page = file_html(report_layout(loaded, images), INLINE, f"SSL Studio: {loaded.run.path.name}")
    return write_bytes_atomic(out / "report.html", page.encode("utf-8"))


def report_layout(loaded: LoadedRun, images: torch.Tensor | None):
    missing: list[str] = []
    parts = [Div(text=_header(loaded), sizing_mode="stretch_width")]
    maps = _maps(loaded, images, missing)
    if maps is not None:
        parts.append(maps)
    parts.append(Div(text=_scores(loaded, missing), sizing_mode="stretch_width"))
    curves = [c for c in (_training_curves(loaded, missing), *_transfer_curves(loaded, missing)) if c is not None]
    if curves:
        parts.append(row(*curves))
    parts.append(Div(text=_settings(loaded), sizing_mode="stretch_width"))
    if missing:
        parts.insert(1, Div(text="<p class='missing'><b>Not in this run:</b> " + "; ".join(missing) + ".</p>",
                            styles={"color": "#8a4b00"}))
    return column(*parts)


def _groups(loaded: LoadedRun) -> Coloring | None:
    if loaded.labels is not None:
        return Coloring.by_class(loaded.labels, loaded.class_names)
    if loaded.clusters is not None:
        return Coloring.by_cluster(loaded.clusters)
    return None


def _maps(loaded: LoadedRun, images: torch.Tensor | None, missing: list[str]):
    titles = {s.name: s.title for s in run_spaces(loaded.run)}
    chosen = {}
    for space in titles:  # UMAP over PCA where there are both
        kind = next((k for k in ("umap", "pca") if (space, k) in loaded.projections), None)
        if kind:
            chosen[space] = (kind, loaded.projections[(space, kind)])
    if not chosen:
        missing.append("no maps (the run was stopped before them: open it in the app and let them finish)")
        return None
    n = len(loaded.paths)
    groups = _groups(loaded)
    order = (groups.draw_order(loaded.config.seed) if groups else np.arange(n))
    shown = order
    note = ""
    if n > MAX_POINTS:
        keep = np.sort(np.random.default_rng(loaded.config.seed).choice(n, MAX_POINTS, replace=False))
        shown = order[np.isin(order, keep)]
        note = (f"<p>The maps show a random sample of {MAX_POINTS:,} of the run's {n:,} images (seed "
                f"{loaded.config.seed}), which keeps this file small and quick to open.</p>")
    data = {"path": [loaded.paths[i] for i in shown]}
    modes: dict[str, str] = {}
    if groups is not None:
        data["cls"] = [groups.name(i) for i in shown]
        data["col_class"] = [groups.color(int(groups.ids[i])) for i in shown]
        modes["class" if loaded.labels is not None else "cluster"] = "col_class"
    else:
        data["cls"] = [""] * len(shown)
    split = loaded.run.held_out_split(n)
    if split is not None:
        by_split = Coloring.by_split(n, split[1])
        data["split"] = [by_split.name(i) for i in shown]
        data["col_split"] = [by_split.color(int(by_split.ids[i])) for i in shown]
        modes["split"] = "col_split"
    else:
        data["split"] = [""] * len(shown)
    mistakes = split is not None and loaded.labels is not None
    for space, (kind, coords) in chosen.items():
        data[f"x_{space}"], data[f"y_{space}"] = coords[shown, 0], coords[shown, 1]
        if mistakes and space in loaded.embeddings:
            wrong = Coloring.by_knn_mistakes(loaded.embeddings[space], loaded.labels, *split)
            data[f"mis_{space}"] = [wrong.color(int(wrong.ids[i])) for i in shown]
        elif mistakes:
            data[f"mis_{space}"] = data["col_class"]
    if mistakes:
        modes["kNN mistakes"] = "mis_"
    first = next(iter(modes.values()), None)
    for space in chosen:
        data[f"c_{space}"] = data[first if first != "mis_" else f"mis_{space}"] if first else ["#4c72b0"] * len(shown)
    if images is not None:
        data["thumb"] = _thumbnails(images, shown)
    else:
        missing.append("no thumbnails (the run's data folder no longer holds its images)")
    source = ColumnDataSource(data)
    tip = ("<div style='display:flex;gap:6px;align-items:center'>"
           + ("<img src='@thumb' width='64' height='64' style='image-rendering:pixelated'>" if images is not None
              else "") + "<div><b>@cls</b><br>@split<br><small>@path</small></div></div>")
    plots = []
    for space, (kind, _) in chosen.items():
        score = (loaded.metrics.get("embeddings") or {}).get(space)
        title = f"{titles[space]} ({kind.upper()})" + (
            f": kNN {score['knn_top1']:.1%}, linear {score['linear_top1']:.1%}" if score else "")
        p = figure(title=title, width=MAP_SIDE, height=MAP_SIDE, tools=_TOOLS, active_scroll="wheel_zoom",
                   output_backend="webgl", match_aspect=True)
        p.scatter(f"x_{space}", f"y_{space}", source=source, fill_color=f"c_{space}", line_color=None, size=5,
                  fill_alpha=0.75, name=f"points-{space}")
        p.add_tools(HoverTool(tooltips=tip))
        p.axis.visible = False
        p.grid.visible = False
        plots.append(p)
    controls = []
    if len(modes) > 1:
        select = Select(title="Color by", value=next(iter(modes)), options=list(modes), width=200)
        select.js_on_change("value", CustomJS(args={"source": source, "spaces": list(chosen), "modes": modes}, code="""
            const d = source.data, key = modes[cb_obj.value];
            for (const s of spaces) d["c_" + s] = key == "mis_" ? d["mis_" + s] : d[key];
            source.change.emit();"""))
        controls.append(select)
    legend = _legend(groups) if groups is not None else ""
    return column(Div(text="<h2>Maps</h2><p>Each point is an image; close points have similar embeddings. Drag to "
                           "pan, scroll to zoom, hover for the image." + "</p>" + note + legend),
                  *controls, gridplot(plots, ncols=min(4, len(plots)), toolbar_location="right"))


def _legend(groups: Coloring) -> str:
    items = "".join(f"<span style='margin-right:12px'><span style='display:inline-block;width:10px;height:10px;"
                    f"background:{groups.color(k)};margin-right:4px'></span>{html.escape(name)}</span>"
                    for k, name in enumerate(groups.names))
    return f"<p>{items}</p>"


def _thumbnails(images: torch.Tensor, rows: np.ndarray) -> list[str]:
    uris = []
    for i in rows:
        picture = Image.fromarray(images[int(i)].permute(1, 2, 0).numpy())
        if picture.width > THUMB:
            picture = picture.resize((THUMB, THUMB), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return uris


def _header(loaded: LoadedRun) -> str:
    config = loaded.config
    classes = f"{len(loaded.class_names)} classes" if loaded.class_names else "unlabeled"
    return (f"<h1>SSL Studio run: {html.escape(loaded.run.path.name)}</h1>"
            f"<p>{config.method} on a {config.backbone}, {len(loaded.paths):,} images ({classes}) at "
            f"{config.resolution} px, from <code>{html.escape(str(loaded.data_root))}</code>.</p>")


def _scores(loaded: LoadedRun, missing: list[str]) -> str:
    titles = {s.name: s.title for s in run_spaces(loaded.run)}
    found = loaded.metrics.get("embeddings") or {}
    scores = {s: found[s] for s in [*titles, *found] if s in found}  # the app's order of spaces
    text = "<h2>Accuracy</h2>"
    if scores:
        rows = "".join(f"<tr><td>{html.escape(titles.get(s, s))}</td><td>{v['knn_top1']:.1%}</td>"
                       f"<td>{v['linear_top1']:.1%}</td></tr>" for s, v in scores.items())
        text += ("<p>On the held-out images, from frozen embeddings: the kNN vote of the 20 nearest training images, "
                 "and a linear classifier.</p><table border='1' cellpadding='4' style='border-collapse:collapse'>"
                 f"<tr><th>space</th><th>kNN</th><th>linear probe</th></tr>{rows}</table>")
        text += "".join(f"<p>{html.escape(s)}</p>" for s in _readings(scores, titles, loaded.transfer))
    else:
        note = loaded.metrics.get("note") or "the run has no scores yet (stopped before its maps)"
        missing.append(f"no accuracies ({note.rstrip('.')})")
        text += f"<p>{html.escape(note)}</p>"
    return text


def _readings(scores: dict, titles: dict, transfer: dict) -> list[str]:
    """Plain sentences: how the self-supervised space compares with the baselines that saw no labels."""
    said = []
    if "ssl" in scores:
        ssl = scores["ssl"]["knn_top1"]
        for base in ("untrained", "pixels"):
            if base in scores:
                other = scores[base]["knn_top1"]
                verb = "beat" if ssl > other else "do not beat"
                said.append(f"By kNN, the self-supervised features ({ssl:.0%}) {verb} the "
                            f"{titles[base].lower()} ({other:.0%}).")
    if transfer.get("probe"):
        sentence = reading(transfer, {**titles, **transfer.get("titles", {})}, saw_labels=TRAINED_ON_LABELS)
        if sentence:
            said.append(sentence)
    return said


def _training_curves(loaded: LoadedRun, missing: list[str]):
    if not any(loaded.history.values()):
        missing.append("no training curves (no trained network)")
        return None
    p = figure(title="Training loss", width=420, height=300, tools=_TOOLS, x_axis_label="step",
               y_axis_label="loss")
    for which, curve in loaded.history.items():
        if curve:
            steps, _, loss = zip(*curve)
            p.line(list(steps), list(loss), color=COLORS.get(which, "#333333"), line_width=2,
                   legend_label=which)
    p.add_tools(HoverTool(tooltips=[("step", "@x"), ("loss", "@y{0.000}")]))
    _quiet_legend(p)
    return p


def _quiet_legend(p) -> None:
    """Small, see-through, and a click hides a curve: the tiny charts stay readable under it."""
    p.legend.location = "bottom_right"
    p.legend.label_text_font_size = "8pt"
    p.legend.background_fill_alpha = 0.6
    p.legend.click_policy = "hide"


def _transfer_curves(loaded: LoadedRun, missing: list[str]) -> list:
    transfer = loaded.transfer
    if not transfer.get("probe"):
        missing.append("no transfer curves (" + (transfer.get("error") or "the transfer stage did not run") + ")")
        return []
    spaces = run_spaces(loaded.run)
    titles = {**{s.name: s.title for s in spaces}, **transfer.get("titles", {})}
    colors = {s.name: s.color for s in spaces}
    plots = []
    for probe, name in (("linear", "Linear probe"), ("knn", "kNN")):
        p = figure(title=f"{name}: accuracy by labels (band: spread)", width=420, height=300,
                   tools=_TOOLS, x_axis_type="log", x_axis_label="labels", y_axis_label="accuracy")
        for space, curves in transfer["probe"].items():
            points = curves.get(probe) or []
            if not points:
                continue
            x = [pt["labels"] for pt in points]
            y = np.array([pt["top1"] for pt in points])
            spread = np.array([pt.get("std") or 0.0 for pt in points])
            color = colors.get(space, "#555555")
            p.varea(x=x, y1=y - spread, y2=y + spread, fill_color=color, fill_alpha=0.15)
            p.line(x, y, color=color, line_width=2, legend_label=titles.get(space, space))
            p.scatter(x, y, color=color, size=5)
        if probe == "linear":
            for start, points in (transfer.get("finetune") or {}).items():
                p.line([pt["labels"] for pt in points], [pt["top1"] for pt in points], line_dash="dashed",
                       color=FINETUNED[start].color, line_width=2, legend_label=FINETUNED[start].title)
        _quiet_legend(p)
        p.add_tools(HoverTool(tooltips=[("labels", "@x"), ("accuracy", "@y{0.0%}")]))
        plots.append(p)
    return plots


def _settings(loaded: LoadedRun) -> str:
    skipped = loaded.run.read_dataset().skipped
    counts = (np.bincount(loaded.labels, minlength=len(loaded.class_names)).tolist()
              if loaded.labels is not None else [])
    data = {"folder": str(loaded.data_root), "images": len(loaded.paths), "skipped files": len(skipped),
            "classes": dict(zip(loaded.class_names, counts)) or "none (unlabeled)",
            "file list sha256": file_list_hash(loaded.paths)}
    blocks = {"Data": data, "Training": loaded.config.to_dict(), "Augmentations": loaded.recipe.to_dict()}
    return ("<h2>Data and settings</h2><div style='display:flex;gap:32px;font-size:11px'>" + "".join(
        f"<div><b>{title}</b><pre>" + "\n".join(html.escape(f"{k}: {json.dumps(v, ensure_ascii=False)}")
                                                 for k, v in block.items()) + "</pre></div>"
        for title, block in blocks.items()) + "</div>")
