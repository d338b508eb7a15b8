"""Engine models built in memory for the analysis tests (no files, no Keras)."""

from __future__ import annotations

import numpy as np

from lstmviz.engine import LSTMWeights
from lstmviz.engine.layers import LSTM, Dense, Embedding, InputLayer
from lstmviz.engine.model import Model, Node


def random_weights(
    features: int, units: int, seed: int = 0, scale: float = 1.0, bias: bool = True
) -> LSTMWeights:
    rng = np.random.default_rng(seed)
    k = rng.normal(0, scale * 2 / np.sqrt(features), (features, 4 * units))
    r = rng.normal(0, scale * 2 / np.sqrt(units), (units, 4 * units))
    b = rng.normal(0, scale * 0.5, 4 * units) if bias else None
    return LSTMWeights(k, r, b)


def make_model(
    features: int = 3,
    units: int = 5,
    vocab: int | None = None,
    embed: int = 4,
    seed: int = 0,
    head: int | None = 2,
    return_sequences: bool = True,
    weights: LSTMWeights | None = None,
    go_backwards: bool = False,
    mask_zero: bool = False,
    stacked: int | None = None,
) -> Model:
    """Input -> [Embedding] -> LSTM -> [LSTM] -> [Dense head], random weights."""
    rng = np.random.default_rng(seed + 100)
    nodes = []
    if vocab is not None:
        inp = InputLayer("input", (None, None), "int32")
        nodes.append(Node(inp, 0, []))
        emb = Embedding("embedding", rng.normal(0, 1, (vocab, embed)), mask_zero=mask_zero)
        nodes.append(Node(emb, 0, [("input", 0, 0)]))
        prev, feats = ("embedding", 0, 0), embed
    else:
        inp = InputLayer("input", (None, None, features))
        nodes.append(Node(inp, 0, []))
        prev, feats = ("input", 0, 0), features
    w = weights or random_weights(feats, units, seed)
    lstm = LSTM(
        "lstm",
        w,
        return_sequences=return_sequences or stacked is not None,
        go_backwards=go_backwards,
    )
    nodes.append(Node(lstm, 0, [prev]))
    prev = ("lstm", 0, 0)
    if stacked is not None:
        lstm2 = LSTM(
            "lstm_2", random_weights(units, stacked, seed + 1), return_sequences=return_sequences
        )
        nodes.append(Node(lstm2, 0, [prev]))
        prev, units = ("lstm_2", 0, 0), stacked
    if head is not None:
        d = Dense("dense", rng.normal(0, 1, (units, head)), rng.normal(0, 0.1, head), "softmax")
        nodes.append(Node(d, 0, [prev]))
        prev = ("dense", 0, 0)
    return Model("test_model", nodes, [("input", 0, 0)], [prev], source="<memory>")
