"""Settings as frozen dataclasses whose fields describe themselves, so forms, flags and checks are generated.

A field made with :func:`setting` carries its label, help text and allowed range in its metadata. The Train and
Augment pages build their controls from that, the command line its flags, and :func:`check_settings` its
validation, so a new setting is one line in one dataclass (ARCHITECTURE.md, "Adding a setting").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import typing
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SettingInfo:
    label: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None  # the spin box's step; None: 1 for whole numbers, a tenth of the range otherwise
    log: bool = False  # a learning rate: shown with enough decimals, stepped by a factor
    choices: Callable[[], dict[str, str]] | None = None  # value -> title, for a string setting
    in_form: bool = True  # False: set elsewhere in the app (the resolution, on the Data page)
    advanced: bool = False  # the app folds it away until asked
    above: bool = False  # the minimum itself is refused (a duration, a share of the labels)
    group: str = ""  # the Augment page's box, and the first word of the setting's name ("Flip" "probability")
    unit: str = ""  # "s", "steps": shown after the value, and named when a whole number of them is wanted
    flag: str = ""  # the command-line name, where the field's own would be unclear beside other commands' flags
    decimals: int | None = None  # shown in the app; None: 6 for a log setting, else 3

    @property
    def title(self) -> str:
        """The setting's name on its own: its label, after its group's name when it has one."""
        return f"{self.group} {self.label.lower()}" if self.group else self.label


def setting(default, label: str, help: str = "", *, minimum=None, maximum=None, step=None, log=False,
            choices=None, in_form=True, advanced=False, above=False, group="", unit="", flag="", decimals=None):
    """A dataclass field with its own description (see module docstring)."""
    info = SettingInfo(label, help, minimum, maximum, step, log, choices, in_form, advanced, above, group, unit, flag,
                       decimals)
    return field(default=default, metadata={"setting": info})


def same_setting(cls, name: str, default=dataclasses.MISSING):
    """A field described as ``cls``'s field ``name`` (same label, help and range); its default unless given."""
    f = fields_by_name(cls)[name]
    return field(default=f.default if default is dataclasses.MISSING else default, metadata={"setting": info(f)})


def info(f: dataclasses.Field) -> SettingInfo | None:
    return f.metadata.get("setting")


def described_fields(cls_or_obj) -> list[dataclasses.Field]:
    """The fields that carry a :class:`SettingInfo`, in declaration order."""
    return [f for f in dataclasses.fields(cls_or_obj) if info(f) is not None]


def fields_by_name(cls_or_obj) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in described_fields(cls_or_obj)}


def field_types(cls) -> dict[str, type]:
    """Each field's plain type (int, float, bool, str), ``X | None`` unwrapped."""
    hints = _type_hints(cls)
    out = {}
    for name, hint in hints.items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = args[0] if typing.get_origin(hint) is not tuple and args else hint
    return out


def check_settings(obj) -> None:
    """Check a frozen dataclass's described fields in place, or raise ValueError naming the setting at fault.

    Each value must have its field's type (a whole number where an int is due; a list becomes a tuple), then lie
    in its range and choices; a (minimum, maximum) pair must also be in that order.
    """
    hints = _type_hints(type(obj))
    for f in described_fields(obj):
        meta, what = info(f), named(f)
        value = coerce(getattr(obj, f.name), hints[f.name], what, meta.unit)
        object.__setattr__(obj, f.name, value)
        if isinstance(value, str) and meta.choices is not None and value not in meta.choices():
            raise ValueError(f"unknown {meta.title.lower()} '{value}' (choose from {', '.join(meta.choices())})")
        if value is None or isinstance(value, (bool, str)):
            continue
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            rule = _broken_rule(meta, v)
            if rule:
                raise ValueError(f"{what} must be {rule} (got {_num(v)})")
        if _is_pair(hints[f.name]) and values[0] > values[1]:
            raise ValueError(f"{what} must give its minimum first, then its maximum "
                             f"(got {_num(values[0])}, {_num(values[1])})")


@functools.cache
def _type_hints(cls) -> dict:
    # Resolving the string annotations is most of the time of checking a settings object: a table of 500 runs
    # checks 2500 of them.
    return typing.get_type_hints(cls)


def named(f: dataclasses.Field) -> str:
    """'the batch size', 'the flip probability (flip_p)': how a message names a setting, with its key in the
    settings files and flags when the title does not already say it."""
    title = info(f).title.lower()
    return f"the {title}" if title == f.name.replace("_", " ") else f"the {title} ({f.name})"


def _broken_rule(meta: SettingInfo, value) -> str | None:
    low, high = meta.minimum, meta.maximum
    if meta.above and low is not None and (value <= low or high is not None and value > high):
        return f"more than {_num(low)}" if high is None else f"between {_num(low)} and {_num(high)}, not {_num(low)}"
    if low is not None and value < low:
        return f"at least {_num(low)}"
    if high is not None and value > high:
        return f"at most {_num(high)}"
    return None


def _is_pair(hint) -> bool:
    """A tuple[float, float] setting is a (minimum, maximum) range."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    hint = args[0] if typing.get_origin(hint) is not tuple and args else hint
    args = typing.get_args(hint)
    return typing.get_origin(hint) is tuple and len(args) == 2 and Ellipsis not in args


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def dataclass_from_dict(cls, data: dict, what: str):
    """Build a frozen dataclass from JSON data, refusing unknown keys and wrong types with a clear message."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} settings must be a JSON object, not {type(data).__name__}")
    hints = _type_hints(cls)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(map(str, unknown))}")
    values = {name: coerce(value, hints[name], f"{what} setting '{name}'") for name, value in data.items()}
    return cls(**values)


def coerce(value, hint, what: str, unit: str = ""):
    """Check one value against a field's type hint (str, bool, int, float, X | None, tuple[X, X], tuple[X, ...]);
    return it as that type. ``unit``: what a whole number counts, for the message."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:  # any length
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{what} must be a list of numbers")
            args = (args[0],) * len(value)
        elif not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{what} must be a list of {len(args)} numbers")
        return tuple(coerce(v, a, what, unit) for v, a in zip(value, args))
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ValueError(f"{what} must be {'true or false' if hint is bool else 'a string'}")
        return value
    # numbers.Real: numpy's scalars too (a resolution read from an array)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not _finite(value):
        raise ValueError(f"{what} must be a finite number")
    if hint is int:
        if value != int(value):
            raise ValueError(f"{what} must be a whole number" + (f" of {unit}" if unit else ""))
        return int(value)
    return float(value)


def _finite(value: int | float) -> bool:
    # JSON integers have no size limit, and math.isfinite raises OverflowError past the float range.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
