"""Sessions from the viewer state and back (no window)."""

from __future__ import annotations

import numpy as np

from lstmviz.io.session import Session
from lstmviz.state import ViewerState
from lstmviz.state.session import apply_session, session_from_state
from tests.app.models import digit_info, digit_model


def test_state_round_trip(tmp_path):
    m = digit_model(stacked=True)
    state = ViewerState()
    x = np.eye(10, dtype=np.float32)[[[3, 1, 4], [1, 5, 9]]]
    state.set_model(m, None, digit_info(), x)
    state.set_layer("lstm_b")
    state.set_batch(1)
    state.set_units([2, 3])
    state.set_unit_filter("active", 4)
    state.set_t(2)
    state.options.lock_levels = True
    s = session_from_state(state, view={"k": 1}, snapshots=[])
    assert (s.layer, s.batch, s.units, s.t) == ("lstm_b", 1, [2, 3], 2)
    assert s.view["unit_filter"] == ["active", 4] and s.view["k"] == 1
    s.save(tmp_path / "d.lstmviz")
    again = Session.load(tmp_path / "d.lstmviz")
    other = ViewerState()
    problems = apply_session(again, other, model=m)
    assert problems == []
    assert (other.layer, other.batch, other.selected_units, other.t) == ("lstm_b", 1, [2, 3], 2)
    assert other.unit_filter == ("active", 4)
    assert other.options.lock_levels is True
    np.testing.assert_array_equal(other.x, x)


def test_what_no_longer_fits_is_reported(tmp_path):
    m = digit_model()
    s = Session(input=np.eye(10, dtype=np.float32)[[[1, 2]]], layer="gone", units=[99], t=7)
    state = ViewerState()
    problems = apply_session(s, state, model=m)
    assert any("layer 'gone'" in p for p in problems)
    assert any("units [99]" in p for p in problems)
    assert state.t == 1  # clamped to the input


def test_interventions_round_trip(tmp_path):
    from lstmviz.engine.intervene import Intervention

    m = digit_model()
    state = ViewerState()
    state.set_model(m, None, digit_info(), np.eye(10, dtype=np.float32)[[[3, 1, 4, 1]]])
    ivs = [
        Intervention("lstm", (2,), "cell", "zero", start=1, stop=3, label="carry"),
        Intervention("lstm", (0, 5), "hidden", "mean", values=np.array([0.25, -0.5])),
        Intervention("lstm", (7,), "forget_gate", "clamp", value=1.0),
    ]
    state.set_interventions(ivs)
    session_from_state(state).save(tmp_path / "iv.lstmviz")
    other = ViewerState()
    assert apply_session(Session.load(tmp_path / "iv.lstmviz"), other, model=m) == []
    assert [iv.to_dict() for iv in other.interventions] == [iv.to_dict() for iv in ivs]
    # a session whose intervention no longer fits the model: left out, and said so
    s = Session.load(tmp_path / "iv.lstmviz")
    s.view["interventions"][1]["units"] = [0, 50]
    s.view["interventions"][2]["mode"] = "melt"
    third = ViewerState()
    problems = apply_session(s, third, model=m)
    assert len(third.interventions) == 1 and third.interventions[0].label == "carry"
    assert any(p.startswith("intervention 2 left out") and "unit 50" in p for p in problems)
    assert any(p.startswith("intervention 3 left out") and "mode" in p for p in problems)


def test_a_long_input_is_kept_as_the_array_only():
    """Autosaves take the session on the GUI thread: a text longer than MAX_INPUT_TEXT is
    not kept, and one of feature values is not even written."""
    from lstmviz.state.session import MAX_INPUT_TEXT

    m = digit_model()
    state = ViewerState()
    digits = np.eye(10, dtype=np.float32)[[[3, 1, 4]]]
    state.set_model(m, None, digit_info(), digits)
    assert session_from_state(state).input_text == "3 1 4"
    assert state.input_text_within(5) == "3 1 4" and state.input_text_within(4) is None
    feats = np.linspace(-1, 1, 2 * 3 * 10, dtype=np.float32).reshape(2, 3, 10)
    state.set_model(m, None, None, feats)  # no token kind: the feature values themselves
    full = state.input_text()
    assert full.count(";") == 2 and len(full) > 59
    assert state.input_text_within(len(full)) == full
    assert state.input_text_within(len(full) - 1) is None
    assert state.input_text_within(58) is None  # 30 values need 59 characters at least
    steps = MAX_INPUT_TEXT // 20 + 1
    state.set_input(np.zeros((1, steps, 10), np.float32))
    s = session_from_state(state)
    assert s.input_text is None and s.input.shape == (1, steps, 10)
