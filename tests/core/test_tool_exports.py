"""Exports other tools open: TensorBoard's Embedding Projector folder and a FiftyOne-ready folder."""

import ast
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_studio.core.fiftyone_export import SCRIPT, write_fiftyone
from ssl_studio.core.projector_export import CONFIG, SPRITE_LIMIT, sprite_cell, write_projector

PATHS = ["circle/a.png", "circle/b.png", "star/c.png", "star/d\tname.png", "star/e.png"]


def embeddings(n=5):
    rng = np.random.default_rng(0)
    return {"ssl": rng.normal(size=(n, 4)).astype(np.float32), "pixels": rng.random((n, 3)).astype(np.float32)}


def test_the_sprite_sheet_stays_within_the_projectors_limit():
    assert sprite_cell(10, 32) == 32
    assert sprite_cell(100_000, 32) == SPRITE_LIMIT // 317 == 25
    assert sprite_cell(10_000_000, 32) * 3163 <= SPRITE_LIMIT


def test_projector_folder(tmp_path):
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    done = list(write_projector(tmp_path, embeddings(), PATHS, ["circle", "circle", "star", "star", "star"],
                                ["train", "test", "train", "train", "test"], images))
    assert done == ["ssl", "pixels"]
    rows = (tmp_path / "ssl" / "tensors.tsv").read_text().splitlines()
    assert len(rows) == 5 and np.allclose([float(v) for v in rows[0].split("\t")], embeddings()["ssl"][0], atol=1e-5)
    meta = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert meta[0] == "path\tclass\tsplit" and meta[4] == "star/d name.png\tstar\ttrain"  # a tab in a name
    sheet = np.asarray(Image.open(tmp_path / "sprite.png"))
    assert sheet.shape == (3 * 8, 3 * 8, 3)  # 5 images: a 3 x 3 grid of 8 px, filled row by row, the rest black
    assert_sprite_holds(sheet, images, cell=8, side=3)
    text = (tmp_path / CONFIG).read_text()
    assert text.count("embeddings {") == 2 and 'tensor_path: "ssl/tensors.tsv"' in text


def assert_sprite_holds(sheet: np.ndarray, images: torch.Tensor, cell: int, side: int) -> None:
    """Image i is the tile at row i // side, column i % side, pixel for pixel; the cells after the last are black."""
    for i in range(side * side):
        tile = sheet[(i // side) * cell:(i // side + 1) * cell, (i % side) * cell:(i % side + 1) * cell]
        expected = images[i].permute(1, 2, 0).numpy() if i < len(images) else np.zeros_like(tile)
        np.testing.assert_array_equal(tile, expected, err_msg=f"tile {i}")


def test_tensorboard_reads_the_projector_config(tmp_path):
    import io

    from google.protobuf import text_format
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector import projector_config_pb2
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
    from werkzeug.test import Client

    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    emb = embeddings()
    list(write_projector(tmp_path, emb, PATHS, ["a"] * 5, ["train"] * 5, images))
    config = text_format.Parse((tmp_path / CONFIG).read_text(), projector_config_pb2.ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == ["ssl", "pixels"]
    for entry in config.embeddings:
        assert (tmp_path / entry.tensor_path).is_file() and (tmp_path / entry.metadata_path).is_file()
        assert (tmp_path / entry.sprite.image_path).is_file() and list(entry.sprite.single_image_dim) == [8, 8]
    # What `tensorboard --logdir` serves its Projector tab: TensorBoard's own plugin, asked over its HTTP routes.
    routes = ProjectorPlugin(base_plugin.TBContext(logdir=str(tmp_path))).get_plugin_apps()

    def get(route, **query):
        response = Client(routes[route]).get(route, query_string=query)
        assert response.status_code == 200, (route, response.data[:200])
        return response.data

    assert json.loads(get("/runs")) == ["."]
    info = json.loads(get("/info", run="."))
    assert [(e["tensorName"], e["tensorShape"]) for e in info["embeddings"]] == [("ssl", [5, 4]), ("pixels", [5, 3])]
    for space, x in emb.items():
        served = np.frombuffer(get("/tensor", run=".", name=space), dtype=np.float32).reshape(x.shape)
        np.testing.assert_allclose(served, x, rtol=1e-5)  # written with 6 significant digits
        rows = get("/metadata", run=".", name=space).decode().splitlines()
        assert rows[0] == "path\tclass\tsplit" and [r.split("\t")[0] for r in rows[1:]] == [p.replace("\t", " ")
                                                                                            for p in PATHS]
        sheet = np.asarray(Image.open(io.BytesIO(get("/sprite_image", run=".", name=space))).convert("RGB"))
        assert_sprite_holds(sheet, images, cell=8, side=3)


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    for i, path in enumerate(PATHS):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(root / path)
    return root


def test_fiftyone_folder_and_its_script_match_rows_to_samples_by_path(tmp_path, data_root, monkeypatch):
    out = tmp_path / "export"
    emb = embeddings()
    points = {s: x[:, :2].copy() for s, x in emb.items()}
    assert list(write_fiftyone(out, "run", data_root, PATHS, True, emb, points))[-1] == 5
    assert (out / "images" / "star" / "c.png").read_bytes() == (data_root / "star" / "c.png").read_bytes()
    ast.parse((out / "load_in_fiftyone.py").read_text())
    # The script, run against a stand-in for FiftyOne that lists the samples in an order of its own.
    calls = []
    shuffled = [str(out / "images" / p) for p in reversed(PATHS)]
    dataset = types.SimpleNamespace(values=lambda field: shuffled)
    fo = types.ModuleType("fiftyone")
    fo.types = types.SimpleNamespace(ImageClassificationDirectoryTree="tree", ImageDirectory="flat")
    fo.Dataset = types.SimpleNamespace(from_dir=lambda **kw: calls.append(kw) or dataset)
    fo.launch_app = lambda d: types.SimpleNamespace(wait=lambda: None)
    brain = types.ModuleType("fiftyone.brain")
    brain.compute_visualization = lambda d, **kw: calls.append(kw)
    fo.brain = brain
    monkeypatch.setitem(sys.modules, "fiftyone", fo)
    monkeypatch.setitem(sys.modules, "fiftyone.brain", brain)
    exec(compile(SCRIPT, str(out / "load_in_fiftyone.py"), "exec"), {"__file__": str(out / "load_in_fiftyone.py")})
    assert calls[0]["dataset_type"] == "tree"
    by_key = {c["brain_key"]: c for c in calls[1:]}
    assert set(by_key) == {"ssl", "pixels"} and by_key["ssl"]["method"] == "manual"
    np.testing.assert_array_equal(by_key["ssl"]["embeddings"], emb["ssl"][::-1])
    np.testing.assert_array_equal(by_key["pixels"]["points"], points["pixels"][::-1])


@pytest.mark.fiftyone
def test_fiftyone_loads_the_export_with_each_spaces_map(tmp_path, data_root, monkeypatch):
    """The export's own script, run by FiftyOne itself (its app is not launched): every image a sample with its
    class, every space a visualization whose points follow the samples."""
    fo = pytest.importorskip("fiftyone", reason="FiftyOne is not installed (pip install fiftyone)")
    out = tmp_path / "export"
    emb = embeddings()
    points = {s: x[:, :2].copy() for s, x in emb.items()}
    list(write_fiftyone(out, "ssl-studio-test", data_root, PATHS, True, emb, points))
    monkeypatch.setattr(fo, "launch_app", lambda dataset: types.SimpleNamespace(wait=lambda: None))
    scope = {"__file__": str(out / "load_in_fiftyone.py")}
    exec(compile(SCRIPT, scope["__file__"], "exec"), scope)
    dataset = scope["dataset"]
    try:
        row = {str((out / "images" / p).resolve()): i for i, p in enumerate(PATHS)}
        order = [row[str(Path(f).resolve())] for f in dataset.values("filepath")]
        assert sorted(order) == list(range(len(PATHS)))
        assert dataset.values("ground_truth.label") == [PATHS[i].split("/")[0] for i in order]
        for space in emb:
            np.testing.assert_allclose(dataset.load_brain_results(space).points, points[space][order])
    finally:
        dataset.delete()


def test_fiftyone_export_refuses_paths_that_leave_the_folder_and_names_missing_images(tmp_path, data_root):
    emb = embeddings(1)
    with pytest.raises(ValueError, match="leave the data folder, for example ../../evil.png"):
        list(write_fiftyone(tmp_path / "x", "run", data_root, ["../../evil.png"], True, emb, emb))
    with pytest.raises(FileNotFoundError, match="no longer in .*, for example star/gone.png"):
        list(write_fiftyone(tmp_path / "x", "run", data_root, ["star/gone.png"], True, emb, emb))
