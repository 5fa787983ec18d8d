"""The session holds what the app has open, once, and tells its observers each change in order."""

from dataclasses import dataclass, field

import pytest
import torch

from ssl_studio.core.augment import Recipe
from ssl_studio.core.data import ImageDataset
from ssl_studio.core.reopen import RunWithImages
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.session import DATASET, DONE, FINISHED, METHOD, OPENED, RECIPE, RUN, TOPICS, Session


def dataset(root, n=4) -> ImageDataset:
    return ImageDataset(root, [f"{i}.png" for i in range(n)], torch.zeros(n, 3, 8, 8, dtype=torch.uint8), None, [],
                        [], 8)


@dataclass
class Loaded:  # what Session.open_run reads of a LoadedRun
    run: RunFolder
    recipe: Recipe = field(default_factory=Recipe)
    transfer: dict = field(default_factory=dict)


def recorder(session):
    told = []
    for topic in TOPICS:
        session.observe(topic, lambda *args, t=topic: told.append((t, *args)))
    return told


def test_new_data_lets_every_run_go_and_is_done_alone(tmp_path):
    session = Session()
    told = recorder(session)
    first = dataset(tmp_path)
    session.open_dataset(first)
    run = RunFolder(tmp_path / "run")
    session.start_run(run)
    assert session.run is run and session.runs == [run] and session.dataset_of(run) is first
    second = dataset(tmp_path, 6)
    session.open_dataset(second)
    assert session.dataset is second and session.run is None and session.runs == []
    assert session.dataset_of(run) is None and session.done == {"data"}
    assert told == [(DATASET, first), (DONE, {"data"}), (RUN, run), (DONE, {"data"}),
                    (DATASET, second), (DONE, {"data"})]


def test_finishing_a_stage_marks_it_done_for_the_current_run_only(tmp_path):
    session = Session()
    session.open_dataset(dataset(tmp_path))
    older, newer = RunFolder(tmp_path / "a"), RunFolder(tmp_path / "b")
    session.start_run(older)
    session.finish("train", older)
    session.start_run(newer)  # a second training: its stages are not done yet
    assert session.done == {"data"} and session.runs == [older, newer]
    told = recorder(session)
    session.finish("compare", older)  # the maps of the older run came late
    assert session.done == {"data"} and told == [(FINISHED, "compare", older)]
    session.finish("train", newer)
    assert session.done == {"data", "train"} and told[-2:] == [(DONE, {"data", "train"}), (FINISHED, "train", newer)]


def test_an_opened_run_brings_its_images_as_the_open_data_or_keeps_the_data_open(tmp_path):
    session = Session()
    open_data = dataset(tmp_path)
    session.open_dataset(open_data)
    told = recorder(session)
    gone = RunFolder(tmp_path / "gone")
    session.open_run(RunWithImages(Loaded(gone), None, None))  # its data folder could not be read
    assert session.dataset is open_data and session.run is gone and session.dataset_of(gone) is None
    assert session.done == {"data", "train", "compare"}
    assert [t for t, *_ in told] == [OPENED, DONE]

    images = dataset(tmp_path, 5)
    found = RunFolder(tmp_path / "found")
    told.clear()
    session.open_run(RunWithImages(Loaded(found, transfer={"probe": {}}), images, images.images))
    assert session.dataset is images and session.dataset_of(found) is images and session.runs == [found]
    assert [t for t, *_ in told] == [DATASET, DONE, OPENED, DONE]
    assert session.done == {"data", "augment", "train", "compare", "transfer"}


def test_a_run_needs_open_data_and_a_topic_must_exist(tmp_path):
    session = Session()
    with pytest.raises(ValueError, match="open data"):
        session.start_run(RunFolder(tmp_path))
    with pytest.raises(ValueError, match="unknown session topic 'datset'"):
        session.observe("datset", print)


def test_settings_tell_only_real_changes_and_the_method_its_predecessor():
    session = Session()
    told = recorder(session)
    session.set_method("simclr")
    session.set_method("simclr")
    session.set_method("byol")
    recipe = Recipe(flip_p=0.0)
    session.set_recipe(recipe, "Custom recipe")
    session.set_recipe(Recipe(flip_p=0.0), "Custom recipe")  # equal: no news
    assert told == [(METHOD, "simclr", None), (METHOD, "byol", "simclr"), (RECIPE, recipe, "Custom recipe")]


def test_an_observer_stops_and_may_stop_while_told(tmp_path):
    session = Session()
    calls = []
    stop_b = None

    def a(_dataset):
        calls.append("a")
        stop_b()  # the others of this round are still told

    stop_a = session.observe(DATASET, a)
    stop_b = session.observe(DATASET, lambda _dataset: calls.append("b"))
    session.open_dataset(dataset(tmp_path))
    assert calls == ["a", "b"]
    stop_a()
    session.open_dataset(dataset(tmp_path))
    assert calls == ["a", "b"]
