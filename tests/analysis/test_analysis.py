"""decompose, memory lifetime, rank_units, probes, saturation, what-if, compare on engine
models and on real Keras files (bidirectional, masked, go_backwards)."""

from __future__ import annotations

import numpy as np
import pytest

from lstmviz.analysis import (
    align_units,
    compare,
    dead_units,
    decompose,
    gate_histograms,
    mean_lifetime,
    memory_lifetime,
    probes,
    rank_units,
    retention,
    saturation,
    saturation_split,
    what_if,
)
from lstmviz.engine import LSTMWeights
from lstmviz.errors import InputError, LstmvizError

from .helpers import make_model, random_weights


@pytest.fixture(scope="module")
def lm():
    m = make_model(vocab=20, embed=4, units=6, head=20, seed=1)
    x = np.random.default_rng(0).integers(0, 20, (3, 15))
    return m, x, m.trace(x)


# --------------------------------------------------------------------------- decompose
def test_decompose_sums_exactly(lm):
    _, _, tr = lm
    lt = tr.layer(0)
    kept, written = decompose(lt)
    assert kept.shape == written.shape == (3, 15, 6)
    np.testing.assert_array_equal(kept + written, lt.cell)
    np.testing.assert_allclose(kept[:, 1:], lt.forget_gate[:, 1:] * lt.cell[:, :-1], rtol=1e-6)
    np.testing.assert_array_equal(kept[:, 0], 0.0)  # zero initial state: nothing to keep


def test_decompose_initial_state_go_backwards_and_mask():
    w = random_weights(3, 4, seed=5)
    m = make_model(features=3, units=4, weights=w, go_backwards=True, head=None)
    x = np.random.default_rng(1).normal(0, 1, (2, 7, 3)).astype(np.float32)
    c0 = np.full((2, 4), 0.8, np.float32)
    lt = m.trace(x, initial_state={"lstm": (np.zeros((2, 4)), c0)}).layer(0)
    kept, written = decompose(lt)
    np.testing.assert_array_equal(kept + written, lt.cell)
    # backwards: the last position is processed first and keeps f * c0
    np.testing.assert_allclose(kept[:, -1], lt.forget_gate[:, -1] * c0, rtol=1e-6)
    # masked steps carry the state: kept = carried cell, written = 0
    from lstmviz.engine import run_lstm

    mask = np.ones((2, 7), bool)
    mask[0, 2:4] = False
    lt2 = run_lstm(x, w, mask=mask)
    k2, w2 = decompose(lt2)
    np.testing.assert_array_equal(k2 + w2, lt2.cell)
    assert np.all(w2[0, 2:4] == 0)


def test_memory_lifetime_and_retention():
    # forget gate fixed at sigmoid(b_f): a value halves after ceil(log 0.5 / log f) steps
    u = 2
    k = np.zeros((1, 4 * u), np.float32)
    r = np.zeros((u, 4 * u), np.float32)
    b = np.zeros(4 * u, np.float32)
    b[u : 2 * u] = [np.log(0.8 / 0.2), 30.0]  # f = 0.8 and f = 1 (never forgets)
    m = make_model(features=1, units=u, weights=LSTMWeights(k, r, b), head=None)
    lt = m.trace(np.zeros((1, 12, 1), np.float32)).layer(0)
    life = memory_lifetime(lt)
    assert life.shape == (1, 12, 2)
    # 0.8^3 = 0.512 >= 0.5, 0.8^4 = 0.41 < 0.5 -> 4 steps
    assert life[0, 0, 0] == 4
    assert life[0, 9, 0] == np.inf  # the sequence ends first
    assert np.all(np.isinf(life[0, :, 1]))
    ret = retention(lt, 2)
    np.testing.assert_allclose(ret[3:6, 0], [0.8, 0.64, 0.512], rtol=1e-5)
    assert ret[2, 0] == 1 and ret[1, 0] == 0
    med = mean_lifetime(lt)
    assert med.shape == (2,) and np.isinf(med[1])


def test_memory_lifetime_real_model(lm):
    _, _, tr = lm
    life = memory_lifetime(tr.layer(0), threshold=0.5)
    assert life.shape == (3, 15, 6)
    finite = life[np.isfinite(life)]
    assert finite.min() >= 1
    with pytest.raises(ValueError, match="threshold"):
        memory_lifetime(tr.layer(0), threshold=1.5)


# --------------------------------------------------------------------------- unit search
def test_rank_units_finds_planted_unit(lm):
    _, _, tr = lm
    lt = tr.layer(0)
    signal = np.asarray(lt.cell[:, :, 4], np.float64) * 2 + 1  # unit 4's cell, rescaled
    ranked = rank_units(lt, signal)
    assert len(ranked) == 6
    assert ranked[0][0] == 4 and ranked[0][1] == pytest.approx(1.0, abs=1e-6)
    rs = [abs(r) for _, r in ranked]
    assert rs == sorted(rs, reverse=True)
    # Pearson over every batch item and step, as np.corrcoef on the flattened arrays
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, (3, 15))
    got = dict(rank_units(lt, noise, "hidden"))
    h = np.asarray(lt.hidden, np.float64).reshape(-1, 6)
    for u in range(6):
        assert got[u] == pytest.approx(np.corrcoef(h[:, u], noise.ravel())[0, 1], abs=1e-9)
    neg = rank_units(lt, -signal, quantity="cell")
    assert neg[0] == (4, pytest.approx(-1.0, abs=1e-6))
    # pooled over batch items and steps, NaN ignored
    sig = signal.copy()
    sig[0, :5] = np.nan
    assert rank_units(lt, sig)[0][0] == 4


def test_rank_units_errors(lm):
    _, _, tr = lm
    with pytest.raises(LstmvizError, match=r"expected \(batch, T\)"):
        rank_units(tr.layer(0), np.zeros((3, 14)))
    with pytest.raises(LstmvizError, match="unknown quantity"):
        rank_units(tr.layer(0), np.zeros((3, 15)), quantity="nope")
    # a constant signal correlates with nothing
    assert all(r == 0 for _, r in rank_units(tr.layer(0), np.ones((3, 15))))


def test_probes():
    x = np.array([[[1, 1], [1, 0], [0, 0], [1, 1]]], np.float32)  # LSB first: 1011 + 0001...
    np.testing.assert_array_equal(probes.carry_out(x), [[1, 1, 0, 1]])
    np.testing.assert_array_equal(probes.carry_in(x), [[0, 1, 1, 0]])
    toks = [list('say "hi" (a[b]) x')]
    q = probes.inside_quotes(toks)
    assert q[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    d = probes.bracket_depth(toks)
    assert d[0, 9] == 1 and d[0, 11] == 2 and d[0, 14] == 0
    rx = probes.regex([["ab", "c", "d", "abc"]], "cd")
    assert rx[0].tolist() == [0, 1, 1, 0]
    assert probes.regex([list("hello")], "l+")[0].tolist() == [0, 0, 1, 1, 0]
    with pytest.raises(LstmvizError, match="invalid regular expression"):
        probes.regex(toks, "(")
    p = probes.painted(2, 5, {1: [0, 3]})
    assert p.sum() == 2 and p[1, 3] == 1
    assert probes.position(2, 4, reverse=True)[1].tolist() == [3, 2, 1, 0]
    assert probes.tokens_from_ids(np.array([[0, 2]]), ["a", "b", "c"]) == [["a", "c"]]
    assert "carry_in" in probes.available(x)
    assert probes.compute("carry_out", x).shape == (1, 4)
    with pytest.raises(LstmvizError, match="binary-addition"):
        probes.carry_in(np.zeros((1, 3, 5)))


# --------------------------------------------------------------------------- saturation
def test_saturation_and_histograms(lm):
    _, _, tr = lm
    lt = tr.layer(0)
    sat = saturation(lt)
    assert set(sat) == {"input_gate", "forget_gate", "output_gate"}
    f = np.asarray(lt.forget_gate)
    expect = ((f < 0.1) | (f > 0.9)).mean(axis=(0, 1))
    np.testing.assert_allclose(sat["forget_gate"], expect)
    left, right = saturation_split(lt)["forget_gate"]
    np.testing.assert_allclose(left + right, expect)
    hist = gate_histograms(lt, bins=10)
    counts, edges = hist["input_gate"]
    assert counts.sum() == 3 * 15 * 6 and len(edges) == 11
    with pytest.raises(ValueError, match="low < high"):
        saturation(lt, low=0.9, high=0.1)


def test_dead_units():
    w = random_weights(3, 4, seed=2)
    k, r, b = w.kernel.copy(), w.recurrent_kernel.copy(), w.bias.copy()
    u = 4
    # unit 1: output gate shut -> h = 0; unit 3: no input, no recurrence -> constant
    b[3 * u + 1] = -40.0
    k[:, [3, u + 3, 2 * u + 3, 3 * u + 3]] = 0
    r[:, [3, u + 3, 2 * u + 3, 3 * u + 3]] = 0
    b[u + 3] = -40.0  # and forgets at once: c = i * g, the same every step
    m = make_model(features=3, units=4, weights=LSTMWeights(k, r, b), head=None)
    x = np.random.default_rng(3).normal(0, 1, (2, 10, 3)).astype(np.float32)
    dead = dead_units(m.trace(x).layer(0))
    assert set(dead) == {1, 3}
    assert "within" in dead[1]


# --------------------------------------------------------------------------- what-if
def test_what_if_token_model(lm):
    m, x, tr = lm
    new = (int(x[1, 6]) + 1) % 20
    wi = what_if(m, x, 6, new, batch=1, before=tr)
    assert wi.x_after[1, 6] == new and wi.x_before[1, 6] == x[1, 6]
    div = wi.divergence["lstm"]
    assert set(div) >= {"hidden", "cell", "forget_gate"}
    assert np.all(div["hidden"][:6] == 0) and div["hidden"][6] > 0
    assert wi.first_affected("lstm") == 6
    assert wi.diff("lstm", "cell").shape == (15, 6)
    assert wi.output_change.shape == (15,)
    assert np.all(wi.output_change[:6] == 0) and wi.output_change[6] > 0
    # other batch items unchanged
    np.testing.assert_array_equal(wi.after.layer(0).hidden[0], tr.layer(0).hidden[0])


def test_what_if_features_and_errors():
    m = make_model(features=3, units=4, head=2, seed=7)
    x = np.random.default_rng(1).normal(0, 1, (1, 8, 3)).astype(np.float32)
    wi = what_if(m, x, 3, [1.0, -1.0, 0.5])
    assert wi.first_affected(0) == 3
    with pytest.raises(InputError, match="needs 3 features"):
        what_if(m, x, 3, [1.0])
    with pytest.raises(InputError, match="outside"):
        what_if(m, x, 8, [1.0, 1.0, 1.0])


# --------------------------------------------------------------------------- compare
def test_align_units_recovers_permutation_and_sign():
    w = random_weights(3, 5, seed=11)
    perm = np.array([3, 0, 4, 1, 2])
    u = 5
    cols = np.concatenate([perm + k * u for k in range(4)])
    wb = LSTMWeights(w.kernel[:, cols], w.recurrent_kernel[np.ix_(perm, cols)], w.bias[cols])
    ma = make_model(features=3, units=5, weights=w, head=None)
    mb = make_model(features=3, units=5, weights=wb, head=None)
    x = np.random.default_rng(4).normal(0, 1, (2, 12, 3)).astype(np.float32)
    c = compare(ma, mb, x)
    # unit k of B is unit perm[k] of A -> A's unit perm[k] matches B's unit k
    expect = np.empty(5, int)
    expect[perm] = np.arange(5)
    np.testing.assert_array_equal(c.order, expect)
    np.testing.assert_allclose(c.r, 1.0, atol=1e-6)
    np.testing.assert_allclose(c.difference(), 0.0, atol=1e-6)
    order, _r = align_units(ma.trace(x).layer(0), mb.trace(x).layer(0), "cell")
    np.testing.assert_array_equal(order, expect)


def test_compare_different_sizes():
    ma = make_model(features=3, units=5, head=2, seed=1)
    mb = make_model(features=3, units=3, head=2, seed=2)
    x = np.random.default_rng(4).normal(0, 1, (2, 12, 3)).astype(np.float32)
    c = compare(ma, mb, x)
    assert (c.order >= 0).sum() == 3 and (c.order == -1).sum() == 2
    assert np.isnan(c.difference()[..., c.order == -1]).all()
    assert c.output_difference.shape == (2, 12)
    with pytest.raises(LstmvizError, match="different inputs"):
        align_units(ma.trace(x).layer(0), mb.trace(x[:, :5]).layer(0))


# --------------------------------------------------------------------------- real Keras files
@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    pytest.importorskip("keras")
    import lstmviz
    from tests import keras_models as km

    out = {}
    for name in ("bidirectional_masked", "go_backwards", "toy_lm"):
        builder = getattr(km, name)
        model = builder()
        km.randomize(model, seed=3)
        p = tmp_path_factory.mktemp(name) / f"{name}.keras"
        model.save(p)
        out[name] = (
            lstmviz.load_model(p),
            km.x_for("bidi" if name.startswith("bidi") else name, model, batch=3, steps=9),
        )
    return out


@pytest.mark.parametrize("name", ["bidirectional_masked", "go_backwards", "toy_lm"])
def test_real_keras_models(keras_files, name):
    model, x = keras_files[name]
    tr = model.trace(x)
    for lt in tr.layers:
        kept, written = decompose(lt)
        np.testing.assert_array_equal(kept + written, lt.cell)
        sat = saturation(lt)
        assert all(v.shape == (lt.units,) for v in sat.values())
        life = memory_lifetime(lt)
        assert life.shape == lt.cell.shape
        ranked = rank_units(
            lt, probes.position(lt.batch_size, lt.timesteps, reverse=lt.go_backwards), "hidden"
        )
        assert len(ranked) == lt.units
