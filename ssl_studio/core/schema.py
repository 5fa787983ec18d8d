"""Settings as frozen dataclasses whose fields describe themselves, so forms, flags and checks are generated.

A field made with :func:`setting` carries its label, help text and allowed range in its metadata. The Train page
builds its controls from that, the command line its flags, and :func:`check_ranges` its validation, so a new
setting is one line in one dataclass (ARCHITECTURE.md, "Adding a method").
"""

from __future__ import annotations

import dataclasses
import math
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


def setting(default, label: str, help: str = "", *, minimum=None, maximum=None, step=None, log=False,
            choices=None, in_form=True, advanced=False):
    """A dataclass field with its own description (see module docstring)."""
    info = SettingInfo(label, help, minimum, maximum, step, log, choices, in_form, advanced)
    return field(default=default, metadata={"setting": info})


def info(f: dataclasses.Field) -> SettingInfo | None:
    return f.metadata.get("setting")


def described_fields(cls_or_obj) -> list[dataclasses.Field]:
    """The fields that carry a :class:`SettingInfo`, in declaration order."""
    return [f for f in dataclasses.fields(cls_or_obj) if info(f) is not None]


def field_types(cls) -> dict[str, type]:
    """Each field's plain type (int, float, bool, str), ``X | None`` unwrapped."""
    hints = typing.get_type_hints(cls)
    out = {}
    for name, hint in hints.items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[name] = args[0] if typing.get_origin(hint) is not tuple and args else hint
    return out


def check_ranges(obj) -> None:
    """Refuse a value outside its field's range or choices, with the field's label in the message."""
    for f in described_fields(obj):
        value, meta = getattr(obj, f.name), info(f)
        if isinstance(value, str) and meta.choices is not None and value not in meta.choices():
            raise ValueError(f"unknown {meta.label.lower()} '{value}' (choose from {', '.join(meta.choices())})")
        if value is None or isinstance(value, (bool, str)):
            continue
        if meta.minimum is not None and value < meta.minimum:
            raise ValueError(f"the {meta.label.lower()} must be at least {_num(meta.minimum)} (got {_num(value)})")
        if meta.maximum is not None and value > meta.maximum:
            raise ValueError(f"the {meta.label.lower()} must be at most {_num(meta.maximum)} (got {_num(value)})")


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def dataclass_from_dict(cls, data: dict, what: str):
    """Build a frozen dataclass from JSON data, refusing unknown keys and wrong types with a clear message."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} settings must be a JSON object, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(map(str, unknown))}")
    values = {name: coerce(value, hints[name], f"{what} setting '{name}'") for name, value in data.items()}
    return cls(**values)


def coerce(value, hint, what: str):
    """Check one JSON value against a field's type hint (str, bool, int, float, X | None, tuple[...])."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{what} must be a list of {len(args)} numbers")
        return tuple(coerce(v, a, what) for v, a in zip(value, args))
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ValueError(f"{what} must be {'true or false' if hint is bool else 'a string'}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise ValueError(f"{what} must be a finite number")
    if hint is int:
        if value != int(value):
            raise ValueError(f"{what} must be a whole number")
        return int(value)
    return float(value)


def _finite(value: int | float) -> bool:
    # JSON integers have no size limit, and math.isfinite raises OverflowError past the float range.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
