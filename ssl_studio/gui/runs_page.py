"""The Runs page: every run of a workspace (a folder of run folders) in a table, and the runs that differ only by
seed grouped with their spread.

The workspace is the app's runs folder (the Train page's) until File > Open workspace… opens another. It is listed
in the background (core/workspace: the runs' small files only) each time the page is shown, on Refresh, when a
folder appears in or leaves the workspace, and when a stage of the app's own run finishes; a listing writes the
groups to the workspace's summary.json when they changed. A note is written to its run folder when edited; Open hands the run to the
window (as File > Open run); Compare these two runs hands two finished runs of one data folder to the Run vs run
page; Move to trash asks, then moves the folder to the system trash (workspace.trash_run). The buttons' actions are
the table's right-click menu too.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton,
                               QTableView, QTabWidget, QVBoxLayout, QWidget)
from superqt import QElidingLabel

from ssl_studio.core.session import FINISHED
from ssl_studio.core.workspace import WorkspaceError, list_runs, summary_of, trash_run, write_summary

from . import settings
from .explanations import RUNS
from .page import Page, error_text
from .runs_table import FILTERS, RunsFilter, RunsModel
from .seed_groups import SeedGroupsView
from .widgets import shown

FILTER_TITLES = {"data": "All data folders", "method": "All methods", "state": "All states"}
REASON_WIDTH = 260
RESIZE_ROWS = 40  # rows measured when the columns are fitted to their contents (all of them: 0.5 s for 500 runs)
WATCH_DELAY_MS = 500  # a sweep adding runs, or a copy, changes the folder many times in a row


def _listing(workspace: Path):
    """The runs and their groups; summary.json written when they changed and the workspace can be written (else
    why not)."""
    yield from ()  # a job's generator: this one has nothing to report before it returns
    rows = list_runs(workspace)
    summary = summary_of(rows)
    try:
        write_summary(workspace, summary)
        problem = ""
    except WorkspaceError as exc:
        problem = str(exc)
    return rows, summary, problem


def _where_runs_go(workspace: Path) -> str:
    return (f"Runs trained in the app, or by ssl-studio run --out into {shown(workspace)}, are listed here "
            f"({shown(workspace)} {'holds none yet' if workspace.exists() else 'does not exist yet'}).")


class RunsPage(Page):
    name, title = "runs", "Runs"
    listed = Signal()  # the table and the groups show the workspace as it was just read
    compareRunsRequested = Signal(str, str)  # two finished run folders of one data folder, for Run vs run

    def __init__(self, session=None, parent=None) -> None:
        super().__init__(session, "Every run in a workspace, a folder of run folders: sort, filter, write a note, "
                                  "open or delete one. Runs that differ only by their seed are grouped, with the "
                                  "spread of their seeds.", parent)
        self.opened_workspace: Path | None = None  # None: the app's runs folder
        self._names: set[str] | None = None  # the workspace's folders at the last listing
        self._again = False

        self.model = RunsModel(self)
        self.model.noteFailed.connect(lambda text: self.banner.show_message(f"The note was not saved: {text}"))
        self.proxy = RunsFilter(self)
        self.proxy.setSourceModel(self.model)

        self.workspace_label = QElidingLabel(elideMode=Qt.TextElideMode.ElideMiddle)
        self.open_button = QPushButton("Open workspace…", toolTip="List the runs of another folder of run folders")
        self.open_button.clicked.connect(self.open_workspace_dialog)
        self.refresh_button = QPushButton("Refresh", toolTip="Read the workspace again (F5)", shortcut="F5")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(QLabel("Workspace:"))
        top.addWidget(self.workspace_label, 1)
        top.addWidget(self.open_button)
        top.addWidget(self.refresh_button)

        self.filters: dict[str, QComboBox] = {}
        bar = QHBoxLayout()
        for key in FILTERS:
            combo = QComboBox(minimumContentsLength=14, sizeAdjustPolicy=QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(lambda _=0, k=key: self._filter_changed(k))
            self.filters[key] = combo
            bar.addWidget(combo)
        self.count = QLabel()
        bar.addWidget(self.count)
        bar.addStretch(1)
        self.open_run_button = QPushButton("Open run", toolTip="Show this run on the other pages (double-click a row)")
        self.open_run_button.clicked.connect(self.open_selected)
        self.compare_button = QPushButton("Compare these two runs", toolTip="Two finished runs of one data folder "
                                          "side by side on the Run vs run page")
        self.compare_button.clicked.connect(self.compare_selected)
        self.trash_button = QPushButton("Move to trash…", toolTip="Move the selected run folders to the system trash")
        self.trash_button.clicked.connect(self.trash_selected)
        bar.addWidget(self.open_run_button)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.trash_button)

        self.table = QTableView(sortingEnabled=True, alternatingRowColors=True, wordWrap=False)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setResizeContentsPrecision(RESIZE_ROWS)  # columns fit these rows: 500 stay quick
        self.table.sortByColumn(self.model.column("date"), Qt.SortOrder.DescendingOrder)
        self.table.doubleClicked.connect(self._double_clicked)
        # The right-click menu: the buttons' actions, for the rows selected.
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for button in (self.open_run_button, self.compare_button, self.trash_button):
            action = QAction(button.text(), self.table, toolTip=button.toolTip())
            action.triggered.connect(button.click)
            self.table.addAction(action)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

        self.verdict = QLabel(wordWrap=True, objectName="verdict",
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.groups = SeedGroupsView()
        self.detail = QLabel(wordWrap=True, objectName="runDetail",
                             textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        runs_tab = QWidget()
        runs_layout = QVBoxLayout(runs_tab)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        runs_layout.addWidget(self.table, 1)
        runs_layout.addWidget(self.detail)
        self.tabs = QTabWidget()
        self.tabs.addTab(runs_tab, "All runs")
        self.tabs.addTab(self.groups, "Seed groups")

        results = QWidget()
        layout = QVBoxLayout(results)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.verdict)
        layout.addWidget(self.tabs, 1)
        self.empty_state("No runs here yet", _where_runs_go(self.workspace),
                         [("Go to Train", lambda: self.goRequested.emit("train"))])
        self._layout.addLayout(top)
        self.add_results(results)
        self.explain(RUNS)

        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(lambda _path: self._watch_timer.start())
        self._watch_timer = QTimer(self, singleShot=True, interval=WATCH_DELAY_MS)
        self._watch_timer.timeout.connect(self._folder_changed)
        self.session.observe(FINISHED, lambda _stage, _run: self.isVisible() and self.refresh())
        self._show_workspace()
        self._update_buttons()

    # --- the workspace ----------------------------------------------------------------------------------------
    @property
    def workspace(self) -> Path:
        return self.opened_workspace or settings.runs_dir()

    def open_workspace_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a workspace (a folder of run folders)",
                                                  str(self.workspace))
        if folder:
            self.open_workspace(folder)

    def open_workspace(self, folder: str | Path) -> None:
        self.opened_workspace = Path(folder)
        self._show_workspace()
        self.refresh()

    def _show_workspace(self) -> None:
        self.workspace_label.setText(shown(self.workspace))
        self.workspace_label.setToolTip(shown(self.workspace))

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._show_workspace()  # the Train page may have chosen another runs folder
        self.refresh()

    def refresh(self) -> None:
        """Read the workspace again in the background; ``listed`` when the page shows it."""
        if self.is_running():
            self._again = True
            return
        workspace = self.workspace
        self.start_job(lambda _token: _listing(workspace), succeeded=lambda result: self._listed(workspace, result),
                       failed=self._listing_failed, ended=self._listing_ended)

    def _listed(self, workspace: Path, result) -> None:
        if not self._again:  # else it was read before the latest change or request: the next listing shows it
            self.show_runs(workspace, *result)

    def show_runs(self, workspace: Path, rows: list, summary: dict, problem: str = "") -> None:
        """The table, the groups and the verdict of ``workspace`` as listed (``problem``: why summary.json was not
        written); ``listed`` when they show."""
        self.banner.hide()
        if problem:
            self.banner.show_message(f"The groups were not saved: {problem}", "warning")
        selected = self.selected_names()
        header = self.table.horizontalHeader()
        section = header.sortIndicatorSection()
        sorted_by = self.model.columns[section].key if 0 <= section < len(self.model.columns) else "date"
        order = header.sortIndicatorOrder()
        self.model.set_runs(workspace, rows)
        keys = [c.key for c in self.model.columns]
        self.table.sortByColumn(keys.index(sorted_by) if sorted_by in keys else keys.index("date"), order)
        self.table.resizeColumnsToContents()
        why = self.model.column("reason")
        self.table.setColumnWidth(why, min(self.table.columnWidth(why), REASON_WIDTH))  # the whole in its tooltip
        self._fill_filters()
        self._select(selected)
        self.groups.show_groups(summary["groups"])
        self.verdict.setText(shown(summary["verdict"]))
        self.stack.setCurrentIndex(1 if rows else 0)
        self.empty.text.setText(_where_runs_go(workspace))
        self._names = self._folders(workspace)
        self._watch(workspace)
        self.listed.emit()

    def _listing_failed(self, exc: Exception) -> None:
        if self._again:
            return
        self.model.set_runs(self.workspace, [])
        self._fill_filters()
        self.groups.show_groups([])
        self.verdict.clear()
        self.stack.setCurrentIndex(0)
        missing = not self.workspace.exists()  # the app's runs folder before its first run
        self.empty.text.setText(_where_runs_go(self.workspace) if missing else
                                f"The workspace could not be read: {error_text(exc)}")
        self._watch(None)
        self.listed.emit()

    def _listing_ended(self) -> None:
        if self._again:
            self._again = False
            self.refresh()

    def _watch(self, workspace: Path | None) -> None:
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        if workspace is not None:
            self.watcher.addPath(str(workspace))

    @staticmethod
    def _folders(workspace: Path) -> set[str] | None:
        try:
            return {p.name for p in workspace.iterdir() if p.is_dir()}
        except OSError:
            return None

    def _folder_changed(self) -> None:
        # summary.json's own writes change the folder too: only a run folder coming or going is worth a listing.
        if self.isVisible() and self._folders(self.workspace) != self._names:
            self.refresh()

    # --- filters ----------------------------------------------------------------------------------------------
    def _fill_filters(self) -> None:
        wanted = dict(self.proxy.wanted)
        for key, combo in self.filters.items():
            chosen = combo.currentData()
            values = sorted({v for row in self.model.rows if (v := getattr(row, key)) is not None})
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(FILTER_TITLES[key], None)
            for value in values:
                combo.addItem(shown(Path(value).name if key == "data" else value), value)
                if key == "data":
                    combo.setItemData(combo.count() - 1, shown(value), Qt.ItemDataRole.ToolTipRole)
            combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen is not None else 0)
            combo.blockSignals(False)
            self.proxy.wanted[key] = combo.currentData()
        if self.proxy.wanted != wanted:  # a chosen value is gone (the model's reset filtered by the others)
            self.proxy.invalidate()
        self._show_count()

    def set_filter(self, key: str, value) -> None:
        """Show only the runs whose ``key`` (data, method or state) is ``value``; None shows all."""
        combo = self.filters[key]
        combo.setCurrentIndex(combo.findData(value) if value is not None else 0)

    def _filter_changed(self, key: str) -> None:
        self.proxy.set_filter(key, self.filters[key].currentData())
        self._show_count()
        self._update_buttons()

    def _show_count(self, *_args) -> None:
        total, shown_rows = self.model.rowCount(), self.proxy.rowCount()
        self.count.setText(f"{total} run{'s' * (total != 1)}" if shown_rows == total else
                           f"{shown_rows} of {total} runs")

    # --- selection, open, trash -------------------------------------------------------------------------------
    def visible_names(self) -> list[str]:
        """The run names in the table's order, as filtered and sorted."""
        return [self.proxy.index(r, 0).data() for r in range(self.proxy.rowCount())]

    def selected_names(self) -> list[str]:
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self.proxy.index(r, 0).data() for r in rows]

    def select(self, *names: str) -> None:
        self._select(list(names))

    def _select(self, names: list[str]) -> None:
        self.table.clearSelection()
        flags = self.table.selectionModel().SelectionFlag
        for r in range(self.proxy.rowCount()):
            if self.proxy.index(r, 0).data() in names:
                self.table.selectionModel().select(self.proxy.index(r, 0), flags.Select | flags.Rows)
        self._update_buttons()

    def _row(self, name: str):
        return next(row for row in self.model.rows if row.name == name)

    def _update_buttons(self, *_args) -> None:
        names = self.selected_names()
        self._show_detail(names)
        self.open_run_button.setEnabled(len(names) == 1 and self._row(names[0]).state != "damaged")
        self.compare_button.setEnabled(len(names) == 2)
        for button, action in zip((self.open_run_button, self.compare_button, self.trash_button),
                                  self.table.actions()):
            action.setEnabled(button.isEnabled())
        self.trash_button.setEnabled(bool(names))

    def _show_detail(self, names: list[str]) -> None:
        """The selected run's folder, and why it is damaged, failed or stopped; double-click edits the note."""
        if len(names) != 1:
            self.detail.setText("Select a run to open it or move it to the trash; double-click its note to edit it."
                                if not names else f"{len(names)} runs selected.")
            return
        row = self._row(names[0])
        text = f"{shown(self.model.workspace / row.name)} · {row.state}"
        self.detail.setText(text + (f": {shown(row.reason)}" if row.reason else ""))

    def _double_clicked(self, index) -> None:
        if self.model.columns[index.column()].key != "note":  # the note's double-click edits it
            self.select(index.siblingAtColumn(0).data())
            self.open_selected()

    def open_selected(self) -> None:
        names = self.selected_names()
        if len(names) == 1 and self._row(names[0]).state != "damaged":
            self.openRunAtRequested.emit(str(self.model.workspace / names[0]))

    def compare_selected(self) -> None:
        """The two selected runs on the Run vs run page; refused in the banner unless both are finished runs of one
        data folder (the maps of both, on the same images)."""
        names = self.selected_names()
        if len(names) != 2:
            return
        rows = [self._row(name) for name in names]
        unfinished = [row for row in rows if row.state != "finished"]
        if unfinished:
            self.banner.show_message(" ".join(f"{shown(row.name)} is {row.state}." for row in unfinished)
                                     + " Only finished runs have the maps Run vs run compares.", "warning")
        elif rows[0].data != rows[1].data:
            self.banner.show_message(f"{shown(rows[0].name)} and {shown(rows[1].name)} are runs of different data "
                                     f"folders ({shown(rows[0].data)}, {shown(rows[1].data)}): Run vs run compares "
                                     "two runs of the same images.", "warning")
        else:
            self.banner.hide()
            self.compareRunsRequested.emit(*(str(self.model.workspace / name) for name in names))

    def trash_selected(self) -> None:
        names = self.selected_names()
        if not names:
            return
        workspace = self.model.workspace
        current = self.session.run
        if current is not None and any((workspace / n).resolve() == current.path.resolve() for n in names):
            self.banner.show_message(f"{shown(current.path.name)} is the run the app has open (it may be training): "
                                     "open another run before moving it to the trash.", "warning")
            return
        what = shown(names[0]) if len(names) == 1 else f"these {len(names)} runs"
        answer = QMessageBox.question(self, "Move to trash?", f"Move {what} from {shown(workspace)} to the system "
                                      "trash? It can be restored from there.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        for name in names:
            try:
                trash_run(workspace, name)
            except WorkspaceError as exc:
                self.banner.show_message(str(exc))
                break
        else:
            self.statusMessage.emit(f"Moved {what} to the trash.", 5000)
        self.refresh()
