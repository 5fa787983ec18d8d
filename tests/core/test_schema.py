"""The settings schema itself: types, ranges and messages come from each field's description."""

from dataclasses import dataclass

import numpy as np
import pytest

from ssl_studio.core.schema import check_settings, dataclass_from_dict, described_fields, info, same_setting, setting


@dataclass(frozen=True)
class Example:
    share: float = setting(0.5, "Share", "A share of something.", minimum=0, above=True, maximum=1)
    count: int = setting(3, "Count", minimum=1, unit="steps")
    window: tuple[float, float] = setting((0.2, 0.8), "Window", minimum=0.1, maximum=0.9, group="Crop")
    sizes: tuple[int, ...] | None = setting(None, "Sizes", minimum=2)
    seconds: float = setting(10.0, "Seconds", minimum=0, above=True)

    def __post_init__(self) -> None:
        check_settings(self)


@pytest.mark.parametrize("bad, message", [
    ({"share": 0}, "the share must be between 0 and 1, not 0 (got 0)"),
    ({"share": 1.5}, "the share must be between 0 and 1, not 0 (got 1.5)"),
    ({"seconds": 0.0}, "the seconds must be more than 0 (got 0)"),
    ({"count": 0}, "the count must be at least 1 (got 0)"),
    ({"count": 2.5}, "the count must be a whole number of steps"),
    ({"window": (0.05, 0.5)}, "the crop window (window) must be at least 0.1 (got 0.05)"),
    ({"window": (0.5, 0.95)}, "the crop window (window) must be at most 0.9 (got 0.95)"),
    ({"window": (0.6, 0.3)}, "the crop window (window) must give its minimum first, then its maximum (got 0.6, 0.3)"),
    ({"window": (0.5,)}, "the crop window (window) must be a list of 2 numbers"),
    ({"sizes": (4, 1)}, "the sizes must be at least 2 (got 1)"),
    ({"sizes": 4}, "the sizes must be a list of numbers"),
    ({"share": True}, "the share must be a finite number"),
])
def test_a_value_outside_its_description_is_refused_naming_the_setting(bad, message):
    with pytest.raises(ValueError) as refused:
        Example(**bad)
    assert str(refused.value) == message


def test_values_take_their_fields_types():
    example = Example(share=np.float32(0.25), count=np.int64(4), window=[0.1, 0.9], sizes=[2, 3.0], seconds=5)
    assert example == Example(share=0.25, count=4, window=(0.1, 0.9), sizes=(2, 3), seconds=5.0)
    assert type(example.count) is int and type(example.seconds) is float and type(example.sizes[1]) is int
    assert dataclass_from_dict(Example, {"sizes": [2, 5]}, "example") == Example(sizes=(2, 5))
    with pytest.raises(ValueError, match="example setting 'sizes' must be a list of numbers"):
        dataclass_from_dict(Example, {"sizes": "all"}, "example")


def test_a_setting_shared_by_two_classes_is_described_once():
    @dataclass(frozen=True)
    class Other:
        count: int = same_setting(Example, "count", 7)
        share: float = same_setting(Example, "share")

        def __post_init__(self) -> None:
            check_settings(self)

    fields = {f.name: f for f in described_fields(Other)}
    assert info(fields["count"]) is info({f.name: f for f in described_fields(Example)}["count"])
    assert Other() == Other(count=7, share=0.5)
    with pytest.raises(ValueError, match="the count must be at least 1"):
        Other(count=0)
