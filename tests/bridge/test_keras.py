"""Live Keras models: every recorded quantity equals Keras's own step math on the cell's
weights to 1e-5, and the trace's output is the model's output."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
layers = keras.layers

import lstmviz  # noqa: E402
from lstmviz.bridge import VerificationError, live_model  # noqa: E402
from lstmviz.errors import InputError, LstmvizError  # noqa: E402

from .reference import assert_layer_equal, keras_lstm_steps  # noqa: E402

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _full_route(monkeypatch):
    """These tests check the full route (the framework runs its LSTM, every step checked),
    bit for bit where it hands on the framework's own values; verify="auto" would take the
    spot route for their batches of 2 or more (tests/bridge/test_routes.py tests that)."""
    import lstmviz.bridge.common as bc

    monkeypatch.setattr(bc, "SPOT_MIN_BATCH", 1 << 30)


@pytest.fixture(params=["eager", "compiled"])
def path(request, monkeypatch):
    """Both ways a Keras LSTM layer is recorded: eagerly step by step, or compiled (long
    inputs) with the gates recomputed from its h at every step."""
    import lstmviz.bridge.keras as bk

    if request.param == "compiled":
        monkeypatch.setattr(bk, "COMPILED_MIN_STEPS", 1)
    return request.param


def _path_of(tr, name):
    return tr.layer(name).meta.get("path", "eager")


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)


def _same_output(tr, model, x):
    want = model(x, training=False)
    if isinstance(want, (list, tuple)):
        for a, b in zip(tr.output, want, strict=True):
            np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), atol=1e-7, rtol=0)
    else:
        np.testing.assert_allclose(tr.output, keras.ops.convert_to_numpy(want), atol=1e-7, rtol=0)


def test_lstm_layer_with_return_state(path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 3))
    seq, h, c = layers.LSTM(5, return_sequences=True, return_state=True, name="lstm")(inp)
    out = layers.Dense(2)(seq)
    model = keras.Model(inp, [out, h, c])
    x = _x(2, 7, 3)
    tr = lstmviz.trace(model, x)
    assert tr.layer_names == ["lstm"]
    _same_output(tr, model, x)
    ref = keras_lstm_steps(x, model.get_layer("lstm").cell)
    assert_layer_equal(tr.layer("lstm"), ref, ATOL)
    assert tr.step_output is not None and tr.step_output.shape == (2, 7, 2)
    assert _path_of(tr, "lstm") == path


def test_bidirectional_and_go_backwards_stacked(path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6, 4)),
            layers.Bidirectional(layers.LSTM(3, return_sequences=True), name="bidi"),
            layers.LSTM(4, go_backwards=True, name="back"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    x = _x(3, 6, 4, seed=1)
    tr = lstmviz.trace(model, x)
    assert tr.layer_names == ["bidi/forward", "bidi/backward", "back"]
    _same_output(tr, model, x)
    bidi = model.get_layer("bidi")
    rf = keras_lstm_steps(x, bidi.forward_layer.cell)
    rb = keras_lstm_steps(x, bidi.backward_layer.cell, reverse=True)
    assert_layer_equal(tr.layer("bidi/forward"), rf, ATOL)
    assert_layer_equal(tr.layer("bidi/backward"), rb, ATOL)
    assert tr.layer("bidi/backward").go_backwards
    both = np.concatenate([rf["h"], rb["h"]], axis=-1)
    assert_layer_equal(
        tr.layer("back"), keras_lstm_steps(both, model.get_layer("back").cell, reverse=True), ATOL
    )
    live = live_model(model, x)
    assert live.layers["bidi"].kind == "Bidirectional"
    back = live.lstm("back")  # what the model panel says it hands on
    assert not back.return_sequences and not back.return_state
    assert live.lstm("bidi/forward").return_sequences
    assert live.lstm("bidi/backward").weights.units == 3
    assert live.n_params == model.count_params()


def test_rnn_of_lstm_cells_stacked(path):
    keras.utils.set_random_seed(2)
    inp = keras.Input((None, 2))
    y = layers.RNN(layers.LSTMCell(4), return_sequences=True, name="rnn1")(inp)
    y = layers.RNN(layers.StackedRNNCells([layers.LSTMCell(3), layers.LSTMCell(2)]), name="stack")(
        y
    )
    model = keras.Model(inp, y)
    x = _x(2, 5, 2, seed=2)
    tr = lstmviz.trace(model, x)
    assert tr.layer_names == ["rnn1", "stack/cell_0", "stack/cell_1"]
    _same_output(tr, model, x)
    r1 = keras_lstm_steps(x, model.get_layer("rnn1").cell)
    assert_layer_equal(tr.layer("rnn1"), r1, ATOL)
    cells = model.get_layer("stack").cell.cells
    r2 = keras_lstm_steps(r1["h"], cells[0])
    assert_layer_equal(tr.layer("stack/cell_0"), r2, ATOL)
    assert_layer_equal(tr.layer("stack/cell_1"), keras_lstm_steps(r2["h"], cells[1]), ATOL)


def test_encoder_decoder_with_return_state_and_initial_state(path):
    # the Keras lstm_seq2seq example's architecture (code written here): encoder LSTM with
    # return_state, decoder LSTM started from the encoder's states, two model inputs
    keras.utils.set_random_seed(3)
    enc_in = keras.Input((None, 5), name="encoder_inputs")
    _, h, c = layers.LSTM(6, return_state=True, name="encoder")(enc_in)
    dec_in = keras.Input((None, 4), name="decoder_inputs")
    dec = layers.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    out = layers.Dense(4, activation="softmax")(dec)
    model = keras.Model([enc_in, dec_in], out)
    xe, xd = _x(2, 7, 5, seed=3), _x(2, 3, 4, seed=4)
    tr = lstmviz.trace(model, [xe, xd])
    assert tr.layer_names == ["encoder", "decoder"]
    _same_output(tr, model, [xe, xd])
    re_ = keras_lstm_steps(xe, model.get_layer("encoder").cell)
    assert_layer_equal(tr.layer("encoder"), re_, ATOL)
    rd = keras_lstm_steps(xd, model.get_layer("decoder").cell, re_["h"][:, -1], re_["c"][:, -1])
    assert_layer_equal(tr.layer("decoder"), rd, ATOL)
    np.testing.assert_array_equal(tr.layer("decoder").h0, tr.layer("encoder").h[-1])
    live = live_model(model, [xe, xd])
    assert live.input_names == ["encoder_inputs", "decoder_inputs"]
    with pytest.raises(InputError, match="2 inputs"):
        live.trace(xe)
    tr2 = live.trace([xe[:1], xd[:1, :2]])  # a new input calls Keras again
    assert tr2.layer("decoder").timesteps == 2 and tr2.batch_size == 1


def test_embedding_mask_zero_carries_the_state():
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            layers.Embedding(12, 3, mask_zero=True),
            layers.LSTM(4, return_sequences=True, name="lstm"),
        ]
    )
    ids = np.array([[3, 5, 7, 0, 0], [1, 2, 3, 4, 5]], np.int32)
    tr = lstmviz.trace(model, ids)
    _same_output(tr, model, ids)
    emb = keras.ops.convert_to_numpy(model.layers[0](ids))
    ref = keras_lstm_steps(emb, model.get_layer("lstm").cell, mask=ids != 0)
    assert_layer_equal(tr.layer("lstm"), ref, ATOL, mask=ids != 0)
    lt = tr.layer("lstm")
    np.testing.assert_array_equal(lt.hidden[0, 4], lt.hidden[0, 2])  # carried over
    live = live_model(model, ids)
    assert live.takes_tokens and live.embedding.input_dim == 12 and live.embedding.mask_zero
    with pytest.raises(InputError, match="vocabulary"):
        live.trace(np.array([[1, 12]]))


def test_a_decoder_loop_is_one_trace(path):
    keras.utils.set_random_seed(6)
    lstm = layers.LSTM(3, return_state=True, name="dec")

    class Loop(keras.Model):
        def __init__(self):
            super().__init__()
            self.dec = lstm

        def call(self, x):
            state = None
            outs = []
            for s in range(x.shape[1]):
                y, h, c = self.dec(x[:, s : s + 1], initial_state=state)
                state = [h, c]
                outs.append(y)
            return keras.ops.stack(outs, axis=1)

    x = _x(2, 4, 2, seed=6)
    model = Loop()
    tr = lstmviz.trace(model, x)
    assert tr.layer_names == ["dec"] and tr.layer("dec").timesteps == 4
    assert_layer_equal(tr.layer("dec"), keras_lstm_steps(x, lstm.cell), ATOL)


def test_custom_cell_math_is_refused():
    class Odd(layers.LSTMCell):
        def call(self, inputs, states, training=False):
            h, (h2, c) = super().call(inputs, states, training=training)
            return h * 1.01, [h2 * 1.01, c]

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((4, 2)), layers.RNN(Odd(3))])
    with pytest.raises(VerificationError, match="refuses"):
        lstmviz.trace(model, _x(1, 4, 2))


def test_no_lstm_and_time_major():
    model = keras.Sequential([keras.Input((4, 2)), layers.GRU(3)])
    with pytest.raises(LstmvizError, match="GRU"):
        lstmviz.trace(model, _x(1, 4, 2))
    lm = keras.Sequential([keras.Input((4, 2)), layers.LSTM(3)])
    with pytest.raises(InputError, match="time_major"):
        lstmviz.trace(lm, _x(4, 1, 2), time_major=True)


def test_initial_state_overrides_a_keras_layers_start(path):
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input((None, 2)),
            layers.Bidirectional(layers.LSTM(3, return_sequences=True), name="bidi"),
        ]
    )
    x = _x(2, 5, 2, seed=8)
    live = live_model(model, x)
    h0, c0 = np.full((2, 3), 0.4, np.float32), np.full(3, -0.3, np.float32)
    tr = live.trace(x, initial_state={"bidi/backward": (h0, c0)})
    bidi = model.get_layer("bidi")
    assert_layer_equal(tr.layer("bidi/forward"), keras_lstm_steps(x, bidi.forward_layer.cell), ATOL)
    c0b = np.broadcast_to(c0, (2, 3))
    rb = keras_lstm_steps(x, bidi.backward_layer.cell, h0, c0b, reverse=True)
    assert_layer_equal(tr.layer("bidi/backward"), rb, ATOL)
    rf = keras_lstm_steps(x, bidi.forward_layer.cell)
    # Keras itself ran from the given state: its output is the two halves' h
    np.testing.assert_allclose(tr.output, np.concatenate([rf["h"], rb["h"]], -1), atol=1e-5)
