"""The line a page shows about the settings chosen for the open folder (core/folder_defaults.py): its reasons, what
the person changed since, and a link back to the folder's choice."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.folder_defaults import FolderDefaults
from ssl_studio.core.schema import fields_by_name, info

BACK = "folder"  # the link that sets the folder's choice again


def setting_title(setting: str) -> str:
    """'recipe.jitter_p' -> 'color jitter probability'."""
    kind, name = setting.split(".", 1)
    return info(fields_by_name(Recipe if kind == "recipe" else TrainConfig)[name]).title.lower()


class FolderNote(QLabel):
    """Hidden until a folder is open; ``back`` when the person asks for the folder's choice again."""

    back = Signal()

    def __init__(self, kind: str, parent=None) -> None:
        super().__init__(parent, objectName="folderNote", wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.kind = kind  # "recipe" or "train": the settings this page shows
        self.linkActivated.connect(lambda link: link == BACK and self.back.emit())
        self.hide()

    def show_choice(self, defaults: FolderDefaults | None, changed: list[str], extra: str = "") -> None:
        """The folder's facts and this page's reasons; ``changed``: the folder's settings set otherwise now."""
        if defaults is None:
            self.hide()
            return
        reasons = [rule.reason for rule in defaults.rules
                   if any(s.startswith(self.kind + ".") for s in rule.settings())]
        text = (f"<b>Chosen for this folder</b> ({html.escape(defaults.facts.describe())}):"
                + ("".join(f"<br>• {html.escape(r)}" for r in reasons) if reasons else " nothing to change here."))
        mine = [setting_title(s) for s in changed if s.startswith(self.kind + ".")]
        if mine:
            text += (f"<br><i>Changed by you: {html.escape(', '.join(mine))}.</i> "
                     f"<a href='{BACK}'>Back to the folder's choice</a>")
        self.setText(text + extra)
        self.show()
