"""The planting tool (bench/planted.py): what it plants, and how it scores a run's audit against it."""

import json

import numpy as np
import pytest
from PIL import Image

from ssl_studio.bench.planted import MANIFEST, main, plant, score


@pytest.fixture
def planted(tmp_path):
    from ssl_studio.core.samples import make_shapes

    source = make_shapes(tmp_path / "shapes", per_class=6, size=20, seed=1)
    other = tmp_path / "other"
    other.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20), 60 * i, np.uint8)).save(other / f"{i}.png")
    manifest = plant(source, tmp_path / "planted", other, per_class=5, flip=0.1, duplicates=4, outliers=3)
    return tmp_path / "planted", manifest


def test_it_plants_flips_near_copies_and_outliers_each_on_a_different_image(planted):
    out, manifest = planted
    assert json.loads((out / MANIFEST).read_text()) == manifest
    assert len(manifest["flipped"]) == 4 and len(manifest["duplicates"]) == 4 and len(manifest["outliers"]) == 3
    for path, truth in manifest["flipped"].items():  # moved into another class's folder, named after its own
        assert path.split("/")[0] != truth and path.split("/")[1].startswith(truth + "-")
    originals = [a for a, _ in manifest["duplicates"]]
    assert not set(originals) & set(manifest["flipped"])
    assert sum(a.split("/")[0] != b.split("/")[0] for a, b in manifest["duplicates"]) == 2  # half in another class
    for a, b in manifest["duplicates"]:
        original, copy = (np.asarray(Image.open(out / p).convert("L"), np.int16) for p in (a, b))
        assert b.endswith(".jpg") and original.shape == copy.shape and not np.array_equal(original, copy)
        shifts = [np.roll(original, s, axis) for axis in (0, 1) for s in (1, -1)]
        # One of the four one-pixel shifts matches the copy better than the unshifted image (JPEG blurs the rest).
        assert min(np.abs(s - copy)[1:-1, 1:-1].mean() for s in shifts) < np.abs(original - copy)[1:-1, 1:-1].mean()
    images = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*") if p.name != MANIFEST)
    assert len(images) == 8 * 5 + 4 + 3


def test_it_refuses_a_folder_that_is_not_empty_and_too_few_images(planted, tmp_path):
    out, _ = planted
    with pytest.raises(ValueError, match="not empty"):
        plant(out, out, out)
    with pytest.raises(ValueError, match="fewer than --per-class"):
        plant(out, tmp_path / "new", out, per_class=100)


def test_the_score_counts_planted_problems_in_the_lists_first_twice_as_many(planted, tmp_path, capsys):
    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.data import load_folder
    from ssl_studio.core.methods import default_recipe
    from ssl_studio.core.pipeline import prepare_run

    out, manifest = planted
    run = prepare_run(load_folder(out, 16), tmp_path / "run", TrainConfig(epochs=1, time_budget=None),
                      default_recipe("simclr"))
    flips, odd, pairs = list(manifest["flipped"]), manifest["outliers"], manifest["duplicates"]
    clean = [p for p in run.read_dataset().paths if p not in flips + odd]
    run.write_audit({"no_label_audit": None, "spaces": {"ssl": {
        "duplicates": [pairs[1][::-1], [clean[0], clean[1]], pairs[0]],  # 2 of 4 pairs, either order
        "leaks": [], "outliers": [clean[2], odd[0], clean[3], clean[4], clean[5], clean[6], odd[1]],  # 1 in top 6
        "mislabeled": clean[7:14] + flips[:3],  # 8 first: 1 flip of 4
        "suggested": {flips[0]: manifest["flipped"][flips[0]], flips[1]: "nonsense"}}}})
    found = score(tmp_path / "run")
    assert found["images"] == 47
    assert found["spaces"]["ssl"] == {"duplicates_found": 0.5, "duplicate_list_share": 3 / 47, "flips_found": 0.25,
                                      "outliers_found": 1 / 3, "suggested_right": 0.25}
    assert main(["score", str(tmp_path / "run")]) == 0
    assert "50.0%" in capsys.readouterr().out
