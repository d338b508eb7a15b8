"""The zoo through the live route (``lstmviz.trace(model, x)``, the framework runs the model):
the same recording as the file route, to 1e-5, and the framework's output.

Active once lstmviz.bridge (live models) is installed; skipped before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lstmviz

pytest.importorskip("lstmviz.bridge")

ATOL = 1e-5


def _same_layers(file_trace, live_trace, name):
    """Layer by layer (in order): the same h and c from the file and from the live model."""
    assert len(file_trace.layers) == len(live_trace.layers), name
    for a, b in zip(file_trace.layers, live_trace.layers, strict=True):
        np.testing.assert_allclose(b.hidden, a.hidden, atol=ATOL, err_msg=f"{name} {a.name}")
        np.testing.assert_allclose(b.cell, a.cell, atol=ATOL, err_msg=f"{name} {a.name}")
        np.testing.assert_allclose(
            b.forget_gate, a.forget_gate, atol=ATOL, err_msg=f"{name} {a.name}"
        )


@pytest.mark.parametrize(
    "name",
    ["addition_rnn", "char_textgen", "bidirectional_imdb", "weather", "lstm_seq2seq", "rnn_guide"],
)
def test_keras_live_equals_file(tmp_path, name):
    pytest.importorskip("keras")
    from tests.zoo import keras_zoo

    small = {
        "addition_rnn": {"num_units": 16},
        "char_textgen": {"units": 16},
        "bidirectional_imdb": {"embed": 8, "units": 6, "max_features": 50},
        "weather": {"units": 8},
        "lstm_seq2seq": {},
        "rnn_guide": {"vocab": 100, "embed": 8, "units": 16},
    }[name]
    model, x, _ = keras_zoo.BUILDERS[name](**small)
    live = lstmviz.trace(model, x)
    ref = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.asarray(live.output), ref, atol=ATOL)
    model.save(tmp_path / "m.keras")
    file_trace = lstmviz.load_model(tmp_path / "m.keras").trace(x)
    _same_layers(file_trace, live, name)


def _torch_cases():
    torch = pytest.importorskip("torch")
    from tests.zoo import torch_zoo as tz

    cases = []
    net, ids = tz.word_language_model()
    cases.append(
        (
            "word_language_model",
            net,
            (torch.from_numpy(ids), net.init_hidden(1)),
            {"time_major": True},
        )
    )
    net, x = tz.time_sequence(hidden=12, steps=12)
    cases.append(("time_sequence_prediction", net, (torch.from_numpy(x),), {}))
    net, x = tz.mnist_rnn(hidden=16, batch=2)
    # (batch, 28, 28): forward()'s own reshape of the example's (batch, 1, 28, 28) images
    cases.append(("mnist_rnn", net, (torch.from_numpy(x.reshape(-1, 28, 28)),), {}))
    return cases


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_live_equals_pt2(tmp_path):
    """The same models through .pt2 (file) and live: the same recording, torch's output."""
    torch = pytest.importorskip("torch")
    for name, net, args, kw in _torch_cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.save(torch.export.export(net, args), str(tmp_path / f"{name}.pt2"))
        model = lstmviz.load_model(tmp_path / f"{name}.pt2")
        xs = [a.numpy() if isinstance(a, torch.Tensor) else a for a in args[:1]]
        x = xs[0]
        bf = x.T if kw.get("time_major") else x
        file_trace = model.trace(bf)
        live = lstmviz.trace(net, args[0], *args[1:], **kw)
        with torch.no_grad():
            ref = net(*args)
        ref0 = (ref[0] if isinstance(ref, tuple) else ref).numpy()
        out0 = live.output[0] if isinstance(live.output, (list, tuple)) else live.output
        np.testing.assert_allclose(np.asarray(out0), ref0, atol=ATOL, err_msg=name)
        _same_layers(file_trace, live, name)
