"""A panel opened or closed beside a big trace: the views wait for the layout to settle and
then paint once each, one per event-loop turn (lstmviz/app/stagger.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QAbstractButton, QApplication

from lstmviz.examples import EXAMPLES_DIR

from .acceptance import click, press

DIGITS = EXAMPLES_DIR / "digit_sum.keras"


class _Paints(QObject):
    """Counts the paint events of the widgets it watches."""

    def __init__(self) -> None:
        super().__init__()
        self.n: dict[str, int] = {}

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Paint:
            name = type(obj).__name__
            self.n[name] = self.n.get(name, 0) + 1
        return False


@pytest.fixture
def app(full_window):
    return full_window(DIGITS)


def _views(w):
    return [w.heatmaps, w.unit_lines, w.step_bars, w.output_view, w.unit_detail]


def test_closing_a_panel_beside_a_big_trace_holds_the_views_until_the_layout_settles(
    app, qtbot, monkeypatch
):
    from lstmviz.app import stagger

    w = app
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)  # every trace counts as big
    press(qtbot, w, w.panels.specs["what_if"].shortcut)
    dock = w.panels.docks["what_if"]
    qtbot.waitUntil(dock.isVisible, timeout=5000)
    # opening it resized the views: held, then released one per turn
    qtbot.waitUntil(lambda: stagger.held(w.state) == 0, timeout=5000)
    assert all(v.updatesEnabled() for v in _views(w))
    heights = w.heatmaps.height()

    paints = _Paints()
    w.heatmaps.viewport().installEventFilter(paints)  # the maps paint on their viewport
    for v in _views(w)[1:]:
        v.installEventFilter(paints)
    click(qtbot, dock.findChild(QAbstractButton, "qt_dockwidget_closebutton"))
    # the window lays itself out again: every view that grew waits to paint
    QApplication.processEvents()
    assert stagger.held(w.state) >= 3
    assert not w.heatmaps.updatesEnabled()
    released: list[int] = []
    for _ in range(200):
        before = stagger.held(w.state)
        if before == 0:
            break
        QApplication.processEvents()
        released.append(before - stagger.held(w.state))
    assert stagger.held(w.state) == 0
    assert max(released) == 1  # one view per event-loop turn
    qtbot.wait(50)
    assert all(v.updatesEnabled() for v in _views(w))
    assert w.heatmaps.height() > heights  # they grew into the panel's room
    # and each of them painted for its new size
    assert set(paints.n) == {"QWidget", "UnitLines", "StepBars", "OutputView", "UnitDetail"}


def test_a_small_trace_is_never_held(app, qtbot):
    from lstmviz.app import stagger

    w = app
    press(qtbot, w, w.panels.specs["what_if"].shortcut)
    qtbot.waitUntil(w.panels.docks["what_if"].isVisible, timeout=5000)
    QApplication.processEvents()
    assert stagger.held(w.state) == 0
    assert all(v.updatesEnabled() for v in _views(w))


def test_flush_releases_held_views(app, qtbot, monkeypatch):
    from lstmviz.app import stagger

    w = app
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)
    w.resize(1500, 850)  # the window resized: the views are held
    QApplication.processEvents()
    assert stagger.held(w.state) > 0
    stagger.flush(w.state)  # a screenshot asks for everything now
    assert stagger.held(w.state) == 0
    assert all(v.updatesEnabled() for v in _views(w))


def test_draw_then_paint_paints_a_big_trace_in_the_next_turn(app, qtbot, monkeypatch):
    from PySide6.QtWidgets import QLabel

    from lstmviz.app import stagger

    w = app
    label = QLabel("before")
    qtbot.addWidget(label)
    label.show()
    seen: list[bool] = []

    def draw() -> None:
        label.setText("after")
        seen.append(label.updatesEnabled())

    stagger.draw_then_paint(w.state, label, draw)  # the digit-sum trace is small
    assert seen == [True] and label.updatesEnabled()
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)
    stagger.draw_then_paint(w.state, label, draw)
    assert seen == [True, False]  # filled with its paint held ...
    assert not label.updatesEnabled() and label.text() == "after"
    QApplication.processEvents()  # ... and painted in the next turn
    assert label.updatesEnabled()


def test_a_what_if_beside_a_big_trace_ends_painted(app, qtbot, monkeypatch):
    from lstmviz.app import stagger

    w = app
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)
    press(qtbot, w, w.panels.specs["what_if"].shortcut)
    p = w.panels.widget("what_if")
    qtbot.waitUntil(lambda: stagger.held(w.state) == 0 and stagger.pending(w.state) == 0)
    p.step.setValue(3)
    click(qtbot, p.run_btn)
    qtbot.waitUntil(lambda: p.result is not None, timeout=20000)
    qtbot.waitUntil(p.stack.updatesEnabled, timeout=5000)
    assert not p.stack.is_empty


def test_another_layer_of_a_big_trace_reaches_the_views_one_turn_at_a_time(
    full_window, qtbot, monkeypatch
):
    """Choosing another layer in the Model panel: with a big trace each view redraws in its
    own event-loop turn (heatmaps first); once idle every view shows the new layer."""
    from PySide6.QtCore import Qt

    from lstmviz.app import stagger

    w = full_window(EXAMPLES_DIR / "stacked_lstm.keras")
    assert len(w.state.layer_names) >= 2
    first = w.state.layer
    monkeypatch.setattr(stagger, "BIG_TRACE_BYTES", 0)
    combo = w.selection_panel.layer_combo
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # a closed combo box moves to the next layer
    assert w.state.layer != first
    assert stagger.pending(w.state) == 5  # nothing redrawn in the turn of the key press
    QApplication.processEvents()
    assert stagger.pending(w.state) == 4  # the heatmaps first
    qtbot.waitUntil(lambda: stagger.pending(w.state) == 0, timeout=5000)
    lt = w.state.layer_trace
    assert w.heatmaps.maps["cell"].data.shape[-1] == lt.timesteps
    assert w.unit_detail.updatesEnabled() and w.heatmaps.updatesEnabled()
