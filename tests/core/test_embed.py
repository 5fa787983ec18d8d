import numpy as np
import pytest
import torch
from torch import nn

from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import load_folder
from ssl_studio.core.embed import embed, pixel_features
from ssl_studio.core.pipeline import compare, open_run, run_pipeline
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.samples import make_shapes
from ssl_studio.core.spaces import SPACES, import_space, run_spaces


class Recorder(nn.Module):
    """Flatten + linear, remembering what each forward saw."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 4 * 4, 5)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), x.dtype, float(x.min()), float(x.max()), len(x)))
        return self.linear(x.flatten(1))


def images(n, seed=0):
    return torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_spaces_are_the_four_compared():
    assert SPACES == ("ssl", "supervised", "untrained", "pixels")


def test_embed_matches_the_module_on_images_scaled_to_unit_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x = images(7)
    out = embed(model, x)
    assert out.dtype == np.float32 and out.shape == (7, 5)
    with torch.no_grad():
        expected = model(x.float() / 255).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_embed_batches_in_eval_mode_without_grad_and_restores_the_mode():
    model = Recorder()
    model.train()
    out = embed(model, images(7), batch_size=3)
    assert model.training, "the caller's train mode must come back"
    assert [c[-1] for c in model.calls] == [3, 3, 1]
    for training, grad, dtype, lo, hi, _ in model.calls:
        assert not training and not grad and dtype == torch.float32 and 0.0 <= lo <= hi <= 1.0
    np.testing.assert_allclose(out, embed(model, images(7), batch_size=512), rtol=1e-6, atol=1e-6)

    model.eval()
    embed(model, images(2), device="cpu")
    assert not model.training


def test_embed_restores_the_mode_when_the_backbone_fails():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        embed(model, images(2))
    assert model.training


def test_embed_refuses_nothing_to_embed_and_bad_batch_size():
    model = nn.Sequential(nn.Flatten())  # no parameters: the device defaults to the CPU
    with pytest.raises(ValueError, match="cannot embed an empty set of images"):
        embed(model, images(0))
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        embed(model, images(2), batch_size=0)


def test_pixel_features_downsample_flatten_and_stay_in_unit_range():
    white = torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)
    out = pixel_features(white, size=4)
    assert out.dtype == np.float32 and out.shape == (2, 3 * 4 * 4)
    assert np.all(out == 1.0)  # antialiasing rounds a hair above 1 without the clamp

    checker = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    checker[..., 0, 0] = checker[..., 1, 1] = 255
    np.testing.assert_allclose(pixel_features(checker, size=1), 0.5, atol=1e-6)


def test_pixel_features_are_the_same_in_batches():
    x = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(pixel_features(x, size=4, batch_size=2), pixel_features(x, size=4))
    assert pixel_features(x[:0], size=4).shape == (0, 48)


def test_a_space_of_ones_own_is_scored_and_mapped_like_the_built_in_ones(tmp_path):
    data = make_shapes(tmp_path / "shapes", per_class=6, size=16)
    config = TrainConfig(epochs=1, time_budget=None, batch_size=8, resolution=16, device="cpu")
    list(run_pipeline(data, tmp_path / "run", config, use_umap=False, skip=("transfer",)))
    loaded = open_run(tmp_path / "run")
    run = RunFolder.open(tmp_path / "run")
    # The rows of another model's embeddings, in an order of its own, named by a CSV of paths.
    order = np.random.default_rng(0).permutation(len(loaded.paths))
    own = loaded.embeddings["pixels"][order] * 2
    space = import_space(run, "My model", own, loaded.paths, row_paths=[loaded.paths[i] for i in order])
    assert space.name == "my-model" and [s.name for s in run_spaces(run)][-1] == "my-model"
    list(compare(load_folder(data, 16), run, use_umap=False))
    reopened = open_run(tmp_path / "run")
    np.testing.assert_allclose(reopened.embeddings["my-model"], loaded.embeddings["pixels"] * 2)
    assert ("my-model", "pca") in reopened.projections
    # The pixels times two: cosine kNN ignores the scale and the linear probe standardizes it away, so the space
    # must score exactly as the pixels do.
    scores = reopened.metrics["embeddings"]
    assert {k: scores["my-model"][k] for k in ("knn_top1", "linear_top1")} == \
        {k: scores["pixels"][k] for k in ("knn_top1", "linear_top1")}
    assert import_space(run, "My model", own, loaded.paths, row_paths=[loaded.paths[i] for i in order]).name == \
        "my-model-2"


@pytest.mark.parametrize("array, rows, message", [
    (np.zeros((5, 3)), None, "5 rows but the run has 4 images"),
    (np.zeros(4), None, "2-D array"),
    (np.array([[1.0], [np.nan], [0.0], [1.0]]), None, "1 row\\(s\\) of the embeddings hold NaN"),
    (np.zeros((4, 2)), ["a.png", "b.png", "c.png", "x.png"], "1 of the run's 4 images have no row, for example d.png"),
])
def test_a_space_that_does_not_fit_the_run_is_refused(tmp_path, array, rows, message):
    run = RunFolder.create(tmp_path / "run")
    with pytest.raises(ValueError, match=message):
        import_space(run, "x", array, ["a.png", "b.png", "c.png", "d.png"], row_paths=rows)
