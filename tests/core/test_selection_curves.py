"""Selection on the label-efficiency curve: the picks' probe points and the sentence that reads them."""

import numpy as np
import pytest

from ssl_studio.core.selection_curves import selection_curves, selection_fractions, selection_points, \
    selection_reading
from ssl_studio.core.spaces import SPACES, TITLES
from ssl_studio.core.runs import check_transfer


def four_blobs():
    """Four tight, far-apart classes of 25; every fifth image held out, so 20 per class in training."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 25)
    x = (np.eye(4)[y] * 10 + rng.normal(scale=0.1, size=(100, 4))).astype(np.float32)
    return x, y, np.flatnonzero(np.arange(100) % 5), np.flatnonzero(np.arange(100) % 5 == 0)


def test_one_typical_or_covering_pick_per_blob_labels_every_class():
    x, y, train, test = four_blobs()
    # 5 % of 80 is 4 labels, as the per-class draw takes: one per class. Typical takes the centre of each of 4
    # k-means clusters, coverage goes to the farthest blob each time: either way every class gets its one label.
    for strategy in ("typical", "coverage"):
        points = selection_points(x, y, train, test, 0.05, strategy, repeats=5)
        for probe in ("knn", "linear"):
            assert points[probe] == {"fraction": 0.05, "labels": 4, "top1": 1.0, "std": 0.0, "repeats": 5}
    # 4 random images of 80 span all 4 classes only 10 % of the time (20^4 * 4! / (80 * 79 * 78 * 77)).
    assert selection_points(x, y, train, test, 0.05, "random", repeats=5)["linear"]["top1"] < 1.0


def test_the_curves_cover_each_strategy_at_the_small_fractions_only():
    x, y, train, test = four_blobs()
    assert selection_fractions((0.01, 0.05, 0.1, 0.25, 1.0)) == (0.01, 0.05, 0.1)
    found = [(strategy, probe, point["fraction"], point["repeats"]) for strategy, probe, point in
             selection_curves(x, y, train, test, (0.05, 0.5), repeats=2)]
    assert found == [(s, p, 0.05, 2) for s in ("random", "typical", "coverage") for p in ("knn", "linear")]


def with_selection(typical=0.8, coverage=0.7, random=0.6, per_class=0.75):
    point = {"fraction": 0.01, "labels": 16, "std": 0.05, "repeats": 5}
    curve = lambda top1: {"knn": [{**point, "top1": 0.1}], "linear": [{**point, "top1": top1},  # noqa: E731
                                                                      {**point, "fraction": 0.02, "top1": 0.99}]}
    return {"classes": 8, "probe": {"ssl": curve(per_class)}, "finetune": {}, "selection_space": "ssl",
            "selection": {"random": curve(random), "typical": curve(typical), "coverage": curve(coverage)}}


def test_the_reading_says_what_the_best_strategy_buys_at_the_fewest_labels():
    assert selection_reading(with_selection(), TITLES) == (
        "With 16 labels picked by typicality (TypiClust: the most typical image of each of N clusters), the linear "
        "probe on the self-supervised features reaches 80%: +20 points over a label-free random draw and +5 "
        "points over a per-class random draw.")
    assert "coverage" not in selection_reading(with_selection(coverage=0.79), TITLES)
    assert "k-center greedy" in selection_reading(with_selection(coverage=0.81), TITLES)
    assert selection_reading(with_selection(typical=0.5, coverage=0.55), TITLES) == (
        "With 16 labels, no strategy beat a label-free random draw for the linear probe on the self-supervised "
        "features (60%).")
    assert selection_reading(curves := with_selection(per_class=0.81), TITLES).endswith("-1 point over a per-class "
                                                                                        "random draw.")
    assert selection_reading({**curves, "selection": {}}, TITLES) == ""


@pytest.mark.parametrize("tamper, words", [
    (lambda t: t["selection"].update(best={"knn": []}), "'best' is not a strategy"),
    (lambda t: t["selection"]["typical"].update(svm=[]), "'typical' is not a strategy"),
    (lambda t: t["selection"]["typical"]["linear"][0].update(top1=-0.1), "the typical selection's linear curve"),
    (lambda t: t.update(selection_space="nowhere"), "selection_space"),
    (lambda t: t.update(selection=[]), "selection_space"),
])
def test_a_tampered_selection_is_refused_saying_what_is_wrong(tamper, words):
    data = with_selection()
    assert check_transfer(data, SPACES)
    tamper(data)
    with pytest.raises(ValueError, match=words):
        check_transfer(data, SPACES)
