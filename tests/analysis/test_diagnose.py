"""Check my LSTM: every listed student mistake, simulated as a from-scratch NumPy loop in
the style of a hand-written ``MyLSTM`` class, is named by ``diagnose``."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis import Diagnosis, diagnose
from lstmviz.errors import InputError

from .helpers import make_model


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def student_lstm(x, W, U, b, h0=None, c0=None, bug=None, forget_bias=1.0):
    """A student's from-scratch LSTM: batch-major in, a time-major loop, batch-major out.

    ``bug`` selects one classic mistake."""
    units = U.shape[0]
    batch, _steps, _ = x.shape
    sl = [slice(k * units, (k + 1) * units) for k in range(4)]
    W_i, W_f, W_c, W_o = (W[:, s] for s in sl)
    U_i, U_f, U_c, U_o = (U[:, s] for s in sl)
    b_i, b_f, b_c, b_o = (b[s] for s in sl)
    if bug == "swap_i_f":
        W_i, W_f, U_i, U_f, b_i, b_f = W_f, W_i, U_f, U_i, b_f, b_i
    if bug == "tf1_order":  # reads the Keras blocks as i, j(=c), f, o
        W_c, W_f, U_c, U_f, b_c, b_f = W_f, W_c, U_f, U_c, b_f, b_c
    if bug == "onnx_order":  # reads the Keras blocks as i, o, f, c
        W_o, W_f, W_c = W[:, sl[1]], W[:, sl[2]], W[:, sl[3]]
        U_o, U_f, U_c = U[:, sl[1]], U[:, sl[2]], U[:, sl[3]]
        b_o, b_f, b_c = b[sl[1]], b[sl[2]], b[sl[3]]
    if bug == "forget_bias_missing":
        b_f = b_f - forget_bias
    if bug == "forget_bias_doubled":
        b_f = b_f + forget_bias
    if bug == "bias_missing":
        b_i = b_f = b_c = b_o = 0.0
    if bug == "bias_doubled":
        b_i, b_f, b_c, b_o = 2 * b_i, 2 * b_f, 2 * b_c, 2 * b_o
    if bug == "recurrent_missing":
        U_i = U_f = U_c = U_o = np.zeros_like(U_i)
    if bug == "kernel_transposed":
        W_i, W_f, W_c, W_o = W_i.T, W_f.T, W_c.T, W_o.T
    if bug == "recurrent_transposed":
        U_i, U_f, U_c, U_o = U_i.T, U_f.T, U_c.T, U_o.T
    gate = np.tanh if bug in ("activations_swapped", "gates_tanh") else sigmoid
    cand = sigmoid if bug in ("activations_swapped", "candidate_sigmoid") else np.tanh
    cell_act = {"cell_tanh_missing": lambda c: c, "activations_swapped": sigmoid}.get(bug, np.tanh)
    h = np.zeros((batch, units)) if h0 is None else np.array(h0, float)
    c = np.zeros((batch, units)) if c0 is None else np.array(c0, float)
    hs, cs, fs = [], [], []
    for x_t in x.transpose(1, 0, 2):  # time-major
        f = gate(x_t @ W_f + h @ U_f + b_f)
        i = gate(x_t @ W_i + h @ U_i + b_i)
        g = cand(x_t @ W_c + h @ U_c + b_c)
        c = f * c + i * g
        if bug == "cell_squashed":
            c = np.tanh(c)
        o = gate(x_t @ W_o + h @ U_o + b_o)
        h = cell_act(c) if bug == "output_gate_missing" else o * cell_act(c)
        hs.append(h)
        cs.append(c)
        fs.append(f)
    return {"hidden": np.stack(hs, 1), "cell": np.stack(cs, 1), "forget_gate": np.stack(fs, 1)}


@pytest.fixture(scope="module")
def seed_model():
    """Shaped like the toy language model: Embedding(9, 2) -> LSTM(2): square kernels (F == U)."""
    m = make_model(vocab=9, embed=2, units=2, head=9, seed=3)
    x = np.array([[7, 8, 0, 5], [6, 1, 3, 8], [2, 4, 5, 1]])
    return m, x


@pytest.fixture(scope="module")
def wide_model():
    m = make_model(features=3, units=5, head=2, seed=4)
    x = np.random.default_rng(0).normal(0, 1, (3, 9, 3)).astype(np.float32)
    return m, x


def _run_student(model, x, bug, keys=("hidden", "cell"), **kw):
    lt = model.trace(x).layer(0)
    w = lt.weights
    out = student_lstm(
        np.asarray(lt.x, float),
        w.kernel.astype(float),
        w.recurrent_kernel.astype(float),
        w.bias.astype(float),
        bug=bug,
        **kw,
    )
    return {k: out[k] for k in keys}


def test_correct_student_passes(seed_model):
    m, x = seed_model
    d = diagnose(m, x, _run_student(m, x, None))
    assert isinstance(d, Diagnosis)
    assert d.ok and d.cause is None and d.first_step is None
    assert d.likely_cause.startswith("none")
    assert max(d.max_error.values()) < 1e-5


BUGS = [
    "swap_i_f",
    "tf1_order",
    "onnx_order",
    "forget_bias_missing",
    "forget_bias_doubled",
    "activations_swapped",
    "candidate_sigmoid",
    "cell_tanh_missing",
    "recurrent_transposed",
    "gates_tanh",
    "cell_squashed",
    "output_gate_missing",
    "bias_missing",
    "bias_doubled",
    "recurrent_missing",
]


@pytest.mark.parametrize("bug", [*BUGS, "kernel_transposed"])
def test_mistake_is_named_seed_model(seed_model, bug):
    m, x = seed_model
    d = diagnose(m, x, _run_student(m, x, bug))
    assert not d.ok
    assert d.cause == bug, d.summary()
    # from the zero state, f and U multiply zeros at t = 0: those mistakes show from t = 1
    late = (
        "forget_bias_missing",
        "forget_bias_doubled",
        "recurrent_transposed",
        "recurrent_missing",
    )
    assert d.first_step == (1 if bug in late else 0)
    assert d.first_quantity in ("cell", "hidden")
    assert d.likely_cause and d.likely_cause != "unrecognised"


@pytest.mark.parametrize("bug", BUGS)
def test_mistake_is_named_from_hidden_only(wide_model, bug):
    m, x = wide_model
    d = diagnose(m, x, _run_student(m, x, bug, keys=("hidden",)))
    assert d.cause == bug, d.summary()
    assert set(d.max_error) == {"hidden"}


def test_swap_i_f_text_and_first_quantity(wide_model):
    m, x = wide_model
    d = diagnose(m, x, _run_student(m, x, "swap_i_f", keys=("hidden", "cell", "forget_gate")))
    assert "i and f swapped" in d.likely_cause
    assert d.first_quantity == "forget_gate"  # the gate diverges before c and h
    assert d.diverged("forget_gate")[:, 0].any()
    assert d.errors["hidden"].shape == (3, 9, 5)


def test_forget_bias_text(wide_model):
    m, x = wide_model
    d = diagnose(m, x, _run_student(m, x, "forget_bias_missing"))
    assert "forget" in d.likely_cause and "TF1" in d.likely_cause


def test_nonzero_initial_state_is_estimated(wide_model):
    m, x = wide_model
    rng = np.random.default_rng(42)
    h0 = rng.normal(0, 1, (1, 5)).repeat(3, 0)  # one random initial state, repeated over the batch
    c0 = rng.normal(0, 1, (1, 5)).repeat(3, 0)
    st = _run_student(m, x, None, h0=h0, c0=c0)
    d = diagnose(m, x, st)
    assert d.cause == "initial_state_nonzero", d.summary()
    assert d.first_step == 0
    np.testing.assert_allclose(d.initial_state[0], h0, atol=1e-3)
    np.testing.assert_allclose(d.initial_state[1], c0, atol=1e-3)
    # told the initial state, the same run is correct
    d2 = diagnose(m, x, {**st, "h0": h0, "c0": c0})
    assert d2.ok, d2.summary()


def test_nonzero_initial_state_from_hidden_only(seed_model):
    m, x = seed_model
    rng = np.random.default_rng(1)
    h0 = rng.normal(0, 0.5, (3, 2))
    c0 = rng.normal(0, 0.5, (3, 2))
    d = diagnose(m, x, _run_student(m, x, None, keys=("hidden",), h0=h0, c0=c0))
    assert d.cause == "initial_state_nonzero", d.summary()


def test_initial_state_ignored(wide_model):
    m, x = wide_model
    h0 = np.full((3, 5), 0.5)
    c0 = np.full((3, 5), -0.7)
    st = _run_student(m, x, None)  # the student started from zeros anyway
    d = diagnose(m, x, {**st, "h0": h0, "c0": c0})
    assert d.cause == "initial_state_ignored", d.summary()


def test_npz_file_time_major_and_layer(tmp_path, wide_model):
    m, x = wide_model
    st = _run_student(m, x, "swap_i_f")
    p = tmp_path / "student.npz"
    np.savez(
        p,
        h=st["hidden"].transpose(1, 0, 2),
        c=st["cell"].transpose(1, 0, 2),
        layer="lstm",
        comment=np.array([1.0]),
    )
    d = diagnose(m, x, p)
    assert d.cause == "swap_i_f"
    assert any("time-major" in n for n in d.notes)
    assert any("comment" in n for n in d.notes)


def test_unrecognised_mistake_reports_first_divergence(wide_model):
    m, x = wide_model
    st = _run_student(m, x, None)
    st["hidden"] = st["hidden"].copy()
    st["hidden"][1, 4, 2] += 0.3  # one wrong number in the middle
    d = diagnose(m, x, st)
    assert d.cause is None
    assert (d.first_step, d.first_quantity, d.first_batch, d.first_unit) == (4, "hidden", 1, 2)
    assert d.likely_cause.startswith("unrecognised")
    assert d.max_error["hidden"] == pytest.approx(0.3, abs=1e-4)


def test_bad_student_input(wide_model, tmp_path):
    m, x = wide_model
    with pytest.raises(InputError, match="hidden"):
        diagnose(m, x, {"cell": np.zeros((3, 9, 5))})
    with pytest.raises(InputError, match=r"expected \(batch, T, units\)"):
        diagnose(m, x, {"hidden": np.zeros((3, 8, 5))})
    with pytest.raises(InputError, match="no such"):
        diagnose(m, x, tmp_path / "missing.npz")


def test_second_layer_of_stacked_model():
    m = make_model(features=3, units=4, stacked=3, head=None, seed=9)
    x = np.random.default_rng(2).normal(0, 1, (2, 6, 3)).astype(np.float32)
    lt = m.trace(x).layer(1)
    w = lt.weights
    st = student_lstm(
        np.asarray(lt.x, float),
        w.kernel.astype(float),
        w.recurrent_kernel.astype(float),
        w.bias.astype(float),
        bug="candidate_sigmoid",
    )
    d = diagnose(m, x, {"hidden": st["hidden"], "layer": "lstm_2"})
    assert d.layer == "lstm_2"
    assert d.cause == "candidate_sigmoid"


def test_h_c_swapped(wide_model):
    m, x = wide_model
    st = _run_student(m, x, None)
    d = diagnose(m, x, {"hidden": st["cell"], "cell": st["hidden"]})
    assert d.cause == "h_c_swapped", d.summary()


def test_final_states_only(wide_model):
    """A hand-written MyLSTM also returns the final h and c: enough to check, and to name a
    mistake when the whole run reproduces them."""
    m, x = wide_model
    st = _run_student(m, x, "swap_i_f")
    d = diagnose(m, x, {"state_h": st["hidden"][:, -1], "state_c": st["cell"][:, -1]})
    assert d.cause == "swap_i_f"
    assert d.first_quantity in ("state_h", "state_c") and d.first_step == 8
    good = _run_student(m, x, None)
    assert diagnose(m, x, {"ht": good["hidden"][:, -1]}).ok
    rng = np.random.default_rng(0)
    bad = {"state_h": good["hidden"][:, -1] + rng.normal(0, 0.1, (3, 5))}
    d = diagnose(m, x, bad)
    assert not d.ok and d.cause is None


def test_any_gate_order_is_named(wide_model):
    """A permutation that is neither a swap nor a known layout: blocks read as (o, i, f, c)."""
    m, x = wide_model
    lt = m.trace(x).layer(0)
    w = lt.weights
    u = 5
    perm = [3, 0, 1, 2]  # the student's i, f, c, o come from Keras blocks o, i, f, c

    def cols(a):
        return np.concatenate([a[..., k * u : (k + 1) * u] for k in perm], axis=-1)

    st = student_lstm(
        np.asarray(lt.x, float),
        cols(w.kernel.astype(float)),
        cols(w.recurrent_kernel.astype(float)),
        cols(w.bias.astype(float)),
    )
    d = diagnose(m, x, {"hidden": st["hidden"]})
    assert d.cause == "gate_order", d.summary()
    assert "i←block 3" in d.likely_cause
