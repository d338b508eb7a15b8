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
def digit_window(window):
    window.state.set_model(digit_model(), None, digit_info())
    return window


@pytest.fixture
def char_window(window):
    m, info = char_model()
    window.state.set_model(m, None, info)
    return window
