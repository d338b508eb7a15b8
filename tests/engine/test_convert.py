"""Layout converters: round trips, and parity with torch.nn.LSTM where torch is installed."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.engine import convert, run_lstm
from lstmviz.engine.cell import LSTMWeights, lstm_step
from lstmviz.errors import LstmvizError


def _weights(f=5, u=4, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    return LSTMWeights(
        rng.normal(0, 0.7, (f, 4 * u)),
        rng.normal(0, 0.7, (u, 4 * u)),
        rng.normal(0, 0.7, 4 * u) if bias else None,
    )


def _same(a: LSTMWeights, b: LSTMWeights):
    np.testing.assert_array_equal(a.kernel, b.kernel)
    np.testing.assert_array_equal(a.recurrent_kernel, b.recurrent_kernel)
    np.testing.assert_allclose(a.bias, b.bias, atol=1e-6)


def test_keras_roundtrip():
    w = _weights()
    _same(w, convert.from_keras(*convert.to_keras(w)))


def test_torch_roundtrip():
    w = _weights()
    t = convert.to_torch(w)
    assert t["weight_ih"].shape == (16, 5) and t["weight_hh"].shape == (16, 4)
    _same(w, convert.from_torch(**t))


def test_tf1_roundtrip_and_forget_bias():
    w = _weights()
    t = convert.to_tf1(w, forget_bias=1.0)
    assert t["kernel"].shape == (9, 16)
    _same(w, convert.from_tf1(t["kernel"], t["bias"], forget_bias=1.0))
    # the TF1 math, written out: i, j, f, o over [x, h], forget_bias added to f
    rng = np.random.default_rng(3)
    x, h, c = rng.normal(size=(2, 5)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    z = np.concatenate([x, h], 1) @ t["kernel"] + t["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_new = c * sig(f + 1.0) + sig(i) * np.tanh(j)
    h_new = np.tanh(c_new) * sig(o)
    ref = lstm_step(x, h, c, w)
    np.testing.assert_allclose(ref["c"], c_new, atol=1e-5)
    np.testing.assert_allclose(ref["h"], h_new, atol=1e-5)


def test_onnx_roundtrip_and_math():
    w1, w2 = _weights(seed=1), _weights(seed=2)
    o = convert.to_onnx(w1, w2)
    assert o["W"].shape == (2, 16, 5) and o["R"].shape == (2, 16, 4) and o["B"].shape == (2, 32)
    _same(w1, convert.from_onnx(o["W"], o["R"], o["B"], 0))
    _same(w2, convert.from_onnx(o["W"], o["R"], o["B"], 1))
    # ONNX equations (i, o, f, c order) written out
    rng = np.random.default_rng(4)
    x, h, c = rng.normal(size=(2, 5)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    z = x @ o["W"][0].T + h @ o["R"][0].T + o["B"][0, :16] + o["B"][0, 16:]
    i, oo, f, cc = np.split(z, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_new = sig(f) * c + sig(i) * np.tanh(cc)
    ref = lstm_step(x, h, c, w1)
    np.testing.assert_allclose(ref["c"], c_new, atol=1e-5)
    np.testing.assert_allclose(ref["h"], sig(oo) * np.tanh(c_new), atol=1e-5)


def test_shape_errors_are_specific():
    with pytest.raises(LstmvizError, match="weight_ih has shape"):
        convert.from_torch(np.zeros((15, 5)), np.zeros((16, 4)))
    with pytest.raises(LstmvizError, match=r"TF1 LSTM cell: kernel has shape \(9, 10\)"):
        convert.from_tf1(np.zeros((9, 10)), None)
    with pytest.raises(LstmvizError, match="ONNX LSTM"):
        convert.from_onnx(np.zeros((1, 16, 5)), np.zeros((1, 16, 3)))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_parity_with_torch(bidirectional):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.6)
    x = np.random.default_rng(0).normal(size=(3, 8, 5)).astype(np.float32)
    with torch.no_grad():
        expected, (h_n, c_n) = net(torch.from_numpy(x))
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    inp = x
    dirs = 2 if bidirectional else 1
    for layer in range(2):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = convert.from_torch(
                sd[f"weight_ih{sfx}"],
                sd[f"weight_hh{sfx}"],
                sd[f"bias_ih{sfx}"],
                sd[f"bias_hh{sfx}"],
            )
            lt = run_lstm(inp, w, go_backwards=bool(d))
            outs.append(np.asarray(lt.hidden))
            idx = layer * dirs + d
            np.testing.assert_allclose(lt.hidden[:, 0 if d else -1], h_n[idx].numpy(), atol=1e-5)
            np.testing.assert_allclose(lt.cell[:, 0 if d else -1], c_n[idx].numpy(), atol=1e-5)
        inp = np.concatenate(outs, axis=-1)
    np.testing.assert_allclose(inp, expected.numpy(), atol=1e-5)
