"""The Audit view, a panel beside Compare's maps: what each space's audit flags (near-duplicate pairs side by side,
outliers, likely wrong labels with the label the neighbours suggest), ranked, and how many each space flags;
hovering an entry rings its image (a pair: both) on every map. Images are marked from the grid or from the maps' selection
("Label selection as…"): exclude, or relabel as a class. The marks are listed with undo, saved in the run folder as
they are made, exported as a CSV and a class-folder tree of links, and "Train again without them" trains a new run
on the curated set (the Train page's own start). The audit of a run without audit.json is computed in a job."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem,
                               QMenu, QPushButton, QToolButton, QVBoxLayout, QWidget)

from ssl_studio.core.audit import audit_run
from ssl_studio.core.coloring import AUDIT_KINDS
from ssl_studio.core.curation import EXCLUDE, RELABEL, Curation, Mark, link_tree, write_csv
from ssl_studio.core.runs import RunFolder

from ..page import Page, error_text
from ..widgets import shown
from .color_by import ColorBy
from .export import csv_and_links
from .linked import LinkedViews

THUMB = 48
PANEL_WIDTH = 365  # the inspector's: the two share the side of the maps
ENTRY_ROLE = Qt.ItemDataRole.UserRole  # the image numbers of an entry (a pair, or one image)
CSV_NAME, TREE_NAME = "curation.csv", "curated"


def _auditing(path: Path):
    yield from ()  # a job's generator, with nothing to report on the way
    return audit_run(path)


class _Leave(QObject):
    """Calls back when the mouse leaves the watched widget (the grid: no entry hovered any more)."""

    def __init__(self, parent, callback) -> None:
        super().__init__(parent)
        self.callback = callback

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Leave:
            self.callback()
        return False


class AuditPanel(QWidget):
    auditShown = Signal()  # the run's audit is in the grid (read from the run folder, or computed)
    marksChanged = Signal()
    trainAgainRequested = Signal(object)  # the Curation to train on

    def __init__(self, page: Page, linked: LinkedViews, color_by: ColorBy, parent=None) -> None:
        super().__init__(parent)
        self.setFixedWidth(PANEL_WIDTH)
        self.page, self.linked, self.color_by = page, linked, color_by
        self.run: RunFolder | None = None
        self.root: Path | None = None
        self.audit: dict | None = None
        self.curation = Curation()
        self.job = None

        self.kind = QComboBox(toolTip="What to list: each space ranks its findings, most suspicious first")
        for key, title in AUDIT_KINDS.items():
            self.kind.addItem(title, key)
        self.space = QComboBox(toolTip="The space whose findings are listed")
        self.kind.currentIndexChanged.connect(self._fill)
        self.space.currentIndexChanged.connect(self._fill)
        self.counts = QLabel("No run yet.", wordWrap=True, objectName="caption")
        self.grid = QListWidget(viewMode=QListView.ViewMode.IconMode, movement=QListView.Movement.Static,
                                resizeMode=QListView.ResizeMode.Adjust, spacing=2, mouseTracking=True,
                                wordWrap=True,
                                selectionMode=QListWidget.SelectionMode.ExtendedSelection)
        self.grid.itemEntered.connect(self._hovered)
        self.grid.itemSelectionChanged.connect(self._suggest)
        self.grid.viewport().installEventFilter(_Leave(self.grid, lambda: self.linked.set_hover(-1)))
        self.exclude_button = QPushButton("Exclude", toolTip="Leave the chosen images out (of a pair, the second "
                                                             "one: the first copy stays)")
        self.exclude_button.clicked.connect(lambda: self.mark_entries(EXCLUDE))
        self.relabel_to = QComboBox(toolTip="The class to give the chosen images (a suspect's suggestion first)")
        self.relabel_button = QPushButton("Relabel as")
        self.relabel_button.clicked.connect(lambda: self.mark_entries(RELABEL, self.relabel_to.currentText()))
        self.marks_title = QLabel("<b>Marks</b>: none yet", objectName="sectionTitle", wordWrap=True)
        self.marks = QListWidget(maximumHeight=76)  # four marks; the grid above gets the height
        self.undo_button = QPushButton("Undo", toolTip="Take back the last mark")
        self.undo_button.clicked.connect(self.undo)
        self.export_button = QPushButton("Export…", toolTip=f"{CSV_NAME} (path, action, new label) and a folder "
                                                            f"{TREE_NAME}/ of the curated images by class (links)")
        self.export_button.clicked.connect(self._export_dialog)
        self.train_button = QPushButton("Train again without them", objectName="primary",
                                        toolTip="A new run on the curated set, with the Train page's settings; "
                                                "then compare the two runs")
        self.train_button.clicked.connect(lambda: self.trainAgainRequested.emit(self.curation_to_train()))
        # Next to the selection bar's own actions: the maps' selection (a rectangle or a lasso) marked at once.
        self.selection_button = QToolButton(text="Label selection as…", toolTip="Mark every selected image",
                                            popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.selection_menu = QMenu(self.selection_button)
        self.selection_button.setMenu(self.selection_menu)

        choose = QHBoxLayout()
        choose.addWidget(self.kind, 1)
        choose.addWidget(QLabel("in"))
        choose.addWidget(self.space, 1)
        act = QHBoxLayout()
        for widget in (self.exclude_button, self.relabel_button, self.relabel_to):
            act.addWidget(widget)
        marks = QHBoxLayout()  # the marks' own buttons beside their title: "Train again" gets a row of its own
        marks.addWidget(self.marks_title, 1)
        for widget in (self.undo_button, self.export_button):
            marks.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(choose)
        layout.addWidget(self.counts)
        layout.addWidget(self.grid, 1)
        layout.addLayout(act)
        layout.addLayout(marks)
        layout.addWidget(self.marks)
        layout.addWidget(self.train_button)
        self.reset(None, None)

    # --- a run ------------------------------------------------------------------------------------------------
    def reset(self, run: RunFolder | None, root: Path | None) -> None:
        """A new run whose images (the linked views' paths) lie under ``root``; its marks read back."""
        if self.job is not None and self.job.running:
            self.job.cancel()
        self.run, self.root, self.audit, self.job = run, root, None, None
        self.space.blockSignals(True)
        self.space.clear()
        self.space.blockSignals(False)
        self.grid.clear()
        self.relabel_to.clear()
        self.relabel_to.addItems(self.linked.class_names)
        self.selection_menu.clear()
        self.selection_menu.addAction("Exclude", lambda: self.mark_selection(EXCLUDE))
        for name in self.linked.class_names:
            self.selection_menu.addAction(f"Relabel as {shown(name)}", lambda name=name: self.mark_selection(
                RELABEL, name))
        self.counts.setText("The audit comes with the maps." if run is not None else "No run yet.")
        try:
            self.curation = run.read_curation() if run is not None else Curation()
        except ValueError as exc:
            self.curation = Curation()
            self.page.banner.show_message(f"Its marks could not be read: {error_text(exc)}")
        self._show_marks()

    def load(self) -> None:
        """Show the run's audit: audit.json when it has one, else computed in a job (not on the GUI thread)."""
        run, paths = self.run, list(self.linked.paths)
        if run is None:
            return
        try:
            audit = run.read_audit(paths)
        except ValueError as exc:
            self.page.banner.show_message(f"Its audit could not be read ({error_text(exc)}); auditing again.")
            audit = None
        if audit is not None:
            self.show_audit(audit)
            return
        self.counts.setText("Auditing each space (near-duplicates, outliers, likely wrong labels)…")

        def for_this_run(handler):
            return lambda *args: handler(*args) if self.run is run else None

        self.job = self.page.start_job(
            lambda _token: _auditing(run.path), primary=False, succeeded=for_this_run(self.show_audit),
            failed=for_this_run(lambda exc: self.counts.setText(f"No audit: {html.escape(error_text(exc))}")))

    def show_audit(self, audit: dict) -> None:
        self.audit = audit
        spaces = self.linked.maps.spaces
        self.space.blockSignals(True)
        self.space.clear()
        for space in self._spaces():
            self.space.addItem(spaces[space].title if space in spaces else space, space)
        self.space.setCurrentIndex(max(0, self.space.findData("ssl")))
        self.space.blockSignals(False)
        model = self.kind.model()
        model.item(list(AUDIT_KINDS).index("mislabeled")).setEnabled(not audit.get("no_label_audit"))
        if audit.get("no_label_audit") and self.kind.currentData() == "mislabeled":
            self.kind.setCurrentIndex(0)
        self.color_by.set_audit(audit, list(self.linked.paths))
        self._fill()
        self.auditShown.emit()

    def _spaces(self) -> list[str]:
        """The audit's spaces in the order of the maps (audit.json keeps them sorted by name)."""
        found = self.audit["spaces"]
        mapped = self.linked.maps.spaces
        return [s for s in mapped if s in found] + [s for s in found if s not in mapped]

    def _count_text(self) -> str:
        rows = []
        for space in self._spaces():
            found = self.audit["spaces"][space]
            name = self.linked.maps.spaces[space].short if space in self.linked.maps.spaces else space
            leaks = f" ({len(found['leaks'])} across the split)" if found.get("leaks") else ""
            labels = "" if self.audit.get("no_label_audit") else f" · {len(found['mislabeled']):,} labels"
            rows.append(f"<b>{html.escape(name)}</b>: {len(found['duplicates']):,} pairs{leaks} · "
                        f"{len(found['outliers']):,} outliers{labels}")
        why = self.audit.get("no_label_audit")
        return "<br>".join(rows) + (f"<br>No label audit: {html.escape(why)}." if why else "")

    # --- the grid ---------------------------------------------------------------------------------------------
    def entries(self) -> list[tuple[list[int], str]]:
        """The listed kind in the chosen space, most suspicious first: (image numbers, caption) of each."""
        if self.audit is None or self.space.currentData() not in self.audit["spaces"]:
            return []
        found, kind = self.audit["spaces"][self.space.currentData()], self.kind.currentData()
        index = {p: i for i, p in enumerate(self.linked.paths)}
        if kind == "duplicates":
            leaks = {tuple(pair) for pair in found.get("leaks", ())}
            return [([index[a], index[b]], "across the split" if (a, b) in leaks else "")
                    for a, b in found["duplicates"]]
        if kind == "outliers":
            return [([index[p]], self.linked.caption(index[p])) for p in found["outliers"]]
        return [([index[p]], f"{self.linked.caption(index[p])} → {found['suggested'].get(p, '?')}")
                for p in found["mislabeled"]]

    def _fill(self) -> None:
        self.grid.clear()
        if self.audit is None:
            return
        self.counts.setText(self._count_text())
        pair = self.kind.currentData() == "duplicates"
        icon = QSize(2 * THUMB + 2 if pair else THUMB, THUMB)
        self.grid.setIconSize(icon)
        # Cells of one size, two lines of caption under the icon: the entries line up in columns.
        lines = 2 * self.grid.fontMetrics().lineSpacing()
        self.grid.setGridSize(QSize(icon.width() + (12 if pair else 36), THUMB + lines + 8))
        for rank, (images, caption) in enumerate(self.entries(), 1):
            item = QListWidgetItem(self._icon(images), shown(f"{rank}. {caption}" if caption else f"{rank}"))
            item.setData(ENTRY_ROLE, images)
            item.setToolTip("\n".join(shown(self.linked.paths[i]) for i in images))
            self.grid.addItem(item)

    def _icon(self, images: list[int]) -> QPixmap:
        """The entry's thumbnails side by side (a pair), or its one thumbnail."""
        if len(images) == 1:
            return self.linked.cache.pixmap(images[0], THUMB)
        canvas = QPixmap(len(images) * (THUMB + 2) - 2, THUMB)
        canvas.fill(Qt.GlobalColor.transparent)
        painter = QPainter(canvas)
        for k, i in enumerate(images):
            painter.drawPixmap(k * (THUMB + 2), 0, self.linked.cache.pixmap(i, THUMB))
        painter.end()
        return canvas

    def _hovered(self, item: QListWidgetItem) -> None:
        first, *partners = item.data(ENTRY_ROLE)
        self.linked.set_hover(first, partners=partners)

    def _suggest(self) -> None:
        """A suspect label chosen: its suggestion becomes the class to relabel as."""
        if self.kind.currentData() != "mislabeled" or not self.grid.selectedItems():
            return
        path = self.linked.paths[self.grid.selectedItems()[0].data(ENTRY_ROLE)[0]]
        suggested = self.audit["spaces"][self.space.currentData()]["suggested"].get(path)
        if suggested in self.linked.class_names:
            self.relabel_to.setCurrentText(suggested)

    # --- marks ------------------------------------------------------------------------------------------------
    def mark_entries(self, action: str, label: str | None = None) -> Mark | None:
        """Mark the images of the chosen grid entries (of a pair, the second when excluding)."""
        chosen = [item.data(ENTRY_ROLE) for item in self.grid.selectedItems()]
        return self._mark(action, [images[-1] if action == EXCLUDE else images[0] for images in chosen], label)

    def mark_selection(self, action: str, label: str | None = None) -> Mark | None:
        """Mark every image of the maps' selection (a rectangle or a lasso)."""
        return self._mark(action, self.linked.selection.tolist(), label)

    def _mark(self, action: str, images: list[int], label: str | None) -> Mark | None:
        if self.run is None:
            return None
        if not images:
            self.page.banner.show_message("Choose images first: entries of the grid, or a selection on the maps.",
                                          "info")
            return None
        if action == RELABEL and label not in self.linked.class_names:
            self.page.banner.show_message("There is no class to relabel as: this folder has no labels."
                                          if not self.linked.class_names else f"There is no class {label}.")
            return None
        mark = self.curation.mark(action, [self.linked.paths[i] for i in dict.fromkeys(images)], label)
        self._save()
        return mark

    def undo(self) -> Mark | None:
        mark = self.curation.undo()
        if mark is not None:
            self._save()
        return mark

    def _save(self) -> None:
        try:
            self.run.write_curation(self.curation)
        except OSError as exc:
            self.page.banner.show_message(f"The marks could not be saved: {error_text(exc)}")
        self._show_marks()
        self.marksChanged.emit()

    def _show_marks(self) -> None:
        self.marks.clear()
        for mark in reversed(self.curation.marks):  # the one undo takes back first
            what = "Exclude" if mark.action == EXCLUDE else f"Relabel as {mark.label}:"
            names = ", ".join(Path(p).name for p in mark.paths[:3]) + (" …" if len(mark.paths) > 3 else "")
            self.marks.addItem(shown(f"{what} {len(mark.paths)} image(s) ({names})"))
        excluded, relabelled = self.curation.counts()
        self.marks_title.setText(f"<b>Marks</b>: {excluded:,} excluded, {relabelled:,} relabelled"
                                 if self.curation.marks else "<b>Marks</b>: none yet")
        for button in (self.undo_button, self.export_button, self.train_button):
            button.setEnabled(bool(self.curation.marks))

    def curation_to_train(self) -> Curation:
        """The marks, after those the run itself was curated with (if it was), as a curation of this run's file."""
        try:
            earlier = Curation.recorded(self.run.read_settings().curation)
        except ValueError:
            earlier = None
        return Curation(self.curation.marks, self.run.curation_path).after(earlier)

    # --- export -----------------------------------------------------------------------------------------------
    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the curated images into", str(Path.home()))
        if folder:
            self.export(folder)

    def export(self, folder: str | Path) -> list[Path]:
        """``folder``/curation.csv and ``folder``/curated/ (the curated images by class, linked or copied)."""
        def write(csv_path: Path, tree: Path) -> tuple[int, int]:
            curated = self.curation.curated_list(self.linked.paths, self.linked.labels, self.linked.class_names)
            copied = link_tree(tree, self.root, curated)  # refused whole before the CSV is written
            write_csv(csv_path, self.curation)
            return len(curated), copied

        return csv_and_links(self.page, folder, "curated images", CSV_NAME, TREE_NAME, write)
