"""Stage 4, Compare, by concern: maps (the grid of ScatterMaps), legend, inspector and selection bar, their linking
(linked), export, and the page that composes them."""

from .page import ComparePage

__all__ = ["ComparePage"]
