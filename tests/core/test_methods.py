import json
import math

import torch
import torch.nn.functional as F

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import build_method
from ssl_studio.core.methods.rotation import TURNED_PAIRS, rotate_four, rotation_loss, turn_pairs
from ssl_studio.core.methods.simclr import SimCLRParams, info_nce
from ssl_studio.core.models import build_backbone
from ssl_studio.core.runs import RunFolder


def test_info_nce_matches_a_hand_computed_value():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Each view: positive similarity 1, two negatives at 0, temperature 1: -log(e / (e + 2)).
    assert math.isclose(info_nce(z, z.clone(), 1.0).item(), math.log(math.e + 2) - 1, rel_tol=1e-6)


def test_info_nce_matches_the_textbook_formula_on_random_vectors():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    t = 0.3
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / t
    losses = []
    for i in range(10):
        positive = (i + 5) % 10
        denominator = sum(math.exp(sim[i, j]) for j in range(10) if j != i)
        losses.append(-math.log(math.exp(sim[i, positive]) / denominator))
    assert math.isclose(info_nce(z1, z2, t).item(), sum(losses) / 10, rel_tol=1e-5)


def test_info_nce_is_finite_at_low_temperature():
    z = torch.randn(64, 16) * 100
    assert torch.isfinite(info_nce(z, z + 1, 0.01))


def test_rotation_loss_of_uniform_logits_is_log_four():
    assert math.isclose(rotation_loss(torch.zeros(8, 4), torch.arange(4).repeat(2)).item(), math.log(4), rel_tol=1e-6)


def test_rotate_four_rotates_and_labels():
    x = torch.arange(4.0).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    views, targets = rotate_four(x)
    assert targets.tolist() == [0, 1, 2, 3]
    assert torch.equal(views[2], x[0].flip(-1).flip(-2))


def test_turn_pairs_turns_both_views_of_a_pair_alike_and_says_how():
    views = torch.rand(2 * 40, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    turned, targets = turn_pairs(views.clone(), torch.Generator().manual_seed(0))
    replay = torch.Generator().manual_seed(0)  # the draws, made again: a turn of 1-3 for every pair taken half the time
    expected = torch.randint(1, 4, (40,), generator=replay) * (torch.rand(40, generator=replay) < TURNED_PAIRS)
    assert targets.tolist() == expected.tolist() * 2
    assert set(expected.tolist()) == {0, 1, 2, 3}
    for view, turn, original in zip(turned, targets, views):
        assert torch.equal(view, torch.rot90(original, int(turn), dims=(1, 2)))


def test_simclr_adds_its_rotation_task_to_the_contrast_at_the_task_s_weight():
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    method = build_method("simclr", "small-cnn", params=SimCLRParams(temperature=0.5, rotation_task=0.25))
    views, targets = method.make_views(images, None, torch.Generator().manual_seed(0))
    features = method.backbone(views)
    z1, z2 = method.head(features).chunk(2)
    expected = info_nce(z1, z2, 0.5) + 0.25 * F.cross_entropy(method.rotation_head(features), targets)
    assert torch.allclose(method(views, targets)[0], expected)

    plain = build_method("simclr", "small-cnn", params=SimCLRParams(rotation_task=0.0))
    views, targets = plain.make_views(images, None, torch.Generator().manual_seed(0))
    assert plain.rotation_head is None and targets is None
    z1, z2 = plain.head(plain.backbone(views)).chunk(2)
    assert torch.allclose(plain(views, targets)[0], info_nce(z1, z2, 0.5))


def test_simclr_runs_saved_before_the_rotation_task_load_and_train_without_it(tmp_path):
    """A run saves every setting, so a run's settings without the task's come from before it and trained without
    it; the app's own settings from before it take the task's default."""
    run = RunFolder.create(tmp_path)
    run.write_settings(tmp_path, 32, TrainConfig(method="simclr"), Recipe(), "test")
    stored = json.loads((tmp_path / "config.json").read_text())
    del stored["train"]["params"]["rotation_task"]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    old = run.read_settings().config
    assert old.params.rotation_task == 0.0
    assert TrainConfig.from_dict(stored["train"]).params.rotation_task == SimCLRParams().rotation_task == 0.5
    saved = build_method("simclr", "small-cnn", params=old.params).state_dict()
    assert not any(key.startswith("rotation_head") for key in saved)
    build_method("simclr", "small-cnn", params=old.params).load_state_dict(saved)


def test_each_method_gives_a_scalar_loss_with_gradients():
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    g = torch.Generator().manual_seed(0)
    for name, views_per_image in (("simclr", 2), ("rotation", 4), ("supervised", 1), ("byol", 2), ("moco", 2),
                                  ("vicreg", 2), ("barlow", 2), ("masked", 1)):
        method = build_method(name, "small-cnn", num_classes=3)
        views, targets = method.make_views(images, labels, g)
        assert views.shape[0] == 6 * views_per_image
        loss, embedding = method(views, targets)
        loss.backward()
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert embedding.shape[0] == views.shape[0]
        assert all(p.grad is not None for p in method.backbone.parameters())


def test_backbones_map_small_images_to_features():
    for name in ("small-cnn", "resnet18"):
        net = build_backbone(name)
        assert net(torch.rand(2, 3, 16, 16)).shape == (2, net.feature_dim)


def test_settings_of_one_name_mean_the_same_in_every_method():
    """They are one command-line flag, so its label, help and range must hold for each method that has it."""
    import dataclasses

    from ssl_studio.core.methods import method_class, method_names
    from ssl_studio.core.schema import described_fields, info

    seen = {}
    for name in method_names():
        for f in described_fields(method_class(name).Params):
            described = dataclasses.replace(info(f))
            assert seen.setdefault(f.name, described) == described, f"{name}'s {f.name}"
    assert {"temperature", "momentum"} <= set(seen)


def test_pair_similarities_of_two_view_methods_are_their_positive_pairs_and_negatives():
    method = build_method("simclr", "small-cnn")
    view1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    view2 = torch.tensor([[2.0, 0.0], [0.0, 0.5], [-1.0, 1.0]])  # the same directions, but the last one's at 45°
    positives, negatives = method.pair_similarities(torch.cat([view1, view2]))
    assert torch.allclose(positives, torch.tensor([1.0, 1.0, 2 ** -0.5]))
    # Each image's view 1 against the view 2 of the image before it in the batch.
    assert torch.allclose(negatives, torch.tensor([-(2 ** -0.5), 0.0, 0.0]))


def test_pair_similarities_are_few_and_only_for_methods_with_two_views():
    from ssl_studio.core.methods import method_names
    from ssl_studio.core.methods.base import SIMILARITY_PAIRS, TwoViewMethod

    positives, negatives = build_method("simclr", "small-cnn").pair_similarities(torch.randn(2000, 8))
    assert len(positives) == len(negatives) == SIMILARITY_PAIRS
    for name in method_names():
        method = build_method(name, "small-cnn", num_classes=2)
        found = method.pair_similarities(torch.randn(8, 8))
        assert (found is not None) == isinstance(method, TwoViewMethod), name
    assert build_method("rotation", "small-cnn").pair_similarities(torch.randn(8, 8)) is None
