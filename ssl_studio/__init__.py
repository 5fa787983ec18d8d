"""SSL Studio: see what self-supervised learning does."""

__version__ = "0.1.0"

__all__ = ["Run", "open_run"]


def __getattr__(name: str):
    # The API pulls in torch; `import ssl_studio` (the version, the CLI's start) stays cheap until it is used.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'ssl_studio' has no attribute {name!r}")
