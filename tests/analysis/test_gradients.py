"""lstmviz.analysis gradients: the contract of gradient(), integrated gradients (completeness,
and agreement with Captum on the same torch model), connectivity and memory paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import (
    connectivity,
    gradient,
    gradient_x_input,
    integrated_gradients,
    integrated_gradients_full,
    memory_paths,
)
from lstmviz.engine.backward import backward, record
from lstmviz.errors import InputError, LstmvizError

EXAMPLES = Path(__file__).resolve().parents[2] / "lstmviz" / "assets" / "examples"


@pytest.fixture(scope="module")
def digit_sum():
    return lstmviz.load_model(EXAMPLES / "digit_sum.keras")


@pytest.fixture(scope="module")
def word_lm():
    return lstmviz.load_model(EXAMPLES / "word_lm.keras")


def _digits(seq, n=1):
    return np.eye(10, dtype=np.float32)[np.array([seq] * n)]


# ------------------------------------------------------------------------------ gradient()
def test_gradient_contract_shapes(digit_sum, word_lm):
    x = _digits([4, 7, 3, 9, 1], n=2)
    g = gradient(digit_sum, x, (-1, 4))
    assert g.shape == x.shape
    # a model that outputs only its last step: t is ignored
    np.testing.assert_array_equal(gradient(digit_sum, x, (2, 4)), g)
    np.testing.assert_array_equal(gradient(digit_sum, x, 4), g)
    assert gradient(digit_sum, x, 4, "lstm/cell").shape == (2, 5, 32)
    assert gradient(digit_sum, x, 4, "lstm/forget_gate").shape == (2, 5, 32)
    assert gradient(digit_sum, x, 4, "lstm/z_f").shape == (2, 5, 32)
    assert gradient(digit_sum, x, 4, "lstm/c0").shape == (2, 32)
    assert gradient(digit_sum, x, 4, "lstm/kernel").shape == (10, 128)
    assert gradient(digit_sum, x, 4, "digit_sum/kernel").shape == (32, 10)
    ids = np.array([[3, 5, 7, 2, 9, 4]])
    ge = gradient(word_lm, ids, (2, 7))
    assert ge.shape == (1, 6, word_lm.embedding.embeddings.shape[1])
    # a forward LSTM: output at t=2 does not depend on later tokens
    assert np.abs(ge[0, 3:]).max() == 0 and np.abs(ge[0, :3]).max() > 0


def test_gradient_is_the_output_gradient(digit_sum):
    """Summed over the batch items' own targets: each item gets its own gradient."""
    x = np.concatenate([_digits([4, 7, 3]), _digits([1, 1, 8])])
    g = gradient(digit_sum, x, 4, dtype=np.float64)
    for b in range(2):
        np.testing.assert_allclose(
            g[b : b + 1], gradient(digit_sum, x[b : b + 1], 4, dtype=np.float64)
        )
    # against central differences of the probability itself
    eps = 1e-6
    x64 = x.astype(np.float64)
    for idx in [(0, 0, 4), (1, 2, 8), (0, 1, 3)]:
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += eps
        xm[idx] -= eps
        yp = record(digit_sum, xp, dtype=np.float64).output[:, 4].sum()
        ym = record(digit_sum, xm, dtype=np.float64).output[:, 4].sum()
        assert abs((yp - ym) / (2 * eps) - g[idx]) < 1e-7


def test_spaces_are_consistent(digit_sum):
    """d log p_k = d z_k - Σ_j p_j d z_j (the softmax's own identity)."""
    x = _digits([4, 7, 3, 9])
    p = record(digit_sum, x, dtype=np.float64).output[0]
    logk = gradient(digit_sum, x, 4, space="log", dtype=np.float64)
    zs = [gradient(digit_sum, x, j, space="logit", dtype=np.float64) for j in range(10)]
    expect = zs[4] - sum(p[j] * zs[j] for j in range(10))
    np.testing.assert_allclose(logk, expect, atol=1e-10)
    probk = gradient(digit_sum, x, 4, dtype=np.float64)
    np.testing.assert_allclose(probk, p[4] * logk, atol=1e-10)


def test_gradient_refuses_bad_arguments(digit_sum):
    x = _digits([1, 2, 3])
    with pytest.raises(InputError, match="output unit k=12 does not exist"):
        gradient(digit_sum, x, (-1, 12))
    with pytest.raises(InputError, match="seed array shaped like the output"):
        gradient(digit_sum, x, "four")
    with pytest.raises(InputError, match="no LSTM layer 'lsmt'"):
        gradient(digit_sum, x, 1, "lsmt/cell")
    with pytest.raises(InputError, match="wrt must be 'input'"):
        gradient(digit_sum, x, 1, "cell")
    with pytest.raises(InputError, match="has no gradient for 'kernal'"):
        gradient(digit_sum, x, 1, "lstm/kernal")
    with pytest.raises(InputError, match="space must be one of"):
        gradient(digit_sum, x, 1, space="prob")
    adder = lstmviz.load_model(EXAMPLES / "binary_addition.keras")
    bits = np.zeros((1, 4, 2), np.float32)
    with pytest.raises(InputError, match=r"step t=9 is outside the output's 4 steps"):
        gradient(adder, bits, (9, 0))


def test_gradient_x_input_tokens(word_lm):
    ids = np.array([[3, 5, 7, 2]])
    gxi = gradient_x_input(word_lm, ids, (-1, 7))
    assert gxi.shape == (1, 4)
    e = word_lm.embedding.embeddings[ids]
    np.testing.assert_allclose(gxi, (gradient(word_lm, ids, (-1, 7)) * e).sum(-1), rtol=1e-6)


# ----------------------------------------------------------------------- integrated gradients
@pytest.mark.parametrize("space", ["output", "logit"])
def test_integrated_gradients_completeness_float_inputs(digit_sum, space):
    x = np.concatenate([_digits([4, 7, 3, 9, 1, 8]), _digits([2, 2, 5, 0, 6, 1])])
    r = integrated_gradients_full(digit_sum, x, 3, space=space)
    assert r.attributions.shape == x.shape
    diff = r.value - r.baseline_value
    assert np.all(np.abs(diff) > 1e-2)
    np.testing.assert_allclose(r.attributions.reshape(2, -1).sum(1), diff, rtol=0.01)
    assert np.all(r.relative_error < 0.01)


def test_integrated_gradients_completeness_tokens(word_lm):
    ids = np.array([[3, 5, 7, 2, 9, 4], [1, 2, 3, 4, 5, 6]])
    for baseline in (None, 0):
        r = integrated_gradients_full(word_lm, ids, (-1, 11), baseline, space="logit")
        assert r.attributions.shape == ids.shape
        np.testing.assert_allclose(
            r.attributions.sum(1), r.value - r.baseline_value, rtol=0.01, atol=1e-6
        )
    a = integrated_gradients(word_lm, ids, (-1, 11), steps=32, space="logit")
    assert a.shape == ids.shape


def test_integrated_gradients_quadratures_agree(digit_sum):
    x = _digits([4, 7, 3, 9, 1])
    ref = integrated_gradients(digit_sum, x, 4, steps=64, space="logit")
    for method in ("riemann_trapezoid", "riemann_middle"):
        a = integrated_gradients(digit_sum, x, 4, steps=256, method=method, space="logit")
        np.testing.assert_allclose(a, ref, atol=2e-3 * np.abs(ref).max())
    with pytest.raises(InputError, match="method must be one of"):
        integrated_gradients(digit_sum, x, 4, method="simpson")
    with pytest.raises(InputError, match="baseline: expected None"):
        integrated_gradients(digit_sum, x, 4, baseline=np.zeros(3))


def test_integrated_gradients_agree_with_captum(tmp_path):
    torch = pytest.importorskip("torch")
    captum_attr = pytest.importorskip("captum.attr")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    torch.manual_seed(0)
    net = Net().eval()
    torch.save(net.state_dict(), tmp_path / "net.pt")
    (tmp_path / "net.lstmviz.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "extra": {"torch": {"lstm_prefix": "rnn.", "head": ["fc."], "head_on": "last"}},
            }
        )
    )
    model = lstmviz.load_model(tmp_path / "net.pt")
    x = np.random.default_rng(0).normal(size=(2, 9, 3)).astype(np.float32)
    ig = captum_attr.IntegratedGradients(net)
    theirs, delta = ig.attribute(
        torch.from_numpy(x), target=2, n_steps=64, return_convergence_delta=True
    )
    ours = integrated_gradients_full(model, x, 2, steps=64)
    scale = np.abs(theirs.detach().numpy()).max()
    np.testing.assert_allclose(ours.attributions, theirs.detach().numpy(), atol=1e-4 * scale)
    np.testing.assert_allclose(ours.delta, delta.detach().numpy(), atol=1e-4)


# ------------------------------------------------------------------------------ connectivity
def test_connectivity_is_causal_and_equals_gradient_norms(word_lm):
    ids = np.array([[3, 5, 7, 2, 9]])
    c = connectivity(word_lm, ids, unit=7, space="logit")
    assert c.matrix.shape == (5, 5)
    assert np.all(np.triu(c.matrix, 1) == 0)
    assert np.all(np.diag(c.matrix) > 0)
    for t in range(5):
        g = gradient(word_lm, ids, (t, 7), space="logit")[0]
        np.testing.assert_allclose(c.matrix[t], np.linalg.norm(g, axis=-1), rtol=1e-5)
    full = connectivity(word_lm, ids, space="logit")
    assert full.unit is None and full.matrix.shape == (5, 5)
    assert np.all(full.matrix >= c.matrix - 1e-7)


def test_connectivity_last_step_model(digit_sum):
    c = connectivity(digit_sum, _digits([1, 2, 3, 4]), unit=3)
    assert c.matrix.shape == (1, 4)
    assert list(c.output_steps) == [3]


# ------------------------------------------------------------------------------ memory paths
def test_memory_paths_add_up_to_the_cell_gradient(digit_sum):
    x = _digits([4, 7, 3, 9, 1, 8], n=2)
    mp = memory_paths(digit_sum, x, 4, space="logit")
    total = gradient(digit_sum, x, 4, "lstm/cell", space="logit")
    np.testing.assert_allclose(mp.cell_path + mp.hidden_path, total, atol=1e-7)
    # the last step's cell reaches the output only through h_T
    assert np.abs(mp.cell_path[:, -1]).max() == 0
    share = mp.cell_share
    assert share.shape == (32,) and np.all((share >= 0) & (share <= 1))


def test_multi_output_targets_are_refused(tmp_path):
    from lstmviz.engine import layers as L
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(0)
    w = LSTMWeights(rng.normal(size=(2, 8)), rng.normal(size=(2, 8)), None)
    nodes = [
        Node(L.InputLayer("in", (None, None, 2)), 0, []),
        Node(L.LSTM("lstm", w, return_state=True), 0, [("in", 0, 0)]),
    ]
    m = Model("two", nodes, [("in", 0, 0)], [("lstm", 0, 0), ("lstm", 0, 2)], single_output=False)
    with pytest.raises(InputError, match="the model has 2 outputs"):
        gradient(m, rng.normal(size=(1, 3, 2)), 0)
    # the engine takes a seed per output
    tape = record(m, rng.normal(size=(1, 3, 2)))
    g = backward(tape, [np.ones((1, 2)), np.ones((1, 2))])
    assert g.inputs[0].shape == (1, 3, 2)
    with pytest.raises(LstmvizError):
        backward(tape, [np.ones((1, 2))])


# ------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "binary_crossentropy", "mse"])
def test_the_gradient_of_a_loss(loss):
    """d loss / d x through a loss target, against central differences of the loss itself."""
    from lstmviz.analysis import loss_target

    if loss == "sparse_categorical_crossentropy":
        m = lstmviz.load_model(EXAMPLES / "digit_sum.keras")
        x = _digits([4, 7, 3, 9], n=2)
        y = np.array([3, 1])

        def value(out):
            return -np.log(out[np.arange(2), y]).sum()
    else:
        m = lstmviz.load_model(EXAMPLES / "binary_addition.keras")
        # inputs between the bits: outputs away from 0 and 1, where the log is well conditioned
        x = np.random.default_rng(0).uniform(0.3, 0.7, (2, 6, 2)).astype(np.float32)
        y = np.random.default_rng(1).integers(0, 2, (2, 6)).astype(np.float64)

        def value(out):
            if loss == "mse":
                return ((out - y) ** 2).sum()
            return -(y * np.log(out) + (1 - y) * np.log(1 - out)).sum()

    g = gradient(m, x, loss_target(y, loss), dtype=np.float64)
    x64 = x.astype(np.float64)
    eps = 1e-6
    for idx in [(0, 1, 0), (1, 2, 1)]:
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = (
            value(record(m, xp, dtype=np.float64).output)
            - value(record(m, xm, dtype=np.float64).output)
        ) / (2 * eps)
        # (central differences of logs of probabilities near 0 or 1 lose digits: 1e-4)
        assert abs(num - g[idx]) < 1e-4 * max(1.0, abs(num)), (idx, num, g[idx])
    with pytest.raises(InputError, match="loss must be one of"):
        loss_target(y, "hinge")


def test_multi_input_gradient_is_one_array_per_input():
    from lstmviz.engine import layers as L
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(0)
    enc = L.LSTM(
        "enc",
        LSTMWeights(rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), None),
        return_state=True,
    )
    dec = L.LSTM(
        "dec",
        LSTMWeights(rng.normal(size=(2, 16)), rng.normal(size=(4, 16)), None),
        return_sequences=True,
    )
    nodes = [
        Node(L.InputLayer("a", (None, None, 3)), 0, []),
        Node(L.InputLayer("b", (None, None, 2)), 0, []),
        Node(enc, 0, [("a", 0, 0)]),
        Node(dec, 0, [("b", 0, 0)], {"initial_state": [("enc", 0, 1), ("enc", 0, 2)]}),
    ]
    m = Model("s2s", nodes, [("a", 0, 0), ("b", 0, 0)], [("dec", 0, 0)])
    xs = [rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4, 2))]
    ga, gb = gradient(m, xs, (1, 2))
    assert ga.shape == (2, 5, 3) and gb.shape == (2, 4, 2)
    assert np.abs(ga).max() > 0 and np.abs(gb[:, 2:]).max() == 0  # causal in the decoder
