"""The viewer state's lecture parts (Qt-free): locked colour levels, the presentation focus."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis.levels import levels
from lstmviz.errors import LstmvizError
from lstmviz.state import ViewerState
from lstmviz.state.viewer import MAX_FOCUS
from tests.app.models import digit_info, digit_model


@pytest.fixture
def state():
    s = ViewerState()
    s.set_model(digit_model(units=12), None, digit_info())
    return s


def test_levels_follow_the_trace_until_locked(state):
    events = []
    state.events.trace.connect(lambda: events.append("trace"))
    lt = state.layer_trace
    assert state.color_levels("cell") == levels("cell", lt)
    assert state.color_levels("forget_gate") == (0.0, 1.0)
    state.options.lock_levels = True
    kept = state.color_levels("cell")
    assert events == ["trace"] and state.level_lock.locked  # redrawn
    state.set_model(digit_model(units=12, seed=5), None, digit_info())  # other weights
    other = state.color_levels("cell")  # a new model: its own levels, kept from now on
    assert state.level_lock.locked
    state.set_trace(digit_model(units=12, seed=9).trace(state.x))  # a training snapshot
    assert state.color_levels("cell") == other
    grew = state.widen_levels()
    lo, hi = state.color_levels("cell")
    assert lo <= other[0] and hi >= other[1]
    assert grew == ((lo, hi) != other)
    state.options.lock_levels = False
    assert state.color_levels("cell") == levels("cell", state.layer_trace)
    del kept


def test_levels_outside_says_what_overflows_a_locked_scale(state):
    assert state.levels_outside() == ("", 0.0)  # unlocked: nothing to widen
    state.level_lock.set("cell", (-0.01, 0.01), state.layer)
    state.level_lock.locked = True
    q, share = state.levels_outside()
    assert q == "cell" and share > 0.5
    with pytest.raises(LstmvizError, match="open a model"):
        ViewerState().color_levels("cell")


def test_focus_rows_put_the_selected_units_first(state):
    state.set_units([7, 3])
    rows = state.focus_rows()
    assert len(rows) == MAX_FOCUS and {3, 7} <= set(rows.tolist())
    assert list(rows) == sorted(rows)
    assert set(state.focus_rows(2).tolist()) == {3, 7}
    assert state.focus_rows(1).tolist() == [7]  # "the" unit first
    state.options.focus_units = (11, 0, 11, 99)  # a lesson's units (past the end: dropped)
    assert state.focus_rows().tolist() == [0, 11]
    assert np.all(state.focus_rows(50) < state.layer_trace.units)
