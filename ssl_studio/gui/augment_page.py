"""Stage 2, Augment: edit the augmentation recipe and see what the chosen method makes of the same images, live.

The preview calls the method's own ``preview`` (its ``make_views``, what training calls) with this same Recipe, on
8 images at the working resolution: a few milliseconds, so it runs on the GUI thread, throttled to one redraw per
50 ms while a slider moves.
"""

from __future__ import annotations

from dataclasses import Field

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSpinBox, QStackedWidget, QVBoxLayout, QWidget)
from superqt import QLabeledDoubleRangeSlider, QLabeledDoubleSlider
from superqt.utils import qthrottled

from ssl_studio.core.augment import Recipe
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import ImageDataset
from ssl_studio.core.methods import (Method, build_method, default_recipe, method_class, preset_titles,
                                     recipe_presets)
from ssl_studio.core.session import DATASET, METHOD, OPENED, Session
from ssl_studio.core.schema import described_fields, info

from . import settings
from .explanations import ViewsFigure, augment_text
from .folder_note import FolderNote
from .images import to_pixmap
from .page import Page
from .widgets import NextButton
from .workers import in_own_thread

CUSTOM = "custom"
PREVIEW_IMAGES = 8
PREVIEW_SIZE = 96

class AugmentPage(Page):
    name, title = "augment", "Augment"

    def __init__(self, session: Session | None = None, parent=None) -> None:
        super().__init__(session, "Self-supervised learning asks two views of one image to look alike. The "
                                  "recipe decides what the network must ignore (color, crop, flips…): it is "
                                  "most of what SSL learns.", parent)
        self._controls: dict[str, QLabeledDoubleSlider | QLabeledDoubleRangeSlider] = {}
        self._sample_seed = 0
        self._indices = np.zeros(0, dtype=np.int64)
        self.redraws = 0  # how many times the preview was drawn (for tests and the curious)
        self._stale = False  # a redraw was asked for while the page was hidden
        self._method_name = self.session.method or TrainConfig().method
        self._method: Method | None = None  # built once per method and view size, for its make_views
        self._cells: list[list[QLabel]] = []  # per image: the original, each view, the caption
        self._columns: list[str] = []
        self._folder_shown = False  # the note about the open folder's choice is up to date and shown

        self.preset = QComboBox(toolTip="A starting point; editing any control makes it Custom.")
        for key, title in preset_titles().items():
            self.preset.addItem(title, key)
        self.preset.addItem("Custom", CUSTOM)
        self.preset.activated.connect(self._preset_chosen)
        self.seed = QSpinBox(minimum=0, maximum=999_999, toolTip="Seed of the random augmentation parameters: "
                                                                 "the same seed draws the same views.")
        self.seed.valueChanged.connect(lambda _: self.redraw())
        self.new_sample = QPushButton("New sample", toolTip="Show 8 other images")
        self.new_sample.clicked.connect(self.next_sample)

        controls = QWidget()
        form_layout = QVBoxLayout(controls)
        self.folder_note = FolderNote("recipe")
        self.folder_note.back.connect(self.use_folder_defaults)
        form_layout.addWidget(self.folder_note)
        preset_row = QFormLayout()
        preset_row.addRow("Recipe", self.preset)
        form_layout.addLayout(preset_row)
        # One box per group of the Recipe's fields, one slider per field, as the schema describes them.
        forms: dict[str, QFormLayout] = {}
        for f in described_fields(Recipe):
            meta = info(f)
            if meta.group not in forms:
                group = QGroupBox(meta.group)
                forms[meta.group] = QFormLayout(group)
                form_layout.addWidget(group)
            widget = self._make_control(f)
            widget.setToolTip(meta.help)
            label = f"{meta.label} ({meta.unit})" if meta.unit else meta.label
            forms[meta.group].addRow(QLabel(label, toolTip=meta.help), widget)
        form_layout.addStretch(1)
        self.controls_scroll = scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(controls)
        # Room for the vertical scroll bar (the folder's note makes the controls taller than the page), so that the
        # controls never also need a horizontal one.
        scroll.setMinimumWidth(max(340, controls.minimumSizeHint().width() + 2 * scroll.frameWidth()
                                   + scroll.verticalScrollBar().sizeHint().width()))

        self.preview = QWidget()
        self.grid = QGridLayout(self.preview)
        self.grid.setSpacing(6)
        self.preview_caption = QLabel(wordWrap=True)

        preview_box = QWidget()
        preview_layout = QVBoxLayout(preview_box)
        tools = QHBoxLayout()
        tools.addWidget(self.preview_caption, 1)
        tools.addWidget(QLabel("Seed"))
        tools.addWidget(self.seed)
        tools.addWidget(self.new_sample)
        preview_layout.addLayout(tools)
        # Scrollable, so the grid never forces a minimum window size on small screens.
        preview_scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        preview_holder = QWidget()
        holder_layout = QVBoxLayout(preview_holder)
        holder_layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        holder_layout.addStretch(1)
        preview_scroll.setWidget(preview_holder)
        preview_layout.addWidget(preview_scroll, 1)

        self.empty_state("No images yet", "Open a folder or a sample dataset on the Data page to see what the "
                                          "augmentations do to your images.",
                         [("Go to Data", lambda: self.goRequested.emit("data"))])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(preview_box)

        body = QHBoxLayout()
        body.addWidget(scroll)
        body.addWidget(self.stack, 1)
        self.next = NextButton("Train")
        self.next.go.connect(lambda: self.goRequested.emit("train"))
        self.add_body(body)
        self.add_footer(self.next)

        self.views_figure = ViewsFigure()
        self.explain("", self.views_figure)  # the words follow the recipe and the method
        self.set_recipe(self._saved_recipe(), self._saved_preset())
        self.session.observe(DATASET, self._show_dataset)
        self.session.observe(OPENED, self._show_opened)
        self.session.observe(METHOD, self._method_chosen)

    def _make_control(self, f: Field):
        lo, hi = info(f).minimum, info(f).maximum
        if isinstance(f.default, tuple):  # a (minimum, maximum) range
            widget = QLabeledDoubleRangeSlider(Qt.Orientation.Horizontal)
            # Values in the edge boxes (like the single sliders), not on the handles, where close ones overlap.
            widget.setHandleLabelPosition(QLabeledDoubleRangeSlider.LabelPosition.NoLabel)
            widget.setEdgeLabelMode(QLabeledDoubleRangeSlider.EdgeLabelMode.LabelIsValue)
        else:
            widget = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        widget.setDecimals(0 if hi > 10 else 2)
        widget.setRange(lo, hi)
        widget.setSingleStep((hi - lo) / 100)
        widget.valueChanged.connect(lambda _: self._edited())
        self._controls[f.name] = widget
        return widget

    # --- the recipe -------------------------------------------------------------------------------------------
    def control(self, name: str):
        return self._controls[name]

    def recipe(self) -> Recipe:
        return Recipe(**{name: widget.value() for name, widget in self._controls.items()})

    def preset_name(self) -> str:
        return self.preset.currentData()

    def set_recipe(self, recipe: Recipe, preset: str = CUSTOM) -> None:
        """Show ``recipe``, under the name ``preset`` when it is that preset's recipe, else as Custom."""
        for name, widget in self._controls.items():  # a Recipe is in its fields' ranges, which are the sliders'
            widget.blockSignals(True)
            widget.setValue(getattr(recipe, name))
            widget.blockSignals(False)
        # A preset with the open folder's changes keeps its name: a new method still brings its own recipe.
        named = recipe in (recipe_presets().get(preset), self._for_folder(recipe_presets().get(preset)))
        self.preset.setCurrentIndex(self.preset.findData(preset if named else CUSTOM))
        self._recipe_changed()

    def use_folder_defaults(self) -> None:
        """The open folder's recipe changes (core/folder_defaults.py) over the recipe shown."""
        self.set_recipe(self._for_folder(self.recipe()), self.preset_name())

    def _for_folder(self, recipe: Recipe | None) -> Recipe | None:
        defaults = self.session.folder_defaults
        if recipe is None or defaults is None or not self._folder_shown:
            return recipe
        return recipe.replace(**defaults.recipe_changes)

    def _show_opened(self, opened) -> None:
        self._folder_shown = False  # the run's own recipe, not a choice for its folder
        self.folder_note.hide()
        self.set_recipe(opened.loaded.recipe)

    def _show_folder_note(self, recipe: Recipe) -> None:
        defaults = self.session.folder_defaults
        if self._folder_shown and defaults is not None:
            self.folder_note.show_choice(defaults, defaults.changed(recipe=recipe.to_dict()))

    def _preset_chosen(self) -> None:
        key = self.preset.currentData()
        if key in recipe_presets():
            self.set_recipe(recipe_presets()[key], key)

    def _edited(self) -> None:
        self.preset.setCurrentIndex(self.preset.findData(CUSTOM))
        self._recipe_changed()

    def _recipe_changed(self) -> None:
        try:
            recipe = self.recipe()
        except ValueError as exc:
            self.banner.show_message(f"This recipe is not valid: {exc}")
            return
        self.banner.hide()
        settings.save_json("recipe", recipe.to_dict())  # as the run folder records it
        settings.save_json("recipe_preset", self.preset_name())
        self._explain(recipe)
        self._show_folder_note(recipe)
        self.session.set_recipe(recipe, preset_titles().get(self.preset_name(), "Custom recipe"))
        self.redraw()

    @staticmethod
    def _saved_preset() -> str:
        saved = settings.load_json("recipe_preset")
        return saved if saved in recipe_presets() else "simclr"

    @staticmethod
    def _saved_recipe() -> Recipe:
        """The recipe last saved; one that no longer parses (an older version's) leaves SimCLR's."""
        return settings.load_setting("recipe", Recipe.from_dict) or recipe_presets()["simclr"]

    def _method_chosen(self, method: str, previous: str | None) -> None:
        """Follow a newly chosen method with its own preset recipe, unless the user has made the recipe their own
        (the first method told is the one the settings were saved with: no choice)."""
        self.set_method(method)
        if previous is not None and self.preset_name() in recipe_presets() and self.preset_name() != method:
            self.set_recipe(default_recipe(method), method)
            self.use_folder_defaults()  # the method's recipe, as the folder wants it
            self.statusMessage.emit(f"Augmentations set to the {preset_titles()[method]} preset (edit them on the "
                                    "Augment page)", 8000)

    # --- the preview ------------------------------------------------------------------------------------------
    def set_method(self, name: str) -> None:
        """Preview what this method makes of each image (two views for SimCLR, four turns for rotation...)."""
        if name != self._method_name:
            self._method_name, self._method = name, None
            try:
                self._explain(self.recipe())
            except ValueError:
                pass  # the banner already says why
            self.redraw()

    def _explain(self, recipe: Recipe) -> None:
        self.explanation.set_text(augment_text(method_class(self._method_name), recipe))

    def _preview_method(self, view_size: int) -> Method:
        if self._method is None or self._method.view_size != view_size:
            dataset = self.session.dataset
            labels = len(dataset.class_names) if dataset is not None else 0
            self._method = build_method(self._method_name, "small-cnn", num_classes=max(2, labels),
                                        view_size=view_size)
        return self._method

    def _layout_cells(self, columns: list[str]) -> None:
        """One row of labels per image: the image, then each of the method's views, with column titles."""
        if columns == self._columns:
            return
        self._columns = columns
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()
        per_row = 2 if len(columns) <= 2 else 1  # two images side by side while they fit
        width = len(columns) + 2  # the image, its views and a gap
        for col in range(per_row):
            for j, text in enumerate(["image", *columns]):
                self.grid.addWidget(QLabel(text, objectName="caption", alignment=Qt.AlignmentFlag.AlignCenter),
                                    0, col * width + j)
            if col:
                self.grid.setColumnMinimumWidth(col * width - 1, 24)
        self._cells = []
        for i in range(PREVIEW_IMAGES):
            row, col = divmod(i, per_row)
            cell = []
            for j in range(len(columns) + 1):
                label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, objectName="previewImage")
                label.setFixedSize(PREVIEW_SIZE + 4, PREVIEW_SIZE + 4)
                self.grid.addWidget(label, 2 * row + 1, col * width + j)
                cell.append(label)
            caption = QLabel(objectName="caption", alignment=Qt.AlignmentFlag.AlignCenter)
            self.grid.addWidget(caption, 2 * row + 2, col * width, 1, len(columns) + 1)
            self._cells.append([*cell, caption])

    def _show_dataset(self, dataset: ImageDataset) -> None:
        self._folder_shown = True
        self.use_folder_defaults()  # and the note says why
        self.stack.setCurrentIndex(1 if dataset is not None else 0)
        self._sample_seed = 0
        self._pick_images()
        self.redraw()

    def next_sample(self) -> None:
        self._sample_seed += 1
        self._pick_images()
        self.redraw()

    def _pick_images(self) -> None:
        dataset = self.session.dataset
        if dataset is None:
            self._indices = np.zeros(0, dtype=np.int64)
            return
        rng = np.random.default_rng(self._sample_seed)
        n = len(dataset)
        if dataset.labeled:
            # One image per class in turn, so a sample shows the variety of the data rather than its biggest class.
            labels = dataset.labels.numpy()
            pools = [rng.permutation(np.flatnonzero(labels == k)) for k in rng.permutation(labels.max() + 1)]
            picked = [int(pool[i]) for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]
            self._indices = np.asarray(picked[:PREVIEW_IMAGES], dtype=np.int64)
        else:
            self._indices = rng.choice(n, size=min(PREVIEW_IMAGES, n), replace=False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._draw()

    @qthrottled(timeout=50, leading=True)
    def redraw(self) -> None:
        self._draw()

    def _draw(self) -> None:
        # A hidden page draws when shown: its torch calls on the GUI thread would otherwise compete with a
        # training that has just started (a 463 ms freeze measured by the bench's UI section).
        self._stale = not self.isVisible()
        dataset = self.session.dataset
        if self._stale or dataset is None or not len(self._indices):
            return
        try:
            recipe = self.recipe()
        except ValueError:
            return  # the banner already says why
        # At the size training renders its views (a fraction of the working resolution), so what is seen here is
        # exactly what the network gets.
        method = self._preview_method(TrainConfig(resolution=dataset.resolution).view_size)
        method.recipe = recipe
        images, columns = in_own_thread(self._views, method, dataset.images, self._indices, self.seed.value())
        self.views_figure.set_images(images[0], [(name, views[0]) for name, views in columns],
                                     pairs=len(type(method).view_names) == 2)
        self._layout_cells([name for name, _ in columns])
        self.preview_caption.setText(f"What {method.title} makes of each image, as in training: "
                                     + ", ".join(name for name, _ in columns))
        for i, cell in enumerate(self._cells):
            if i >= len(images):
                for label in cell:
                    label.clear()
                continue
            cell[0].setPixmap(to_pixmap(images[i], PREVIEW_SIZE))
            for label, (_, views) in zip(cell[1:-1], columns):
                label.setPixmap(to_pixmap(views[i], PREVIEW_SIZE))
            caption = cell[-1]
            index = int(self._indices[i])
            caption.setText(dataset.class_names[int(dataset.labels[index])] if dataset.labeled
                            else dataset.paths[index].rsplit("/", 1)[-1])
        self.redraws += 1

    @staticmethod
    def _views(method: Method, images: torch.Tensor, indices: np.ndarray, seed: int):
        images = images[torch.as_tensor(indices)]
        return images, method.preview(images, torch.Generator().manual_seed(seed))

    def view_image(self, i: int, view: int):
        """The QImage shown for image ``i``'s view 1, 2... (0 is the original)."""
        pixmap = self._cells[i][view].pixmap()
        return pixmap.toImage() if pixmap is not None else None
