"""trace_corpus writes what a direct trace computes; find_pattern scans every position."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmviz.analysis import find_pattern, open_corpus, select_units, trace_corpus
from lstmviz.errors import LstmvizError

from .helpers import make_model


@pytest.fixture(scope="module")
def lm():
    return make_model(vocab=20, embed=4, units=6, stacked=4, head=20, seed=1)


def test_variable_lengths_and_long_sequences_match_direct_trace(lm, tmp_path):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 20, n) for n in (7, 7, 7, 5, 12, 7, 30)]
    calls = []
    st = trace_corpus(
        lm,
        seqs,
        tmp_path / "c",
        progress=lambda a, b: calls.append((a, b)),
        quantities=("hidden", "cell", "forget_gate"),
        dtype="float32",
        chunk_steps=16,
    )  # the 30-step sequence is traced in pieces
    assert st.complete and st.n_steps == 75 and st.n_sequences == 7
    assert calls[0] == (0, 75) and calls[-1] == (75, 75)
    assert st.layers == ["lstm", "lstm_2"] and st.units == {"lstm": 6, "lstm_2": 4}
    for k, s in enumerate(seqs):
        tr = lm.trace(s[None])
        for name in st.layers:
            for q in st.quantities:
                got = st.window(st.offsets[k], st.offsets[k + 1], name, q)
                np.testing.assert_allclose(got, tr.layer(name).get(q)[0], atol=2e-6)
    np.testing.assert_array_equal(st.inputs(), np.concatenate(seqs))
    assert st.array("lstm", "hidden").shape == (6, 75)
    assert st.sequence_of(40) == (5, 2) and st.position(5, 2) == 40


def test_float16_and_feature_inputs(tmp_path):
    m = make_model(features=3, units=5, head=None, seed=2)
    x = np.random.default_rng(1).normal(0, 1, (4, 9, 3)).astype(np.float32)
    st = trace_corpus(m, x, tmp_path / "f")
    assert st.dtype == "float16" and st.array().dtype == np.float16
    tr = m.trace(x)
    got = st.window(st.offsets[2], st.offsets[3])
    np.testing.assert_allclose(got, tr.layer(0).hidden[2], atol=1e-3)
    assert st.inputs().shape == (36, 3)
    man = json.loads((tmp_path / "f" / "corpus.json").read_text())
    assert man["format_version"] == 1 and man["complete"]


def test_stop_early_marks_incomplete(lm, tmp_path):
    seqs = np.random.default_rng(2).integers(0, 20, (10, 8))
    n = [0]

    def stop():
        n[0] += 1
        return n[0] > 2

    st = trace_corpus(lm, seqs, tmp_path / "s", should_stop=stop, chunk_steps=16)
    assert not st.complete
    assert st.done.sum() == 4  # two batches of two sequences
    res = find_pattern(st, [0], 0, 2, -2.0)  # every traced position is on
    assert all(st.done[m.sequence] for m in res.matches)


def test_find_pattern_planted(tmp_path):
    m = make_model(features=2, units=3, head=None, seed=5)
    x = np.random.default_rng(3).normal(0, 1, (6, 20, 2)).astype(np.float32)
    st = trace_corpus(m, x, tmp_path / "p", dtype="float32")
    h = m.trace(x).layer(0).hidden  # (6, 20, 3)
    thr = float(np.quantile(h[..., 0], 0.6))
    on = (h[..., 0] >= thr) & (h[..., 1] >= thr)  # (6, 20)
    # brute-force runs, never crossing sequences
    runs = []
    for b in range(6):
        t = 0
        while t < 20:
            if on[b, t]:
                s = t
                while t < 20 and on[b, t]:
                    t += 1
                runs.append((b * 20 + s, b * 20 + t))
            else:
                t += 1
    q0, q1 = runs[0]
    res = find_pattern(st, [0, 1], q0, q1, thr, chunk=7)  # small chunks: seams covered
    found = {(mt.start, mt.stop) for mt in res.matches}
    assert res.n_matches == len(runs) - 1 and found == set(runs[1:])
    lens = [abs(mt.length - (q1 - q0)) for mt in res.matches]
    assert lens == sorted(lens)  # ranked by length difference first
    assert res.on_fraction == pytest.approx(on.mean())
    first = res.matches[0]
    assert first.sequence == first.start // 20 and first.t == first.start % 20
    sel = select_units(st, q0, q1, thr)
    assert {0, 1} <= set(sel)
    auto = find_pattern(st, None, q0, q1, thr)
    assert auto.units == tuple(sel)


def test_errors(lm, tmp_path):
    with pytest.raises(LstmvizError, match="no LSTM layer"):
        trace_corpus(lm, np.zeros((2, 3), int), tmp_path / "e", layers=["nope"])
    with pytest.raises(LstmvizError, match="dtype"):
        trace_corpus(lm, np.zeros((2, 3), int), tmp_path / "e", dtype="int8")
    with pytest.raises(LstmvizError, match="expected"):
        trace_corpus(lm, [np.zeros((3, 2), int)], tmp_path / "e")
    with pytest.raises(LstmvizError, match="not a traced corpus"):
        open_corpus(tmp_path)
    st = trace_corpus(lm, np.zeros((2, 3), int), tmp_path / "ok")
    with pytest.raises(LstmvizError, match="outside"):
        find_pattern(st, [0], 4, 9, 0.0)
    with pytest.raises(LstmvizError, match="was not stored"):
        st.window(0, 2, "lstm", "output_gate")
