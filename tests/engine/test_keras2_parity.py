"""Legacy .h5 files written by Keras 2 (tf.keras / the tf_keras package) against tf_keras."""

from __future__ import annotations

import numpy as np
import pytest

k2 = pytest.importorskip("tf_keras")

import lstmviz  # noqa: E402

ATOL = 1e-5


def _rand(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(0, 3 / np.sqrt(max(w.shape[-2], 1)) if w.ndim > 1 else 1.0, w.shape).astype(
                np.float32
            )
            for w in model.get_weights()
        ]
    )


def _models():
    L = k2.layers
    out = {}
    out["digit_sum"] = (
        k2.Sequential([L.LSTM(10, input_shape=(None, 10)), L.Dense(10, activation="softmax")]),
        lambda r: np.eye(10, dtype=np.float32)[r.integers(0, 10, (3, 7))],
    )
    out["stacked_bidi"] = (
        k2.Sequential(
            [
                L.LSTM(5, input_shape=(None, 6), return_sequences=True),
                L.Bidirectional(L.LSTM(3)),
                L.Dense(2),
            ]
        ),
        lambda r: r.normal(size=(3, 7, 6)).astype(np.float32),
    )
    inp = k2.Input((None,))
    x = L.Embedding(12, 4, mask_zero=True)(inp)
    x = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode="sum")(x)
    out["bidi_masked"] = (
        k2.Model(inp, L.TimeDistributed(L.Dense(3))(x)),
        lambda r: np.concatenate([r.integers(1, 12, (3, 6)), np.zeros((3, 2), int)], 1),
    )
    out["hard_sigmoid"] = (
        k2.Sequential(
            [
                L.LSTM(
                    4,
                    input_shape=(None, 3),
                    recurrent_activation="hard_sigmoid",
                    return_sequences=True,
                    go_backwards=True,
                )
            ]
        ),
        lambda r: r.normal(size=(2, 9, 3)).astype(np.float32),
    )
    inp = k2.Input((None, 2))
    x = L.Conv1D(8, 1, activation="relu")(inp)
    x = L.Conv1D(4, 1, activation="relu")(x)
    x = L.LSTM(4, activation=None, return_sequences=True)(x)
    out["carry"] = (
        k2.Model(inp, L.Dense(1, activation="sigmoid")(x)),
        lambda r: r.integers(0, 2, (3, 10, 2)).astype(np.float32),
    )
    return out


@pytest.mark.parametrize(
    "name", ["digit_sum", "stacked_bidi", "bidi_masked", "hard_sigmoid", "carry"]
)
def test_keras2_h5(tmp_path, name):
    model, make_x = _models()[name]
    _rand(model, seed=len(name))
    path = tmp_path / f"{name}.h5"
    model.save(path)
    x = make_x(np.random.default_rng(0))
    expected = model.predict(x, verbose=0)
    tr = lstmviz.load_model(path).trace(x)
    np.testing.assert_allclose(tr.output, expected, atol=ATOL)
