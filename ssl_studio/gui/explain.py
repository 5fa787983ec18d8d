"""The explanation panel every page has (Page.explain): plain words beside a small figure, folded away under a
"How this works" button until asked for. Whether it is open is remembered for each page."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from . import settings


class ExplanationPanel(QFrame):
    toggled = Signal(bool)

    def __init__(self, key: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("explanation")
        self._key = f"explanation/{key}"
        self.figure: QWidget | None = None
        # The button lives in the page's title row (Page puts it there); the panel is the body it opens.
        self.button = QToolButton(text="How this works", checkable=True, autoRaise=True, objectName="explainToggle",
                                  toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon,
                                  toolTip="What this step does, in plain words")
        self.button.toggled.connect(self.set_expanded)
        self.button.hide()
        self.text = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText, objectName="explanationText",
                           alignment=Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._figure_box = QVBoxLayout()
        self._figure_box.setContentsMargins(0, 0, 0, 0)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(16)
        layout.addWidget(self.text, 1)
        layout.addLayout(self._figure_box)
        self.hide()

    def set_content(self, html: str, figure: QWidget | None = None) -> None:
        """The page's explanation; the first call also shows the button, and the panel as the user left it."""
        self.text.setText(html)
        if figure is not None and figure is not self.figure:
            if self.figure is not None:
                self.figure.deleteLater()
            self.figure = figure
            self._figure_box.addWidget(figure, 0, Qt.AlignmentFlag.AlignTop)
        if self.button.isHidden():
            self.button.show()
            self.set_expanded(bool(settings.load_json(self._key, False)), remember=False)

    def set_text(self, html: str) -> None:
        self.text.setText(html)

    def is_expanded(self) -> bool:
        return self.button.isChecked()

    def set_expanded(self, expanded: bool, remember: bool = True) -> None:
        """Open or fold the panel; ``remember``: as the page's choice for the next sessions."""
        self.button.blockSignals(True)
        self.button.setChecked(expanded)
        self.button.blockSignals(False)
        self.button.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.setVisible(expanded)
        if remember:
            settings.save_json(self._key, expanded)
        self.toggled.emit(expanded)
