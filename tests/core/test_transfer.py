"""Transfer: label subsets, repeats and spread on hand-checkable examples; the stage's transfer.json, resume, cancel."""

import json

import numpy as np
import pytest
import torch

from ssl_studio.core import train as train_module
from ssl_studio.core.cancel import CancelToken, Cancelled
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.evaluate import knn_top1, linear_probe_top1
from ssl_studio.core.models import build_backbone
from ssl_studio.core.events import TrainEvent, TransferFinished, TransferPlanned, TransferPoint
from ssl_studio.core.pipeline import open_run, run_pipeline, transfer
from ssl_studio.core.runs import RunError, check_transfer, finetune_name
from ssl_studio.core.samples import make_shapes
from ssl_studio.core.spaces import SPACES, TITLES, load_backbone
from ssl_studio.core.train import TrainProgress
from ssl_studio.core.transfer import (TransferConfig, finetune_method,
                                      label_subset, labels_per_class, mean_std, probe_points, reading, repeats_for)

CONFIG = TrainConfig(epochs=1, time_budget=None, batch_size=8, resolution=16, device="cpu")
FAST = TransferConfig(fractions=(0.1, 1.0), repeats=2, finetune_fractions=(0.1,), finetune_steps=(2,))


def blobs(n_per_class, n_classes, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return (np.eye(n_classes, dim)[y] * 10 + rng.normal(scale=0.1, size=(len(y), dim))).astype(np.float32), y


# --- label subsets ----------------------------------------------------------------------------------------------


def test_labels_per_class_is_stratified_with_the_exact_total():
    # 8 classes of 240 at 1 %: 2.4 each, so 2 each and the 3 left over by largest remainder: 19 = round(19.2).
    n = labels_per_class([240] * 8, 0.01)
    assert n.sum() == 19 and sorted(n.tolist()) == [2] * 5 + [3] * 3
    assert labels_per_class([100, 50, 30], 0.1).tolist() == [10, 5, 3]
    assert labels_per_class([5, 7], 1.0).tolist() == [5, 7]


def test_a_class_with_fewer_images_than_the_fraction_needs_still_gets_one():
    assert labels_per_class([3, 100, 50], 0.1).tolist() == [1, 10, 5]  # 0.3 of an image rounds up to one
    assert labels_per_class([1, 1000], 0.001).tolist() == [1, 1]


def test_label_subset_comes_from_the_training_split_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train_idx = np.arange(0, 100, 2)  # 25, 15 and 10 training images per class
    subset = label_subset(labels, train_idx, 0.2)
    assert set(subset) <= set(train_idx) and np.all(np.diff(subset) > 0)
    assert np.bincount(labels[subset]).tolist() == [5, 3, 2]
    assert np.array_equal(subset, label_subset(labels, train_idx, 0.2))
    assert not np.array_equal(subset, label_subset(labels, train_idx, 0.2, repeat=1))
    assert not np.array_equal(subset, label_subset(labels, train_idx, 0.2, seed=1))
    assert np.array_equal(label_subset(labels, train_idx, 1.0), train_idx)


def test_small_fractions_are_repeated_and_the_spread_is_the_sample_std():
    assert [repeats_for(f, 5) for f in (0.01, 0.1, 0.25, 1.0)] == [5, 5, 1, 1]
    mean, std = mean_std([0.5, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(np.sqrt(0.02))  # ((0.1^2 + 0.1^2) / (2 - 1)) ** .5
    assert mean_std([0.4]) == (0.4, 0.0)


def test_probe_points_average_the_evaluation_protocols_own_scores_over_the_subsets():
    x, y = blobs(20, 3)
    x[::7] += np.random.default_rng(1).normal(scale=8, size=x[::7].shape)  # some hard images, so subsets differ
    train_idx, test_idx = np.arange(0, 60, 2), np.arange(1, 60, 2)
    points = probe_points(x, y, train_idx, test_idx, 0.1, seed=0, repeats=3)
    expected = {"knn": [], "linear": []}
    for repeat in range(3):
        s = label_subset(y, train_idx, 0.1, 0, repeat)
        expected["knn"].append(knn_top1(x[s], y[s], x[test_idx], y[test_idx]))
        expected["linear"].append(linear_probe_top1(x[s], y[s], x[test_idx], y[test_idx]))
    for probe in ("knn", "linear"):
        mean, std = mean_std(expected[probe])
        assert points[probe] == {"fraction": 0.1, "labels": 3, "top1": pytest.approx(mean, abs=1e-6),
                                 "std": pytest.approx(std, abs=1e-6), "repeats": 3}


def test_at_every_label_the_comparisons_own_scores_are_the_point():
    x, y = blobs(10, 2)
    points = probe_points(x, y, np.arange(0, 20, 2), np.arange(1, 20, 2), 1.0,
                          scored={"knn_top1": 0.25, "linear_top1": 0.5})
    assert points == {"knn": {"fraction": 1.0, "labels": 10, "top1": 0.25, "std": 0.0, "repeats": 1},
                      "linear": {"fraction": 1.0, "labels": 10, "top1": 0.5, "std": 0.0, "repeats": 1}}


def test_one_label_per_class_is_enough_for_knn_on_well_separated_classes():
    x, y = blobs(30, 4)
    train_idx, test_idx = np.arange(0, 120, 2), np.arange(1, 120, 2)
    points = probe_points(x, y, train_idx, test_idx, 0.01, repeats=4)
    assert points["knn"] == {"fraction": 0.01, "labels": 4, "top1": 1.0, "std": 0.0, "repeats": 4}


def test_a_probe_point_below_every_label_is_scored_on_the_held_out_images_only():
    # Each class's training images are one and the same vector, so every subset teaches the same thing; of the 4
    # held-out images one of class 0 lies on class 1's vector. Both probes must get 3 of 4 right, each subset
    # alike: 0.75, std 0 (scored on its own labeled subset instead, either probe would reach 1.0).
    e0, e1 = [1.0, 0.0], [0.0, 1.0]
    x = np.array([e0] * 10 + [e1] * 10 + [e0, e1, e1, e1], dtype=np.float32)
    y = np.array([0] * 10 + [1] * 10 + [0, 0, 1, 1])
    points = probe_points(x, y, np.arange(20), np.arange(20, 24), 0.1, repeats=3)
    for probe in ("knn", "linear"):
        assert points[probe] == {"fraction": 0.1, "labels": 2, "top1": 0.75, "std": 0.0, "repeats": 3}


# --- fine-tuning and settings -----------------------------------------------------------------------------------


def test_fine_tuning_from_scratch_starts_from_the_ssl_runs_initial_weights_with_the_same_head():
    config = CONFIG.replace(method="supervised", seed=3)
    torch.manual_seed(3)
    untrained = build_backbone(config.backbone).state_dict()
    other = build_backbone(config.backbone)
    torch.nn.init.constant_(other.net[1].weight, 0.5)
    scratch = finetune_method(config, 4, other.state_dict(), "scratch")
    from_ssl = finetune_method(config, 4, other.state_dict(), "ssl")
    assert all(torch.equal(v, scratch.backbone.state_dict()[k]) for k, v in untrained.items())
    assert torch.equal(from_ssl.backbone.net[1].weight, other.net[1].weight)
    assert all(torch.equal(a, b) for a, b in zip(scratch.head.parameters(), from_ssl.head.parameters()))
    with pytest.raises(ValueError, match="needs them"):
        finetune_method(config, 4, None, "ssl")
    with pytest.raises(ValueError, match="unknown start 'pretrained': one of ssl, scratch"):
        finetune_method(config, 4, other.state_dict(), "pretrained")


def test_fine_tuning_from_scratch_on_a_run_saved_in_the_older_layer_order_takes_that_order():
    config = CONFIG.replace(method="supervised", seed=3)
    older = build_backbone(config.backbone)
    older.arrange(pool_first=False)
    scratch = finetune_method(config, 4, older.state_dict(), "scratch")
    assert scratch.backbone.pool_first is False
    assert [type(m) for m in scratch.backbone.net] == [type(m) for m in older.net]
    assert finetune_method(config, 4, None, "scratch").backbone.pool_first is True


def test_transfer_settings_are_checked_and_round_trip():
    assert TransferConfig.from_dict(json.loads(json.dumps(FAST.to_dict()))) == FAST
    assert finetune_name("ssl", 0.01) == "finetune_ssl_1pct" and finetune_name("scratch", 0.1) == \
        "finetune_scratch_10pct"
    for bad, words in (({"fractions": (0.0,)}, "between 0 and 1"), ({"fractions": (1.5,)}, "between 0 and 1"),
                       ({"finetune_budget": (10.0, 10.0, 10.0)}, "one per fine-tuning fraction"),
                       ({"finetune_epochs": (0,)}, "at least 1"), ({"repeats": 0}, "at least 1"),
                       ({"finetune_steps": (2.5,)}, "whole number of steps")):
        with pytest.raises(ValueError, match=words):
            TransferConfig(**bad)
    with pytest.raises(ValueError, match="fractions"):
        TransferConfig.from_dict({"fractions": "all"})


def test_the_budget_of_each_fine_tuning_fraction():
    assert TransferConfig(finetune_budget=(5.0, 20.0)).budget_of(1, 100, 64) == (20.0, None)
    assert TransferConfig(finetune_budget=(5.0,)).budget_of(1, 100, 64) == (5.0, None)
    assert TransferConfig(finetune_epochs=(3,)).budget_of(0, 100, 64) == (None, 3)
    # Steps by default: an epoch is labels // batch steps (at least one), so 300 steps are 300 epochs of 19 labels
    # and 25 of 800 labels in batches of 64 (12 steps each, the training loop's drop-last epoch).
    assert TransferConfig().budget_of(0, 19, 64) == (None, 300)
    assert TransferConfig().budget_of(1, 800, 64) == (None, 25)
    assert TransferConfig(finetune_steps=(10, 7)).budget_of(1, 128, 64) == (None, 4)


# --- transfer.json ----------------------------------------------------------------------------------------------


def curves():
    point = {"fraction": 0.01, "labels": 16, "top1": 0.7, "std": 0.05, "repeats": 5}
    return {"classes": 8, "probe": {
        "ssl": {"knn": [point], "linear": [{**point, "top1": 0.75}]},
        "supervised": {"knn": [{**point, "top1": 0.99}], "linear": [{**point, "top1": 0.99}]},
        "pixels": {"knn": [{**point, "top1": 0.2}], "linear": [{**point, "top1": 0.25}]}},
        "finetune": {"ssl": [{"fraction": 0.01, "labels": 16, "top1": 0.6, "seconds": 3.0}],
                     "scratch": [{"fraction": 0.01, "labels": 16, "top1": 0.3, "seconds": 3.0}]}}


def test_the_reading_says_what_the_fewest_labels_give_each_space_and_each_start():
    assert reading(curves(), TITLES, saw_labels=("supervised",)) == (
        "With 16 labels (about 2 per class), the self-supervised features reach 75%, raw pixels 25% (the better of "
        "kNN and linear probe); fine-tuned on them, the network reaches 60% from the SSL weights and 30% from "
        "scratch.")
    assert reading({"error": "no labels"}, TITLES) == ""


@pytest.mark.parametrize("tamper, words", [
    (lambda t: t["probe"]["ssl"]["knn"][0].update(top1=1.5), "top1"),
    (lambda t: t["probe"]["ssl"]["knn"][0].update(labels="16"), "labels"),
    (lambda t: t["probe"].update(nowhere={"knn": []}), "nowhere"),
    (lambda t: t["probe"]["ssl"].update(svm=[]), "kNN and linear"),
    (lambda t: t["finetune"].update(imagenet=[]), "imagenet"),
    (lambda t: t["finetune"]["ssl"][0].pop("seconds"), "seconds"),
    (lambda t: t.pop("probe"), "'probe'"),
])
def test_a_tampered_transfer_json_is_refused_saying_what_is_wrong(tamper, words):
    assert check_transfer(curves(), SPACES)
    data = curves()
    tamper(data)
    with pytest.raises(ValueError, match=words):
        check_transfer(data, SPACES)


# --- the stage --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", per_class=8, size=16, seed=1)


@pytest.fixture(scope="module")
def compared(shapes, tmp_path_factory):
    """A run folder made by every stage but transfer (as before this stage existed), and its images."""
    from ssl_studio.core.data import load_folder

    run = tmp_path_factory.mktemp("compared") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_STUDIO_CACHE_DIR", str(run.parent / "cache"))
        list(run_pipeline(shapes, run, CONFIG, use_umap=False, skip=("transfer",)))
        return run, load_folder(shapes, CONFIG.resolution)


@pytest.fixture
def run(compared, tmp_path):
    import shutil

    from ssl_studio.core.runs import RunFolder

    shutil.copytree(compared[0], tmp_path / "run")
    return RunFolder.open(tmp_path / "run")


def test_the_stage_writes_a_valid_transfer_json_and_the_curves_into_the_report(compared, run):
    from PIL import Image

    dataset = compared[1]
    assert not run.exists("transfer.json")
    height_before = Image.open(run.path / "report.png").height
    events = list(transfer(dataset, run, FAST))
    planned = next(e for e in events if isinstance(e, TransferPlanned))
    assert planned.probes == 4 * 2 and planned.finetunes == ("finetune_ssl_10pct", "finetune_scratch_10pct")
    assert planned.selections == 3 * 1  # each strategy at the one small fraction
    points = [e for e in events if isinstance(e, TransferPoint)]
    assert len([p for p in points if p.kind != "selection"]) == 4 * 2 * 2 + 2
    assert len([p for p in points if p.kind == "selection"]) == 3 * 2
    assert [p.point["fraction"] for p in points if p.curve == "ssl" and p.probe == "knn"] == [0.1, 1.0]
    assert any(isinstance(e, TrainEvent) and e.which == "finetune_ssl_10pct" for e in events)
    assert isinstance(events[-1], TransferFinished)

    saved = run.read_json("transfer.json")
    assert saved == events[-1].transfer
    assert set(saved["probe"]) == set(SPACES) and set(saved["finetune"]) == {"ssl", "scratch"}
    split = run.read_json("split.json")
    labels = np.asarray(run.read_json("dataset.json")["labels"])
    for space, probes in saved["probe"].items():
        for probe in ("knn", "linear"):
            low, full = probes[probe]
            assert (low["fraction"], low["labels"], low["repeats"]) == (0.1, 8, 2)  # one per class: 10 % < 1
            assert (full["labels"], full["repeats"], full["std"]) == (len(split["train"]), 1, 0.0)
            assert 0 <= low["top1"] <= 1 and 0 <= full["top1"] <= 1
    metrics = run.read_json("metrics.json")["embeddings"]
    for space in SPACES:  # at 100 % the curve is the comparison's own score
        assert saved["probe"][space]["knn"][1]["top1"] == pytest.approx(metrics[space]["knn_top1"], abs=1e-6)
    assert saved["selection_space"] == "ssl" and set(saved["selection"]) == {"random", "typical", "coverage"}
    for strategy, probes in saved["selection"].items():  # as many picks as the per-class draw labels
        assert [(p["fraction"], p["labels"], p["repeats"]) for p in probes["linear"]] == [(0.1, 8, 2)]
    for start in ("ssl", "scratch"):
        (point,) = saved["finetune"][start]
        assert point["labels"] == 8 and point["steps"] == 2 and point["seconds"] > 0
        assert run.checkpoint(f"finetune_{start}_10pct").is_file()
    assert len(np.unique(labels)) == saved["classes"] == 8
    assert open_run(run.path).transfer == saved
    assert Image.open(run.path / "report.png").height > height_before


def cosine_knn_top1(train_x, train_y, test_x, test_y, k=20, temperature=0.07):
    """The protocol's kNN written out in numpy: cosine similarity, the k nearest vote with exp(sim / T)."""
    a = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    b = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    sims = b @ a.T
    right = 0
    for row, truth in zip(sims, test_y):
        nearest = np.argsort(-row, kind="stable")[:min(k, len(a))]
        votes = {}
        for j in nearest:
            votes[train_y[j]] = votes.get(train_y[j], 0.0) + np.exp((row[j] - row[nearest[0]]) / temperature)
        right += max(votes, key=votes.get) == truth
    return right / len(test_y)


def test_probe_points_below_every_label_match_a_kNN_and_a_logistic_regression_written_here(compared, run):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    settings = TransferConfig(fractions=(0.25,), repeats=2, finetune_fractions=(0.1,), finetune_steps=(1,))
    saved = list(transfer(compared[1], run, settings))[-1].transfer
    split = run.read_json("split.json")
    labels = np.asarray(run.read_json("dataset.json")["labels"])
    train_idx, test_idx = np.asarray(split["train"]), np.asarray(split["test"])
    x = run.embeddings(["ssl"], len(labels))["ssl"]
    subset = label_subset(labels, train_idx, 0.25, seed=CONFIG.seed)  # one draw: 0.25 is above SMALL_FRACTION
    assert len(subset) < len(train_idx)
    knn = cosine_knn_top1(x[subset], labels[subset], x[test_idx], labels[test_idx])
    scaler = StandardScaler().fit(x[subset])
    logistic = LogisticRegression(C=1.0, max_iter=1000, random_state=CONFIG.seed).fit(scaler.transform(x[subset]),
                                                                                     labels[subset])
    linear = float(np.mean(logistic.predict(scaler.transform(x[test_idx])) == labels[test_idx]))
    (knn_point,), (linear_point,) = saved["probe"]["ssl"]["knn"], saved["probe"]["ssl"]["linear"]
    assert (knn_point["labels"], knn_point["repeats"]) == (len(subset), 1)
    assert knn_point["top1"] == pytest.approx(knn, abs=1e-6) and linear_point["top1"] == pytest.approx(linear, abs=1e-6)


def test_fine_tuning_starts_from_the_ssl_weights_or_the_seeds_and_is_scored_on_the_held_out_images(compared, run):
    from ssl_studio.core.checkpoint import load_checkpoint

    dataset = compared[1]
    # The smallest learning rate allowed: two steps move a weight by about 2e-6, so each fine-tuned backbone still
    # holds the weights it began from, to 1e-5 (the SSL run moved them far more).
    settings = TransferConfig(fractions=(1.0,), finetune_fractions=(0.5,), finetune_steps=(2,), finetune_lr=1e-6)
    saved = list(transfer(dataset, run, settings))[-1].transfer
    torch.manual_seed(CONFIG.seed)
    seeds = build_backbone(CONFIG.backbone).state_dict()  # the weights the SSL run itself started from
    ssl = load_backbone(run, "ssl", CONFIG.backbone).state_dict()
    test_idx = torch.as_tensor(run.read_json("split.json")["test"])
    for start, began in (("ssl", ssl), ("scratch", seeds)):
        name = f"finetune_{start}_50pct"
        tuned = load_backbone(run, name, CONFIG.backbone)
        for key, value in tuned.named_parameters():
            assert torch.allclose(value, began[key], atol=1e-5), (start, key)
        # Its score, recomputed: the fine-tuned backbone and head on the held-out images, nothing else.
        tensors = load_checkpoint(run.checkpoint(name))[0]
        with torch.no_grad():
            features = tuned.eval()(dataset.images[test_idx].float() / 255)
            predicted = (features @ tensors["model.head.weight"].T + tensors["model.head.bias"]).argmax(1)
        right = (predicted == dataset.labels[test_idx]).double().mean().item()
        assert saved["finetune"][start][0]["top1"] == pytest.approx(right, abs=1e-6)
    assert max((ssl[k] - seeds[k]).abs().max().item() for k, _ in tuned.named_parameters()) > 1e-3  # they differ


def test_open_run_refuses_a_tampered_transfer_json_naming_the_file(run):
    (run.path / "transfer.json").write_text(json.dumps({"probe": {"ssl": {"knn": [{"fraction": 2}]}},
                                                        "finetune": {}}))
    with pytest.raises(RunError, match="transfer.json"):
        open_run(run.path)


def test_cancelled_fine_tuning_resumes_from_its_checkpoint(compared, run, monkeypatch):
    monkeypatch.setattr(train_module, "REPORT_EVERY_S", 0.0)  # an event after every step
    dataset = compared[1]
    settings = TransferConfig(fractions=(1.0,), finetune_fractions=(1.0,), finetune_epochs=(2,))
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in transfer(dataset, run, settings, cancel=token):
            if isinstance(event, TrainEvent) and isinstance(event.event, TrainProgress):
                token.cancel()  # after the first step of fine-tuning from SSL
    assert run.checkpoint("finetune_ssl_100pct").is_file() and not run.exists("transfer.json")
    events = list(transfer(dataset, run, settings, resume=True))
    first = next(e.event for e in events if isinstance(e, TrainEvent) and e.which == "finetune_ssl_100pct")
    assert first.step > 1  # went on from the saved step, not from 0
    steps = [e.point["steps"] for e in events if isinstance(e, TransferPoint) and e.kind == "finetune"]
    assert steps == [2 * (len(run.read_json("split.json")["train"]) // CONFIG.batch_size)] * 2
    assert run.read_json("transfer.json")["finetune"]["ssl"][0]["steps"] == steps[0]


def test_cancelling_during_the_probes_stops_without_writing_transfer_json(compared, run):
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in transfer(compared[1], run, FAST, cancel=token):
            if isinstance(event, TransferPoint):
                token.cancel()
    assert not run.exists("transfer.json")


@pytest.mark.parametrize("kind", ["unlabeled", "one class"])
def test_unlabeled_and_one_class_folders_say_why_there_is_no_transfer_stage(shapes, tmp_path, kind):
    import shutil

    folder = tmp_path / "data"
    if kind == "unlabeled":
        folder.mkdir()
        for i, png in enumerate(sorted(shapes.glob("*/*.png"))[:16]):
            shutil.copy(png, folder / f"{i}.png")
    else:
        shutil.copytree(shapes / "circle", folder / "circle")
    events = list(run_pipeline(folder, tmp_path / "run", CONFIG, use_umap=False, transfer=FAST))
    assert isinstance(events[-1], TransferFinished)
    error = events[-1].transfer["error"]
    assert error.startswith("no transfer stage") and ("unlabeled" in error if kind == "unlabeled" else "one class"
                                                       in error)
    assert json.loads((tmp_path / "run" / "transfer.json").read_text()) == {"error": error}
    assert open_run(tmp_path / "run").transfer == {"error": error}


def test_each_point_goes_on_its_curve_as_the_run_folder_stores_them():
    low = {"fraction": 0.1, "labels": 2, "top1": 0.5, "std": 0.1}
    full = {"fraction": 1.0, "labels": 20, "top1": 0.8, "std": 0.0}
    tuned = {"fraction": 0.1, "labels": 2, "top1": 0.4, "seconds": 1.5}
    curves = {}
    for event in (TransferPoint("probe", "ssl", "knn", low), TransferPoint("probe", "pixels", "linear", low),
                  TransferPoint("probe", "ssl", "knn", full), TransferPoint("finetune", "scratch", "finetune", tuned)):
        event.add_to(curves)
    assert curves == {"probe": {"ssl": {"knn": [low, full]}, "pixels": {"linear": [low]}},
                      "finetune": {"scratch": [tuned]}}
