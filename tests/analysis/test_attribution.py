"""Attribution: LRP's conservation and a plain re-derivation of Arras et al.'s equations,
occlusion, the common Attribution result, and activation patching on the bundled adder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import (
    activation_patching,
    attribute,
    lrp,
    occlusion,
    probes,
    rank_units,
)
from lstmviz.engine import layers as L
from lstmviz.engine.backward import record
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.model import Model, Node
from lstmviz.errors import InputError, UnsupportedLayerError
from lstmviz.io.inputs import encode_text
from lstmviz.io.meta import load_info

EXAMPLES = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "examples"


def _load(name):
    return lstmviz.load_model(EXAMPLES / f"{name}.keras")


# ------------------------------------------------------------------------------ LRP
@pytest.mark.parametrize(
    "name", ["digit_sum", "binary_addition", "toy_classification", "word_lm", "stacked_lstm"]
)
def test_lrp_conserves_relevance(name):
    m = _load(name)
    rng = np.random.default_rng(0)
    if m.takes_tokens:
        x = rng.integers(1, m.embedding.input_dim, (3, 9))
    else:
        x = rng.integers(0, 2, (3, 9, m.input_features)).astype(np.float32)
    k = 0 if name in ("binary_addition", "toy_classification") else 1
    r = lrp(m, x, (-1, k), bias_factor=1.0)
    assert r.relevance.shape == (3, 9)
    np.testing.assert_allclose(r.relevance.sum(1) + r.initial_state, r.total, rtol=1e-9, atol=1e-9)
    assert np.all(r.conservation_error < 1e-9) and np.all(np.abs(r.absorbed) < 1e-9)
    # what the target is: the head's pre-activation (the logit)
    tape = record(m, x, dtype=np.float64)
    from lstmviz.analysis.gradients import output_seed, seed_in_space

    space = "output" if name == "stacked_lstm" else "logit"  # an LSTM's h has no pre-activation
    _, logit = seed_in_space(m, tape, output_seed(m, tape, (-1, k)), space)
    np.testing.assert_allclose(r.total, logit, rtol=1e-9)
    # with the bias keeping its share, the balance still adds up
    r0 = lrp(m, x, (-1, k))
    np.testing.assert_allclose(r0.relevance.sum(1) + r0.initial_state + r0.absorbed, r0.total)
    for per_unit in r.layers.values():
        assert set(per_unit) == {"hidden", "cell", "candidate"}


def _paper_lrp(w_x, w_h, b, w_out, x, k, eps):
    """Arras et al. 2017's LRP written out for one sequence, one LSTM (gate order i, f, c, o as
    Keras) and a linear output, with the full (D, M) message tables of the ε-rule and the
    bias's share kept by the bias (bias_factor 0)."""

    def eps_rule(hin, w, hout, rout):
        sign = np.where(hout >= 0, 1.0, -1.0)
        return ((w * hin[:, None]) / (hout + eps * sign)[None, :] * rout[None, :]).sum(axis=1)

    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    steps, u = x.shape[0], w_h.shape[0]
    h, c = np.zeros((steps + 1, u)), np.zeros((steps + 1, u))  # index -1: the initial state
    gates, pre = np.zeros((steps, 4 * u)), np.zeros((steps, 4 * u))
    for t in range(steps):
        pre[t] = x[t] @ w_x + h[t - 1] @ w_h + b
        i, f, g, o = (
            sig(pre[t, :u]),
            sig(pre[t, u : 2 * u]),
            np.tanh(pre[t, 2 * u : 3 * u]),
            sig(pre[t, 3 * u :]),
        )
        gates[t] = np.concatenate([i, f, g, o])
        c[t] = f * c[t - 1] + i * g
        h[t] = o * np.tanh(c[t])
    s = h[steps - 1] @ w_out
    r_h, r_c = np.zeros((steps + 1, u)), np.zeros((steps + 1, u))
    r_x = np.zeros(x.shape)
    mask = np.zeros(w_out.shape[1])
    mask[k] = 1
    r_h[steps - 1] = eps_rule(h[steps - 1], w_out, s, s * mask)
    eye = np.eye(u)
    for t in reversed(range(steps)):
        i, f, g = gates[t, :u], gates[t, u : 2 * u], gates[t, 2 * u : 3 * u]
        r_c[t] += r_h[t]
        r_c[t - 1] = eps_rule(f * c[t - 1], eye, c[t], r_c[t])
        r_g = eps_rule(i * g, eye, c[t], r_c[t])
        zg = pre[t, 2 * u : 3 * u]
        r_x[t] = eps_rule(x[t], w_x[:, 2 * u : 3 * u], zg, r_g)
        r_h[t - 1] = eps_rule(h[t - 1], w_h[:, 2 * u : 3 * u], zg, r_g)
    return r_x, s[k]


def test_lrp_equals_the_papers_equations():
    rng = np.random.default_rng(1)
    f, u, k = 4, 5, 3
    w = LSTMWeights(
        rng.normal(size=(f, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=4 * u)
    )
    w_out = rng.normal(size=(u, 6))
    nodes = [
        Node(L.InputLayer("in", (None, None, f)), 0, []),
        Node(L.LSTM("lstm", w), 0, [("in", 0, 0)]),
        Node(L.Dense("out", w_out, None, "softmax"), 0, [("lstm", 0, 0)]),
    ]
    m = Model("one", nodes, [("in", 0, 0)], [("out", 0, 0)])
    x = rng.normal(size=(2, 7, f))
    r = lrp(m, x, k, eps=1e-3)
    for b in range(2):
        ref, score = _paper_lrp(
            w.kernel.astype(np.float64),
            w.recurrent_kernel.astype(np.float64),
            w.bias.astype(np.float64),
            w_out.astype(np.float32).astype(np.float64),
            x[b].astype(np.float32).astype(np.float64),
            k,
            1e-3,
        )
        np.testing.assert_allclose(r.per_feature[b], ref, rtol=1e-6, atol=1e-9)
        assert np.isclose(r.total[b], score, rtol=1e-6)


def test_lrp_refuses_what_it_has_no_rule_for():
    rng = np.random.default_rng(2)
    w = LSTMWeights(rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), None)
    nodes = [
        Node(L.InputLayer("in", (None, None, 3)), 0, []),
        Node(L.LayerNormalization("ln", None, None), 0, [("in", 0, 0)]),
        Node(L.LSTM("lstm", w), 0, [("ln", 0, 0)]),
    ]
    m = Model("ln", nodes, [("in", 0, 0)], [("lstm", 0, 0)])
    with pytest.raises(UnsupportedLayerError, match=r"LRP has no rule for layer 'ln'"):
        lrp(m, rng.normal(size=(1, 4, 3)), 0)
    with pytest.raises(InputError, match="space must be 'logit' or 'output'"):
        lrp(m, rng.normal(size=(1, 4, 3)), 0, space="log")


@pytest.mark.parametrize("merge", ["Concatenate", "Maximum"])
def test_lrp_conserves_relevance_through_merges(merge):
    # two LSTMs read the same input; a merge joins their last states before the head
    rng = np.random.default_rng(3)
    f, u = 3, 4

    def weights():
        return LSTMWeights(
            rng.normal(size=(f, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=4 * u)
        )

    width = 2 * u if merge == "Concatenate" else u
    nodes = [
        Node(L.InputLayer("in", (None, None, f)), 0, []),
        Node(L.LSTM("a", weights()), 0, [("in", 0, 0)]),
        Node(L.LSTM("b", weights()), 0, [("in", 0, 0)]),
        Node(L.Merge("join", merge), 0, [("a", 0, 0), ("b", 0, 0)]),
        Node(L.Dense("out", rng.normal(size=(width, 2)), None, "linear"), 0, [("join", 0, 0)]),
    ]
    m = Model("two", nodes, [("in", 0, 0)], [("out", 0, 0)])
    x = rng.normal(size=(2, 5, f))
    r = lrp(m, x, 1, bias_factor=1.0)
    assert r.relevance.shape == (2, 5)
    np.testing.assert_allclose(r.relevance.sum(1) + r.initial_state, r.total, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r.total, record(m, x, dtype=np.float64).output[:, 1], rtol=1e-9)


def test_lrp_conserves_relevance_through_a_nested_model_with_the_outer_names():
    # a model used as a layer whose tensors are named as the outer model's ("in", "out")
    from lstmviz.io.keras import SubModel

    rng = np.random.default_rng(4)
    f, u = 3, 4
    w = LSTMWeights(
        rng.normal(size=(f, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=4 * u)
    )
    inner = Model(
        "inner",
        [
            Node(L.InputLayer("in", (None, None, f)), 0, []),
            Node(L.Dense("out", rng.normal(size=(f, f)), None, "linear"), 0, [("in", 0, 0)]),
            Node(L.LSTM("lstm", w, return_sequences=True), 0, [("out", 0, 0)]),
        ],
        [("in", 0, 0)],
        [("lstm", 0, 0)],
    )
    w2 = LSTMWeights(
        rng.normal(size=(u, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=4 * u)
    )
    nodes = [
        Node(L.InputLayer("in", (None, None, f)), 0, []),
        Node(SubModel("sub", inner), 0, [("in", 0, 0)]),
        Node(L.LSTM("outer_lstm", w2), 0, [("sub", 0, 0)]),
        Node(L.Dense("out", rng.normal(size=(u, 2)), None, "linear"), 0, [("outer_lstm", 0, 0)]),
    ]
    m = Model("outer", nodes, [("in", 0, 0)], [("out", 0, 0)])
    x = rng.normal(size=(2, 5, f))
    r = lrp(m, x, 1, bias_factor=1.0)
    np.testing.assert_allclose(r.relevance.sum(1) + r.initial_state, r.total, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r.total, record(m, x, dtype=np.float64).output[:, 1], rtol=1e-9)


def test_regex_probe_marks_every_token_a_match_overlaps():
    tokens = [["ab", "c", "(", "de", ")"], ["x", "yy", "z", "", "w"]]
    got = probes.regex(tokens, r"c\(d|yz")
    np.testing.assert_array_equal(got, [[0, 1, 1, 1, 0], [0, 1, 1, 0, 0]])
    assert not probes.regex(tokens, r"q*").any()  # empty matches mark nothing


# ------------------------------------------------------------------------------ occlusion
def test_occlusion_matches_retracing_by_hand():
    m = _load("word_lm")
    ids = np.array([[3, 5, 7, 2, 9], [8, 1, 4, 4, 6]])
    occ = occlusion(m, ids, (-1, 11))
    y = m.trace(ids).output[:, -1, 11]
    for b in range(2):
        for t in range(5):
            z = ids[b : b + 1].copy()
            z[0, t] = 0
            assert np.isclose(occ[b, t], y[b] - m.trace(z).output[0, -1, 11], atol=1e-6)
    digit = _load("digit_sum")
    x = np.eye(10, dtype=np.float32)[[[4, 7, 3]]]
    o2 = occlusion(digit, x, 4, window=2)
    assert o2.shape == (1, 3)
    with pytest.raises(InputError, match="occluded with a token id"):
        occlusion(m, ids, 1, baseline=0.5)
    with pytest.raises(InputError, match="window must be a positive integer"):
        occlusion(m, ids, 1, window=0)


# ------------------------------------------------------------------------------ attribute()
@pytest.mark.parametrize("method", ["gradient", "grad_x_input", "ig", "occlusion", "lrp"])
def test_attribute_every_method(method):
    m = _load("digit_sum")
    x = np.eye(10, dtype=np.float32)[[[4, 7, 3, 9, 1]]]
    a = attribute(m, x, 4, method)
    assert a.scores.shape == (1, 5)
    assert np.all(np.isfinite(a.scores))
    assert a.target == "output 4"
    assert np.abs(a.normalized()).max() == pytest.approx(1.0)
    if method != "occlusion":
        assert a.units["lstm"].shape == (1, 5, 32)
    if method == "ig":
        assert a.check["completeness_error"][0] < 0.01
    if method == "lrp":
        assert a.space == "logit"
    with pytest.raises(InputError, match="method must be one of"):
        attribute(m, x, 4, "shap")


# ------------------------------------------------------------------------------ patching
def test_patching_finds_the_carry_in_the_cell_path():
    path = EXAMPLES / "binary_addition.keras"
    m, info = lstmviz.load_model(path), load_info(path)
    clean = encode_text(m, "0110111 + 0000001", info)  # 1+1 at the bottom: a carry runs up
    corrupt = encode_text(m, "0110110 + 0000001", info)  # no carry at all
    r = activation_patching(m, clean, corrupt, (3, 0), space="logit")
    q = {name: i for i, name in enumerate(r.quantities)}
    assert r.by_quantity.shape == (6, clean.shape[1])
    # before the target step the carry lives in the cell state: patching c restores it all
    assert np.all(r.by_quantity[q["cell"], :3] > 0.9)
    # the forget gate carries none of it
    assert np.all(np.abs(r.by_quantity[q["forget_gate"], :3]) < 0.1)
    # after the target step nothing can matter for a forward LSTM
    np.testing.assert_allclose(r.by_quantity[:, 4:], 0.0, atol=1e-9)
    # and the unit that carries it is the carry unit the probe finds
    carry = rank_units(m.trace(clean).layer("lstm"), probes.carry_out(clean))[0][0]
    assert r.by_unit is not None
    assert np.all(r.by_unit[carry, :3] > 0.9)
    assert r.top(1)[0][0] in ("cell", "candidate")
    noise = activation_patching(
        m, clean, corrupt, (3, 0), space="logit", direction="noise", by_unit=False
    )
    assert noise.by_unit is None
    assert np.all(noise.by_quantity[q["cell"], :3] > 0.5)


def test_patching_refuses_inputs_it_cannot_compare():
    path = EXAMPLES / "binary_addition.keras"
    m, info = lstmviz.load_model(path), load_info(path)
    a = encode_text(m, "0110111 + 0000001", info)
    with pytest.raises(InputError, match="nothing for a patch to restore"):
        activation_patching(m, a, a, (3, 0))
    with pytest.raises(InputError, match="must have the same shape"):
        activation_patching(m, a, a[:, :5], (3, 0))
    with pytest.raises(InputError, match="direction must be one of"):
        activation_patching(m, a, a, (3, 0), direction="sideways")
