"""The map forming during SSL training: snapshots of a fixed subset, aligned, scored, stored and read back."""

import json

import numpy as np
import pytest
import torch

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.map_history import MapRecorder, choose_subset
from ssl_studio.core.models import build_backbone
from ssl_studio.core.map_history import MapSnapshot
from ssl_studio.core.pipeline import open_run, run_pipeline
from ssl_studio.core.runs import MAP_HISTORY, RunError, RunFolder
from ssl_studio.core.samples import make_shapes

CPU = torch.device("cpu")


def images(n=40, seed=0):
    return torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_the_subset_is_seeded_sorted_and_capped():
    assert np.array_equal(choose_subset(1000, seed=3), choose_subset(1000, seed=3))
    assert len(choose_subset(1000, seed=3)) == 400 and np.all(np.diff(choose_subset(1000, seed=3)) > 0)
    assert choose_subset(7, seed=0).tolist() == list(range(7))


def test_snapshots_line_up_with_the_one_before():
    labels = np.arange(40) % 2
    split = {"train": list(range(0, 40, 2)) + list(range(1, 30, 2)), "test": list(range(31, 40, 2))}
    recorder = MapRecorder(images(), labels, split, seed=0, device=CPU, every_s=4.0)
    torch.manual_seed(0)
    net = build_backbone("small-cnn")
    assert recorder.due(0.0)
    first = recorder.take(net, step=1, seconds=0.5)
    assert not recorder.due(3.0) and recorder.due(4.5)
    second = recorder.take(net, step=9, seconds=4.5)  # the same network: the same map, whatever PCA's signs
    np.testing.assert_allclose(second.coords, first.coords, atol=1e-4)
    assert first.coords.shape == (40, 2) and np.abs(first.coords).max() == pytest.approx(1.0)
    assert 0.0 <= first.knn <= 1.0


class Lookup(torch.nn.Module):
    """A "backbone" whose embedding of image i is row i of a table (image i carries i in its first pixel)."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))

    def forward(self, x):
        return self.table[(x[:, 0, 0, 0] * 255).round().long()]


def test_a_map_whose_axes_swapped_is_turned_back_onto_the_one_before():
    # Two components of different spread, then the same points with the spreads swapped: PCA's first axis becomes
    # the second, so the raw second map is the first one turned a quarter (or mirrored). Orthogonal Procrustes
    # (R = U V^T from the SVD of raw^T first) turns it back: R is a swap of the axes, up to signs.
    rng = np.random.default_rng(0)
    m = rng.normal(size=(40, 2))
    a, b = np.linalg.qr(m - m.mean(axis=0))[0].T  # centred and orthonormal: the spreads alone rank the axes
    pictures = torch.zeros((40, 3, 4, 4), dtype=torch.uint8)
    pictures[:, 0, 0, 0] = torch.arange(40, dtype=torch.uint8)
    recorder = MapRecorder(pictures, None, {}, seed=0, device=CPU, every_s=0.0)
    first = recorder.take(Lookup(np.stack([3 * a, 2 * b, 0 * a], axis=1)), step=1, seconds=0.0).coords
    second = recorder.take(Lookup(np.stack([2 * a, 3 * b, 0 * a], axis=1)), step=2, seconds=1.0).coords
    # The second map by hand: its two principal axes (SVD of the centred points), scaled to at most 1, turned.
    x = np.stack([2 * a, 3 * b], axis=1)
    x = x - x.mean(axis=0)
    raw = x @ np.linalg.svd(x, full_matrices=False)[2].T
    raw /= np.abs(raw).max()
    u, _, vt = np.linalg.svd(raw.T @ first)
    rotation = u @ vt
    np.testing.assert_allclose(np.abs(rotation), [[0, 1], [1, 0]], atol=1e-5)
    np.testing.assert_allclose(second, raw @ rotation, atol=1e-5)
    # Lined up, each point keeps its place along the first map's axes: a on the first axis, b on the second.
    assert abs(np.corrcoef(second[:, 0], first[:, 0])[0, 1]) > 0.999 and abs(np.corrcoef(second[:, 1],
                                                                                        first[:, 1])[0, 1]) > 0.999


def test_a_run_stores_its_map_history_and_reopens_it(tmp_path):
    data = make_shapes(tmp_path / "shapes", per_class=6, size=16)
    config = TrainConfig(epochs=2, time_budget=None, batch_size=8, resolution=16, device="cpu")
    events = list(run_pipeline(data, tmp_path / "run", config, use_umap=False, skip=("transfer",)))
    snapshots = [e for e in events if isinstance(e, MapSnapshot)]
    assert snapshots and all(s.coords.shape == (48, 2) for s in snapshots)
    history = open_run(tmp_path / "run").map_history
    assert [s.step for s in history.snapshots] == [s.step for s in snapshots]
    np.testing.assert_array_equal(history.snapshots[-1].coords, snapshots[-1].coords)


def test_a_tampered_map_history_is_refused_naming_the_file(tmp_path):
    data = make_shapes(tmp_path / "shapes", per_class=6, size=16)
    config = TrainConfig(epochs=1, time_budget=None, batch_size=8, resolution=16, device="cpu")
    list(run_pipeline(data, tmp_path / "run", config, use_umap=False, skip=("transfer",)))
    path = tmp_path / "run" / MAP_HISTORY
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "indices": [999]}))
    with pytest.raises(RunError, match="map_history.json .* is not valid"):
        RunFolder.open(tmp_path / "run").read_map_history(48)


def test_a_resumed_training_continues_the_history(tmp_path):
    data = make_shapes(tmp_path / "shapes", per_class=6, size=16)
    config = TrainConfig(epochs=1, time_budget=None, batch_size=8, resolution=16, device="cpu")
    list(run_pipeline(data, tmp_path / "run", config, use_umap=False, skip=("transfer",)))
    before = RunFolder.open(tmp_path / "run").read_map_history(48)
    recorder = MapRecorder(images(48), None, {}, seed=99, device=CPU, resumed=before)
    assert np.array_equal(recorder.indices, before.indices)  # the same images, not a new seed's
    assert not recorder.due(before.snapshots[-1].seconds + 1.0)
    recorder.take(build_backbone("small-cnn"), step=100, seconds=before.snapshots[-1].seconds + 5)
    RunFolder.open(tmp_path / "run").write_map_history(recorder.history)
    after = RunFolder.open(tmp_path / "run").read_map_history(48)
    assert [s.step for s in after.snapshots] == [s.step for s in before.snapshots] + [100]
