"""Recycled trace memory (engine/_pool.py): a freed trace's buffers serve the next trace of a
similar size, and memory that anything still references is never handed out again."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest

from lstmviz.engine import LSTMWeights, _pool, release_memory, run_lstm
from lstmviz.errors import InputError


def _problem(units=64, batch=16, steps=300, feats=5, seed=0):
    rng = np.random.default_rng(seed)
    w = LSTMWeights(
        rng.normal(0, 0.3, (feats, 4 * units)).astype(np.float32),
        rng.normal(0, 0.3, (units, 4 * units)).astype(np.float32),
        rng.normal(0, 0.1, 4 * units).astype(np.float32),
    )
    return rng.standard_normal((batch, steps, feats)).astype(np.float32), w


@pytest.fixture(autouse=True)
def _empty_pool():
    release_memory()
    yield
    release_memory()


def test_a_freed_trace_serves_the_next_one():
    x, w = _problem()  # pre/act: 300 x 16 x 256 floats = 4.9 MB, pooled
    first = run_lstm(x, w)
    expect = first.h.copy()
    del first
    gc.collect()
    assert _pool.pooled_bytes() > 0
    before = _pool.stats()["reused"]
    again = run_lstm(x, w)
    assert _pool.stats()["reused"] - before >= 2  # pre and act at least
    np.testing.assert_array_equal(again.h, expect)


def test_memory_still_referenced_is_never_reused():
    x, w = _problem()
    first = run_lstm(x, w)
    kept_act = first.act[100:]  # a view: keeps the whole buffer's block alive
    kept_h = memoryview(first.h)  # a buffer export keeps it too
    snapshot_act, snapshot_h = kept_act.copy(), np.asarray(kept_h).copy()
    del first
    gc.collect()
    x2 = -x  # another input: another trace written into whatever the pool gives out
    for _ in range(3):
        other = run_lstm(x2, w)
        del other
        gc.collect()
    np.testing.assert_array_equal(kept_act, snapshot_act)
    np.testing.assert_array_equal(np.asarray(kept_h), snapshot_h)


@pytest.mark.parametrize("max_mib", [None, 12])
def test_pool_is_bounded_and_released(monkeypatch, max_mib):
    if max_mib is not None:  # a machine with little free memory: the byte bound evicts
        monkeypatch.setattr(_pool, "MAX_BYTES", max_mib * 2**20)
    x, w = _problem()
    traces = [run_lstm(x, w) for _ in range(6)]
    del traces
    gc.collect()
    assert 0 < _pool.pooled_bytes() <= _pool.MAX_BYTES
    assert len(_pool._free) <= _pool.MAX_BLOCKS
    assert release_memory() > 0
    assert _pool.pooled_bytes() == 0


def test_the_pool_keeps_no_more_than_the_users_memory_budget(monkeypatch):
    x, w = _problem()  # pre and act: 4.9 MB each, pooled by default
    monkeypatch.setenv("LSTMVIZ_MEMORY_BUDGET", "6MB")
    traces = [run_lstm(x, w) for _ in range(3)]
    del traces
    gc.collect()
    assert 0 < _pool.pooled_bytes() <= 6_000_000  # one buffer kept, not six
    monkeypatch.setenv("LSTMVIZ_MEMORY_BUDGET", "4MB")  # under one buffer: nothing kept
    release_memory()
    traces = [run_lstm(x, w) for _ in range(3)]
    del traces
    gc.collect()
    assert _pool.pooled_bytes() == 0


def test_small_and_huge_requests_bypass_the_pool(monkeypatch):
    monkeypatch.setattr(_pool, "MAX_BYTES", 64 * 2**20)  # the bound scales with free memory
    small = _pool.empty((10, 10))
    assert small.base is None or not isinstance(small.base, _pool._Block)
    huge = _pool.MAX_BYTES // 4 + 1
    big = _pool.empty((huge,))
    assert big.nbytes > _pool.MAX_BYTES and big.ctypes.data % 64 == 0
    before = _pool.pooled_bytes()
    del big
    gc.collect()
    assert _pool.pooled_bytes() == before  # too big to keep


def test_pooled_buffers_start_on_a_cache_line():
    for shape in [(300, 16, 256), (1000, 7, 333), (2**20 + 3,)]:
        a = _pool.empty(shape)
        assert a.ctypes.data % 64 == 0 and a.shape == shape and a.flags.c_contiguous
        a[...] = 1.0  # the whole array is writable memory of the block
        del a


def test_a_pooled_trace_takes_out_and_reuse():
    x, w = _problem()
    first = run_lstm(x, w)
    assert isinstance(first.pre.base.base, _pool._Block)  # this size is pooled
    ref = run_lstm(x, w, accelerate=False)
    again = run_lstm(x, w, out=first)  # its own buffers, written again
    assert again.pre.ctypes.data == first.pre.ctypes.data
    np.testing.assert_allclose(again.h, ref.h, atol=1e-5)
    x2 = x.copy()
    x2[:, 200] += 1.0
    changed = run_lstm(x2, w, reuse=again, out=again)  # a what-if in place
    np.testing.assert_allclose(changed.h, run_lstm(x2, w, accelerate=False).h, atol=1e-5)
    # a view into the middle of a pooled buffer is not a buffer of its own
    big = _pool.empty((301, 16, 256))
    assert _pool.owns(big) and not _pool.owns(big[1:]) and not _pool.owns(big[:, :, ::2])
    assert not _pool.owns(np.zeros((4, 4))[1:])


def test_out_refuses_a_view_into_another_buffer():
    x, w = _problem()
    first = run_lstm(x, w)
    big = _pool.empty((301, 16, 64))
    other = dataclasses.replace(first, h=big[1:])  # same shape, somebody else's memory
    with pytest.raises(InputError, match="out= must be"):
        run_lstm(x, w, out=other)
