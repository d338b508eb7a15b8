"""trace_corpus writes what a direct trace computes into Zarr; find_pattern and unit_stats
agree with brute force over the stored values; older folders stay readable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from lstmviz import budget
from lstmviz.analysis import (
    convert_corpus,
    find_pattern,
    open_corpus,
    select_units,
    trace_corpus,
    unit_stats,
)
from lstmviz.analysis.corpus import CorpusStore, LegacyCorpusStore, get_index
from lstmviz.analysis.corpus.scheduler import resolve
from lstmviz.analysis.corpus.tracing import Piece, plan_blocks
from lstmviz.errors import InputError, LstmvizError, MemoryBudgetError
from lstmviz.io.meta import ModelInfo

from .helpers import make_model


@pytest.fixture(scope="module")
def lm():
    return make_model(vocab=20, embed=4, units=6, stacked=4, head=20, seed=1)


def brute_runs(on: np.ndarray, offsets: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of ``on`` that never cross a sequence start."""
    runs = []
    for k in range(len(offsets) - 1):
        a, b = int(offsets[k]), int(offsets[k + 1])
        t = a
        while t < b:
            if on[t]:
                s = t
                while t < b and on[t]:
                    t += 1
                runs.append((s, t))
            else:
                t += 1
    return runs


def brute_find(values, units, offsets, t0, t1, thr, max_matches):
    """The documented ranking, computed directly: ``values`` is (units, N) as stored."""
    v = values[list(units)].astype(np.float32)
    on = (v >= np.float32(thr)).all(axis=0)
    runs = [r for r in brute_runs(on, offsets) if r[1] <= t0 or r[0] >= t1]
    mean = v.mean(axis=0, dtype=np.float64)
    scored = [(abs((b - a) - (t1 - t0)), -mean[a:b].mean(), a, b) for a, b in runs]
    scored.sort()
    return scored[:max_matches], len(runs), on.mean()


# ------------------------------------------------------------------------------ tracing
def test_trace_matches_direct_trace_across_blocks(lm, tmp_path):
    rng = np.random.default_rng(0)
    # short ones share blocks; 30 and 100 cross block edges (re-traced prefix / handed-on
    # states: 100 > 2 blocks of 16)
    seqs = [rng.integers(0, 20, n) for n in (7, 7, 7, 5, 12, 7, 30, 100, 3, 16, 17)]
    calls = []
    info = ModelInfo(token_kind="chars", vocab=[chr(97 + i) for i in range(20)])
    st = trace_corpus(
        lm,
        seqs,
        tmp_path / "c.zarr",
        progress=lambda a, b: calls.append((a, b)),
        quantities=("hidden", "cell", "forget_gate"),
        dtype="float32",
        block_steps=16,
        info=info,
    )
    assert isinstance(st, CorpusStore) and st.complete and st.done.all()
    total = sum(len(s) for s in seqs)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [a for a, _ in calls] == sorted(a for a, _ in calls)
    for k, s in enumerate(seqs):
        tr = lm.trace(s[None])
        for name in st.layers:
            for q in st.quantities:
                got = st.window(st.offsets[k], st.offsets[k + 1], name, q)
                np.testing.assert_allclose(got, tr.layer(name).get(q)[0], atol=2e-6)
    np.testing.assert_array_equal(np.asarray(st.inputs()[:]), np.concatenate(seqs))
    assert st.array("lstm", "hidden").shape == (6, total)
    assert st.sequence_of(40) == (5, 2) and st.position(5, 2) == 40
    np.testing.assert_array_equal(st.sequence(7), seqs[7])
    # the manifest: model hashes, tokenizer, layers, quantities
    m = st.manifest
    assert m["format_version"] == 2 and m["complete"] and m["n_steps"] == total
    assert [d["name"] for d in m["layers"]] == ["lstm", "lstm_2"]
    assert [d["units"] for d in m["layers"]] == [6, 4]
    assert m["quantities"] == ["hidden", "cell", "forget_gate"]
    assert m["tokenizer"] == {"kind": "chars", "vocab": info.vocab}
    assert len(m["model"]["weights_sha256"]) == 64
    other = make_model(vocab=20, embed=4, units=6, stacked=4, head=20, seed=2)
    st2 = trace_corpus(other, seqs[:2], tmp_path / "d.zarr")
    assert st2.manifest["model"]["weights_sha256"] != m["model"]["weights_sha256"]
    # reopened from disk: the same
    again = open_corpus(tmp_path / "c.zarr")
    np.testing.assert_array_equal(
        again.window(0, total, "lstm_2", "cell"), st.window(0, total, "lstm_2", "cell")
    )


def test_plan_recomputes_short_prefixes_and_hands_on_long_ones():
    offsets = np.array([0, 10, 60, 64])
    blocks, hand_on = plan_blocks(offsets, 16, can_split=True)
    assert len(blocks) == 4
    # block 1 (16:32): sequence 1 started at 10, 6 steps back: traced again from its start
    assert [(p.seq, p.t0, p.w0, p.carry) for p in blocks[1]] == [(1, 0, 6, False)]
    # block 3 (48:64): 38 steps into sequence 1: continues from block 2's states
    assert blocks[3][0] == Piece(1, 10, 38, 50, 38, 50, True)
    # block 2 (32:48) is 22 steps in: it continues from block 1, which re-traced the prefix
    assert blocks[2] == [Piece(1, 10, 22, 38, 22, 38, True)]
    assert hand_on == [False, True, True, False]
    # a model that cannot be split traces whole sequences
    blocks, hand_on = plan_blocks(np.array([0, 10, 20]), 16, can_split=False)
    assert [(p.seq, p.t0, p.t1, p.w0, p.w1) for p in blocks[1]] == [(1, 0, 10, 6, 10)]
    assert not any(hand_on)


def test_float16_features_and_the_zarr_layout(tmp_path):
    m = make_model(features=3, units=5, head=None, seed=2)
    x = np.random.default_rng(1).normal(0, 1, (4, 9, 3)).astype(np.float32)
    st = trace_corpus(m, x, tmp_path / "f.zarr")
    assert st.dtype == "float16" and st.array().dtype == np.float16
    tr = m.trace(x)
    got = st.window(st.offsets[2], st.offsets[3])
    np.testing.assert_allclose(got, tr.layer(0).hidden[2], atol=1e-3)
    assert st.inputs().shape == (36, 3)
    np.testing.assert_array_equal(np.asarray(st.inputs()[9:18]), x[1])
    arr = zarr.open_group(tmp_path / "f.zarr", mode="r")["states/lstm/hidden"]
    assert arr.chunks == (5, min(4096, st.block_steps))
    assert "blosc" in json.dumps(arr.metadata.to_dict()["codecs"]).lower()
    assert st.stored_bytes() > 0 and "4 sequences" in st.describe()


def test_model_that_cannot_be_split(tmp_path):
    m = make_model(vocab=9, embed=3, units=4, head=None, go_backwards=True, seed=3)
    rng = np.random.default_rng(4)
    seqs = [rng.integers(0, 9, n) for n in (10, 12, 9)]  # each crosses a block edge
    st = trace_corpus(m, seqs, tmp_path / "b.zarr", dtype="float32", block_steps=16)
    for k, s in enumerate(seqs):
        np.testing.assert_allclose(
            st.window(st.offsets[k], st.offsets[k + 1]),
            m.trace(s[None]).layer(0).hidden[0],
            atol=2e-6,
        )
    with pytest.raises(LstmvizError, match="cannot be traced in pieces"):
        trace_corpus(m, [rng.integers(0, 9, 40)], tmp_path / "b2.zarr", block_steps=16)


def test_stop_early_marks_incomplete(lm, tmp_path):
    seqs = np.random.default_rng(2).integers(0, 20, (10, 8))
    n = [0]

    def stop():
        n[0] += 1
        return n[0] > 2

    st = trace_corpus(
        lm, seqs, tmp_path / "s.zarr", should_stop=stop, block_steps=16, scheduler="sync"
    )
    assert not st.complete and not st.manifest["complete"]
    assert st.block_done.tolist() == [True, True, False, False, False]
    assert st.done.tolist() == [True] * 4 + [False] * 6
    again = open_corpus(tmp_path / "s.zarr")
    assert not again.complete and again.done.sum() == 4
    res = find_pattern(again, [0], 0, 2, -2.0)  # every traced position is on, none other
    assert res.matches and all(again.done[m.sequence] for m in res.matches)
    assert res.n_matches == 3 and res.on_fraction == pytest.approx(32 / 80)
    us = unit_stats(again)
    assert us.n_positions == 32


# ------------------------------------------------------------------------------ search
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_find_pattern_equals_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    m = make_model(features=2, units=5, head=None, seed=5 + seed)
    lengths = rng.integers(1, 90, 14)
    seqs = [rng.normal(0, 1, (int(n), 2)).astype(np.float32) for n in lengths]
    st = trace_corpus(m, seqs, tmp_path / "p.zarr", dtype="float32", block_steps=64)
    values = np.asarray(st.array()[:])
    thr = float(np.quantile(values[0], 0.45))
    units = [0, 3] if seed != 2 else [1]
    # the query: the first run of the brute-force answer
    on = (values[units] >= np.float32(thr)).all(axis=0)
    q0, q1 = brute_runs(on, st.offsets)[0]
    for chunk in (64, 128, None):  # small blocks: runs cross many block edges
        res = find_pattern(st, units, q0, q1, thr, chunk=chunk, max_matches=7)
        want, n_runs, frac = brute_find(values, units, st.offsets, q0, q1, thr, 7)
        assert res.n_matches == n_runs
        assert res.on_fraction == pytest.approx(frac)
        assert [(mt.start, mt.stop) for mt in res.matches] == [(a, b) for *_, a, b in want]
        np.testing.assert_allclose([mt.mean for mt in res.matches], [-w[1] for w in want])
        for mt in res.matches:
            k = int(np.searchsorted(st.offsets, mt.start, side="right")) - 1
            assert (mt.sequence, mt.t) == (k, mt.start - st.offsets[k])
        # ranked by position among equal length differences: the index alone decides
        fast = find_pattern(st, units, q0, q1, thr, chunk=chunk, max_matches=7, rank="position")
        everything, *_ = brute_find(values, units, st.offsets, q0, q1, thr, 10**9)
        by_pos = sorted(everything, key=lambda w: (w[0], w[2]))[:7]
        assert [(mt.start, mt.stop) for mt in fast.matches] == [(a, b) for *_, a, b in by_pos]
        np.testing.assert_allclose([mt.mean for mt in fast.matches], [-w[1] for w in by_pos])
        assert fast.n_matches == res.n_matches


def test_select_units_and_auto_units(tmp_path):
    m = make_model(features=2, units=6, head=None, seed=5)
    x = np.random.default_rng(3).normal(0, 1, (6, 20, 2)).astype(np.float32)
    st = trace_corpus(m, x, tmp_path / "p.zarr", dtype="float32")
    h = m.trace(x).layer(0).hidden.reshape(-1, 6)
    thr = float(np.quantile(h, 0.3))
    sel = select_units(st, 4, 9, thr)
    assert sel == [u for u in range(6) if (h[4:9, u] >= np.float32(thr)).all()]
    if sel:
        auto = find_pattern(st, None, 4, 9, thr)
        assert auto.units == tuple(sel)
    empty = find_pattern(st, [], 4, 9, 5.0)  # nothing is that high
    assert empty.units == () and empty.matches == []


def test_index_is_built_once_and_kept_in_the_store(lm, tmp_path):
    seqs = np.random.default_rng(5).integers(0, 20, (30, 25))
    st = trace_corpus(lm, seqs, tmp_path / "i.zarr", dtype="float32")
    calls = []
    idx = get_index(st, "lstm", "hidden", 0.1, progress=lambda a, b: calls.append(a))
    assert idx.saved and calls
    values = np.asarray(st.array("lstm", "hidden")[:])
    for u in range(6):
        np.testing.assert_array_equal(idx.on(u, 0, st.n_steps), values[u] >= np.float32(0.1))
        np.testing.assert_array_equal(idx.on(u, 13, 200), values[u, 13:200] >= np.float32(0.1))
    np.testing.assert_array_equal(idx.counts.sum(axis=0), (values >= np.float32(0.1)).sum(1))
    again = open_corpus(tmp_path / "i.zarr")
    calls.clear()
    idx2 = get_index(again, "lstm", "hidden", 0.1, progress=lambda a, b: calls.append(a))
    assert calls == [] and idx2.path == idx.path  # read, not rebuilt
    assert "ge_0.1" in idx.path
    # a re-trace into the same place invalidates it
    st3 = trace_corpus(lm, seqs[:10], tmp_path / "i.zarr", dtype="float32")
    idx3 = get_index(st3, "lstm", "hidden", 0.1)
    assert (
        idx3.counts.sum() == (np.asarray(st3.array("lstm", "hidden")[:]) >= np.float32(0.1)).sum()
    )


def test_unit_stats_equal_numpy(lm, tmp_path):
    seqs = [np.random.default_rng(6).integers(0, 20, n) for n in (40, 3, 77)]
    st = trace_corpus(lm, seqs, tmp_path / "u.zarr")
    v = np.asarray(st.array("lstm_2", "cell")[:]).astype(np.float32)
    us = unit_stats(st, "lstm_2", "cell", threshold=0.05)
    np.testing.assert_allclose(us.mean, v.mean(1, dtype=np.float64), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(us.std, v.std(1, dtype=np.float64), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(us.min, v.min(1))
    np.testing.assert_array_equal(us.max, v.max(1))
    np.testing.assert_array_equal(us.on_fraction, (v >= np.float32(0.05)).mean(1))
    assert us.n_positions == 120


# ------------------------------------------------------------------------------ locations
def test_open_by_url(lm, tmp_path):
    seqs = np.random.default_rng(7).integers(0, 20, (5, 9))
    st = trace_corpus(lm, seqs, "memory://lstmviz-test/c.zarr", dtype="float32")
    again = open_corpus("memory://lstmviz-test/c.zarr")
    assert isinstance(again, CorpusStore) and not again.writable
    np.testing.assert_array_equal(again.window(0, 45), st.window(0, 45))
    res = find_pattern(again, [0], 0, 2, -2.0)  # the index lives in memory here
    assert res.n_matches == 4
    local = trace_corpus(lm, seqs, tmp_path / "l.zarr", dtype="float32")
    by_url = open_corpus(f"file://{tmp_path / 'l.zarr'}")
    np.testing.assert_array_equal(by_url.window(3, 30, "lstm_2"), local.window(3, 30, "lstm_2"))


def _legacy_folder(path, model, seqs, dtype=np.float16):
    """A corpus in the older memory-mapped folder format, written here directly."""
    path.mkdir()
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    np.save(path / "offsets.npy", offsets)
    np.save(path / "inputs.npy", np.concatenate(seqs).astype(np.int32))
    names = model.lstm_trace_names
    for name in names:
        (path / name).mkdir()
        for q in ("hidden", "cell"):
            rows = np.concatenate([model.trace(s[None]).layer(name).get(q)[0] for s in seqs])
            np.save(path / name / f"{q}.npy", rows.T.astype(dtype))
    man = {
        "format_version": 1,
        "layers": names,
        "quantities": ["hidden", "cell"],
        "units": {n: model.lstm(n).units for n in names},
        "n_steps": int(offsets[-1]),
        "dtype": np.dtype(dtype).name,
        "complete": True,
        "meta": {"model": model.name},
    }
    (path / "corpus.json").write_text(json.dumps(man))


def test_older_folders_are_readable_and_convert(lm, tmp_path):
    rng = np.random.default_rng(8)
    seqs = [rng.integers(0, 20, n) for n in (12, 30, 7, 50)]
    _legacy_folder(tmp_path / "old", lm, seqs)
    old = open_corpus(tmp_path / "old")
    assert isinstance(old, LegacyCorpusStore) and old.complete and old.n_steps == 99
    ref = lm.trace(seqs[1][None]).layer("lstm").hidden[0]
    np.testing.assert_allclose(old.window(12, 42), ref, atol=1e-3)
    res_old = find_pattern(old, [0, 2], 12, 14, 0.0)
    new = convert_corpus(tmp_path / "old", str(tmp_path / "new.zarr"))
    assert isinstance(new, CorpusStore) and new.complete and new.dtype == "float16"
    for name in old.layers:
        for q in old.quantities:
            np.testing.assert_array_equal(new.window(0, 99, name, q), old.window(0, 99, name, q))
    np.testing.assert_array_equal(np.asarray(new.inputs()[:]), np.asarray(old.inputs()))
    res_new = find_pattern(new, [0, 2], 12, 14, 0.0)
    assert res_new == res_old
    with pytest.raises(LstmvizError, match="older folder format"):
        trace_corpus(lm, seqs, tmp_path / "old")
    with pytest.raises(LstmvizError, match="already a Zarr corpus"):
        convert_corpus(tmp_path / "new.zarr", str(tmp_path / "x.zarr"))


# ------------------------------------------------------------------------------ errors
def test_errors_name_the_argument(lm, tmp_path):
    ok = np.zeros((2, 3), int)
    with pytest.raises(LstmvizError, match="no LSTM layer 'nope'"):
        trace_corpus(lm, ok, tmp_path / "e", layers=["nope"])
    with pytest.raises(LstmvizError, match="dtype"):
        trace_corpus(lm, ok, tmp_path / "e", dtype="int8")
    with pytest.raises(LstmvizError, match="unknown quantity 'h'"):
        trace_corpus(lm, ok, tmp_path / "e", quantities=["h"])
    with pytest.raises(LstmvizError, match="block_steps must be a power of two"):
        trace_corpus(lm, ok, tmp_path / "e", block_steps=100)
    with pytest.raises(InputError, match=r"sequence 0 has shape \(3, 2\)"):
        trace_corpus(lm, [np.zeros((3, 2), int)], tmp_path / "e")
    with pytest.raises(InputError, match="token id 25"):
        trace_corpus(lm, [np.array([1, 25, 3])], tmp_path / "e")
    with pytest.raises(InputError, match="empty"):
        trace_corpus(lm, [], tmp_path / "e")
    with pytest.raises(LstmvizError, match="scheduler: expected"):
        trace_corpus(lm, ok, tmp_path / "e", scheduler=3.5)
    # a folder that holds something else is never overwritten
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(LstmvizError, match="not a corpus traced by lstmviz"):
        trace_corpus(lm, ok, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
    with pytest.raises(LstmvizError, match="not a traced corpus"):
        open_corpus(tmp_path / "mine")
    with pytest.raises(LstmvizError, match="does not exist"):
        open_corpus(tmp_path / "nowhere")
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(LstmvizError, match="not a corpus traced by lstmviz"):
        open_corpus(tmp_path / "plain.zarr")
    st = trace_corpus(lm, ok, tmp_path / "ok.zarr")
    with pytest.raises(LstmvizError, match="outside the corpus"):
        find_pattern(st, [0], 4, 9, 0.0)
    with pytest.raises(LstmvizError, match=r"units: \[6\] outside layer"):
        find_pattern(st, [6], 0, 2, 0.0)
    with pytest.raises(LstmvizError, match="threshold"):
        find_pattern(st, [0], 0, 2, float("nan"))
    with pytest.raises(LstmvizError, match="was not stored"):
        st.window(0, 2, "lstm", "output_gate")
    with pytest.raises(LstmvizError, match="no layer 'x'"):
        st.window(0, 2, "x")
    with pytest.raises(LstmvizError, match="outside the corpus"):
        st.sequence_of(6)


def test_unreachable_scheduler_is_named():
    pytest.importorskip("distributed")
    with (
        pytest.raises(LstmvizError, match=r"could not reach the Dask scheduler at 'tcp://127"),
        resolve("tcp://127.0.0.1:9", timeout=0.5),
    ):
        pass


def test_memory_budget(lm, tmp_path):
    seqs = np.zeros((4, 5), int)
    with budget.budget_set_to(1000), pytest.raises(MemoryBudgetError, match="block_steps"):
        trace_corpus(lm, seqs, tmp_path / "m.zarr")
    st = trace_corpus(lm, seqs, tmp_path / "m.zarr")
    with budget.budget_set_to(100), pytest.raises(MemoryBudgetError, match="window"):
        st.window(0, 20)


def test_direct_chunk_reads_equal_zarr(tmp_path):
    """The index's fast path reads raw chunk files; it must agree with Zarr everywhere
    (edge chunks stored full size, a missing chunk reading as zeros)."""
    from lstmviz.analysis.corpus.index import _read_chunks

    data = np.random.default_rng(0).integers(0, 256, (11, 23), dtype=np.uint8)
    a = zarr.create_array(
        tmp_path / "bits",
        shape=data.shape,
        dtype="uint8",
        chunks=(4, 5),
        compressors=None,
        fill_value=0,
    )
    a[:] = data
    (tmp_path / "bits" / "c" / "1" / "2").unlink()  # rows 4:8, cols 10:15 read as zeros
    want = np.asarray(a[:])
    assert not want[4:8, 10:15].any()
    rng = np.random.default_rng(1)
    spans = [
        tuple(
            int(v)
            for v in (
                *sorted(rng.choice(12, 2, replace=False)),
                *sorted(rng.choice(24, 2, replace=False)),
            )
        )
        for _ in range(50)
    ]
    # one whole chunk column (the search's reads: straight into the result), with and
    # without the missing chunk, and a row range across chunk rows
    spans += [(0, 11, 5, 10), (3, 9, 0, 5), (2, 11, 10, 15), (4, 8, 10, 15), (0, 11, 0, 23)]
    for u0, u1, c0, c1 in spans:
        got = _read_chunks(str(tmp_path / "bits"), a.chunks, u0, u1, c0, c1)
        np.testing.assert_array_equal(got, want[u0:u1, c0:c1])
    # a chunk file cut short is named, on both paths
    chunk = tmp_path / "bits" / "c" / "0" / "1"
    chunk.write_bytes(chunk.read_bytes()[:7])
    for c0, c1 in ((5, 10), (6, 9)):
        with pytest.raises(LstmvizError, match="damaged"):
            _read_chunks(str(tmp_path / "bits"), a.chunks, 0, 4, c0, c1)


def test_tasks_run_the_engine_on_one_thread_and_give_the_setting_back(lm, tmp_path):
    from lstmviz.engine import get_threads, set_threads

    seen = []
    previous = set_threads(3)
    try:
        trace_corpus(
            lm,
            np.zeros((4, 40), int),
            tmp_path / "t.zarr",
            block_steps=64,
            progress=lambda a, b: seen.append(get_threads()),
        )
        assert get_threads() == 3  # given back
    finally:
        set_threads(previous)
    assert seen[1:] and set(seen[1:]) == {1}  # while the tasks ran: Dask's threads only
