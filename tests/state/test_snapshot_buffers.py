"""Training snapshots shown one after another retrace into reused memory: the trace a new
snapshot replaces gives its buffers back (engine/_pool.py) and the snapshot after it takes them."""

from __future__ import annotations

import gc

import numpy as np

from lstmviz.engine import _pool, release_memory
from lstmviz.state import ViewerState
from tests.app.models import char_model


def test_training_snapshots_retrace_into_reused_buffers():
    state = ViewerState()
    state.runner = lambda job, done, failed, label: done(job(lambda i, n: None, lambda: False))
    x = np.random.default_rng(0).integers(0, 28, (1, 2500))  # pre, act: 5 MB each: pooled
    state.set_model(char_model(128, seed=0)[0], None, None, x=x)
    snapshots = [char_model(128, seed=k)[0] for k in range(1, 6)]  # five of "training"
    expected = [s.trace(x).layer("lstm").h.copy() for s in snapshots]
    release_memory()
    gc.collect()
    seen, reused = [], _pool.stats()["reused"]
    for k, snapshot in enumerate(snapshots):
        state.show_weights(snapshot, engine=f"NumPy · snapshot {k + 1}")
        gc.collect()
        lt = state.layer_trace
        assert lt is not None
        np.testing.assert_allclose(lt.h, expected[k], atol=1e-6)
        seen.append(lt.act.ctypes.data)
    assert _pool.stats()["reused"] - reused >= 6  # from the third snapshot on, at least
    assert len(set(seen[2:])) <= 2  # the last snapshots alternate between two sets of buffers
