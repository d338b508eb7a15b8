"""Real Keras models shaped like every example in the seeds, with random non-trivial weights.

Used by the parity tests (tests/engine/test_keras_parity.py) and others. Importing this module
imports Keras: only do it behind ``pytest.importorskip("keras")``.
"""

from __future__ import annotations

import numpy as np


def _keras():
    import keras

    return keras


def randomize(model, seed: int = 0, scale: float = 1.0) -> None:
    """Give every weight random values large enough that gates leave 0.5."""
    rng = np.random.default_rng(seed)
    ws = []
    for w in model.get_weights():
        if w.ndim >= 2:
            ws.append(rng.normal(0, scale * 3 / np.sqrt(max(w.shape[-2], 1)), w.shape))
        else:
            ws.append(rng.normal(0, scale, w.shape))
    model.set_weights([w.astype(np.float32) for w in ws])
    for lay in model.layers:  # a variance must be positive
        if lay.__class__.__name__ == "BatchNormalization":
            w = lay.get_weights()
            w[-1] = np.abs(w[-1]) + 0.5
            lay.set_weights(w)


def digit_sum(units: int = 10):  # the digit-sum example: LSTM(10) on one-hot digits -> softmax
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, 10)),
            L.LSTM(units, name="lstm_digits"),
            L.Dense(10, activation="softmax"),
        ],
        name="digit_sum",
    )


def toy_lm():  # the toy embedding language model: Embedding(9, 2) -> LSTM(2) -> Dense(9)
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(9, 2),
            L.LSTM(2, return_sequences=True),
            L.Dense(9, activation="softmax"),
        ]
    )


def classifier():  # the toy sequence classifier: LSTM(128) with dropout
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((6, 6)),
            L.LSTM(128, dropout=0.2),
            L.Dropout(0.5),
            L.Dense(6, activation="softmax"),
        ]
    )


def stacked_4_5():  # the stacked example: 4 -> 5 units on 6 features
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [keras.Input((None, 6)), L.LSTM(4, return_sequences=True), L.LSTM(5, return_sequences=True)]
    )


def carry_model():  # binary addition: Conv1D -> Conv1D -> LSTM(activation=None) -> sigmoid
    keras = _keras()
    L = keras.layers
    inp = keras.Input((None, 2))
    x = L.Conv1D(8, 1, activation="relu")(inp)
    x = L.Conv1D(4, 1, activation="relu")(x)
    x = L.LSTM(4, activation=None, return_sequences=True)(x)
    x = L.Dense(1, activation="sigmoid")(x)
    out = L.Reshape((-1,))(x)
    return keras.Model(inp, out, name="carry")


def text_generator(vocab: int = 30):  # text generation: Embedding -> LSTM -> LSTM -> softmax
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(vocab, 8),
            L.LSTM(16, return_sequences=True),
            L.LSTM(16),
            L.Dense(vocab, activation="softmax"),
        ]
    )


def hard_sigmoid_nobias():
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, 5)),
            L.LSTM(7, recurrent_activation="hard_sigmoid", use_bias=False, return_sequences=True),
            L.Dense(3),
        ]
    )


def bidirectional_masked(merge_mode: str = "concat"):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((None,), dtype="int32")
    x = L.Embedding(12, 4, mask_zero=True)(inp)
    x = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode=merge_mode)(x)
    if merge_mode is None:
        return keras.Model(inp, x)
    x = L.TimeDistributed(L.Dense(3, activation="tanh"))(x)
    return keras.Model(inp, x, name=f"bidi_{merge_mode}")


def go_backwards():
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, 3)),
            L.LSTM(6, go_backwards=True, return_sequences=True),
            L.LSTM(4, go_backwards=True),
            L.Dense(2),
        ]
    )


def kitchen_sink():  # the other layers around LSTMs
    keras = _keras()
    L = keras.layers
    inp = keras.Input((12, 3))
    x = L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="tanh")(inp)
    x = L.Conv1D(5, 2, padding="same", strides=1)(x)
    x = L.LayerNormalization()(x)
    x = L.BatchNormalization()(x)
    x = L.SpatialDropout1D(0.3)(x)
    x, _h, _c = L.LSTM(6, return_sequences=True, return_state=True)(x)
    x = L.Activation("relu")(x)
    x = L.Flatten()(x)
    x = L.Dense(4, activation="elu")(x)
    x = L.RepeatVector(3)(x)
    x = L.LSTM(3, return_sequences=True)(x)
    x = L.TimeDistributed(L.Dense(2, activation="softmax"))(x)
    return keras.Model(inp, x, name="kitchen_sink")


def seq2seq():  # an encoder-decoder: the encoder's states feed the decoder
    keras = _keras()
    L = keras.layers
    enc_in = keras.Input((None, 4))
    _, h, c = L.LSTM(5, return_state=True, name="encoder")(enc_in)
    dec_in = keras.Input((None, 3))
    y = L.LSTM(5, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    y = L.Dense(3, activation="softmax")(y)
    return keras.Model([enc_in, dec_in], y, name="seq2seq")


def conv_strided():
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, 2)),
            L.Conv1D(4, 3, strides=2, padding="valid", activation="relu"),
            L.Conv1D(4, 4, padding="same", strides=2),
            L.LSTM(3, return_sequences=True),
            L.Dense(1),
        ]
    )


def relu_lstm():
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [keras.Input((None, 4)), L.LSTM(5, activation="relu", return_sequences=True)]
    )


DENSE_ACTIVATIONS = (
    "relu",
    "sigmoid",
    "tanh",
    "softplus",
    "softsign",
    "selu",
    "elu",
    "gelu",
    "silu",
    "hard_sigmoid",
    "leaky_relu",
    "relu6",
    "mish",
    "hard_silu",
    "linear",
    "exponential",
    "log_softmax",
    "softmax",
)


def dense_activations():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((None, 3))
    h = L.LSTM(6, return_sequences=True)(inp)
    outs = [L.Dense(4, activation=a, name=f"dense_{a}")(h) for a in DENSE_ACTIVATIONS]
    return keras.Model(inp, L.Concatenate()(outs), name="dense_activations")


def masking_lstm():
    keras = _keras()
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((None, 3)),
            L.Masking(0.0),
            L.LSTM(4, return_sequences=True),
            L.LSTM(3),
            L.Dense(2),
        ]
    )


def nested():
    keras = _keras()
    L = keras.layers
    inner = keras.Sequential(
        [keras.Input((None, 3)), L.LSTM(4, return_sequences=True), L.Dense(3, activation="tanh")],
        name="inner",
    )
    inp = keras.Input((None, 3))
    return keras.Model(inp, L.LSTM(2)(inner(inp)), name="outer")


def x_for(name: str, model, batch: int = 3, steps: int = 9, seed: int = 1):
    """A fitting random input for a model built above."""
    rng = np.random.default_rng(seed)
    if name in ("toy_lm",):
        return rng.integers(0, 9, (batch, steps))
    if name == "text_generator":
        return rng.integers(0, 30, (batch, steps))
    if name.startswith("bidi"):
        ids = rng.integers(1, 12, (batch, steps))
        ids[0, -3:] = 0  # padded tail
        ids[1, -1:] = 0
        return ids
    if name == "digit_sum":
        digits = rng.integers(0, 10, (batch, steps))
        return np.eye(10, dtype=np.float32)[digits]
    if name == "classifier":
        return rng.normal(0, 1, (batch, 6, 6)).astype(np.float32)
    if name == "carry_model":
        return rng.integers(0, 2, (batch, steps, 2)).astype(np.float32)
    if name == "kitchen_sink":
        return rng.normal(0, 1, (batch, 12, 3)).astype(np.float32)
    if name == "masking_lstm":
        x = rng.normal(0, 1, (batch, steps, 3)).astype(np.float32)
        x[0, -2:] = 0.0  # padded tail
        x[1, 3] = 0.0  # a masked step in the middle
        return x
    if name == "seq2seq":
        return [
            rng.normal(0, 1, (batch, steps, 4)).astype(np.float32),
            rng.normal(0, 1, (batch, 5, 3)).astype(np.float32),
        ]
    f = model.inputs[0].shape[-1]
    return rng.normal(0, 1, (batch, steps, f)).astype(np.float32)


BUILDERS = {
    "digit_sum": digit_sum,
    "toy_lm": toy_lm,
    "classifier": classifier,
    "stacked_4_5": stacked_4_5,
    "carry_model": carry_model,
    "text_generator": text_generator,
    "hard_sigmoid_nobias": hard_sigmoid_nobias,
    "bidi_concat": lambda: bidirectional_masked("concat"),
    "bidi_sum": lambda: bidirectional_masked("sum"),
    "bidi_mul": lambda: bidirectional_masked("mul"),
    "bidi_ave": lambda: bidirectional_masked("ave"),
    "bidi_none": lambda: bidirectional_masked(None),
    "go_backwards": go_backwards,
    "kitchen_sink": kitchen_sink,
    "seq2seq": seq2seq,
    "conv_strided": conv_strided,
    "relu_lstm": relu_lstm,
    "dense_activations": dense_activations,
    "masking_lstm": masking_lstm,
    "nested": nested,
}
