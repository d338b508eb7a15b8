"""Small engine models built without Keras (fast app tests)."""

from __future__ import annotations

import numpy as np

from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.layers import LSTM, Dense, Embedding, InputLayer
from lstmviz.engine.model import Model, Node
from lstmviz.io.meta import ModelInfo


def _weights(rng: np.random.Generator, f: int, u: int, scale: float = 1.5) -> LSTMWeights:
    return LSTMWeights(
        rng.normal(0, scale / np.sqrt(f), (f, 4 * u)),
        rng.normal(0, scale / np.sqrt(u), (u, 4 * u)),
        rng.normal(0, 0.5, 4 * u),
    )


def digit_model(units: int = 10, stacked: bool = False, seed: int = 0) -> Model:
    """One-hot digits -> LSTM(units) [-> LSTM(units)] -> Dense(10, softmax)."""
    rng = np.random.default_rng(seed)
    inp = InputLayer("input", (None, None, 10))
    nodes = [Node(inp, 0, [])]
    prev = ("input", 0, 0)
    if stacked:
        l0 = LSTM("lstm_a", _weights(rng, 10, units), return_sequences=True)
        nodes.append(Node(l0, 0, [prev]))
        prev = ("lstm_a", 0, 0)
        lstm = LSTM("lstm_b", _weights(rng, units, units + 2))
        units = units + 2
    else:
        lstm = LSTM("lstm", _weights(rng, 10, units))
    nodes.append(Node(lstm, 0, [prev]))
    dense = Dense("dense", rng.normal(0, 1, (units, 10)), rng.normal(0, 0.1, 10), "softmax")
    nodes.append(Node(dense, 0, [(lstm.name, 0, 0)]))
    return Model("digit_sum", nodes, [("input", 0, 0)], [("dense", 0, 0)])


def digit_info() -> ModelInfo:
    return ModelInfo(
        task="digit-sum",
        title="Digit sum mod 10",
        description="Adds digits and predicts the sum mod 10.",
        token_kind="digits",
        example="4 7 3 9 1 2",
        output_kind="classes",
        output_labels=[str(i) for i in range(10)],
    )


def char_model(units: int = 16, seed: int = 0) -> tuple[Model, ModelInfo]:
    """Characters -> Embedding -> LSTM(return_sequences) -> Dense(vocab, softmax)."""
    rng = np.random.default_rng(seed)
    vocab = list(" abcdefghijklmnopqrstuvwxyz.")
    inp = InputLayer("input", (None, None), dtype="int32")
    emb = Embedding("embedding", rng.normal(0, 1, (len(vocab), 8)))
    lstm = LSTM("lstm", _weights(rng, 8, units), return_sequences=True)
    dense = Dense("dense", rng.normal(0, 1, (units, len(vocab))), np.zeros(len(vocab)), "softmax")
    nodes = [
        Node(inp, 0, []),
        Node(emb, 0, [("input", 0, 0)]),
        Node(lstm, 0, [("embedding", 0, 0)]),
        Node(dense, 0, [("lstm", 0, 0)]),
    ]
    m = Model("char_textgen", nodes, [("input", 0, 0)], [("dense", 0, 0)])
    info = ModelInfo(
        task="char-textgen",
        title="Character text generator",
        token_kind="chars",
        vocab=vocab,
        example="hello world",
        output_kind="next-token",
    )
    return m, info
