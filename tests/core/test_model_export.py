"""A run's network exported as ONNX with its weights, preprocessing and model card (ssl-studio export --format onnx)."""

import json

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors.torch import load_file

from ssl_studio.cli import main
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import load_folder
from ssl_studio.core.methods import method_names
from ssl_studio.core import model_export
from ssl_studio.core.model_export import FILES, file_list_hash
from ssl_studio.core.models import build_backbone
from ssl_studio.core.pipeline import run_pipeline
from ssl_studio.core.samples import make_shapes

TINY = dict(epochs=1, time_budget=None, batch_size=16, resolution=16, device="cpu")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", per_class=3, size=20, seed=4)


@pytest.fixture(scope="module")
def flat(finished_runs):
    """24 unlabeled images: a run of them trains SSL alone (no supervised baseline, no scoring), which is quick."""
    return finished_runs[0]["unlabeled"][0]


def _tiny_run(data, out, skip=("color", "project", "report", "transfer"), **settings):
    """By default trained and embedded (embeddings/<space>.npy) without maps: what the ONNX export needs and is
    checked against."""
    list(run_pipeline(data, out, TrainConfig(**{**TINY, **settings}), use_umap=False, skip=skip))
    return out


@pytest.mark.parametrize("backbone", ["small-cnn", "resnet18"])
@pytest.mark.parametrize("method", method_names(self_supervised=True))
def test_onnxruntime_on_the_runs_images_gives_the_runs_embeddings(flat, tmp_path, method, backbone):
    run = _tiny_run(flat, tmp_path / "run", method=method, backbone=backbone)
    assert main(["export", str(run), "--format", "onnx", str(tmp_path / "out")]) == 0
    images = load_folder(flat, 16).images.float().numpy() / 255  # as preprocessing.json says: [0, 1], RGB, NCHW
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["embedding"], {"images": images})[0]  # 24 images: not the batch of 2 it was traced with
    want = np.load(run / "embeddings" / "ssl.npy")
    assert got.shape == want.shape
    cosine = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosine.min() >= 0.9999
    net = build_backbone(backbone).eval()  # the model card's three lines
    net.load_state_dict(load_file(tmp_path / "out" / "backbone.safetensors"))
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(images)).numpy(), want, rtol=1e-4, atol=1e-5)


def test_the_preprocessing_and_model_card_say_what_the_network_is(shapes, tmp_path):
    run = _tiny_run(shapes, tmp_path / "run", skip=("transfer",))  # with its scores
    out = tmp_path / "out"
    assert main(["export", str(run), "--format", "onnx", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    pre = json.loads((out / "preprocessing.json").read_text())
    assert (pre["resolution"], pre["channel_order"], pre["layout"]) == (16, "RGB", "NCHW")
    assert (pre["mean"], pre["std"], pre["embedding_size"]) == ([0.5] * 3, [0.25] * 3, 256)
    card = (out / "MODEL_CARD.md").read_text()
    paths = json.loads((run / "dataset.json").read_text())["paths"]
    for fact in (f"Folder: `{shapes}`", "Images: 24", "Classes: 8 (circle 3,", f"`{file_list_hash(paths)}`",
                 "Method: simclr; backbone small-cnn; resolution 16 px", "Budget: 1 epoch; batch size 16",
                 "seed 0", "| Self-supervised |", "## Limits", "net.load_state_dict(load_file"):
        assert fact in card, fact
    # the hash of the path list, one per line (printf 'a/1.png\\nb/2.png' | sha256sum)
    assert file_list_hash(["a/1.png", "b/2.png"]) == "4cd3e42f19fb65b39e0262254ad910e11cb97da63c54296ce4a6c9dc4a8c3610"


def test_a_failed_export_writes_nothing(flat, tmp_path, capsys, monkeypatch):
    run = _tiny_run(flat, tmp_path / "run")
    out = tmp_path / "out"

    def broken_card(*args):  # fails after the ONNX file and the weights were made
        raise OSError("disk full")

    monkeypatch.setattr(model_export, "model_card", broken_card)
    assert main(["export", str(run), "--format", "onnx", str(out)]) == 2
    assert "disk full" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]  # no OUT, no half-made staging folder

    (run / "ssl.safetensors").unlink()
    assert main(["export", str(run), "--format", "onnx", str(out)]) == 2
    assert "ssl.safetensors is missing" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]
