"""File ▸ Export: the maps as PNG and SVG, drawn from the view here, and each space's embedding as NPY and CSV,
written by the core in a background job; and the Compare page's image lists (Label these next, the Audit view's
curation) as a CSV and a folder of links."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QWidget

from ssl_studio.core.atomic import write_atomic
from ssl_studio.core.export import write_embeddings

from ..export import save_png, save_svg
from ..page import Page, error_text
from ..widgets import shown
from ..workers import Job


def csv_and_links(page: Page, folder: str | Path, what: str, csv_name: str, links_name: str, write) -> list[Path]:
    """``write(csv_path, links_path)`` (it returns how many images it wrote and how many of them were copied, not
    linked), then the outcome in the page's banner; the files written, or [] when it failed."""
    folder = Path(folder)
    try:
        count, copied = write(folder / csv_name, folder / links_name)
    except (OSError, ValueError) as exc:
        page.banner.show_message(f"Export failed: {error_text(exc)}")
        return []
    page.banner.show_message(f"Exported {count:,} {what}: {csv_name} and {links_name}/ in {shown(folder)}"
                             + (f" ({copied} copied: no link possible)." if copied else "."), "info")
    return [folder / csv_name, folder / links_name]


def export(page: Page, view: QWidget, folder: str | Path, embeddings: dict[str, np.ndarray], paths: list[str],
           names: list[str]) -> Job:
    """Write maps.png and maps.svg of ``view`` now (Qt paints on this thread only), then, in a job beside the page's
    own, embedding_<space>.npy and .csv; the job returns every file written, and the page's banner tells."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = [write_atomic(folder / "maps.png", lambda tmp: save_png(view, tmp)),
                write_atomic(folder / "maps.svg", lambda tmp: save_svg(view, tmp, "SSL Studio maps"))]

    def write_arrays(token):
        return pictures + (yield from write_embeddings(folder, embeddings, paths, names, cancel=token))

    return page.start_job(write_arrays, primary=False,
                          succeeded=lambda written: page.banner.show_message(
                              f"Exported {len(written)} files to {folder}.", "info"),
                          failed=lambda exc: page.banner.show_message(f"Export failed: {error_text(exc)}"))
