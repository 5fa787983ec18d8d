import json

import pytest
import torch

from ssl_studio.core.config import TrainConfig, available_devices, resolve_device


def test_config_round_trips_through_json():
    cfg = TrainConfig(method="rotation", epochs=3, time_budget=None, lr=0.01)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("bad, message", [
    ({"method": "magic"}, "unknown method"),
    ({"batch_size": 1}, "batch size"),
    ({"batch_size": 2.5}, "whole number"),
    ({"epochs": None, "time_budget": None}, "time budget or a number of epochs"),
    ({"lr": "fast"}, "number"),
    ({"device": "tpu"}, "unknown device"),
    ({"colour": "red"}, "unknown training setting"),
])
def test_bad_settings_are_refused_with_a_message(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(bad)


def test_devices():
    assert available_devices()[:2] == ["auto", "cpu"]
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda")


def test_runs_made_before_method_settings_still_open():
    """Their config.json kept SimCLR's temperature among the general settings, for every method."""
    assert TrainConfig.from_dict({"method": "simclr", "temperature": 0.3}).params.temperature == 0.3
    assert TrainConfig.from_dict({"method": "rotation", "temperature": 0.5}) == TrainConfig(method="rotation")


def test_a_method_built_without_settings_has_the_same_defaults_as_a_config():
    from ssl_studio.core.methods import build_method

    assert build_method("simclr", "small-cnn").params == TrainConfig().params


def test_method_settings_are_checked_against_their_ranges():
    with pytest.raises(ValueError, match="temperature must be at least 0.01"):
        TrainConfig.from_dict({"params": {"temperature": 0}})
    with pytest.raises(ValueError, match="unknown rotation method setting"):
        TrainConfig.from_dict({"method": "rotation", "params": {"temperature": 0.5}})


def test_a_budget_keeps_both_values_and_gives_the_config_the_chosen_one():
    from ssl_studio.core.config import Budget

    assert Budget() == Budget("time", 120.0, 20)
    assert Budget("epochs", 60.0, 7).config_values() == {"time_budget": None, "epochs": 7}
    assert Budget.given(epochs=3) == Budget("epochs", 120.0, 3)
    assert Budget.given(time_budget=30) == Budget("time", 30.0, 20)
    # A run's config gives its own unit and value; the other value is the one the person had set.
    assert Budget.of(TrainConfig(epochs=5, time_budget=None), Budget("time", 45.0, 9)) == Budget("epochs", 45.0, 5)
    assert Budget.of(TrainConfig(time_budget=45.0), Budget("epochs", 60.0, 9)) == Budget("time", 45.0, 9)
    assert Budget.from_dict(json.loads(json.dumps(Budget("epochs", 60.0, 9).to_dict()))) == Budget("epochs", 60.0, 9)


@pytest.mark.parametrize("bad, message", [
    ({"unit": "steps"}, "unknown budget 'steps'"), ({"epochs": 0}, "the epochs must be at least 1 \\(got 0\\)"),
    ({"time_budget": 0}, "the time budget must be more than 0 \\(got 0\\)"), ({"epochs": 2.5}, "whole number"),
])
def test_a_budget_is_checked_by_the_same_ranges_as_the_config(bad, message):
    from ssl_studio.core.config import Budget

    with pytest.raises(ValueError, match=message):
        Budget.from_dict(bad)
    if "unit" not in bad:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**{"time_budget": None, "epochs": None, **bad})
