"""Small widgets every page uses: an inline message banner, an empty-state panel, the "Next" button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QToolButton, QVBoxLayout,
                               QWidget)


def shown(text) -> str:
    """A file name or path as text Qt can hold. A name that is not valid UTF-8 reaches Python with lone surrogates,
    which Qt silently drops (bees/\\udce9t\\udce9.jpg would show as bees/t.jpg, another file's possible name);
    its odd bytes are written out instead, as bees/\\xe9t\\xe9.jpg."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Banner(QFrame):
    """An inline message above a page's content; errors stay until closed, so they are never missed.

    Inline rather than a QMessageBox: it does not block the event loop, so progress keeps drawing, and tests can
    read it without patching modal dialogs.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self._label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(text="✕", autoRaise=True, toolTip="Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        """kind: "error", "warning" or "info" (the stylesheet colors each)."""
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self._label.setText(shown(text))
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self._label.text()

    def kind(self) -> str:
        return self.property("kind") or ""


class EmptyState(QWidget):
    """A centered title, a line of explanation and a few buttons: what to do before there is anything to show."""

    def __init__(self, title: str, text: str, parent=None) -> None:
        super().__init__(parent)
        self.title = QLabel(title, objectName="emptyTitle", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.text = QLabel(text, objectName="emptyText", alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        self.button_widgets: list[QPushButton] = []
        self._extra = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        layout.addSpacing(12)
        layout.addLayout(self.buttons)
        layout.addLayout(self._extra)
        layout.addStretch(3)

    def add_button(self, text: str, slot, primary: bool = False) -> QPushButton:
        button = QPushButton(text)
        if primary:
            button.setObjectName("primary")
        button.clicked.connect(slot)
        self.buttons.insertWidget(self.buttons.count(), button)
        self.button_widgets.append(button)
        return button

    def finish_buttons(self) -> None:
        self.buttons.addStretch(1)

    def add_widget(self, widget: QWidget) -> None:
        self._extra.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)


class NextButton(QPushButton):
    """"Next: <stage> →", the way forward through the four stages."""

    go = Signal()

    def __init__(self, stage: str, parent=None) -> None:
        super().__init__(f"Next: {stage}  →", parent)
        self.setObjectName("next")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.clicked.connect(self.go)


def page_header(title: str, subtitle: str) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 4)
    layout.setSpacing(2)
    box.title = QLabel(title, objectName="pageTitle")
    layout.addWidget(box.title)
    sub = QLabel(subtitle, objectName="pageSubtitle", wordWrap=True)
    layout.addWidget(sub)
    box.subtitle = sub
    return box


def footer(*widgets: QWidget) -> QHBoxLayout:
    """A row with the given widgets pushed to the right (where "Next" lives)."""
    row = QHBoxLayout()
    row.addStretch(1)
    for widget in widgets:
        row.addWidget(widget)
    return row


def separator() -> QFrame:
    line = QFrame(frameShape=QFrame.Shape.HLine)
    line.setObjectName("separator")
    return line
