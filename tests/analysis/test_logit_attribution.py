"""Direct logit attribution: unit contributions that add up to the head's logit exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import logit_attribution
from lstmviz.engine import layers as L
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.model import Model, Node
from lstmviz.errors import InputError, LstmvizError

EXAMPLES = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "examples"


def test_contributions_add_up_to_the_logit_at_every_step():
    m = lstmviz.load_model(EXAMPLES / "digit_sum.keras")
    x = np.eye(10, dtype=np.float32)[[[4, 7, 3, 9, 1], [1, 1, 1, 1, 1]]]
    tr = m.trace(x)
    logits = np.stack([logit_attribution(m, x, k).logit for k in range(10)], axis=-1)
    # the head's softmax of these logits is the model's output at every step
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(p, tr.step_output, atol=1e-5)
    r = logit_attribution(m, x, 4, batch=1)
    assert r.contributions.shape == (1, 5, 32) and r.head == "digit_sum" and r.layer == "lstm"
    np.testing.assert_allclose(r.contributions.sum(-1) + r.bias, r.logit)
    top = r.top_units(t=2, n=3)
    assert len(top) == 3 and abs(top[0][1]) >= abs(top[1][1]) >= abs(top[2][1])
    np.testing.assert_allclose(r.lens["lstm"][..., 4], r.logit)
    with pytest.raises(InputError, match="has 10 outputs"):
        logit_attribution(m, x, 10)


def test_logit_lens_reads_every_layer_that_fits():
    rng = np.random.default_rng(0)
    w1 = LSTMWeights(rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), None)
    w2 = LSTMWeights(rng.normal(size=(4, 16)), rng.normal(size=(4, 16)), None)
    nodes = [
        Node(L.InputLayer("in", (None, None, 3)), 0, []),
        Node(L.LSTM("l1", w1, return_sequences=True), 0, [("in", 0, 0)]),
        Node(L.LSTM("l2", w2, return_sequences=True), 0, [("l1", 0, 0)]),
        Node(L.Identity("drop"), 0, [("l2", 0, 0)]),
        Node(
            L.Dense("head", rng.normal(size=(4, 2)), rng.normal(size=2), "softmax"),
            0,
            [("drop", 0, 0)],
        ),
    ]
    m = Model("stack", nodes, [("in", 0, 0)], [("head", 0, 0)])
    x = rng.normal(size=(2, 6, 3))
    r = logit_attribution(m, x, 1)
    assert set(r.lens) == {"l1", "l2"} and r.layer == "l2"
    np.testing.assert_allclose(r.lens["l2"][..., 1], r.logit, atol=1e-6)


def test_a_model_without_a_dense_head_is_refused():
    m = lstmviz.load_model(EXAMPLES / "stacked_lstm.keras")
    with pytest.raises(LstmvizError, match="needs a Dense layer reading the last LSTM"):
        logit_attribution(m, np.zeros((1, 3, 6), np.float32), 0)
