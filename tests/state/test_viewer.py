"""The viewer state (Qt-free): clamping, events, selection and trace swaps."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.errors import LstmvizError
from lstmviz.state import ViewerState
from tests.app.models import char_model, digit_info, digit_model


@pytest.fixture
def state():
    return ViewerState()


class Recorder:
    """Every event of a state, in order: ``[("t", (3,)), ("trace", ()), ...]``."""

    def __init__(self, state: ViewerState) -> None:
        self.seen: list[tuple[str, tuple]] = []
        for name in (
            "model",
            "input",
            "trace",
            "t",
            "layer",
            "batch",
            "selection",
            "rows",
            "busy",
            "failed",
            "interventions",
            "token_scores",
        ):
            getattr(state.events, name).connect(lambda *a, _n=name: self.seen.append((_n, a)))

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]


def test_set_model_traces_example_input(state):
    rec = Recorder(state)
    state.set_model(digit_model(), None, digit_info())
    assert rec.names() == ["model", "trace"]  # one event per change
    assert state.layer == "lstm"
    assert state.t == 0
    assert state.timesteps == 6  # "4 7 3 9 1 2"
    assert state.token_labels() == ["4", "7", "3", "9", "1", "2"]
    lt = state.layer_trace
    assert lt.units == 10
    assert state.selected_units
    assert all(0 <= u < 10 for u in state.selected_units)
    assert state.engine == "NumPy"
    assert list(state.rows) == list(range(10))


def test_set_t_clamps_and_is_noop_when_unchanged(state):
    state.set_model(digit_model(), None, digit_info())
    seen = []
    state.events.t.connect(seen.append)
    state.set_t(3)
    state.set_t(3)
    state.set_t(99)
    state.set_t(-5)
    assert seen == [3, 5, 0]


def test_set_text_and_input_retrace(state):
    state.set_model(digit_model(), None, digit_info())
    state.set_t(5)
    rec = Recorder(state)
    state.set_text("1 2 3")
    assert rec.names() == ["input", "trace"]
    assert state.timesteps == 3
    assert state.t == 2  # clamped into the new trace
    assert state.input_text() == "1 2 3"
    x = np.eye(10, dtype=np.float32)[[5, 5, 5, 5]]  # (T, F): a batch axis is added
    state.set_input(x)
    assert state.x.shape == (1, 4, 10)
    with pytest.raises(LstmvizError, match="only 0-9"):
        state.set_text("12a")


def test_set_trace_keeps_valid_state(state):
    m = digit_model()
    state.set_model(m, None, digit_info())
    state.set_t(4)
    state.set_units([7, 2])
    other = m.trace(state.x)
    state.set_trace(other, engine="Keras")
    assert state.trace is other
    assert state.t == 4
    assert state.selected_units == [7, 2]
    assert state.engine == "Keras"


def test_layers_batch_and_units(state):
    state.set_model(digit_model(stacked=True), None, digit_info())
    assert state.layer_names == ["lstm_a", "lstm_b"]
    rec = Recorder(state)
    state.set_layer("lstm_b")
    assert rec.seen == [("layer", ("lstm_b",))]
    assert state.layer_trace.units == 12
    with pytest.raises(LstmvizError, match="no LSTM layer named 'nope'"):
        state.set_layer("nope")
    with pytest.raises(LstmvizError, match="out of range"):
        state.set_units([12])
    state.set_units([11, 3, 11])
    assert state.selected_units == [11, 3]
    assert state.unit == 11
    x = np.eye(10, dtype=np.float32)[np.array([[1, 2, 3], [4, 5, 6]])]  # (2, 3, 10)
    state.set_input(x)
    rec = Recorder(state)
    state.set_batch(1)
    assert rec.seen == [("batch", (1,))]
    assert state.token_labels() == ["4", "5", "6"]
    with pytest.raises(LstmvizError, match="batch item 2 out of range"):
        state.set_batch(2)


def test_unit_filters(state):
    state.set_model(digit_model(units=20), None, digit_info())
    lt = state.layer_trace
    state.set_unit_filter("active", 4)
    rows = state.rows
    assert len(rows) == 4
    score = np.abs(lt.hidden[0]).mean(axis=0)
    assert set(rows) == set(np.argsort(-score)[:4])
    state.set_unit_filter("saturated", 3)
    assert len(state.rows) == 3
    state.set_unit_filter("list", "0-2, 7")
    assert list(state.rows) == [0, 1, 2, 7]
    with pytest.raises(LstmvizError, match="unit 99 out of range"):
        state.set_unit_filter("list", [99])
    with pytest.raises(LstmvizError, match="cannot read unit"):
        state.set_unit_filter("list", "3, x")
    state.set_unit_filter("all")
    assert len(state.rows) == 20


def test_chars_roundtrip(state):
    m, info = char_model()
    state.set_model(m, None, info)
    assert state.token_labels()[5] == "␣"
    assert state.input_text() == "hello world"
    state.set_text("abc.")
    assert state.token_labels() == ["a", "b", "c", "."]


def test_long_trace_runs_in_the_runner(state, monkeypatch):
    """Above the size limit the state hands tracing to its runner and reports busy."""
    from lstmviz.state import viewer

    calls = []

    def runner(job, on_done, on_failed, label):
        calls.append(label)
        on_done(job(lambda i, n: None, lambda: False))

    state.runner = runner
    monkeypatch.setattr(viewer, "SYNC_TRACE_VALUES", 10)
    busy = []
    state.events.busy.connect(busy.append)
    state.set_model(digit_model(), None, digit_info())
    assert calls == ["Tracing 6 timesteps"]
    assert busy == ["Tracing 6 timesteps", ""]
    assert state.trace is not None


def test_a_failed_trace_is_one_failed_event(state, monkeypatch):
    from lstmviz.state import viewer

    def runner(job, on_done, on_failed, label):
        on_failed("boom")

    state.set_model(digit_model(), None, digit_info())
    state.runner = runner
    monkeypatch.setattr(viewer, "SYNC_TRACE_VALUES", 0)
    rec = Recorder(state)
    state.set_text("1 2")
    assert rec.names() == ["input", "busy", "busy", "failed"]
    assert rec.seen[-1] == ("failed", ("boom",))


def test_a_stale_result_is_dropped(state, monkeypatch):
    """A trace finishing after a newer one was asked for never reaches the screen."""
    from lstmviz.state import viewer

    pending = []
    state.set_model(digit_model(), None, digit_info())
    state.runner = lambda job, on_done, on_failed, label: pending.append((job, on_done))
    monkeypatch.setattr(viewer, "SYNC_TRACE_VALUES", 0)
    state.set_text("1 2")
    state.set_text("3 4 5")
    (job1, done1), (job2, done2) = pending
    done2(job2(lambda i, n: None, lambda: False))
    assert state.timesteps == 3
    done1(job1(lambda i, n: None, lambda: False))  # late: dropped
    assert state.timesteps == 3


def test_default_units_follow_the_model_info(state):
    info = digit_info()
    info.extra = {"checks": {"carry_unit": 7, "carry_r": 0.99}}
    state.set_model(digit_model(), None, info)
    assert state.selected_units[0] == 7
    assert len(state.selected_units) == 3


def test_interventions_are_state_with_one_event(state):
    from lstmviz.engine.intervene import Intervention

    state.set_model(digit_model(), None, digit_info())
    rec = Recorder(state)
    a = Intervention("lstm", (2,), "cell", "zero")
    b = Intervention("lstm", (3, 4), "forget_gate", "clamp", value=1.0, start=1, stop=3)
    state.add_intervention(a)
    state.add_intervention(b)
    assert state.interventions == (a, b)
    state.remove_intervention(0)
    assert state.interventions == (b,)
    assert rec.names() == ["interventions"] * 3
    with pytest.raises(LstmvizError, match="unit 10 does not exist"):
        state.add_intervention(Intervention("lstm", (10,)))
    with pytest.raises(LstmvizError, match="LSTM layers are lstm"):
        state.add_intervention(Intervention("other", (1,)))
    with pytest.raises(LstmvizError, match="Intervention objects"):
        state.set_interventions([{"layer": "lstm"}])
    with pytest.raises(LstmvizError, match="does not exist: there are 1"):
        state.remove_intervention(4)
    assert state.interventions == (b,) and rec.names() == ["interventions"] * 3
    state.set_text("1 2 3")  # a new input keeps them
    assert state.interventions == (b,)
    state.set_model(digit_model(seed=1), None, digit_info())  # a new model clears them
    assert state.interventions == ()


def test_token_scores_colour_one_input(state):
    state.set_model(digit_model(), None, digit_info(), np.eye(10, dtype=np.float32)[[[1, 2, 3]]])
    rec = Recorder(state)
    state.set_token_scores([0.5, -1.0, 0.25], "a test")
    ts = state.token_scores
    assert ts is not None and ts.label == "a test" and ts.scores.shape == (1, 3)
    np.testing.assert_allclose(ts.normalized(0), [0.5, -1.0, 0.25])
    assert rec.names() == ["token_scores"]
    with pytest.raises(LstmvizError, match=r"one per input step: shape \(1, 3\)"):
        state.set_token_scores([1.0, 2.0])
    with pytest.raises(LstmvizError, match="finite"):
        state.set_token_scores([1.0, np.nan, 2.0])
    state.set_text("4 5 6 7")  # scores of the old input are dropped with it
    assert state.token_scores is None
    state.set_token_scores(np.ones((1, 4)))
    state.set_token_scores(None)
    assert state.token_scores is None


def test_typed_bits_round_trip_with_the_carry_step(state):
    """The text of a binary-addition input reads back as the same input (set_text adds one
    step for the final carry; the text leaves that step out)."""
    from tests.app.test_analysis_panels import bits_model

    m, info = bits_model()
    state.set_model(m, None, info)
    state.set_text("0110111 + 0000001")
    x = np.array(state.x)
    assert x.shape[1] == 8 and state.input_text() == "0110111 + 0000001"
    state.set_text(state.input_text())
    np.testing.assert_array_equal(state.x, x)
