"""A run's trained network taken elsewhere: ONNX (dynamic batch), the weights as safetensors, how to feed it
(preprocessing.json) and what it is (MODEL_CARD.md).

torch.onnx.export's default exporter here is the dynamo one (torch.export, then onnxscript's translation): it needs
the onnx and onnxscript packages, and takes the batch size as a dynamic dimension through ``dynamic_shapes``.
Everything is written into a temporary folder beside OUT and moved in only once all of it is made, so a failure
leaves OUT as it was.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from tqdm import tqdm

from .. import __version__
from .checkpoint import load_checkpoint
from .models import BACKBONES, Normalize
from .pipeline import LoadedRun, open_run
from .runs import RunError
from .spaces import TITLES, TRAINED_ON_LABELS, load_backbone
from .transfer import reading

FILES = ("model.onnx", "backbone.safetensors", "preprocessing.json", "MODEL_CARD.md")
INPUT, OUTPUT = "images", "embedding"
NETWORKS = ("ssl", "supervised")


def export_model(run_dir: str | Path, out: str | Path, network: str = "ssl") -> Path:
    """Write FILES for the run's ``network`` ("ssl" or "supervised") into the folder ``out``; returns ``out``."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network '{network}' (choose from {', '.join(NETWORKS)})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    loaded = open_run(run_dir)
    checkpoint = loaded.run.checkpoint(network)
    if not checkpoint.exists():
        raise RunError(f"the run {loaded.run.path} has no trained {network} network: {checkpoint.name} is missing "
                       "(was the run stopped before training?)")
    backbone = load_backbone(loaded.run, network, loaded.config.backbone).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        size = loaded.config.resolution
        dim = _write_onnx(backbone, size, staging / "model.onnx")
        (staging / "backbone.safetensors").write_bytes(save(
            {k: v.contiguous() for k, v in backbone.state_dict().items()},
            metadata={"backbone": loaded.config.backbone, "resolution": str(size), "network": network}))
        preprocessing = preprocessing_of(backbone, size, dim)
        (staging / "preprocessing.json").write_text(json.dumps(preprocessing, indent=2) + "\n", encoding="utf-8")
        (staging / "MODEL_CARD.md").write_text(model_card(loaded, network, preprocessing), encoding="utf-8")
        out.mkdir(exist_ok=True)
        for name in FILES:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _write_onnx(backbone: torch.nn.Module, size: int, path: Path) -> int:
    example = torch.rand(2, 3, size, size)
    with torch.no_grad():
        dim = backbone(example).shape[1]
    # torch.export's graph interpreter opens tqdm bars; tqdm's monitor thread would outlive the export (in the app,
    # a thread nobody stops), so none is started meanwhile.
    interval, tqdm.monitor_interval = tqdm.monitor_interval, 0
    try:
        program = torch.onnx.export(backbone, (example,), input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    finally:
        tqdm.monitor_interval = interval
    program.save(str(path), external_data=False)  # one file; the small backbones are far from protobuf's 2 GB
    return int(dim)


def preprocessing_of(backbone: torch.nn.Module, size: int, dim: int) -> dict:
    """How an image becomes the network's input, as core/decode.py and core/embed.py do it."""
    normalize = next(m for m in backbone.modules() if isinstance(m, Normalize))
    return {
        "input": INPUT, "output": OUTPUT, "embedding_size": dim,
        "layout": "NCHW", "dtype": "float32", "channel_order": "RGB",
        "resolution": size,
        "resize": f"crop the centred square, then resize it to {size} x {size} (bicubic, PIL)",
        "orientation": "EXIF orientation applied; transparency composited on white",
        "scale": "pixel values / 255, so the input is in [0, 1]",
        "mean": [round(v, 6) for v in normalize.mean.flatten().tolist()],
        "std": [round(v, 6) for v in normalize.std.flatten().tolist()],
        "normalization": "inside the network: (x - mean) / std is its first layer, so feed [0, 1] values",
    }


def file_list_hash(paths: list[str]) -> str:
    """sha256 of the run's image paths, one per line in the run's order: the same folder gives the same hash."""
    return hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


def model_card(loaded: LoadedRun, network: str, preprocessing: dict) -> str:
    config, metrics = loaded.config, loaded.metrics
    skipped = len(loaded.run.read_dataset().skipped)
    meta = load_checkpoint(loaded.run.checkpoint(network), with_tensors=False)[1]
    trained = datetime.datetime.fromtimestamp(loaded.run.checkpoint(network).stat().st_mtime, datetime.timezone.utc)
    counts = np.bincount(loaded.labels, minlength=len(loaded.class_names)) if loaded.labels is not None else []
    budget = f"{config.epochs} epoch{'s' * (config.epochs != 1)}" if config.epochs is not None \
        else f"{config.time_budget:g} s"
    method = "supervised (cross-entropy on the labels)" if network == "supervised" else config.method
    size, dim = preprocessing["resolution"], preprocessing["embedding_size"]
    lines = [
        f"# Model card: {TITLES[network].lower()} {config.backbone} from an SSL Studio run",
        "",
        f"A {BACKBONES[config.backbone]} backbone trained by SSL Studio {__version__}: an image of {size} x {size} "
        f"px becomes an embedding of {dim} numbers. It has no classifier head.",
        "",
        "## Files",
        "",
        f"- `model.onnx`: input `{INPUT}` float32 (batch, 3, {size}, {size}) in [0, 1], output `{OUTPUT}` "
        f"(batch, {dim}); the batch size is free.",
        "- `preprocessing.json`: how an image becomes that input (crop, size, scale, mean and std, channel order).",
        "- `backbone.safetensors`: the same weights for PyTorch, loaded with SSL Studio installed:",
        "",
        "```python",
        "from safetensors.torch import load_file; from ssl_studio.core.models import build_backbone",
        f"net = build_backbone({config.backbone!r}); net.load_state_dict(load_file(\"backbone.safetensors\"))",
        f"net.eval()  # float images (N, 3, {size}, {size}) in [0, 1] -> embeddings (N, {dim})",
        "```",
        "",
        "## Trained on",
        "",
        f"- Folder: `{loaded.data_root}`",
        f"- Images: {len(loaded.paths)}" + (f", {skipped} files skipped" if skipped else ""),
        f"- Classes: {len(loaded.class_names)} (" + ", ".join(f"{c} {n}" for c, n in zip(loaded.class_names, counts))
        + ")" if len(counts) else "- Classes: none (an unlabeled folder)",
        f"- File list sha256: `{file_list_hash(loaded.paths)}` (the run's image paths, one per line)",
        "",
        "## How",
        "",
        f"- Method: {method}; backbone {config.backbone}; resolution {size} px",
        f"- Budget: {budget}; batch size {config.batch_size}; learning rate {config.lr:g}; seed {config.seed}",
        f"- Trained: {meta.get('step', '?')} steps in {meta.get('elapsed', 0):.0f} s, finished "
        f"{'yes' if meta.get('finished') else 'no (stopped early)'}; saved {trained:%Y-%m-%d %H:%M} UTC",
        f"- Device setting: {config.device}; torch {(meta.get('versions') or {}).get('torch', '?')}",
        f"- Every setting: `{json.dumps(config.to_dict(), sort_keys=True)}`",
        "",
        "## What it reaches",
        "",
    ]
    scores = metrics.get("embeddings") or {}
    if scores:
        lines += ["Accuracy on the run's held-out images (20 %), from frozen embeddings:", "",
                  "| space | kNN | linear probe |", "|---|---|---|"]
        lines += [f"| {TITLES.get(s, s)} | {v['knn_top1']:.1%} | {v['linear_top1']:.1%} |" for s, v in scores.items()]
    else:
        lines += [metrics.get("note") or "No accuracies: the run has no scores (unlabeled, or stopped before its "
                                         "maps)."]
    sentence = reading(loaded.transfer, {**TITLES, **loaded.transfer.get("titles", {})},
                       saw_labels=TRAINED_ON_LABELS) if loaded.transfer.get("probe") else ""
    lines += ["", f"Transfer: {sentence}" if sentence else "Transfer: the run has no transfer reading."]
    lines += [
        "",
        "## Limits",
        "",
        f"- Trained briefly ({budget}) on {len(loaded.paths)} images of one folder: its embeddings describe images "
        "like those; on other kinds of images expect much less.",
        f"- Images are seen at {size} x {size} px: detail finer than that is lost in the resize.",
        "- The accuracies come from one split of one folder with one seed; small folders make them noisy.",
        "- The numbers above are for the embeddings, not a classifier: put a probe or fine-tune on top for one.",
        "",
    ]
    return "\n".join(lines)
