"""Compare page, "Add images to the maps…": a folder embedded with the open run (core.placement) and drawn on every
map as stars, with each image's nearest run images and the class the kNN gives it. Removable; the run folder and
its scores are left as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal

from ssl_studio.core.pipeline import open_run
from ssl_studio.core.placement import AddedImages, place_folder

from ..page import error_text
from ..widgets import shown
from ..workers import Job

SHOWN_IN_BANNER = 5  # added images listed by name in the banner; the rest are counted


class AddedImagesLayer(QObject):
    changed = Signal()  # images were added or removed

    def __init__(self, page) -> None:
        super().__init__(page)
        self.page = page
        self.added: AddedImages | None = None
        self.markers: dict[str, pg.ScatterPlotItem] = {}  # space -> the stars on its map

    def can_add(self) -> bool:
        return self.page.run is not None and self.page.grid.has_points() and not self.page.is_running()

    def add_folder(self, folder: str | Path) -> Job:
        run = self.page.run.path
        self.page.status.setText(f"Adding the images of {shown(folder)} to the maps…")
        return self.page.start_job(
            lambda token: place_folder(open_run(run), folder, cancel=token), succeeded=self.show, primary=False,
            failed=lambda exc: self.page.banner.show_message(f"The images were not added: {error_text(exc)}"))

    def show(self, added: AddedImages) -> None:
        self.remove()
        self.added = added
        for space, placement in added.placements.items():
            scatter = self.page.grid.maps.get(space)
            kind = self.page.kinds.get(space)
            if scatter is None or not scatter.has_points() or kind not in placement.coords:
                continue
            xy = placement.coords[kind]
            stars = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], symbol="star", size=16, pxMode=True,
                                       brush=pg.mkBrush("#ffd400"), pen=pg.mkPen("#000000", width=1.2))
            stars.setZValue(4)  # over the points, the neighbours' squares and the hover ring
            scatter.plot.addItem(stars)
            self.markers[space] = stars
        self.page.status.setText("")
        self.page.banner.show_message(self.summary(), "info")
        self.changed.emit()

    def summary(self) -> str:
        added = self.added
        space = "ssl" if "ssl" in added.placements else next(iter(added.placements))
        placement = added.placements[space]
        paths = self.page.linked.paths
        names = self.page.linked.class_names
        lines = [f"{len(added.paths)} images of {shown(added.folder)} are on the maps as stars (the run and its "
                 f"scores are unchanged). In the {space} space:"]
        for i in range(min(SHOWN_IN_BANNER, len(added.paths))):
            said = f"the kNN says {names[placement.predicted[i]]}; " if placement.predicted is not None else ""
            near = ", ".join(paths[j] for j in placement.nearest[i][:3])
            lines.append(f"{added.paths[i]}: {said}nearest {near}")
        if len(added.paths) > SHOWN_IN_BANNER:
            lines.append(f"and {len(added.paths) - SHOWN_IN_BANNER} more")
        if added.skipped:
            lines.append(f"{len(added.skipped)} file(s) skipped, e.g. {added.skipped[0].path}: "
                         f"{added.skipped[0].reason}")
        return "\n".join(lines)

    def positions(self, space: str) -> np.ndarray | None:
        """Where the stars of ``space`` are drawn (for a test or an export), None when it has none."""
        stars = self.markers.get(space)
        return None if stars is None else np.column_stack(stars.getData())

    def remove(self) -> None:
        for space, stars in self.markers.items():
            self.page.grid.maps[space].plot.removeItem(stars)
        had = self.added is not None
        self.markers, self.added = {}, None
        if had:
            self.changed.emit()
