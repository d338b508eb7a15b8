"""Architectures from the official Keras examples, rebuilt here (code written for lstmviz's
tests; small synthetic data; a few training steps so the weights are not the initial ones).

Each builder returns ``(model, x, info)``: a compiled, briefly trained ``keras.Model``, an
input batch for it, and a dict for the model's sidecar (or None). Sources:

* ``addition_rnn`` -- keras.io/examples/nlp/addition_rnn ("Sequence to sequence learning for
  performing number addition"): LSTM(128) -> RepeatVector -> LSTM(128, return_sequences)
  -> Dense(softmax).
* ``char_textgen`` -- keras.io/examples/generative/lstm_character_level_text_generation:
  LSTM(128) -> Dense(len(chars), softmax); saved as a legacy ``.h5`` here.
* ``bidirectional_imdb`` -- keras.io/examples/nlp/bidirectional_lstm_imdb: Embedding ->
  Bidirectional(LSTM(64, return_sequences)) -> Bidirectional(LSTM(64)) -> Dense(1, sigmoid).
* ``weather`` -- keras.io/examples/timeseries/timeseries_weather_forecasting: LSTM(32) ->
  Dense(1); its ModelCheckpoint writes ``save_weights_only=True`` files.
* ``rnn_guide`` -- keras.io/guides/working_with_rnns: Embedding -> LSTM -> Dense (logits).
* ``lstm_seq2seq`` -- keras.io/examples/nlp/lstm_seq2seq: encoder LSTM(return_state), decoder
  LSTM(return_sequences, return_state, initial_state=encoder states), Dense(softmax); two
  model inputs.

Importing this module imports Keras: only do it behind ``pytest.importorskip("keras")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _keras() -> Any:
    import keras

    return keras


def _fit(model: Any, x: Any, y: Any, epochs: int = 2) -> None:
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


def addition_rnn(seed: int = 0, num_units: int = 128) -> tuple[Any, np.ndarray, dict | None]:
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    chars = "0123456789+ "
    digits, maxlen = 3, 7
    rng = np.random.default_rng(seed)

    def encode(s: str, n: int) -> np.ndarray:
        out = np.zeros((n, len(chars)), np.float32)
        for i, c in enumerate(s.ljust(n)):
            out[i, chars.index(c)] = 1
        return out

    qs, ans = [], []
    for _ in range(64):
        a, b = rng.integers(0, 10**digits, 2)
        qs.append(encode(f"{a}+{b}"[::-1].rjust(maxlen)[::-1][:maxlen], maxlen))
        ans.append(encode(str(a + b), digits + 1))
    x, y = np.stack(qs), np.stack(ans)
    model = keras.Sequential()
    model.add(layers.Input((maxlen, len(chars))))
    model.add(layers.LSTM(num_units))
    model.add(layers.RepeatVector(digits + 1))
    model.add(layers.LSTM(num_units, return_sequences=True))
    model.add(layers.Dense(len(chars), activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    _fit(model, x, y)
    info = {
        "format_version": 1,
        "tokens": {"kind": "chars", "vocab": list(chars)},
        "outputs": {"kind": "classes", "labels": list(chars)},
    }
    return model, x[:2], info


def char_textgen(seed: int = 0, units: int = 128) -> tuple[Any, np.ndarray, dict | None]:
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    text = "the quick brown fox jumps over the lazy dog. <START> a cat sat on a mat. " * 4
    chars = sorted(set(text))
    maxlen = 12
    idx = {c: i for i, c in enumerate(chars)}
    starts = range(0, len(text) - maxlen, 3)
    x = np.zeros((len(starts), maxlen, len(chars)), np.float32)
    y = np.zeros((len(starts), len(chars)), np.float32)
    for n, s in enumerate(starts):
        for t, c in enumerate(text[s : s + maxlen]):
            x[n, t, idx[c]] = 1
        y[n, idx[text[s + maxlen]]] = 1
    model = keras.Sequential(
        [
            keras.Input(shape=(maxlen, len(chars))),
            layers.LSTM(units),
            layers.Dense(len(chars), activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(0.01))
    _fit(model, x, y)
    info = {
        "format_version": 1,
        "tokens": {"kind": "chars", "vocab": chars},
        "outputs": {"kind": "next-token", "labels": chars},
    }
    return model, x[:2], info


def bidirectional_imdb(
    seed: int = 0, embed: int = 128, units: int = 64, max_features: int = 200
) -> tuple[Any, np.ndarray, dict | None]:
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    maxlen = 20
    rng = np.random.default_rng(seed)
    x = rng.integers(1, max_features, (48, maxlen)).astype(np.int32)
    y = (x[:, :5].mean(1) > max_features / 2).astype(np.float32)
    inputs = keras.Input(shape=(None,), dtype="int32")
    h = layers.Embedding(max_features, embed)(inputs)
    h = layers.Bidirectional(layers.LSTM(units, return_sequences=True))(h)
    h = layers.Bidirectional(layers.LSTM(units))(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    _fit(model, x, y, epochs=1)
    return model, x[:2], None


def weather(seed: int = 0, units: int = 32) -> tuple[Any, np.ndarray, dict | None]:
    keras = _keras()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    past, features = 24, 7  # the example uses 120 steps of 7 features
    x = rng.normal(size=(48, past, features)).astype(np.float32)
    y = x[:, -1, :1] * 0.5 + 0.1
    inputs = keras.layers.Input(shape=(x.shape[1], x.shape[2]))
    lstm_out = keras.layers.LSTM(units)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    _fit(model, x, y)
    info = {"format_version": 1, "outputs": {"kind": "regression"}}
    return model, x[:2], info


def lstm_seq2seq(seed: int = 0) -> tuple[Any, list[np.ndarray], dict | None]:
    keras = _keras()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    num_encoder_tokens, num_decoder_tokens, latent_dim = 9, 11, 16
    n, t_enc, t_dec = 32, 7, 5
    enc = np.eye(num_encoder_tokens, dtype=np.float32)[rng.integers(0, 9, (n, t_enc))]
    dec = np.eye(num_decoder_tokens, dtype=np.float32)[rng.integers(0, 11, (n, t_dec))]
    target = np.roll(dec, -1, axis=1)

    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = keras.layers.LSTM(latent_dim, return_state=True)
    _encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    _fit(model, [enc, dec], target)
    return model, [enc[:2], dec[:2]], None


def rnn_guide(
    seed: int = 0, vocab: int = 1000, embed: int = 64, units: int = 128
) -> tuple[Any, np.ndarray, dict | None]:
    """keras.io/guides/working_with_rnns: Embedding(1000, 64) -> LSTM(128) -> Dense(10)."""
    keras = _keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (32, 15)).astype(np.int32)
    y = x[:, 0] % 10
    model = keras.Sequential()
    model.add(keras.Input((None,), dtype="int32"))
    model.add(layers.Embedding(input_dim=vocab, output_dim=embed))
    model.add(layers.LSTM(units))
    model.add(layers.Dense(10))
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    _fit(model, x, y, epochs=1)
    info = {"format_version": 1, "outputs": {"kind": "classes"}}
    return model, x[:2], info


BUILDERS = {
    "addition_rnn": addition_rnn,
    "char_textgen": char_textgen,
    "bidirectional_imdb": bidirectional_imdb,
    "weather": weather,
    "lstm_seq2seq": lstm_seq2seq,
    "rnn_guide": rnn_guide,
}
