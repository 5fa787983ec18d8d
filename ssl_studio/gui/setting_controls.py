"""Controls generated from a settings dataclass (core/schema.py): one widget per described field.

The Train page shows TrainConfig's settings and the chosen method's own through this, so a setting added to a
dataclass appears in the app with its label, range and help without any page code.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QSpinBox, QWidget)

from ssl_studio.core.schema import described_fields, field_types, info

_INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int


class SettingControls(QObject):
    """The widgets of one settings dataclass; ``choices`` narrows a choice field (value -> title); ``names``: only
    these fields (by default those shown in forms)."""

    changed = Signal()

    def __init__(self, cls, parent: QObject | None = None, *, choices: dict[str, dict[str, str]] | None = None,
                 names: list[str] | None = None) -> None:
        super().__init__(parent)
        self.cls = cls
        self.widgets: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        types = field_types(cls)
        for f in described_fields(cls):
            meta = info(f)
            if f.name not in names if names is not None else not meta.in_form:
                continue
            options = (choices or {}).get(f.name) or (meta.choices() if meta.choices else None)
            widget = self._make(types[f.name], meta, options)
            widget.setToolTip(meta.help)
            self.widgets[f.name] = widget
            self.labels[f.name] = QLabel(meta.label, toolTip=meta.help)
            self.set_value(f.name, f.default)

    def _make(self, kind: type, meta, options: dict[str, str] | None) -> QWidget:
        if kind is bool:
            widget = QCheckBox()
            widget.toggled.connect(self.changed)
        elif options is not None:
            widget = QComboBox()
            for value, title in options.items():
                widget.addItem(title or value, value)
            widget.currentIndexChanged.connect(self.changed)
        elif kind is int:
            lo = meta.minimum + meta.above if meta.minimum is not None else -_INT_LIMIT
            widget = QSpinBox(minimum=int(max(-_INT_LIMIT, lo)),
                              maximum=int(min(_INT_LIMIT, meta.maximum if meta.maximum is not None else _INT_LIMIT)))
            widget.setSingleStep(int(meta.step or 1))
            widget.valueChanged.connect(self.changed)
        else:
            decimals = meta.decimals if meta.decimals is not None else 6 if meta.log else 3
            # A minimum the setting refuses (a duration of 0 s): the spin box starts one shown digit above it.
            lo = meta.minimum + meta.above * 10 ** -decimals if meta.minimum is not None else -1e9
            hi = meta.maximum if meta.maximum is not None else 1e9
            widget = QDoubleSpinBox(minimum=lo, maximum=hi, decimals=decimals)
            if meta.log:  # a learning rate: steps of about a tenth of the value, whatever its size
                widget.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
            else:
                widget.setSingleStep(meta.step or (hi - lo) / 10)
            widget.valueChanged.connect(self.changed)
        if meta.unit and isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setSuffix(f" {meta.unit}")
        return widget

    def add_rows(self, form: QFormLayout, names: list[str] | None = None) -> None:
        for name in names or list(self.widgets):
            form.addRow(self.labels[name], self.widgets[name])

    def advanced(self) -> list[str]:
        """The settings the app folds away until asked (SettingInfo.advanced)."""
        return [f.name for f in described_fields(self.cls) if f.name in self.widgets and info(f).advanced]

    def value(self, name: str):
        widget = self.widgets[name]
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):  # an item added by its text alone stands for that text
            return widget.currentText() if widget.currentData() is None else widget.currentData()
        return widget.value()

    def values(self) -> dict:
        return {name: self.value(name) for name in self.widgets}

    def set_value(self, name: str, value) -> bool:
        """Show ``value``; False (and nothing changed) when the widget cannot hold it."""
        widget = self.widgets.get(name)
        if widget is None:
            return False
        if isinstance(widget, QCheckBox):
            if not isinstance(value, bool):
                return False
            widget.setChecked(value)
        elif isinstance(widget, QComboBox):
            index = widget.findData(value)
            if index < 0:
                return False
            widget.setCurrentIndex(index)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            widget.setValue(value)
        return True

    def set_values(self, values: dict) -> None:
        for name, value in values.items():
            self.set_value(name, value)

    def set_enabled(self, enabled: bool) -> None:
        for widget in self.widgets.values():
            widget.setEnabled(enabled)
