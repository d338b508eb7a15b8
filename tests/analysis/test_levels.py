"""Colour levels: the fixed ranges, the robust extent, the lock, its dict form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmviz.analysis.levels import (
    LevelLock,
    LevelsError,
    layer_levels,
    levels,
    outside,
    readable,
    robust_extent,
)
from tests.analysis.helpers import make_model, random_weights


def _trace(seed=0, scale=1.0, activation="tanh", units=5, steps=30):
    from lstmviz.engine import LSTMWeights

    w = random_weights(3, units, seed=seed, scale=scale)
    w = LSTMWeights(w.kernel, w.recurrent_kernel, w.bias, activation=activation)
    m = make_model(features=3, units=units, weights=w, seed=seed)
    x = np.random.default_rng(seed).normal(0, 2, (2, steps, 3)).astype(np.float32)
    return m.trace(x).layers[0]


def test_fixed_levels_need_no_values():
    assert levels("forget_gate") == (0.0, 1.0)
    assert levels("i") == (0.0, 1.0)
    assert levels("candidate") == (-1.0, 1.0)
    assert levels("hidden") == (-1.0, 1.0)
    assert levels("tanh_c") == (-1.0, 1.0)
    with pytest.raises(LevelsError, match="depend on its values"):
        levels("cell")
    with pytest.raises(LevelsError, match="unknown quantity 'gate'"):
        levels("gate")


def test_unbounded_activation_gives_symmetric_levels():
    # the adder's activation=None: g and h are not in [-1, 1]
    vals = np.linspace(-7.3, 7.3, 50).reshape(10, 5)
    assert levels("candidate", vals, activation="linear") == (-8.0, 8.0)
    assert levels("hidden", vals, activation="linear") == (-8.0, 8.0)
    assert levels("candidate", vals, activation="tanh") == (-1.0, 1.0)
    # a gate with an unbounded recurrent activation is not [0, 1]
    assert levels("forget_gate", vals, recurrent_activation="relu") == (-8.0, 8.0)
    assert levels("forget_gate", vals, recurrent_activation="hard_sigmoid") == (0.0, 1.0)


@pytest.mark.parametrize(
    ("x", "want"),
    [
        (0.0, 1.0),
        (float("nan"), 1.0),
        (1.0, 1.0),
        (1.01, 1.2),
        (1.3, 1.5),
        (2.5, 2.5),
        (18.0, 20.0),
        (27.3, 30.0),
        (30.6, 40.0),
        (0.0031, 0.004),
        (700.0, 800.0),
        (801.0, 1000.0),
    ],
)
def test_readable(x, want):
    assert readable(x) == pytest.approx(want)


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-6, 1e6, allow_nan=False))
def test_readable_rounds_up_to_a_short_number(x):
    r = readable(x)
    assert x <= r * (1 + 1e-9)
    assert r <= 1.334 * x
    mantissa = f"{r:.5e}".split("e")[0].rstrip("0").rstrip(".").replace(".", "")
    assert len(mantissa) <= 2


def test_one_outlier_unit_does_not_wash_the_map_out():
    rng = np.random.default_rng(0)
    vals = rng.uniform(-1.0, 1.0, (2, 40, 32))  # (B, T, U): 32 units within +-1
    vals[:, :, 7] *= 100  # one unit at +-100
    assert levels("cell", vals) == (-1.0, 1.0)
    assert levels("cell", vals, robust=False) == (-100.0, 100.0)
    # a single spike inside one unit is ignored too (the 99.5th percentile per unit)
    vals = rng.uniform(-1.0, 1.0, (1, 400, 4))
    vals[0, 17, 2] = 50
    assert levels("cell", vals) == (-1.0, 1.0)
    # ... but a unit that is large throughout, with few units, is covered
    vals[0, :, 2] *= 5
    assert levels("cell", vals) == (-5.0, 5.0)


def test_robust_extent_edge_cases():
    assert robust_extent(np.zeros((0, 3))) == 0.0
    assert robust_extent(np.array([np.nan, np.inf, -2.0])) == 2.0
    assert robust_extent(3.0) == 3.0
    with pytest.raises(LevelsError, match="numbers"):
        robust_extent(np.array(["a"]))


def test_layer_trace_levels_read_activations_and_cache():
    lt = _trace(scale=3.0)
    lv = layer_levels(lt)
    assert lv["forget_gate"] == (0.0, 1.0) and lv["hidden"] == (-1.0, 1.0)
    lo, hi = lv["cell"]
    assert lo == -hi and hi == readable(robust_extent(lt.cell))
    assert levels("c", lt) is levels("cell", lt)  # cached on the trace
    lin = _trace(scale=3.0, activation="linear")
    assert levels("candidate", lin) != (-1.0, 1.0)
    assert levels("candidate", lin)[1] == readable(robust_extent(lin.candidate))
    assert levels("kept", lt)[1] == readable(robust_extent(lt.forget_gate * lt.cell_prev))
    assert levels("x", lt)[1] == readable(robust_extent(lt.x))


def test_outside_fraction():
    vals = np.array([[-3.0, 0.5, 0.2, 2.0]])
    assert outside("cell", vals, (-1.0, 1.0)) == 0.5
    assert outside("cell", np.zeros((0,)), (-1.0, 1.0)) == 0.0


def test_lock_keeps_levels_across_traces_and_widens_only_when_asked():
    small, big = _trace(seed=1, scale=0.3), _trace(seed=2, scale=4.0)
    assert levels("cell", small) != levels("cell", big)
    lock = LevelLock()
    first = lock.levels("cell", small)
    assert lock.levels("cell", big) == levels("cell", big)  # unlocked: follows the trace
    lock.levels("cell", small)
    lock.lock()
    assert lock.levels("cell", big) == first  # locked: the first stays
    assert lock.levels("forget_gate", big) == (0.0, 1.0)
    assert lock.widen(big)
    assert lock.levels("cell", big) == levels("cell", big)
    assert not lock.widen(small)  # never shrinks
    assert lock.levels("cell", small) == levels("cell", big)
    lock.unlock()
    assert lock.levels("cell", small) == first
    # lock(trace): those levels become the kept ones
    lock.lock(big)
    assert lock.locked and lock.levels("cell", small) == levels("cell", big)
    lock.set("cell", (-3.0, 3.0), layer=small.name)
    assert lock.levels("cell", small) == (-3.0, 3.0)
    with pytest.raises(LevelsError, match="lo < hi"):
        lock.set("cell", (3.0, -3.0), layer=small.name)


def test_lock_round_trips_through_a_dict():
    import json

    lock = LevelLock()
    lock.lock(_trace(seed=3, scale=2.0))
    d = json.loads(json.dumps(lock.to_dict()))
    again = LevelLock.from_dict(d)
    assert again == lock
    assert again.locked and again.kept == lock.kept


@pytest.mark.parametrize(
    ("d", "msg"),
    [
        ([], "JSON object"),
        ({"format": "x", "version": 1}, "format must be"),
        ({"format": "lstmviz-levels", "version": 9}, "unknown version 9"),
        ({"format": "lstmviz-levels", "version": 1, "locked": "yes"}, "'locked' must be"),
        ({"format": "lstmviz-levels", "version": 1, "levels": []}, "object of layers"),
        ({"format": "lstmviz-levels", "version": 1, "levels": {"l": {"cell": [2, 1]}}}, "lo < hi"),
        ({"format": "lstmviz-levels", "version": 1, "levels": {"l": {"cell": [1]}}}, "numbers"),
        ({"format": "lstmviz-levels", "version": 1, "levels": {"l": {"zz": [0, 1]}}}, "unknown"),
    ],
)
def test_lock_from_bad_dict(d, msg):
    with pytest.raises(LevelsError, match=msg):
        LevelLock.from_dict(d)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.dictionaries(
            st.sampled_from(["cell", "hidden", "z_f", "x"]),
            st.tuples(st.floats(-1e6, -1e-3), st.floats(1e-3, 1e6)),
            max_size=3,
        ),
        max_size=3,
    ),
    st.booleans(),
)
def test_lock_dict_round_trip_property(kept, locked):
    lock = LevelLock(locked=locked, kept={k: dict(v) for k, v in kept.items()})
    assert LevelLock.from_dict(lock.to_dict()) == lock


@pytest.mark.parametrize("name", ["char_textgen", "binary_addition", "digit_sum"])
def test_bundled_examples_app_and_export_agree(name):
    """The export draws with exactly the shared function's levels."""
    import lstmviz
    from lstmviz.examples import get_example
    from lstmviz.export.style import levels_for
    from lstmviz.io.inputs import load_input

    m = lstmviz.load_model(get_example(name).path)
    lt = m.trace(load_input(m)).layers[0]
    for q in ("forget_gate", "candidate", "cell", "hidden"):
        assert levels_for(q, lt) == levels(q, lt)
    if name == "binary_addition":  # activation=None: g and h are unbounded
        assert levels("hidden", lt)[1] > 1
