"""The Runs page's table: one row per run of the workspace (core/workspace.RunRow), a column per field and per
space's kNN and linear probe, sorted by the raw values and filtered by data folder, method and state.

The note column is editable; an edit is written to the run folder at once (runs.RunFolder.write_note).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor

from ssl_studio.core.runs import RunError, RunFolder
from ssl_studio.core.spaces import BUILT_IN
from ssl_studio.core.workspace import RunRow

from .widgets import shown

SORT_ROLE = Qt.ItemDataRole.UserRole  # the raw value a column sorts and filters by
STATE_COLORS = {"damaged": "#b3261e", "failed": "#b3261e", "cancelled": "#9a6700", "running": "#3558d6",
                "queued": "#5b6270"}
FILTERS = ("data", "method", "state")  # the columns the page filters by


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    return f"{seconds:.1f} s" if seconds < 60 else f"{minutes} min {rest:02d} s"


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    value: Callable[[RunRow], object]  # what it sorts by (None sorts last)
    text: Callable[[object], str] = lambda v: "" if v is None else shown(v)
    right: bool = False  # figures align right
    tip: str = ""


def _columns(spaces: list[str]) -> list[Column]:
    short = {space.name: space.short for space in BUILT_IN}
    scores = [Column(f"{space}_{probe}", f"{short.get(space, space)} {title}",
                     lambda r, s=space, p=probe: r.scores.get(s, {}).get(f"{p}_top1"), percent, True,
                     f"{title} top-1 of the {short.get(space, space)} space on the held-out images")
              for space in spaces for probe, title in (("knn", "kNN"), ("linear", "linear"))]
    ssl = [c for c in scores if c.key.startswith("ssl_")]
    return [
        Column("name", "run", lambda r: r.name),
        Column("state", "state", lambda r: r.state),
        Column("data", "data folder", lambda r: r.data, lambda v: "" if v is None else shown(Path(v).name)),
        Column("method", "method", lambda r: r.method),
        Column("backbone", "backbone", lambda r: r.backbone),
        Column("recipe", "recipe", lambda r: r.recipe, tip="The augmentation preset the run's recipe equals"),
        Column("budget", "budget", lambda r: r.budget),
        Column("seed", "seed", lambda r: r.seed, right=True),
        *ssl,
        Column("transfer_1pct", "transfer 1 %", lambda r: r.transfer_1pct, percent, True,
               "The SSL space's linear probe with 1 % of the training labels (Transfer page)"),
        *(c for c in scores if c not in ssl),
        Column("seconds", "training", lambda r: r.seconds, duration, True, "SSL training time"),
        Column("views_per_second", "views/s", lambda r: r.views_per_second,
               lambda v: "" if v is None else f"{v:,.0f}", True, "Augmented views per second while SSL trained"),
        Column("date", "date (UTC)", lambda r: r.date, lambda v: "" if v is None else v.replace("T", " ")[:16]),
        Column("note", "note", lambda r: r.note, lambda v: v.replace("\n", " ")),
        Column("reason", "why", lambda r: r.reason, tip="Why a run is damaged, failed or stopped"),
    ]


def spaces_of(rows: list[RunRow]) -> list[str]:
    """The spaces any run scored, the built-in ones first in their order."""
    found = {space for row in rows for space in row.scores}
    order = [space.name for space in BUILT_IN]
    return [s for s in order if s in found] + sorted(found - set(order))


class RunsModel(QAbstractTableModel):
    noteFailed = Signal(str)  # why a note could not be written

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.workspace: Path | None = None
        self.rows: list[RunRow] = []
        self.columns = _columns([])

    def set_runs(self, workspace: Path, rows: list[RunRow]) -> None:
        self.beginResetModel()
        self.workspace, self.rows, self.columns = workspace, rows, _columns(spaces_of(rows))
        self.endResetModel()

    def column(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 (Qt API)
        if orientation != Qt.Orientation.Horizontal:
            return None
        column = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tip or None
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        row, column = self.rows[index.row()], self.columns[index.column()]
        value = column.value(row)
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(value)
        if role == Qt.ItemDataRole.EditRole:
            return value if column.key == "note" else column.text(value)
        if role == SORT_ROLE:
            return value
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(row, column, value)
        if role == Qt.ItemDataRole.ForegroundRole and column.key in ("state", "reason") and row.state in STATE_COLORS:
            return QColor(STATE_COLORS[row.state])
        if role == Qt.ItemDataRole.TextAlignmentRole and column.right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _tip(row: RunRow, column: Column, value) -> str | None:
        if column.key == "data" and value:
            return shown(value)
        if column.key == "note":
            return shown(value) or "Double-click to write a note; it is saved in the run folder"
        if row.reason and column.key in ("name", "state", "reason"):
            return shown(f"{row.state}: {row.reason}")
        return None

    def flags(self, index):
        flags = super().flags(index)
        if self.columns[index.column()].key == "note":
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802 (Qt API)
        if role != Qt.ItemDataRole.EditRole or self.columns[index.column()].key != "note":
            return False
        row = self.rows[index.row()]
        try:
            RunFolder(self.workspace / row.name).write_note(str(value))
        except RunError as exc:
            self.noteFailed.emit(str(exc))
            return False
        self.rows[index.row()] = dataclasses.replace(row, note=str(value))
        self.dataChanged.emit(index, index)
        return True


class RunsFilter(QSortFilterProxyModel):
    """Rows whose data folder, method and state equal the chosen ones (None: any); sorted by raw value, a run
    without the figure last either way."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.wanted: dict[str, object] = dict.fromkeys(FILTERS)

    def set_filter(self, key: str, value) -> None:
        self.wanted[key] = value
        self.invalidate()

    def filterAcceptsRow(self, source_row, source_parent) -> bool:  # noqa: N802 (Qt API)
        row = self.sourceModel().rows[source_row]
        return all(value is None or getattr(row, key) == value for key, value in self.wanted.items())

    def lessThan(self, left, right) -> bool:  # noqa: N802 (Qt API)
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:  # an empty cell goes after every value, whichever way the column is sorted
            empty_last = b if self.sortOrder() == Qt.SortOrder.AscendingOrder else a
            return empty_last is None and (a is None) != (b is None)
        if isinstance(a, str) and isinstance(b, str):
            return a.casefold() < b.casefold()
        return a < b
