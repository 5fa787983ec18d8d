"""A large folder's images stay in the memory-mapped cache: training and embedding read them in batches from it."""

import numpy as np
import torch

from ssl_studio.core import pipeline
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import load_folder
from ssl_studio.core.embed import embed, pixel_features
from ssl_studio.core.methods import default_recipe
from ssl_studio.core.models import build_backbone
from ssl_studio.core.samples import make_shapes


def test_training_gets_the_mapped_cache_and_the_split_as_rows(tmp_path, monkeypatch):
    dataset = load_folder(make_shapes(tmp_path / "shapes", per_class=3, size=16), 16)
    config = TrainConfig(epochs=1, batch_size=4, resolution=16, device="cpu")
    run = pipeline.prepare_run(dataset, tmp_path / "run", config, default_recipe("simclr"))
    calls = []
    monkeypatch.setattr(pipeline, "train", lambda method, images, labels, cfg, **kw: calls.append(
        (images, labels, kw["rows"])) or iter(()))
    list(pipeline.train_models(dataset, run, config, default_recipe("simclr")))
    assert len(calls) == 2  # SSL, then the supervised baseline
    for images, labels, rows in calls:
        assert images is dataset.images and labels is dataset.labels  # not a copy of the training split
        assert rows.tolist() == run.read_json("split.json")["train"]


def test_embedding_and_pixel_features_of_the_mapped_cache_match_memory(tmp_path):
    dataset = load_folder(make_shapes(tmp_path / "shapes", per_class=5, size=16), 16)
    in_memory = dataset.images.clone()
    torch.manual_seed(0)
    backbone = build_backbone("small-cnn")
    np.testing.assert_allclose(embed(backbone, dataset.images, batch_size=7), embed(backbone, in_memory),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(pixel_features(dataset.images, batch_size=7), pixel_features(in_memory))


def test_reopening_a_run_of_an_unchanged_folder_shows_the_mapped_cache_itself(tmp_path):
    from ssl_studio.core.reopen import align_images

    dataset = load_folder(make_shapes(tmp_path / "shapes", per_class=2, size=16), 16)
    assert align_images(dataset, dataset.paths) is dataset.images
    reordered = align_images(dataset, dataset.paths[::-1])
    assert reordered is not dataset.images and torch.equal(reordered, dataset.images.flip(0))
