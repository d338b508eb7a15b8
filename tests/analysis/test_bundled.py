"""The analysis on the bundled, trained example models (lstmviz/assets/examples)."""

from __future__ import annotations

import numpy as np
import pytest

import lstmviz
from lstmviz.analysis import (
    decompose,
    diagnose,
    memory_lifetime,
    probes,
    rank_units,
    saturation,
    what_if,
)
from lstmviz.examples import EXAMPLES_DIR, list_examples

from .test_diagnose import student_lstm


def _load(name: str):
    path = EXAMPLES_DIR / f"{name}.keras"
    if not path.is_file():
        pytest.skip(
            f"bundled example {path} is not in this checkout (the training "
            "engineer's recipes produce it: python -m lstmviz.train.make_examples)"
        )
    return lstmviz.load_model(path)


def test_adder_carry_unit_ranks_first():
    model = _load("binary_addition")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (200, 24, 2)).astype(np.float32)  # LSB first, random additions
    lt = model.trace(x).layer(0)
    ranked = rank_units(lt, probes.carry_out(x), "cell")
    unit, r = ranked[0]
    assert abs(r) >= 0.9, ranked
    assert abs(ranked[1][1]) < abs(r) - 0.1  # a clear winner, not a tie
    # the same unit wins on the hidden state; the carry *into* a step is a weaker signal
    assert rank_units(lt, probes.carry_out(x), "hidden")[0][0] == unit
    assert abs(rank_units(lt, probes.carry_in(x), "cell")[0][1]) < abs(r)


@pytest.mark.parametrize("name", [e.name for e in list_examples()] or ["digit_sum"])
def test_every_bundled_model(name):
    model = _load(name)
    from lstmviz.io.inputs import example_input

    x = example_input(model)
    tr = model.trace(x)
    for lt in tr.layers:
        kept, written = decompose(lt)
        np.testing.assert_array_equal(kept + written, lt.cell)
        assert set(saturation(lt)) == {"input_gate", "forget_gate", "output_gate"}
        assert memory_lifetime(lt).shape == lt.cell.shape
    if not isinstance(x, list) and tr.timesteps > 1:
        xa = np.asarray(x)
        new = (
            (int(xa[0, 0]) + 1) % model.embedding.input_dim
            if model.takes_tokens
            else np.roll(xa[0, 0], 1)
        )
        wi = what_if(model, x, 0, new)
        assert wi.first_affected(0) in (0, None)


@pytest.mark.parametrize(
    "bug",
    ["swap_i_f", "tf1_order", "forget_bias_missing", "cell_tanh_missing", "recurrent_transposed"],
)
def test_diagnose_on_trained_digit_sum(bug):
    model = _load("digit_sum")
    x = np.eye(10, dtype=np.float32)[np.random.default_rng(1).integers(0, 10, (4, 8))]
    lt = model.trace(x).layer(0)
    w = lt.weights
    st = student_lstm(
        np.asarray(lt.x, float),
        w.kernel.astype(float),
        w.recurrent_kernel.astype(float),
        w.bias.astype(float),
        bug=bug,
    )
    d = diagnose(model, x, {"hidden": st["hidden"], "cell": st["cell"]})
    assert d.cause == bug, d.summary()
    ok = diagnose(
        model,
        x,
        student_lstm(
            np.asarray(lt.x, float),
            w.kernel.astype(float),
            w.recurrent_kernel.astype(float),
            w.bias.astype(float),
        ),
    )
    assert ok.ok


def test_diagnose_on_adder_linear_activation():
    model = _load("binary_addition")  # LSTM(activation=None), as the binary-addition example has
    x = np.random.default_rng(2).integers(0, 2, (3, 10, 2)).astype(np.float32)
    lt = model.trace(x).layer(0)
    w = lt.weights
    u = w.units
    W, U, b = (np.asarray(a, float) for a in (w.kernel, w.recurrent_kernel, w.bias))
    xs = np.asarray(lt.x, float)
    h = np.zeros((3, u))
    c = np.zeros((3, u))
    hs = []
    for x_t in xs.transpose(1, 0, 2):  # a student who used tanh where the model has none
        z = x_t @ W + h @ U + b
        s = 1 / (1 + np.exp(-z))
        c = s[:, u : 2 * u] * c + s[:, :u] * np.tanh(z[:, 2 * u : 3 * u])
        h = s[:, 3 * u :] * np.tanh(c)
        hs.append(h)
    d = diagnose(model, x, {"hidden": np.stack(hs, 1)})
    assert not d.ok and d.first_step == 0
    assert d.cause == "activation_not_tanh", d.summary()


def test_corpus_on_bundled_text_model(tmp_path):
    from lstmviz.analysis import find_pattern, select_units, trace_corpus
    from lstmviz.examples import ASSETS
    from lstmviz.io.meta import load_info

    model = _load("char_textgen")
    info = load_info(EXAMPLES_DIR / "char_textgen.keras")
    text_path = ASSETS / "corpora" / "sonnets.txt"
    if not text_path.is_file():
        pytest.skip(f"{text_path} is not in this checkout")
    index = {t: i for i, t in enumerate(info.vocab)}
    ids = np.array([index[c] for c in text_path.read_text(encoding="utf-8") if c in index])
    seqs = ids[: 24 * 50].reshape(24, 50)
    st = trace_corpus(model, seqs, tmp_path / "sonnets", chunk_steps=400)
    assert st.n_steps == 1200 and st.complete
    ref = model.trace(seqs[5:6]).layer(0).hidden[0]
    np.testing.assert_allclose(st.window(st.offsets[5], st.offsets[6]), ref, atol=2e-3)
    units = select_units(st, 100, 103, 0.3)
    res = find_pattern(st, units, 100, 103, 0.3)
    assert res.n_matches >= len(res.matches) > 0
    # every match really has every selected unit on
    for m in res.matches[:20]:
        w = st.window(m.start, m.stop)[:, units]
        assert (w >= 0.3).all()
