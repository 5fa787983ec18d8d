"""The PySide6 desktop app over ssl_studio.core: views and background workers, no training logic."""
