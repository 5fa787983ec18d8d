"""What the maps are colored by (the legend's "Color by"): the classes, k-means clusters, the evaluation's split,
each space's kNN mistakes, or what each space's audit flags (once the run's audit is known). A coloring that takes
computing (k-means of a labeled folder, the kNN of every space: seconds on a large folder) is computed by the core
in a job beside the page's when it is first chosen, and kept for the run."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from ssl_studio.core.coloring import AUDIT_KINDS, Coloring, cluster_ids, knn_mistakes

from ..page import Page, error_text
from ..workers import Job
from .legend import Legend
from .maps import MapGrid

CLUSTER_SEED = 0  # a labeled folder's k-means, computed when asked for (an unlabeled one's comes with its run)


def _clusters(embeddings: dict[str, np.ndarray]):
    yield from ()  # a job's generator, with nothing to report on the way
    return Coloring.by_cluster(cluster_ids(embeddings, seed=CLUSTER_SEED))


class ColorBy(QObject):
    def __init__(self, page: Page, grid: MapGrid, legend: Legend) -> None:
        super().__init__(page)
        self.page, self.grid, self.legend = page, grid, legend
        self.job: Job | None = None
        legend.colorByChanged.connect(self.choose)
        legend.hiddenChanged.connect(grid.set_hidden)
        self.reset(None, None)

    def reset(self, classes: Coloring | None, split: tuple[np.ndarray, np.ndarray] | None) -> None:
        """A new run: its classes (None: an unlabeled folder) and its evaluation split (None: it has none)."""
        self.stop()
        self.classes, self.split = classes, split
        self.clusters: Coloring | None = None
        self.mistakes: dict[str, Coloring] = {}
        self.audit: dict | None = None
        self.paths: list[str] = []
        self.choice = "class" if classes is not None else "cluster"
        self.available = {"cluster"}
        if classes is not None:
            self.available.add("class")
            if split is not None:
                self.available |= {"split", "mistakes"}
        self.legend.set_choices(self.available, self.choice)
        if classes is not None:
            self._show(classes)

    def set_audit(self, audit: dict, paths: list[str]) -> None:
        """The run's audit (audit.json, for these image paths): its kinds become choices."""
        self.audit, self.paths = audit, paths
        self.available |= {"duplicates", "outliers"} | (set() if audit.get("no_label_audit") else {"mislabeled"})
        self.legend.set_choices(self.available, self.choice)
        if self.choice in AUDIT_KINDS:
            self.choose(self.choice)

    def set_clusters(self, clusters: Coloring) -> None:
        """An unlabeled run's k-means colors, which came with it."""
        self.clusters = clusters
        if self.choice == "cluster":
            self._show(clusters)

    def stop(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            if not self.page.is_running():
                self.page.busy.hide()
        self.job = None

    def set_enabled(self, enabled: bool) -> None:
        """Another coloring can be chosen only while the page's job is not running (it may still bring spaces)."""
        self.legend.color_by.setEnabled(enabled)

    def refresh(self) -> None:
        """Show the chosen coloring again: spaces may have come (an imported one) that have no colors yet."""
        if self.choice == "mistakes" and set(self.page.embeddings) - set(self.mistakes):
            self.choose("mistakes")

    def choose(self, choice: str) -> None:
        self.stop()
        self.choice = choice
        if choice == "class":
            self._show(self.classes)
        elif choice == "split":
            self._show(Coloring.by_split(len(self.classes.ids), self.split[1]))
        elif choice == "cluster":
            if self.clusters is not None:
                self._show(self.clusters)
            else:
                self._compute("Finding k-means clusters of the self-supervised space…",
                              lambda _token, x=dict(self.page.embeddings): _clusters(x), done=self.set_clusters)
        elif choice in AUDIT_KINDS:
            self._show_audit(choice)
        else:
            self._show_mistakes()

    def _show_audit(self, kind: str) -> None:
        spaces = self.audit["spaces"]
        self._show(Coloring.by_audit({}, self.paths, kind), counts=False)  # a map the audit has not seen: none
        for space in self.grid.maps:
            if space in spaces:
                coloring = Coloring.by_audit(spaces[space], self.paths, kind)
                flagged = f"{int((coloring.ids > 0).sum()):,} flagged"
                note = f"<span style='color:{coloring.color(1)}'>{flagged}</span>"
                self.grid.set_space_coloring(space, coloring, note)

    def _show(self, coloring: Coloring, counts: bool = True) -> None:
        self.grid.set_coloring(coloring)
        self.legend.set_coloring(coloring, counts)

    def _show_mistakes(self) -> None:
        # Until a space's mistakes are known its map shows every image as train (grey): nothing is claimed yet.
        self._show(Coloring.of_mistakes(np.zeros(len(self.classes.ids))), counts=False)
        for space, coloring in self.mistakes.items():
            self.grid.set_space_coloring(space, coloring, self._wrong(coloring))
        missing = {s: x for s, x in self.page.embeddings.items() if s not in self.mistakes}
        if missing:
            train, test = self.split
            self._compute("Finding each space's kNN mistakes…",
                          lambda token: knn_mistakes(missing, self.classes.ids, train, test, cancel=token),
                          events=self._mistakes_found)

    def _mistakes_found(self, found: list[tuple[str, Coloring]]) -> None:
        for space, coloring in found:
            self.mistakes[space] = coloring
            self.grid.set_space_coloring(space, coloring, self._wrong(coloring))

    @staticmethod
    def _wrong(coloring: Coloring) -> str:
        return f"<span style='color:{coloring.color(2)}'>{coloring.counts()[2]:,} wrong</span>"

    def _compute(self, text: str, make_generator, events=None, done=None) -> None:
        """Run make_generator in a job beside the page's; its events and outcome count only while it is the job of
        the choice shown (not one a later choice or a new run replaced)."""
        page = self.page

        def current(callback):
            return lambda *args: callback(*args) if self.job is job else None

        def ended() -> None:
            page.busy.hide()
            page.status.setText("Done.")

        job = self.job = page.start_job(
            make_generator, primary=False, events=events and current(events), succeeded=done and current(done),
            ended=current(ended),
            failed=current(lambda exc: page.banner.show_message(f"Could not color the maps: {error_text(exc)}")))
        page.status.setText(text)
        page.busy.show()
