"""Property-based tests: settings parsing never fails with anything but ValueError, and the folder scanner accounts
for every file of any tree."""

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_corpus import encode, image, noise
from ssl_studio.core.augment import Recipe, augment
from ssl_studio.core.config import DEVICES, TrainConfig
from ssl_studio.core.data import IMAGE_EXTENSIONS, DataError, load_folder
from ssl_studio.core.methods import method_names, recipe_presets
from ssl_studio.core.models import BACKBONES

PRESETS = recipe_presets()

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.integers(-10, 600), st.integers(), st.floats(), st.floats(-2, 2), st.booleans())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


def near(cls, choices: dict) -> st.SearchStrategy:
    """Dicts over the class's own field names with plausible-but-unchecked values, plus the odd stranger, so most
    examples reach the range checks instead of stopping at the first unknown key."""
    fields = {f.name: st.one_of(choices.get(f.name, numbers), json_values) for f in dataclasses.fields(cls)}
    return st.one_of(
        st.fixed_dictionaries({}, optional=fields),
        st.fixed_dictionaries({}, optional={**fields, "unknown": json_values}),
        json_values)


def parse_json(text: str):
    return json.loads(text)  # the standard parser: NaN, Infinity and huge integers all arrive as Python values


def round_trips(cls, obj) -> None:
    text = json.dumps(obj.to_dict(), allow_nan=False)  # valid settings are plain JSON
    assert cls.from_dict(json.loads(text)) == obj


pair = st.lists(st.floats(-1, 12), min_size=2, max_size=2)


@SETTINGS
@given(near(Recipe, {"crop_scale": pair, "crop_ratio": pair, "blur_sigma": pair}))
def test_recipe_from_any_json_is_valid_and_round_trips_or_raises_value_error(data):
    try:
        recipe = Recipe.from_dict(data)
    except ValueError as exc:
        assert str(exc)
        return
    round_trips(Recipe, recipe)
    views = augment(torch.full((2, 3, 8, 8), 128, dtype=torch.uint8), recipe, torch.Generator().manual_seed(0))
    assert views.shape == (2, 3, 8, 8) and torch.isfinite(views).all() and 0 <= views.min() <= views.max() <= 1


@SETTINGS
@given(near(TrainConfig, {"method": st.sampled_from([*method_names(), "moco", ""]),
                          "backbone": st.sampled_from([*BACKBONES, "vit"]),
                          "device": st.sampled_from([*DEVICES, "tpu"]),
                          "epochs": st.one_of(st.none(), numbers), "time_budget": st.one_of(st.none(), numbers),
                          "seed": st.one_of(st.integers(-5, 5), st.integers())}))
def test_train_config_from_any_json_is_valid_and_round_trips_or_raises_value_error(data):
    try:
        config = TrainConfig.from_dict(data)
    except ValueError as exc:
        assert str(exc)
        return
    round_trips(TrainConfig, config)
    # A seed that validates must seed everything a run seeds: numpy and scikit-learn (below 2**32) and the
    # training loop's torch generators (seed * 100_003 + epoch must stay below 2**64).
    np.random.default_rng(config.seed), np.random.RandomState(config.seed)
    torch.Generator().manual_seed(config.seed * 100_003 + 10_000)


# Each with what its message must name: the setting at fault, or what the file should have held.
@pytest.mark.parametrize("text, message", [
    pytest.param('{"epochs": 1' + "0" * 400 + "}", "epochs", id="huge-epochs"),
    pytest.param('{"lr": 1' + "0" * 400 + "}", "lr", id="huge-lr"),
    pytest.param('{"seed": -1}', "seed", id="negative-seed"),
    pytest.param('{"seed": 1' + "0" * 30 + "}", "seed", id="huge-seed"),
    pytest.param('{"batch_size": NaN}', "batch_size", id="nan"),
    pytest.param('{"crop_scale": [Infinity, 1]}', "crop_scale", id="infinity"),
    pytest.param("[]", "must be a JSON object", id="list"),
    pytest.param('"simclr"', "must be a JSON object", id="string"),
])
def test_hostile_settings_files_raise_value_error(text, message):
    data = parse_json(text)
    cls = Recipe if "crop" in text else TrainConfig
    with pytest.raises(ValueError, match=message):
        cls.from_dict(data)


def test_presets_round_trip():
    for recipe in PRESETS.values():
        round_trips(Recipe, recipe)
    round_trips(TrainConfig, TrainConfig())


# --- the folder scanner over generated trees ------------------------------------------------------------------
GOOD_KINDS = ("png", "jpg", "png_named_jpg", "gif")
BAD_KINDS = ("truncated", "empty", "text_as_jpg")
IGNORED_KINDS = ("txt",)

names = st.text(st.sampled_from("abcXYZ09_- éü猫"), min_size=1, max_size=6).map(str.strip).filter(bool)
entry = st.tuples(
    st.one_of(st.just(""), names),                          # top-level class folder ("" = the root itself)
    st.one_of(st.just(""), names),                          # an optional nested folder inside it
    names,                                                  # file stem
    st.sampled_from(GOOD_KINDS + BAD_KINDS + IGNORED_KINDS),
    st.booleans(), st.booleans())                            # hidden file, hidden folder


def content(kind: str, seed: int) -> tuple[str, bytes]:
    if kind == "png":
        return ".png", noise(seed, size=6)
    if kind == "jpg":
        return ".JPG", encode(image((seed % 256, 40, 90), (7, 5)), "JPEG")
    if kind == "png_named_jpg":
        return ".jpeg", noise(seed, size=6)
    if kind == "gif":
        return ".gif", encode(image((9, 9, seed % 256), (5, 6)), "GIF")
    if kind == "truncated":
        return ".png", noise(seed, size=20)[:60]
    if kind == "empty":
        return ".bmp", b""
    if kind == "text_as_jpg":
        return ".jpg", b"plain text\n"
    return ".txt", b"notes"


@SETTINGS
@given(st.lists(entry, max_size=12))
def test_every_file_of_a_random_tree_is_loaded_or_skipped_with_a_reason(entries):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        expected_ok, expected_bad, ignored = set(), set(), set()
        for seed, (top, nested, stem, kind, hidden_file, hidden_dir) in enumerate(entries):
            suffix, blob = content(kind, seed)
            parts = [p for p in (top, ("." if hidden_dir else "") + nested if nested else "") if p]
            rel = "/".join([*parts, ("." if hidden_file else "") + stem + suffix])
            if rel in expected_ok | expected_bad | ignored or any(
                    other.startswith(rel + "/") or rel.startswith(other + "/")
                    for other in expected_ok | expected_bad | ignored):
                continue  # a name taken by another file or folder
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
            visible = not any(part.startswith(".") for part in rel.split("/"))
            if not visible or suffix.lower() not in IMAGE_EXTENSIONS:
                ignored.add(rel)
            elif kind in GOOD_KINDS:
                expected_ok.add(rel)
            else:
                expected_bad.add(rel)
        labeled = any("/" in r for r in expected_ok | expected_bad)
        if labeled:
            loose = {r for r in expected_ok if "/" not in r}
            expected_ok -= loose
            expected_bad |= loose
        try:
            ds = load_folder(root, 8, use_cache=False)
        except DataError as exc:
            assert not expected_ok and str(root) in str(exc)
            return
        assert set(ds.paths) == expected_ok and len(ds.paths) == len(expected_ok)
        assert {s.path for s in ds.skipped} == expected_bad and len(ds.skipped) == len(expected_bad)
        assert all(s.reason and s.reason.strip() for s in ds.skipped)
        assert ds.images.shape == (len(expected_ok), 3, 8, 8)
        if labeled:
            tops = [p.split("/", 1)[0] for p in ds.paths]
            assert ds.class_names == sorted(set(tops))
            assert [ds.class_names[i] for i in ds.labels.tolist()] == tops
        else:
            assert ds.labels is None and ds.class_names == []
        # The cache gives back exactly the same answer (inside a hidden folder, which the scanner ignores).
        cache = root / ".cache"
        first = load_folder(root, 8, cache_dir=cache)
        again = load_folder(root, 8, cache_dir=cache)
        assert again.paths == first.paths == ds.paths and again.skipped == first.skipped == ds.skipped
        assert torch.equal(again.images, ds.images)
