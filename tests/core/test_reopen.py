"""Opening a saved run with its images, read again from its data folder."""

import json
import shutil

import numpy as np
import torch

from ssl_studio.core.data import ImageDataset, LoadProgress, load_folder
from ssl_studio.core.reopen import align_images, open_run_with_images


def copy_run(finished_runs, tmp_path):
    """A copy of the labeled run whose config points at a copy of its data folder."""
    data, run = finished_runs[0]["labeled"]
    shutil.copytree(data, tmp_path / "data")
    shutil.copytree(run, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "data")
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    return tmp_path / "data", tmp_path / "run"


def test_align_images_follows_the_runs_order():
    paths = ["b.png", "a.png", "c.png"]
    images = torch.arange(3, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()  # image i is all i
    dataset = ImageDataset(root=None, paths=paths, images=images, labels=None, class_names=[], skipped=[],
                           resolution=2)
    images = align_images(dataset, ["a.png", "c.png", "b.png"])
    assert torch.equal(images, dataset.images[torch.tensor([1, 2, 0])])
    assert align_images(dataset, ["a.png", "gone.png"]) is None
    assert align_images(dataset, []).shape[0] == 0


def test_an_intact_data_folder_gives_the_dataset_and_its_images(finished_runs, tmp_path, drain):
    data, run = copy_run(finished_runs, tmp_path)
    events, result = drain(open_run_with_images(run))
    assert events and all(isinstance(e, LoadProgress) for e in events)
    assert result.dataset is not None and result.dataset.paths == result.loaded.paths
    assert torch.equal(result.images, result.dataset.images)
    assert result.loaded.labels is not None and np.array_equal(result.loaded.labels, result.dataset.labels.numpy())


def test_a_changed_folder_still_gives_the_images_but_not_the_dataset(finished_runs, tmp_path, drain):
    data, run = copy_run(finished_runs, tmp_path)
    shutil.copy(next(data.glob("*/*.png")), data / "circle" / "extra.png")
    _, result = drain(open_run_with_images(run))
    assert result.dataset is None
    reloaded = load_folder(data, resolution=16)
    assert torch.equal(result.images, align_images(reloaded, result.loaded.paths))


def test_a_folder_missing_an_image_or_gone_gives_neither(finished_runs, tmp_path, drain):
    data, run = copy_run(finished_runs, tmp_path)
    next(data.glob("*/*.png")).unlink()
    _, result = drain(open_run_with_images(run))
    assert result.dataset is None and result.images is None
    shutil.rmtree(data)
    events, result = drain(open_run_with_images(run))
    assert events == [] and result.dataset is None and result.images is None
    assert len(result.loaded.paths) == 32  # the run itself still opens
