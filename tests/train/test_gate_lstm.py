"""GateLSTM: same weights as keras.layers.LSTM, returns its gates; parity with Keras and the
NumPy engine to 1e-5; the Keras-engine trace."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import lstmviz  # noqa: E402
from lstmviz.engine import run_lstm  # noqa: E402
from lstmviz.engine.cell import LSTMWeights  # noqa: E402
from lstmviz.train.gate_lstm import gate_lstm_class, keras_trace, run_gate_lstm  # noqa: E402

TOL = 1e-5


def _lstm(units, feats, seed, **kw):
    lay = keras.layers.LSTM(units, return_sequences=True, return_state=True, **kw)
    lay.build((None, None, feats))
    rng = np.random.default_rng(seed)
    lay.set_weights([rng.normal(0, 0.8, w.shape).astype(np.float32) for w in lay.get_weights()])
    return lay


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"go_backwards": True},
        {"activation": None},
        {"use_bias": False},
        {"recurrent_activation": "hard_sigmoid"},
    ],
)
def test_parity_with_keras_lstm_and_numpy_engine(kw):
    GateLSTM = gate_lstm_class()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 9, 5)).astype(np.float32)  # (B, T, F)
    ref = _lstm(4, 5, 1, **kw)
    seq, h_T, c_T = (np.asarray(a) for a in ref(x))
    g = GateLSTM.from_lstm(ref)
    assert [w.name for w in g.weights] == ["kernel", "recurrent_kernel", "bias"][
        : len(ref.get_weights())
    ]
    h, i, f, gg, o, c = (np.asarray(a) for a in g(x))
    back = kw.get("go_backwards", False)
    keras_h = seq[:, ::-1] if back else seq  # Keras returns processing order
    np.testing.assert_allclose(h, keras_h, atol=TOL)
    last = 0 if back else -1
    np.testing.assert_allclose(h[:, last], h_T, atol=TOL)
    np.testing.assert_allclose(c[:, last], c_T, atol=TOL)
    # the NumPy engine, quantity by quantity
    ws = ref.get_weights()
    act = {None: "linear"}.get(kw.get("activation", "tanh"), kw.get("activation", "tanh"))
    w = LSTMWeights(
        ws[0],
        ws[1],
        ws[2] if len(ws) > 2 else None,
        activation=act,
        recurrent_activation=kw.get("recurrent_activation", "sigmoid"),
    )
    lt = run_lstm(x, w, go_backwards=back)
    for ours, theirs in (
        (i, lt.input_gate),
        (f, lt.forget_gate),
        (gg, lt.candidate),
        (o, lt.output_gate),
        (c, lt.cell),
        (h, lt.hidden),
    ):
        np.testing.assert_allclose(ours, theirs, atol=TOL)


def test_weights_move_both_ways():
    GateLSTM = gate_lstm_class()
    g = GateLSTM(6)
    g.build((None, None, 3))
    rng = np.random.default_rng(2)
    g.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in g.get_weights()])
    k = keras.layers.LSTM(6, return_sequences=True)
    k.build((None, None, 3))
    k.set_weights(g.get_weights())  # GateLSTM -> keras.layers.LSTM
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(g(x)[0]), np.asarray(k(x)), atol=TOL)
    # Keras's initial forget bias of 1 (unit_forget_bias)
    fresh = GateLSTM(2)
    fresh.build((None, None, 3))
    np.testing.assert_array_equal(fresh.get_weights()[2], [0, 0, 1, 1, 0, 0, 0, 0])


def test_initial_state_mask_and_preactivations():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 4)).astype(np.float32)
    w = LSTMWeights(rng.normal(size=(4, 12)), rng.normal(size=(3, 12)), rng.normal(size=12))
    h0 = rng.normal(size=(2, 3)).astype(np.float32)
    c0 = rng.normal(size=(2, 3)).astype(np.float32)
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    r = run_gate_lstm(x, w, h0=h0, c0=c0, mask=mask)
    lt = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
    np.testing.assert_allclose(r["c"], lt.cell, atol=TOL)
    np.testing.assert_allclose(r["h"], lt.hidden, atol=TOL)
    np.testing.assert_allclose(r["z"][..., 3:6], lt.z_f, atol=TOL)
    np.testing.assert_allclose(r["h"][1, 5], r["h"][1, 3], atol=0)  # carried over


@pytest.mark.parametrize("name", ["digit_sum", "binary_addition", "stacked_lstm", "word_lm"])
def test_keras_trace_of_bundled_models(name):
    from lstmviz.examples import EXAMPLES_DIR
    from lstmviz.io.inputs import example_input

    path = EXAMPLES_DIR / f"{name}.keras"
    if not path.is_file():
        pytest.skip(f"{path} not generated")
    m = lstmviz.load_model(path)
    x = example_input(m)
    kt = keras_trace(m, x)
    nt = m.trace(x)
    assert kt.engine == "keras" and nt.engine == "numpy"
    assert kt.layer_names == nt.layer_names
    np.testing.assert_allclose(np.asarray(kt.output), np.asarray(nt.output), atol=TOL)
    for a, b in zip(kt.layers, nt.layers, strict=True):
        for q in (
            "input_gate",
            "forget_gate",
            "candidate",
            "output_gate",
            "cell",
            "hidden",
            "z_i",
            "z_f",
            "z_c",
            "z_o",
        ):
            np.testing.assert_allclose(a.get(q), b.get(q), atol=TOL, err_msg=q)
    # a path works too
    assert keras_trace(str(path), x).engine == "keras"
