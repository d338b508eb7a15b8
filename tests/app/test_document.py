"""The document: state, clamping, signals, selection and trace swaps."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.errors import LstmvizError

from .models import char_model, digit_info, digit_model


def test_set_model_traces_example_input(document, qtbot):
    with qtbot.waitSignals([document.model_changed, document.trace_changed]):
        document.set_model(digit_model(), None, digit_info())
    assert document.layer == "lstm"
    assert document.t == 0
    assert document.timesteps == 6  # "4 7 3 9 1 2"
    assert document.token_labels() == ["4", "7", "3", "9", "1", "2"]
    lt = document.layer_trace
    assert lt.units == 10
    assert document.selected_units
    assert all(0 <= u < 10 for u in document.selected_units)
    assert document.engine == "NumPy"
    assert list(document.rows) == list(range(10))


def test_set_t_clamps_and_is_noop_when_unchanged(document, qtbot):
    document.set_model(digit_model(), None, digit_info())
    seen = []
    document.t_changed.connect(seen.append)
    document.set_t(3)
    document.set_t(3)
    document.set_t(99)
    document.set_t(-5)
    assert seen == [3, 5, 0]


def test_set_text_and_input_retrace(document, qtbot):
    document.set_model(digit_model(), None, digit_info())
    document.set_t(5)
    with qtbot.waitSignal(document.trace_changed):
        document.set_text("1 2 3")
    assert document.timesteps == 3
    assert document.t == 2  # clamped into the new trace
    assert document.input_text() == "1 2 3"
    x = np.eye(10, dtype=np.float32)[[5, 5, 5, 5]]  # (T, F): a batch axis is added
    document.set_input(x)
    assert document.x.shape == (1, 4, 10)
    with pytest.raises(LstmvizError, match="only 0-9"):
        document.set_text("12a")


def test_set_trace_keeps_valid_state(document):
    m = digit_model()
    document.set_model(m, None, digit_info())
    document.set_t(4)
    document.set_units([7, 2])
    other = m.trace(document.x)
    document.set_trace(other, engine="Keras")
    assert document.trace is other
    assert document.t == 4
    assert document.selected_units == [7, 2]
    assert document.engine == "Keras"


def test_layers_batch_and_units(document, qtbot):
    document.set_model(digit_model(stacked=True), None, digit_info())
    assert document.layer_names == ["lstm_a", "lstm_b"]
    with qtbot.waitSignal(document.layer_changed) as blocker:
        document.set_layer("lstm_b")
    assert blocker.args == ["lstm_b"]
    assert document.layer_trace.units == 12
    with pytest.raises(LstmvizError, match="no LSTM layer named 'nope'"):
        document.set_layer("nope")
    with pytest.raises(LstmvizError, match="out of range"):
        document.set_units([12])
    document.set_units([11, 3, 11])
    assert document.selected_units == [11, 3]
    assert document.unit == 11
    x = np.eye(10, dtype=np.float32)[np.array([[1, 2, 3], [4, 5, 6]])]  # (2, 3, 10)
    document.set_input(x)
    with qtbot.waitSignal(document.batch_changed):
        document.set_batch(1)
    assert document.token_labels() == ["4", "5", "6"]
    with pytest.raises(LstmvizError, match="batch item 2 out of range"):
        document.set_batch(2)


def test_unit_filters(document):
    document.set_model(digit_model(units=20), None, digit_info())
    lt = document.layer_trace
    document.set_unit_filter("active", 4)
    rows = document.rows
    assert len(rows) == 4
    score = np.abs(lt.hidden[0]).mean(axis=0)
    assert set(rows) == set(np.argsort(-score)[:4])
    document.set_unit_filter("saturated", 3)
    assert len(document.rows) == 3
    document.set_unit_filter("list", "0-2, 7")
    assert list(document.rows) == [0, 1, 2, 7]
    with pytest.raises(LstmvizError, match="unit 99 out of range"):
        document.set_unit_filter("list", [99])
    with pytest.raises(LstmvizError, match="cannot read unit"):
        document.set_unit_filter("list", "3, x")
    document.set_unit_filter("all")
    assert len(document.rows) == 20


def test_chars_roundtrip(document):
    m, info = char_model()
    document.set_model(m, None, info)
    assert document.token_labels()[5] == "␣"
    assert document.input_text() == "hello world"
    document.set_text("abc.")
    assert document.token_labels() == ["a", "b", "c", "."]


def test_long_trace_runs_in_the_runner(document, qtbot):
    """Above the size limit the document hands tracing to its runner and reports busy."""
    from lstmviz.app import document as docmod

    calls = []

    def runner(fn, on_done, label, on_failed=None):
        calls.append(label)
        on_done(fn(lambda i, n: None, lambda: False))

    document.runner = runner
    old = docmod.SYNC_TRACE_LIMIT
    docmod.SYNC_TRACE_LIMIT = 10
    try:
        busy = []
        document.busy_changed.connect(lambda b, msg: busy.append(b))
        document.set_model(digit_model(), None, digit_info())
    finally:
        docmod.SYNC_TRACE_LIMIT = old
    assert calls == ["Tracing 6 timesteps"]
    assert busy == [True, False]
    assert document.trace is not None


def test_default_units_follow_the_model_info(document):
    info = digit_info()
    info.extra = {"checks": {"carry_unit": 7, "carry_r": 0.99}}
    document.set_model(digit_model(), None, info)
    assert document.selected_units[0] == 7
    assert len(document.selected_units) == 3
