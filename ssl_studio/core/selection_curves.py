"""What choosing which images to label buys, on the label-efficiency curve (README, "Which images to label").

At each small label fraction, each label-free strategy of core/label_selection picks as many images of the training
split as the per-class draw labels there (the only thing taken from the labels: their number, so the points line
up); the same kNN and linear probe are fitted on the picks' labels and scored on the same held-out images. Each
fraction is picked several times with different seeds, as the per-class draws are, so a curve has the same spread.
"""

from __future__ import annotations

from collections.abc import Iterator

from .label_selection import STRATEGIES, select_images
from .transfer import SMALL_FRACTION, label_subset, repeats_for, subset_points

SELECTION_SPACE = "ssl"  # the space the transfer stage selects in: the self-supervised features


def selection_fractions(fractions) -> tuple[float, ...]:
    """The fractions that get selection curves: the small ones, where which images are labeled matters most."""
    return tuple(f for f in fractions if f <= SMALL_FRACTION)


def selection_points(x, labels, train_idx, test_idx, fraction: float, strategy: str, *, seed: int = 0,
                     repeats: int = 5) -> dict[str, dict]:
    """kNN and linear probe on the images ``strategy`` picks at ``fraction``, as transfer.probe_points answers."""
    budget = len(label_subset(labels, train_idx, fraction, seed))
    picks = (select_images(x, train_idx, budget, strategy, seed=[seed, round(fraction * 1_000_000), repeat])
             for repeat in range(repeats_for(fraction, repeats)))
    return subset_points(x, labels, test_idx, fraction, picks, seed=seed)


def selection_curves(x, labels, train_idx, test_idx, fractions, *, seed: int = 0,
                     repeats: int = 5) -> Iterator[tuple[str, str, dict]]:
    """(strategy, probe, point) for every label-free strategy at each small fraction, the fewest labels first."""
    for fraction in selection_fractions(fractions):
        for strategy in STRATEGIES:
            for probe, point in selection_points(x, labels, train_idx, test_idx, fraction, strategy, seed=seed,
                                                 repeats=repeats).items():
                yield strategy, probe, point


def selection_reading(transfer: dict, titles: dict[str, str]) -> str:
    """One plain sentence: what the best strategy's picks give the linear probe at the fewest labels, against a
    label-free random draw and the per-class random draw of the same number of images."""
    selection, space = transfer.get("selection") or {}, transfer.get("selection_space", SELECTION_SPACE)
    linear = {s: {p["fraction"]: p for p in c.get("linear", [])} for s, c in selection.items()}
    fractions = sorted(set.intersection(*(set(points) for points in linear.values()))) if linear else []
    if "random" not in linear or not fractions:
        return ""
    fewest = fractions[0]
    at = {s: points[fewest] for s, points in linear.items()}
    best = max((s for s in at if s != "random"), key=lambda s: at[s]["top1"], default="random")
    features = f"the {titles.get(space, space).lower()} features"
    random = at["random"]["top1"]
    if at[best]["top1"] <= random:
        return (f"With {at['random']['labels']} labels, no strategy beat a label-free random draw for the linear "
                f"probe on {features} ({random:.0%}).")
    sentence = (f"With {at[best]['labels']} labels picked by {STRATEGIES[best]}, the linear probe on {features} "
                f"reaches {at[best]['top1']:.0%}: {_points(at[best]['top1'] - random)} over a label-free random draw")
    per_class = next((p["top1"] for p in (transfer.get("probe") or {}).get(space, {}).get("linear", [])
                      if p["fraction"] == fewest), None)
    if per_class is not None:
        sentence += f" and {_points(at[best]['top1'] - per_class)} over a per-class random draw"
    return sentence + "."


def _points(difference: float) -> str:
    """A difference of accuracies in percentage points, signed: +9 points, -2 points."""
    value = round(100 * difference)
    return f"{value:+d} point" + ("" if abs(value) == 1 else "s")

