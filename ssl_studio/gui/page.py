"""What every stage's page has: a header, an explanation panel, an inline banner, an empty state, and one
background job whose events and outcome are routed to the page, a bug (not one of core/errors' expected errors)
reported as one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLayout, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

from ssl_studio.core.errors import EXPECTED_ERRORS, error_text  # noqa: F401 (the pages take error_text from here)
from ssl_studio.core.session import Session

from .explain import ExplanationPanel
from .widgets import Banner, EmptyState, footer, page_header
from .workers import Job


def report_if_unexpected(exc: BaseException) -> None:
    """A bug's traceback to whatever reports uncaught exceptions: in the app gui/error_report's dialog and log,
    elsewhere (the tests, a script) Python's default, stderr."""
    if not isinstance(exc, EXPECTED_ERRORS):
        sys.excepthook(type(exc), exc, exc.__traceback__)


class Page(QWidget):
    """A page of the window, registered by ``name`` in gui/pages.py; ``title`` names it in the navigation."""

    name = ""  # what go() and the registry call it
    title = ""
    # True: the page scrolls when its panels and its body's minimum height (maps that must stay large enough to
    # read) do not fit the window, instead of squeezing the body.
    scrolls = False
    goRequested = Signal(str)  # the name of the page to show
    openRunRequested = Signal()
    openRunAtRequested = Signal(str)  # a run folder to open, as File > Open run opens one
    statusMessage = Signal(str, int)  # a passing message for the window's status bar, and for how many ms

    def __init__(self, session: Session | None, subtitle: str, parent=None) -> None:
        super().__init__(parent)
        self.session = session or Session()  # a page alone (a test, a tool) has one of its own
        self.job: Job | None = None
        self.banner = Banner()
        self.header = page_header(self.title, subtitle)
        self.explanation = ExplanationPanel(type(self).__name__)
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.explanation.button, 0, Qt.AlignmentFlag.AlignTop)
        self._layout = QVBoxLayout(self)
        if self.scrolls:
            content = QWidget(objectName="pageContent")
            # The content takes the view's height, or its preferred height for the view's width when that is more
            # (panels' wrapped text included; the maps prefer their minimum: ScatterMap.heightForWidth).
            self.scroll_area = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame,
                                           horizontalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.scroll_area.setWidget(content)
            self._layout.setContentsMargins(0, 0, 0, 0)
            self._layout.addWidget(self.scroll_area)
            self._layout = QVBoxLayout(content)
        self._layout.addLayout(top)
        self._layout.addWidget(self.explanation)
        self._layout.addWidget(self.banner)

    def set_number(self, number: int) -> None:
        """Its place in the window's order, shown before its title."""
        self.header.title.setText(f"{number} · {self.title}")

    # --- layout -----------------------------------------------------------------------------------------------
    def add_body(self, body: QWidget | QLayout) -> None:
        """The page's content, under the banner, taking the height left."""
        if isinstance(body, QLayout):
            self._layout.addLayout(body, 1)
        else:
            self._layout.addWidget(body, 1)

    def explain(self, html: str, figure: QWidget | None = None) -> None:
        """What this step does, in plain words with a small figure, under the page's "How this works" button."""
        self.explanation.set_content(html, figure)

    def add_footer(self, *widgets: QWidget) -> None:
        self._layout.addLayout(footer(*widgets))

    def empty_state(self, title: str, text: str, buttons: list[tuple[str, Callable]]) -> EmptyState:
        """``self.empty``: what to do before there is anything to show; the first button is the primary one."""
        self.empty = EmptyState(title, text)
        for i, (label, slot) in enumerate(buttons):
            self.empty.add_button(label, slot, primary=i == 0)
        self.empty.finish_buttons()
        return self.empty

    def add_results(self, results: QWidget) -> None:
        """The body as ``self.stack``: the empty state (page 0) until there are results to show (page 1)."""
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(results)
        self.add_body(self.stack)

    # --- the page's job ---------------------------------------------------------------------------------------
    def start_job(self, make_generator, *, events: Callable[[list], None] | None = None,
                  succeeded: Callable | None = None, failed: Callable[[Exception], None] | None = None,
                  cancelled: Callable[[], None] | None = None, ended: Callable[[], None] | None = None,
                  primary: bool = True, flush_ms: int = Job.FLUSH_MS) -> Job:
        """Run a core generator in the background with its outcome routed to these callbacks.

        The primary job is the page's one job (``self.job``, what is_running and cancel refer to); a secondary one,
        such as an export, runs beside it. An unexpected error is reported before ``failed`` is called. ``events``
        gets what the job yielded at most every ``flush_ms``.
        """
        job = Job(make_generator, self, flush_ms=flush_ms)
        if events is not None:
            job.events.connect(events)
        if succeeded is not None:
            job.succeeded.connect(succeeded)
        job.failed.connect(report_if_unexpected)
        if failed is not None:
            job.failed.connect(failed)
        if cancelled is not None:
            job.cancelled.connect(cancelled)
        if ended is not None:
            job.ended.connect(ended)
        if primary:
            self.job = job
        return job.start()

    def is_running(self) -> bool:
        return self.job is not None and self.job.running

    def cancel(self) -> None:
        if self.is_running():
            self.job.cancel()
