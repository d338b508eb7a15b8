"""Retracing from a changed step: ``run_lstm(reuse=)`` and ``Model.trace(reuse=, out=)``.

A trace that reuses an earlier one copies the steps whose input did not change and computes
the rest; it must equal a full trace bit for bit, on every engine path, in both directions,
with masks, and through the layers around the LSTMs (a Bidirectional's backward half,
``go_backwards``, a convolution that spreads a change, a head on ``h_T``).
"""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis import what_if
from lstmviz.engine import _accel, run_lstm
from lstmviz.engine.layers import (
    LSTM,
    Bidirectional,
    Conv1D,
    Dense,
    InputLayer,
    TimeDistributed,
)
from lstmviz.engine.model import Model, Node
from lstmviz.errors import InputError

from ..analysis.helpers import make_model, random_weights
from .test_cell import _inputs, _weights


@pytest.fixture(params=["numpy", "blas", "avx2", "avx512"])
def engine(request):
    """The path a trace takes: the NumPy loop, the kernel with BLAS, or its packed tiles."""
    if request.param == "numpy":
        yield False
        return
    if not _accel.available():
        pytest.skip(_accel.describe())
    try:
        before = _accel.set_packed("" if request.param == "blas" else request.param)
    except ValueError as e:
        pytest.skip(str(e))
    yield None
    _accel.set_packed(before)


def _same(a, b):
    for q in ("pre", "act", "c", "h", "h0", "c0", "x"):
        np.testing.assert_array_equal(getattr(a, q), getattr(b, q), err_msg=q)


@pytest.mark.parametrize("batch", [1, 3, 32])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_run_lstm_reuse_equals_a_full_trace(engine, batch, go_backwards, masked):
    steps = 23
    w = _weights(4, 9, seed=batch)
    x, h0, c0, mask = _inputs(batch, steps, 4, 9, seed=3)
    m = mask if masked else None
    kw = {"h0": h0, "c0": c0, "mask": m, "go_backwards": go_backwards, "accelerate": engine}
    before = run_lstm(x, w, **kw)
    for t in (0, 11, steps - 1):
        x2 = x.copy()
        x2[batch - 1, t] += 0.25
        full = run_lstm(x2, w, **kw)
        again = run_lstm(x2, w, reuse=before, **kw)
        _same(again, full)
        assert again.meta["recomputed"] == ((t, steps) if not go_backwards else (0, t + 1))
    # two changes: from the first (the last, backwards)
    x2 = x.copy()
    x2[0, 5] -= 1.0
    x2[0, 17] += 1.0
    again = run_lstm(x2, w, reuse=before, **kw)
    _same(again, run_lstm(x2, w, **kw))
    assert again.meta["recomputed"] == ((5, steps) if not go_backwards else (0, 18))
    # nothing changed: nothing computed, everything copied
    same = run_lstm(x, w, reuse=before, **kw)
    _same(same, before)
    assert same.meta["recomputed"][0] == same.meta["recomputed"][1]
    assert not np.shares_memory(same.h, before.h)


def test_a_changed_mask_counts_as_a_changed_step(engine):
    w = _weights(3, 6)
    x, h0, c0, mask = _inputs(2, 15, 3, 6, seed=5)
    before = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=engine)
    m2 = mask.copy()
    m2[1, 9] = not m2[1, 9]
    again = run_lstm(x, w, h0=h0, c0=c0, mask=m2, reuse=before, accelerate=engine)
    _same(again, run_lstm(x, w, h0=h0, c0=c0, mask=m2, accelerate=engine))
    assert again.meta["recomputed"] == (9, 15)
    unmasked = run_lstm(x, w, h0=h0, c0=c0, reuse=before, accelerate=engine)
    first_masked = int(np.flatnonzero(~mask.all(axis=0))[0])
    assert unmasked.meta["recomputed"] == (first_masked, 15)
    _same(unmasked, run_lstm(x, w, h0=h0, c0=c0, accelerate=engine))


def test_reuse_that_does_not_fit_recomputes_everything():
    w = _weights(3, 6)
    x, h0, c0, _ = _inputs(2, 12, 3, 6)
    before = run_lstm(x, w, h0=h0, c0=c0)
    x2 = x.copy()
    x2[0, 8] = 0.0
    cases = {
        "other weights": ({"h0": h0, "c0": c0}, _weights(3, 6, seed=9)),
        "another initial state": ({"h0": h0 * 0.5, "c0": c0}, w),
        "the other direction": ({"h0": h0, "c0": c0, "go_backwards": True}, w),
        "another engine": ({"h0": h0, "c0": c0, "accelerate": False}, w),
    }
    if _accel.path(6, 2) == "numpy/1" or not _accel.available():
        del cases["another engine"]
    for why, (kw, weights) in cases.items():
        again = run_lstm(x2, weights, reuse=before, **kw)
        assert again.meta["recomputed"] == (0, 12), why
        _same(again, run_lstm(x2, weights, **kw))
    equal_copy = type(w)(w.kernel, w.recurrent_kernel, w.bias)  # equal weights, new object
    again = run_lstm(x2, equal_copy, h0=h0, c0=c0, reuse=before)
    assert again.meta["recomputed"] == (8, 12)
    shorter = run_lstm(x2[:, :10], w, reuse=before)  # another shape
    assert shorter.meta["recomputed"] == (0, 10)


def test_reuse_in_place(engine):
    w = _weights(5, 8, seed=2)
    x, h0, c0, mask = _inputs(3, 20, 5, 8, seed=6)
    x2 = x.copy()
    x2[2, 13] += 2.0
    full = run_lstm(x2, w, h0=h0, c0=c0, mask=mask, accelerate=engine)
    before = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=engine)
    again = run_lstm(x2, w, h0=h0, c0=c0, mask=mask, accelerate=engine, reuse=before, out=before)
    assert np.shares_memory(again.h, before.h)  # updated in place
    _same(again, full)


# ----------------------------------------------------------------------- whole models
def _conv_bidi_model(seed=0):
    """Input -> Conv1D(same) -> Bidirectional(concat) -> LSTM(go_backwards) -> TimeDistributed
    (Dense): a change spreads to neighbouring steps, runs backwards, and mixes directions."""
    rng = np.random.default_rng(seed)
    feats, units = 3, 5

    def lstm(name, f, back, seq=True):
        return LSTM(name, random_weights(f, units, seed + len(name)), seq, go_backwards=back)

    bi = Bidirectional("bi", lstm("fw", 4, False), lstm("bw", 4, True), "concat")
    nodes = [
        Node(InputLayer("input", (None, None, feats)), 0, []),
        Node(
            Conv1D("conv", rng.normal(0, 0.5, (3, feats, 4)), None, padding="same"),
            0,
            [("input", 0, 0)],
        ),
        Node(bi, 0, [("conv", 0, 0)]),
        Node(lstm("back", 2 * units, True), 0, [("bi", 0, 0)]),
        Node(
            TimeDistributed("head", Dense("dense", rng.normal(0, 1, (units, 2)), None, "softmax")),
            0,
            [("back", 0, 0)],
        ),
    ]
    return Model("conv_bidi", nodes, [("input", 0, 0)], [("head", 0, 0)])


def _models():
    return {
        "embedding, mask_zero, stacked": (
            make_model(vocab=12, units=7, mask_zero=True, stacked=5),
            True,
        ),
        "head on h_T": (make_model(features=4, units=6, return_sequences=False), False),
        "backwards": (make_model(features=4, units=6, go_backwards=True), False),
        "conv, bidirectional, backwards": (_conv_bidi_model(), False),
    }


def _traces_equal(a, b):
    assert [lt.name for lt in a.layers] == [lt.name for lt in b.layers]
    for la, lb in zip(a.layers, b.layers, strict=True):
        _same(la, lb)
    np.testing.assert_array_equal(np.asarray(a.output), np.asarray(b.output))
    if a.step_output is not None or b.step_output is not None:
        np.testing.assert_array_equal(a.step_output, b.step_output)


@pytest.mark.parametrize("name", list(_models()))
def test_model_trace_reuse_equals_a_full_trace(engine, name, monkeypatch):
    if engine is False:
        monkeypatch.setenv("LSTMVIZ_ACCEL", "0")
        _accel._reset_for_tests()
    try:
        model, tokens = _models()[name]
        rng = np.random.default_rng(1)
        steps = 16
        x = (
            rng.integers(1, 12, (3, steps))
            if tokens
            else rng.normal(0, 1, (3, steps, 4 if "conv" not in name else 3))
        )
        if tokens:
            x[0, 12:] = 0  # padding, masked
        before = model.trace(x)
        for t in (0, 7, steps - 1):
            x2 = x.copy()
            x2[1, t] = 5 if tokens else x2[1, t] + 1.5
            full = model.trace(x2)
            _traces_equal(model.trace(x2, reuse=before), full)
            prev = model.trace(x)
            _traces_equal(model.trace(x2, reuse=prev, out=prev), full)  # in place
        first = model.trace(x2, reuse=before).layers[0]
        if name == "conv, bidirectional, backwards":  # "same" padding: t - 1 changes too
            assert first.meta["recomputed"] == (steps - 2, steps)
    finally:
        _accel._reset_for_tests()


def test_model_trace_out_overwrites_a_previous_trace():
    model = make_model(features=3, units=6, stacked=4)
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (2, 10, 3))
    first = model.trace(x)
    x2 = x[:, ::-1].copy()
    again = model.trace(x2, out=first)
    for la, lb in zip(again.layers, first.layers, strict=True):
        assert np.shares_memory(la.h, lb.h)
    _traces_equal(again, model.trace(x2))
    with pytest.raises(InputError, match="out= must be a trace of this model"):
        make_model(features=3, units=6).trace(x, out=again)
    with pytest.raises(InputError, match="out="):
        model.trace(x, out="previous")
    with pytest.raises(InputError, match="reuse="):
        model.trace(x, reuse=[again])


def test_what_if_retraces_from_the_changed_step():
    model = make_model(vocab=9, units=6, stacked=4)
    x = np.random.default_rng(3).integers(0, 9, (2, 30))
    wi = what_if(model, x, 17, 4, batch=1)
    xa = x.copy()
    xa[1, 17] = 4
    _traces_equal(wi.after, model.trace(xa))
    assert wi.after.layers[0].meta["recomputed"] == (17, 30)
    for div in wi.divergence.values():
        for d in div.values():
            assert not d[:17].any()
    assert wi.first_affected("lstm") == 17
    again = what_if(model, x, 17, 2, batch=1, before=wi.before, out=wi.after)  # a slider
    xa[1, 17] = 2
    _traces_equal(again.after, model.trace(xa))
    with pytest.raises(InputError, match="shares its buffers"):
        what_if(model, x, 3, 1, before=again.before, out=again.before)
