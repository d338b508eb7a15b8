"""The NumPy engine against real Keras, on real saved files, to 1e-5 absolute.

Every model is built with Keras inside the test, given random non-trivial weights, saved as
.keras and as legacy .h5, loaded with lstmviz (no TensorFlow) and compared: the model's output,
every LSTM's hidden sequence and final cell state.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import lstmviz  # noqa: E402
from tests import keras_models as km  # noqa: E402

ATOL = 1e-5
NAMES = list(km.BUILDERS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            model = km.BUILDERS[name]()
            # a stable seed per model (str hashes change from run to run: PYTHONHASHSEED)
            km.randomize(
                model,
                seed=zlib.crc32(name.encode()) % 1000,
                scale=0.3 if name in ("carry_model", "relu_lstm", "dense_activations") else 1.0,
            )
            d = tmp_path_factory.mktemp(name)
            model.save(d / f"{name}.keras")
            model.save(d / f"{name}.h5")
            cache[name] = (model, d)
        return cache[name]

    return get


def _keras_probes(model, x):
    """Keras's own hidden sequence and final cell state of every LSTM: {trace name: (h, c)}."""
    out = {}
    L = keras.layers
    xs = x if isinstance(x, list) else [x]
    for lay in model.layers:
        if isinstance(lay, L.Bidirectional):
            halves = [("forward", lay.forward_layer), ("backward", lay.backward_layer)]
        elif isinstance(lay, L.LSTM):
            halves = [(None, lay)]
        else:
            continue
        feed = keras.Model(model.inputs, lay._inbound_nodes[0].input_tensors[0])
        x_in = np.asarray(feed(xs if len(xs) > 1 else xs[0]))
        mask = None
        for other in model.layers:
            if isinstance(other, L.Embedding) and other.mask_zero:
                mask = np.asarray(xs[0]) != 0
            if isinstance(other, L.Masking):
                mask = np.any(np.asarray(xs[0]) != other.mask_value, axis=-1)
        init = None
        if lay.name == "decoder":
            enc = model.get_layer("encoder")
            states = keras.Model(model.inputs, enc.output[1:])(xs)
            init = [np.asarray(s) for s in states]
        for half, sub in halves:
            # zero_output_for_mask off: compare the carried state, not the zeroed output
            cfg = dict(
                sub.get_config(),
                return_sequences=True,
                return_state=True,
                zero_output_for_mask=False,
            )
            probe = L.LSTM.from_config(cfg)
            kw = {"mask": mask} if mask is not None else {}
            if init is not None:
                kw["initial_state"] = init
            probe(x_in, **kw)
            probe.set_weights(sub.get_weights())
            seq, _h, c = (np.asarray(v) for v in probe(x_in, **kw))
            name = lay.name if half is None else f"{lay.name}/{half}"
            out[name] = (seq, c, bool(cfg.get("go_backwards")))
    return out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", NAMES)
def test_parity(built, name, fmt):
    model, d = built(name)
    x = km.x_for(name, model)
    expected = model(x, training=False)
    m = lstmviz.load_model(d / f"{name}.{fmt}")
    tr = m.trace(x)
    if isinstance(expected, (list, tuple)):
        assert isinstance(tr.output, list)
        for a, b in zip(tr.output, expected, strict=True):
            np.testing.assert_allclose(a, np.asarray(b), atol=ATOL)
    else:
        np.testing.assert_allclose(tr.output, np.asarray(expected), atol=ATOL)
    probes = _keras_probes(model, x)
    # (a nested model's inner LSTMs are traced too; the probes see top-level layers only)
    assert set(probes) <= set(tr.layer_names)
    if name != "nested":
        assert sorted(probes) == sorted(tr.layer_names)
    else:
        assert len(tr.layer_names) == 2
    for lname, (seq, c_final, backwards) in probes.items():
        lt = tr.layer(lname)
        for q in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden"):
            arr = lt.get(q)
            assert arr.dtype == np.float32
            assert arr.shape == (seq.shape[0], seq.shape[1], lt.units)
        hidden = lt.hidden[:, ::-1] if backwards else lt.hidden
        np.testing.assert_allclose(hidden, seq, atol=ATOL, err_msg=f"{name} {lname} hidden")
        final_c = lt.cell[:, 0] if backwards else lt.cell[:, -1]
        np.testing.assert_allclose(final_c, c_final, atol=ATOL, err_msg=f"{name} {lname} cell")


def test_gates_are_nontrivial(built):
    """The random weights really exercise the gates (not all near 0.5)."""
    model, d = built("digit_sum")
    tr = lstmviz.load_model(d / "digit_sum.keras").trace(km.x_for("digit_sum", model))
    f = tr.layer("lstm_digits").forget_gate
    assert f.std() > 0.1
    assert (f < 0.2).any() and (f > 0.8).any()


def test_step_output_digit_sum(built):
    """The head applied at each step equals Keras on the prefix of the sequence."""
    model, d = built("digit_sum")
    x = km.x_for("digit_sum", model)
    tr = lstmviz.load_model(d / "digit_sum.keras").trace(x)
    assert tr.step_output.shape == (x.shape[0], x.shape[1], 10)
    for t in (0, 3, x.shape[1] - 1):
        np.testing.assert_allclose(
            tr.step_output[:, t], np.asarray(model(x[:, : t + 1])), atol=ATOL
        )


def test_initial_state(built):
    model, d = built("stacked_4_5")
    x = km.x_for("stacked_4_5", model)
    lay = model.layers[0]
    rng = np.random.default_rng(5)
    h0 = rng.normal(0, 0.5, (x.shape[0], 4)).astype(np.float32)
    c0 = rng.normal(0, 0.5, (x.shape[0], 4)).astype(np.float32)
    probe = keras.layers.LSTM.from_config(dict(lay.get_config(), return_sequences=True))
    probe(x, initial_state=[h0, c0])
    probe.set_weights(lay.get_weights())
    expected = np.asarray(probe(x, initial_state=[h0, c0]))
    tr = lstmviz.load_model(d / "stacked_4_5.keras").trace(x, initial_state={lay.name: (h0, c0)})
    np.testing.assert_allclose(tr.layer(lay.name).hidden, expected, atol=ATOL)
