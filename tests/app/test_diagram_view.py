"""The live cell diagram: every number drawn is the trace's at that step; clicks and hovers."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from lstmviz.app.diagram_view import DiagramView, EquationsView

from .models import digit_info, digit_model


def _number(text: str) -> float:
    """The number at the end of a drawn text ("f = 0.80", "−0.37")."""
    return float(text.rsplit("= ", 1)[-1].replace("−", "-"))


def _expected(lt, t: int, u: int, b: int = 0) -> dict[str, float]:
    """Every wire's value straight from the trace's arrays (no diagram code)."""
    from lstmviz.engine import activations

    f = float(lt.forget_gate[b, t, u])
    i = float(lt.input_gate[b, t, u])
    g = float(lt.candidate[b, t, u])
    c_prev = float(lt.cell_prev[b, t, u])
    c = float(lt.cell[b, t, u])
    return {
        "c_prev": c_prev,
        "h_prev": float(lt.hidden_prev[b, t, u]),
        "z_f": float(lt.z_f[b, t, u]),
        "z_i": float(lt.z_i[b, t, u]),
        "z_c": float(lt.z_c[b, t, u]),
        "z_o": float(lt.z_o[b, t, u]),
        "f": f,
        "i": i,
        "g": g,
        "o": float(lt.output_gate[b, t, u]),
        "kept": f * c_prev,
        "written": i * g,
        "c": c,
        "tanh_c": float(activations.apply(lt.weights.activation, np.float32([c]))[0]),
        "h": float(lt.hidden[b, t, u]),
        "h_up": float(lt.hidden[b, t, u]),
    }


@pytest.fixture
def view(qtbot, state):
    state.options.animate = False
    v = DiagramView(state)
    qtbot.addWidget(v)
    v.resize(1400, 640)
    v.show()
    qtbot.waitExposed(v)
    return v


def _check_numbers(view, state) -> int:
    view.grab()
    lt = state.layer_trace
    want = _expected(lt, state.t, state.unit, state.batch)
    checked = 0
    for key, value in want.items():
        text = view.drawn[f"0/{key}"]
        got = _number(text)
        # two decimals below 10, one below 100 (the diagram's format): half a last digit
        tol = 0.005 if abs(value) < 10 else 0.05 if abs(value) < 100 else 0.5
        assert abs(got - value) <= tol + 1e-6, (key, text, value)
        checked += 1
    label = state.token_labels()[state.t]
    x = view.drawn["0/x"]
    assert x == f"xₜ = {label}" or (x.startswith("xₜ: ") and x.endswith(f"from input {label}"))
    return checked


def test_every_number_on_the_diagram_is_the_traces(view, state, qtbot):
    state.set_model(digit_model(units=12), None, digit_info())
    state.set_text("4 7 3 9 1 8")
    n = 0
    for t in range(state.timesteps):
        for unit in (0, 5, 11):
            state.set_t(t)
            state.set_units([unit])
            n += _check_numbers(view, state)
    assert n == 6 * 3 * 16
    assert "unit 11" in view.header_text() and "t = 5" in view.header_text()


def test_the_adders_identity_activation_is_drawn_as_it_is(view, state, qtbot):
    from lstmviz.examples import get_example
    from lstmviz.io import load_model

    ex = get_example("binary_addition")
    state.set_model(load_model(ex.path), ex.path, ex.info)
    state.set_text("1011 + 0110")
    assert state.layer_trace.weights.activation == "linear"
    for t in range(state.timesteps):
        state.set_t(t)
        _check_numbers(view, state)
    texts = {bx.text for bx in view.scene.boxes}
    assert "id" in texts and "tanh" not in texts  # no tanh drawn where the model has none


def test_whole_layer_strips_are_the_traces_values(view, state, qtbot):
    state.set_model(digit_model(units=6, stacked=True), None, digit_info())
    state.set_text("1 2 3 4")
    state.options.diagram_layer = True
    state.set_t(2)
    view.grab()
    assert view.layer_names == ["lstm_a", "lstm_b"]  # stacked: chained, layer 0 at the bottom
    for k, name in enumerate(view.layer_names):
        lt = state.trace.layer(name)
        for key, q in (("f", "forget_gate"), ("c", "cell"), ("h", "hidden"), ("g", "candidate")):
            np.testing.assert_array_equal(view.drawn_strips[f"{k}/{key}"], lt.get(q)[0, 2])
    ghosts = [c for c in view.scene.cells if c.ghost]
    assert {c.ghost for c in ghosts} == {"prev", "next"}


def test_clicking_a_part_highlights_its_equation_and_heatmap_row(digit_window, qtbot):
    w = digit_window
    w.state.options.animate = False
    w.state.set_text("4 7 3")
    w.state.set_units([3])
    view = DiagramView(w.state)
    qtbot.addWidget(view)
    view.resize(1200, 560)
    view.show()
    qtbot.waitExposed(view)
    view.grab()
    assert view.scene is not None, (view.message, view._dirty, view.isVisible(), view.size())
    box = next(b for b in view.scene.boxes if b.id == "0/box_f")
    pos = view.widget_pos((box.x, box.y)).toPoint()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos)
    assert w.state.options.highlight == "forget_gate"
    hm = w.heatmaps.maps["forget_gate"]
    assert hm.highlight.isVisible() and not w.heatmaps.maps["cell"].highlight.isVisible()
    row = int(np.nonzero(hm.rows == 3)[0][0])
    assert round(hm.highlight.rect().center().y() - 0.5) == row
    lit = [k for k in range(len(w.unit_detail.lines)) if w.unit_detail.highlighted(k)]
    assert lit and all(w.unit_detail.line_quantity[k] == "forget_gate" for k in lit)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos)  # again: off
    assert w.state.options.highlight == ""
    assert not hm.highlight.isVisible()


def test_hovering_a_wire_shows_its_formula_with_numbers(view, state, qtbot):
    state.set_model(digit_model(units=8), None, digit_info())
    state.set_text("2 5 9")
    state.set_t(1)
    view.grab()
    wire = view.scene.wire("0/kept")
    mid = ((wire.points[0][0] + wire.points[1][0]) / 2, wire.points[0][1])
    pos = view.widget_pos(mid).toPoint()
    QApplication.sendEvent(view, QHelpEvent(QEvent.Type.ToolTip, pos, view.mapToGlobal(pos)))
    qtbot.waitUntil(QToolTip.isVisible, timeout=3000)
    text = QToolTip.text()
    assert text == view.values["0/kept"].formula
    assert text.startswith("f·cₜ₋₁ = ") and any(ch.isdigit() for ch in text)
    QToolTip.hideText()


def test_stepping_animates_then_shows_every_number(view, state, qtbot):
    state.set_model(digit_model(units=8), None, digit_info())
    state.set_text("2 5 9")
    state.options.animate = True
    state.set_t(1)
    assert view.animating
    view.grab()
    assert "0/h" not in view.drawn  # the output is reached last
    qtbot.waitUntil(lambda: not view.animating, timeout=3000)
    _check_numbers(view, state)
    state.options.animate = False
    state.set_t(2)
    assert not view.animating


def test_a_question_hides_the_cells_update(view, state, qtbot):
    state.set_model(digit_model(units=8), None, digit_info())
    state.set_text("2 5 9")
    state.set_t(1)
    state.options.hide_answer = True
    view.grab()
    assert view.drawn["0/c"] == "?" and view.drawn["0/h"] == "?"
    assert _number(view.drawn["0/f"]) == pytest.approx(
        float(state.layer_trace.forget_gate[0, 1, state.unit]), abs=0.005
    )
    eq = EquationsView(state)
    qtbot.addWidget(eq)
    assert "cₜ = ?" in eq.text() and "hₜ = ?" in eq.text()
    state.options.hide_answer = False
    view.grab()
    _check_numbers(view, state)


def test_equations_view_shows_the_units_formulas(state, qtbot):
    from lstmviz.export.diagram import unit_values

    state.set_model(digit_model(units=8), None, digit_info())
    state.set_text("2 5 9")
    state.set_t(2)
    state.set_units([4])
    eq = EquationsView(state)
    qtbot.addWidget(eq)
    eq.resize(1600, 700)
    eq.show()
    eq.grab()
    vals = unit_values(state.layer_trace, 2, 0, 4, state.token_labels())
    for key in ("f", "i", "g", "o", "c", "h", "z_f"):
        assert vals[key].formula in eq.text()
    assert eq.header.startswith("unit 4 of layer lstm · t = 2")
    assert min(eq.text_px) >= 28
