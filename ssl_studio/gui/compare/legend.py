"""The row above the maps: what they are colored by, the colors' key (a swatch and a count per class or group, each
a button that hides or shows its points in every map), and which projection shows."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QToolButton, QWidget
from superqt import QFlowLayout

from ssl_studio.core.coloring import AUDIT_KINDS, Coloring

from ..colors import swatch
from ..widgets import shown

COLOR_BY = {"class": "Class", "cluster": "k-means cluster", "split": "Train / held out", "mistakes": "kNN mistakes",
            **AUDIT_KINDS}
COLOR_BY_TIPS = {
    "class": "Each image's class (its folder)",
    "cluster": "k-means clusters of the self-supervised space (raw pixels without one), the same in every map",
    "split": "The images the kNN and the linear probe are fitted on (train) and those they are scored on (held out)",
    "mistakes": "In each map, the held-out images that space's kNN gets wrong, in red on top: where pixels fail "
                "and a trained network does not",
    "duplicates": "In each map, the pairs of images that space finds far closer than images usually are; a pair "
                  "split across train and held out (the same picture scored against itself) in red",
    "outliers": "In each map, the images that space finds far from every class (or cluster)",
    "mislabeled": "In each map, the images whose nearest neighbours in that space vote for another class",
}
HIDDEN_COLOR = "#e3e5ea"
ENTRY_TIP = "Click to hide or show these points in every map; double-click to show them alone."


class LegendEntry(QToolButton):
    """A group's swatch and name: checked while its points are shown."""

    doubleClicked = Signal()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 (Qt API)
        # Not a second click: the first one already toggled, this one shows the group alone.
        event.accept()
        self.doubleClicked.emit()


class Legend(QWidget):
    colorByChanged = Signal(str)  # a key of its choices
    hiddenChanged = Signal(object)  # frozenset of the group numbers not drawn

    def __init__(self, choices: dict[str, str] = COLOR_BY, tips: dict[str, str] = COLOR_BY_TIPS,
                 parent=None) -> None:
        """``choices``: what the maps can be colored by (key: its name in the box), each with its tip."""
        super().__init__(parent)
        self.choices = choices
        self.color_by = QComboBox(toolTip="What the points' colors show")
        for key, text in choices.items():
            self.color_by.addItem(text, key)
            self.color_by.setItemData(self.color_by.count() - 1, tips[key], Qt.ItemDataRole.ToolTipRole)
        self.color_by.currentIndexChanged.connect(lambda _: self.colorByChanged.emit(self.color_by.currentData()))
        self.entries = QWidget()
        self.flow = QFlowLayout(self.entries)
        self.flow.setContentsMargins(0, 0, 0, 0)
        self.flow.setSpacing(2)
        self.buttons: list[LegendEntry] = []
        self.colors: list[str] = []
        self.hidden: frozenset[int] = frozenset()
        self.show_all = QToolButton(text="Show all", toolTip="Show the points of every group again")
        self.show_all.clicked.connect(lambda: self.set_hidden(()))
        self.show_all.hide()
        self.projection = QLabel(objectName="caption",
                                 toolTip="PCA is instant but squashes clusters together; UMAP keeps neighbourhoods "
                                         "and shows clusters far better.")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Color by"))
        row.addWidget(self.color_by)
        row.addSpacing(8)
        row.addWidget(self.entries, 1)
        row.addWidget(self.show_all)
        row.addWidget(self.projection)

    def count(self) -> int:
        return len(self.buttons)

    def choice(self) -> str:
        return self.color_by.currentData()

    def set_choices(self, available: set[str], choice: str) -> None:
        """Offer the ways to color that this run has (the others greyed out), ``choice`` chosen; no signal."""
        model = self.color_by.model()
        for row, key in enumerate(self.choices):
            model.item(row).setEnabled(key in available)
        self.color_by.blockSignals(True)
        self.color_by.setCurrentIndex(list(self.choices).index(choice))
        self.color_by.blockSignals(False)

    def set_coloring(self, coloring: Coloring, counts: bool = True) -> None:
        """A button per group of ``coloring`` (with its number of images when ``counts``), every group shown."""
        for button in self.buttons:
            self.flow.removeWidget(button)
            button.hide()  # deleteLater waits for the event loop: hidden now, so old and new never overlap
            button.deleteLater()
        self.buttons, self.colors = [], [coloring.color(k) for k in range(len(coloring.names))]
        numbers = coloring.counts()
        for k, name in enumerate(coloring.names):
            button = LegendEntry(text=shown(name) + (f" ({numbers[k]:,})" if counts else ""), checkable=True,
                                 checked=True, autoRaise=True, objectName="legendEntry", toolTip=ENTRY_TIP)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.clicked.connect(lambda _, k=k: self._toggle(k))
            button.doubleClicked.connect(lambda k=k: self.set_hidden(set(range(len(self.buttons))) - {k}))
            self.buttons.append(button)
            self.flow.addWidget(button)
        self._show_hidden(frozenset())

    def set_hidden(self, groups) -> None:
        """Hide these groups (in the key, and in the maps through hiddenChanged)."""
        self._show_hidden(frozenset(groups))
        self.hiddenChanged.emit(self.hidden)

    def _toggle(self, k: int) -> None:
        self.set_hidden(self.hidden ^ {k})

    def _show_hidden(self, hidden: frozenset[int]) -> None:
        self.hidden = hidden
        for k, button in enumerate(self.buttons):
            button.setChecked(k not in hidden)
            button.setIcon(swatch(HIDDEN_COLOR if k in hidden else self.colors[k], 10))
        self.show_all.setVisible(bool(hidden))
