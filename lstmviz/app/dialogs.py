"""The app's file dialogs, in one place.

Every "choose a file" of the app goes through these three functions, so the dialogs look and
behave alike (the last folder is remembered per session) and tests can answer them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

_last_dir = ""


def start_in(folder: str | Path) -> None:
    """Open the next file dialog in ``folder`` unless the user has chosen a folder already
    (the bundled lessons' folder, for the first "Open lesson")."""
    global _last_dir
    if not _last_dir and Path(folder).is_dir():
        _last_dir = str(folder)


def ask_open_file(parent: QWidget | None, title: str, filters: str) -> str:
    """A file to open, or ``""`` when the user cancelled."""
    global _last_dir
    path, _ = QFileDialog.getOpenFileName(parent, title, _last_dir, filters)
    if path:
        _last_dir = str(Path(path).parent)
    return path


def ask_save_file(parent: QWidget | None, title: str, suggested: str, filters: str) -> str:
    """A file to write, or ``""`` when the user cancelled (the dialog asks before
    overwriting)."""
    global _last_dir
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, filters)
    if path:
        _last_dir = str(Path(path).parent)
    return path


def ask_directory(parent: QWidget | None, title: str) -> str:
    """A folder, or ``""`` when the user cancelled."""
    return QFileDialog.getExistingDirectory(parent, title, _last_dir)
