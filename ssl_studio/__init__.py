"""SSL Studio: see what self-supervised learning does."""

__version__ = "0.1.0"
