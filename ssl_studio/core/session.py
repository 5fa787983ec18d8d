"""What the app has open, held once: the dataset, the runs made or opened on it, the augmentation recipe, the chosen
method and the transfer settings, each with the observers told when it changes.

Qt-free: the pages of the app read it and observe it (plain callbacks, called at once in the caller's thread: the
app changes it on its GUI thread only), and nothing else keeps a copy. A stage's page tells it when its work on the
run is done (``finish``); the page of the next stage observes that and starts.
"""

from __future__ import annotations

from collections.abc import Callable

from .augment import Recipe
from .data import ImageDataset
from .folder_defaults import FolderDefaults, FolderFacts, choose
from .reopen import RunWithImages
from .runs import RunFolder
from .transfer import TransferConfig

# What can be observed, and what its observers are called with.
DATASET = "dataset"  # (dataset): new data was opened; every run of the previous data is forgotten
RUN = "run"  # (run): a run was started on the open dataset (training it)
OPENED = "opened"  # (RunWithImages): a saved run was opened (its dataset, when read, came first as DATASET)
FINISHED = "finished"  # (stage, run): a stage's work on that run is done
DONE = "done"  # (frozenset of stage names): which stages are done for the current run
RECIPE = "recipe"  # (recipe, title)
METHOD = "method"  # (method name, the one before it or None)
TOPICS = (DATASET, RUN, OPENED, FINISHED, DONE, RECIPE, METHOD)


class Session:
    def __init__(self) -> None:
        self.dataset: ImageDataset | None = None
        self.folder_defaults: FolderDefaults | None = None  # the settings chosen from what the dataset is
        self.run: RunFolder | None = None  # the latest run started or opened
        self._runs: dict[RunFolder, ImageDataset | None] = {}
        self.done: frozenset[str] = frozenset()  # stages done for ``run`` (or for the dataset, before one)
        self.recipe = Recipe()
        self.recipe_title = ""
        self.method: str | None = None  # None until the training settings are read
        self.transfer_settings = TransferConfig()  # what the transfer curves measure
        self._observers: dict[str, list[Callable]] = {topic: [] for topic in TOPICS}

    # --- observing --------------------------------------------------------------------------------------------
    def observe(self, topic: str, callback: Callable) -> Callable[[], None]:
        """Call ``callback`` at every change of ``topic`` (one of TOPICS); returns what stops it."""
        if topic not in self._observers:
            raise ValueError(f"unknown session topic {topic!r}; expected one of {', '.join(TOPICS)}")
        self._observers[topic].append(callback)
        return lambda: self._observers[topic].remove(callback)

    def _tell(self, topic: str, *args) -> None:
        for callback in list(self._observers[topic]):  # one may stop observing while told
            callback(*args)

    # --- the runs ---------------------------------------------------------------------------------------------
    @property
    def runs(self) -> list[RunFolder]:
        """The runs made or opened since the data was opened, oldest first."""
        return list(self._runs)

    def dataset_of(self, run: RunFolder | None) -> ImageDataset | None:
        """The dataset whose images are ``run``'s rows, in its order; None when they were not read (its data folder
        was gone) or the run is not one of this session's."""
        return self._runs.get(run) if run is not None else None

    def open_dataset(self, dataset: ImageDataset) -> None:
        """New data: what was made from other data would be misleading beside it, so every run is let go. Its
        folder's defaults are chosen before the observers are told (the pages show and apply them)."""
        self.dataset, self.run, self._runs = dataset, None, {}
        self.folder_defaults = choose(FolderFacts.of(dataset))
        self._tell(DATASET, dataset)
        self._set_done({"data"})

    def start_run(self, run: RunFolder, dataset: ImageDataset | None = None) -> None:
        """A run trained from the open dataset, or from ``dataset``, a curated set of it."""
        if self.dataset is None:
            raise ValueError("a run needs open data: open a folder first")
        self.run, self._runs[run] = run, dataset if dataset is not None else self.dataset
        self._tell(RUN, run)
        self._set_done(self.done & {"data", "augment"})

    def open_run(self, opened: RunWithImages) -> None:
        """A saved run, with its images when its data folder still holds them (they become the open dataset)."""
        if opened.dataset is not None:
            self.open_dataset(opened.dataset)
        run = opened.loaded.run
        self.run, self._runs[run] = run, opened.dataset
        self._tell(OPENED, opened)
        done = {"data", "train", "compare"} | ({"augment"} if opened.dataset is not None else set())
        self._set_done(done | ({"transfer"} if opened.loaded.transfer else set()))

    def finish(self, stage: str, run: RunFolder) -> None:
        """``stage``'s work on ``run`` is done (its page says so); the next stage's page may start on it."""
        if run is self.run:
            self._set_done(self.done | {stage})
        self._tell(FINISHED, stage, run)

    def _set_done(self, done: set[str] | frozenset[str]) -> None:
        self.done = frozenset(done)
        self._tell(DONE, self.done)

    # --- settings ---------------------------------------------------------------------------------------------
    def set_recipe(self, recipe: Recipe, title: str) -> None:
        if (recipe, title) != (self.recipe, self.recipe_title):
            self.recipe, self.recipe_title = recipe, title
            self._tell(RECIPE, recipe, title)

    def set_method(self, name: str) -> None:
        if name != self.method:
            previous, self.method = self.method, name
            self._tell(METHOD, name, previous)
