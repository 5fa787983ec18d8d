"""What the app remembers between sessions, in QSettings.

Structured values are stored as JSON strings: QSettings' native types round-trip differently per backend (an
INI file gives back a one-element list as a plain string), JSON gives back exactly what was stored.

Writes go to disk on a thread of their own: QSettings syncs its file with an fsync, which on a busy disk held the
GUI thread for 343 ms. Reads see what this session saved at once, landed or not.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import platformdirs
from PySide6.QtCore import QSettings

ORGANIZATION = "ssl-studio"
APPLICATION = "SSL Studio"
MAX_RECENT = 8

_saved: dict[str, str] = {}  # key -> JSON, every value saved since the settings' folder was chosen
_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="settings-writer")  # one: writes land in order


def use_private_folder(folder: str | Path) -> None:
    """Keep settings in an INI file and runs under ``folder``: tests, screenshots and the benchmark must never read
    or change the user's own. Call after the QApplication has its names (app.create_application)."""
    folder = Path(folder)
    flush()  # what was saved before belongs in the folder it was saved for
    _saved.clear()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder / "settings"))
    set_runs_dir(folder / "runs")


def store() -> QSettings:
    # Organization and application names come from the QApplication (set in app.py and the tests' conftest).
    return QSettings()


def flush() -> None:
    """Wait until every value saved so far is on disk."""
    _writer.submit(int).result()


def load_json(key: str, default=None):
    raw = _saved[key] if key in _saved else store().value(key)
    if not isinstance(raw, str):
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return default


def load_setting(key: str, parse):
    """The value saved under ``key`` as ``parse`` (a settings class's from_dict) makes it, or None when there is
    none or it no longer parses (saved by an older version, or edited): ignored, never a crash."""
    try:
        return parse(load_json(key))
    except (ValueError, TypeError, KeyError):
        return None


def save_json(key: str, value) -> None:
    text = json.dumps(value)
    _saved[key] = text
    _writer.submit(_write, key, text)


def _write(key: str, text: str) -> None:
    on_disk = store()
    on_disk.setValue(key, text)
    on_disk.sync()


def recent_folders() -> list[str]:
    value = load_json("recent_folders", [])
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def remember_folder(path: str | Path) -> list[str]:
    path = str(Path(path))
    folders = [path] + [p for p in recent_folders() if p != path]
    save_json("recent_folders", folders[:MAX_RECENT])
    return folders[:MAX_RECENT]


def forget_folder(path: str | Path) -> None:
    save_json("recent_folders", [p for p in recent_folders() if p != str(Path(path))])


def default_runs_dir() -> Path:
    return platformdirs.user_data_path("ssl-studio") / "runs"


def runs_dir() -> Path:
    value = load_json("runs_dir")
    return Path(value) if isinstance(value, str) and value else default_runs_dir()


def set_runs_dir(path: str | Path) -> None:
    save_json("runs_dir", str(path))
