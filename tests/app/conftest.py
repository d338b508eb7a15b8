"""Fixtures for the app tests: small engine models (no Keras) and a real main window."""

from __future__ import annotations

import pytest

from .models import char_model, digit_info, digit_model


@pytest.fixture
def state(qtbot):
    from lstmviz.state import ViewerState

    return ViewerState()


@pytest.fixture
def window(qtbot):
    """A shown main window with the core views only (no menus of sessions, export or
    training, no panels: those are other modules' tests)."""
    from lstmviz.app.main_window import MainWindow

    w = MainWindow(actions=False)
    qtbot.addWidget(w)
    w.resize(1600, 900)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    yield w
    if w.error_dialog is not None:
        w.error_dialog.close()
    w.close()


@pytest.fixture
def answers(monkeypatch):
    """The user's answers to file dialogs, by dialog title; an unexpected dialog fails."""
    from lstmviz.app import dialogs

    given: dict[str, str] = {}

    def answer(title: str) -> str:
        assert title in given, f"unexpected file dialog {title!r}"
        return given.pop(title)

    monkeypatch.setattr(dialogs, "ask_open_file", lambda parent, title, filters: answer(title))
    monkeypatch.setattr(
        dialogs, "ask_save_file", lambda parent, title, suggested, filters: answer(title)
    )
    monkeypatch.setattr(dialogs, "ask_directory", lambda parent, title: answer(title))
    return given


@pytest.fixture
def full_window(qtbot, tmp_path, monkeypatch):
    """Opens the whole window as the ``lstmviz`` command builds it (menus, panels, sessions;
    its data folder in ``tmp_path``) at 1600x900, active, showing a model once nothing runs
    in the background: ``w = full_window(path)``. Afterwards every window it opened is
    closed, with any dialog or message box still open."""
    from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

    from lstmviz.app.main_window import MainWindow

    from .acceptance import activate, wait_settled

    monkeypatch.setenv("LSTMVIZ_DATA_DIR", str(tmp_path / "data"))
    opened = []

    def open_window(model):
        w = MainWindow()
        qtbot.addWidget(w)
        opened.append(w)
        w.resize(1600, 900)
        activate(qtbot, w)
        w.open_model(model)
        wait_settled(qtbot, w)
        return w

    yield open_window
    for top in QApplication.topLevelWidgets():
        if top.isVisible() and isinstance(top, (QDialog, QMessageBox)):
            top.close()
    for w in opened:
        w.close()


@pytest.fixture
def digit_window(window):
    window.state.set_model(digit_model(), None, digit_info())
    return window


@pytest.fixture
def char_window(window):
    m, info = char_model()
    window.state.set_model(m, None, info)
    return window
