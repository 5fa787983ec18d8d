"""The window's pages, in the order of its navigation. A new page is a module with a Page subclass (its ``name``,
``title`` and what it observes of the session) and one line here."""

from __future__ import annotations

from .augment_page import AugmentPage
from .compare import ComparePage
from .data_page import DataPage
from .page import Page
from .runs_page import RunsPage
from .train_page import TrainPage
from .transfer_page import TransferPage
from .versus_page import VersusPage

PAGES: list[type[Page]] = [
    DataPage,
    AugmentPage,
    TrainPage,
    ComparePage,
    TransferPage,
    RunsPage,
    VersusPage,
]
