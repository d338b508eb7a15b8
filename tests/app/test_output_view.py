"""The output view and the strip's output row read what an output is from
lstmviz.analysis.outputs: log-probabilities ranked most likely first, labels shown as written."""

from __future__ import annotations

import numpy as np

from lstmviz.engine.layers import LSTM, Dense, InputLayer
from lstmviz.engine.model import Model, Node
from lstmviz.io.meta import ModelInfo

from .models import _weights

TAGS = ["<START>", "DET", "NN", "V", "<STOP>"]


def tagger() -> tuple[Model, ModelInfo]:
    """An LSTMTagger-like model: LSTM -> Dense(5, log_softmax) at every step."""
    rng = np.random.default_rng(3)
    inp = InputLayer("input", (None, None, 4))
    lstm = LSTM("lstm", _weights(rng, 4, 6), return_sequences=True)
    dense = Dense("tag", rng.normal(0, 2, (6, 5)), rng.normal(0, 1, 5), "log_softmax")
    nodes = [Node(inp, 0, []), Node(lstm, 0, [("input", 0, 0)]), Node(dense, 0, [("lstm", 0, 0)])]
    info = ModelInfo(token_kind="floats", output_kind="classes", output_labels=TAGS)
    return Model("tagger", nodes, [("input", 0, 0)], [("tag", 0, 0)]), info


def test_log_softmax_is_ranked_most_likely_first(window, qtbot):
    m, info = tagger()
    x = np.random.default_rng(0).normal(size=(1, 5, 4)).astype(np.float32)
    window.state.set_model(m, None, info, x)
    view = window.output_view
    assert window.state.output_spec.kind == "log_probabilities"
    for t in range(5):
        window.state.set_t(t)
        logp = np.asarray(window.state.trace.step_output[0, t], np.float64)
        best = int(np.argmax(logp))
        assert view.shown[0][0] == TAGS[best]  # the most likely tag, not the largest |value|
        probs = [p for _, p in view.shown]
        assert probs == sorted(probs, reverse=True)
        np.testing.assert_allclose(probs[0], np.exp(logp[best]), rtol=1e-6)
        assert "&lt;" in view.headline.text() or TAGS[best].isalpha()  # escaped, not vanished
    strip = window.token_strip._preds
    assert strip is not None and all(p in TAGS for p in strip)


def test_start_label_is_visible_in_the_headline(window):
    m, info = tagger()
    # push the <START> column up so it wins at every step
    dense = m.layers["tag"]
    dense.bias[:] = [9, 0, 0, 0, 0]
    x = np.zeros((1, 3, 4), np.float32)
    window.state.set_model(m, None, info, x)
    assert window.output_view.shown[0][0] == "<START>"
    assert "&lt;START&gt;" in window.output_view.headline.text()
