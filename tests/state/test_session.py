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
