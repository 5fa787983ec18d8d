"""New sweep…: the Train page's settings, the methods to try, one or two settings to vary and a number of seeds;
it shows how many runs that makes and the estimated time before anything starts (core/sweep.py plans and checks,
the Train page trains the queue)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout)
from superqt import QElidingLabel

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.folder_defaults import FolderDefaults, Given
from ssl_studio.core.methods import method_class, method_names
from ssl_studio.core.sweep import (MAX_VARIED, Queue, Sweep, SweepError, estimate, expand,
                                   parse_vary, setting_title, settings_names)
from ssl_studio.core.transfer import TransferConfig

NONE = "(nothing)"
DEFAULT_SEEDS = 3  # the fewest at which a spread says something


class SweepDialog(QDialog):
    """Plans a sweep; ``accept`` queues it in the workspace (``self.workspace``), for the Train page to train.
    With the open folder's ``defaults`` every run takes the folder's choice where the pages hold it (each method's
    own preset gets the folder's recipe changes too), as a training started from the Train page does."""

    def __init__(self, config: TrainConfig, data_dir: Path, labeled: bool | None, workspace: Path,
                 recipe: Recipe | None = None, transfer: TransferConfig | None = None, *, use_umap: bool = True,
                 defaults: FolderDefaults | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New sweep")
        self._config, self._data_dir, self._labeled = config, Path(data_dir), labeled
        self._defaults = defaults
        self._recipe, self._transfer, self._use_umap = recipe, transfer, use_umap
        self.workspace = Path(workspace)
        self.planned: list = []

        intro = QLabel(f"Runs on <b>{self._data_dir.name}</b> with the Train page's settings, one after another in "
                       "the background. Runs that differ only by the seed form a group, compared with their spread.",
                       wordWrap=True)
        methods = QGroupBox("Methods to try")
        grid = QGridLayout(methods)
        self.methods: dict[str, QCheckBox] = {}
        for k, name in enumerate(method_names(self_supervised=True)):
            box = QCheckBox(method_class(name).title.split(" (")[0], toolTip=method_class(name).summary,
                            checked=name == config.method)
            box.toggled.connect(self._methods_changed)
            self.methods[name] = box
            grid.addWidget(box, k // 3, k % 3)
        form = QFormLayout()
        self.vary: list[tuple[QComboBox, QLineEdit]] = []
        for k in range(MAX_VARIED):
            setting, values = QComboBox(), QLineEdit(placeholderText="values, e.g. 0.2, 0.5")
            setting.currentIndexChanged.connect(self._update)
            values.textChanged.connect(self._update)
            row = QHBoxLayout()
            row.addWidget(setting, 1)
            row.addWidget(values, 1)
            form.addRow(f"Vary{' also' if k else ''}", row)
            self.vary.append((setting, values))
        self.seeds = QSpinBox(minimum=1, maximum=100, value=DEFAULT_SEEDS,
                              toolTip=f"Seeds {config.seed}, {config.seed + 1}, … of each setting")
        self.seeds.valueChanged.connect(self._update)
        form.addRow("Seeds", self.seeds)
        self.same_recipe = QCheckBox("The Augment page's augmentations for every method", checked=False,
                                     enabled=recipe is not None, toolTip="Unchecked: each method its own preset")
        self.same_recipe.toggled.connect(self._update)
        form.addRow(self.same_recipe)
        self.workspace_label = QElidingLabel(str(self.workspace))
        change = QPushButton("Change…")
        change.clicked.connect(self._choose_workspace)
        where = QHBoxLayout()
        where.addWidget(self.workspace_label, 1)
        where.addWidget(change)
        form.addRow("Workspace", where)
        self.summary = QLabel(wordWrap=True, objectName="sweepSummary")
        self.summary.setMinimumHeight(3 * self.summary.fontMetrics().height())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.addButton("Start sweep", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start_button.setObjectName("primary")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(methods)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)
        self._methods_changed()

    def chosen_methods(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.methods.items() if box.isChecked())

    def set_vary(self, k: int, setting: str, values: str) -> None:
        combo, line = self.vary[k]
        combo.setCurrentIndex(combo.findData(setting))
        line.setText(values)

    def sweep(self) -> Sweep:
        """The sweep as set; SweepError naming what is wrong."""
        methods = self.chosen_methods()
        vary = tuple(parse_vary(f"{combo.currentData()}={line.text().replace(' ', '')}", methods)
                     for combo, line in self.vary if combo.currentData())
        recipe = self._recipe if self.same_recipe.isChecked() else None
        # What the pages hold that differs from the folder's choice, as the pages' own notes tell it (recipe None:
        # each method's preset, which the folder's choice changes).
        given = (Given.of(self._defaults.changed(self._config.to_dict(), recipe and recipe.to_dict()))
                 if self._defaults is not None else None)
        return Sweep(self._data_dir, self._config, methods, vary, self.seeds.value(), recipe=recipe,
                     transfer=self._transfer, use_umap=self._use_umap, given=given)

    def _methods_changed(self) -> None:
        methods = self.chosen_methods() or (self._config.method,)
        names = settings_names(methods)
        for combo, _ in self.vary:
            chosen = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(NONE, None)
            for name in names:
                combo.addItem(setting_title(name, methods), name)
            combo.setCurrentIndex(max(0, combo.findData(chosen)))
            combo.blockSignals(False)
        self._update()

    def _update(self) -> None:
        """The number of runs and the estimate, or why it cannot start."""
        try:
            sweep = self.sweep()
            self.planned = expand(sweep)
        except SweepError as exc:
            self.planned = []
            self.summary.setText(f"<span style='color:#c62828'>Cannot start: {exc}.</span>")
            self.start_button.setEnabled(False)
            return
        self.summary.setText(estimate(self.planned, sweep, self._labeled).text())
        self.start_button.setEnabled(True)

    def _choose_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Workspace for the sweep's runs", str(self.workspace))
        if folder:
            self.workspace = Path(folder)
            self.workspace_label.setText(folder)

    def accept(self) -> None:
        """Queue the runs in the workspace; a refusal (an unfinished sweep there) stays in the dialog."""
        try:
            Queue(self.workspace).add(self.sweep(), self.planned)
        except SweepError as exc:
            self.summary.setText(f"<span style='color:#c62828'>Cannot start: {exc}.</span>")
            return
        super().accept()
