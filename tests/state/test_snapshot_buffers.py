"""Training snapshots shown one after another retrace into reused memory: the trace a new
snapshot replaces gives its buffers back (engine/_pool.py) and the snapshot after it takes them."""

from __future__ import annotations

import gc

import numpy as np

from lstmviz.engine import LSTMWeights, _pool, release_memory
from lstmviz.engine.layers import LSTM, Dense, Embedding, InputLayer
from lstmviz.engine.model import Model, Node
from lstmviz.state import ViewerState


def _char_lm(seed: int, units: int = 128, vocab: int = 40, embed: int = 16) -> Model:
    rng = np.random.default_rng(seed)
    w = LSTMWeights(
        rng.normal(0, 0.2, (embed, 4 * units)),
        rng.normal(0, 0.1, (units, 4 * units)),
        rng.normal(0, 0.1, 4 * units),
    )
    nodes = [
        Node(InputLayer("input", (None, None), "int32"), 0, []),
        Node(Embedding("embedding", rng.normal(0, 1, (vocab, embed))), 0, [("input", 0, 0)]),
        Node(LSTM("lstm", w, return_sequences=True), 0, [("embedding", 0, 0)]),
        Node(
            Dense("dense", rng.normal(0, 0.1, (units, vocab)), np.zeros(vocab), "softmax"),
            0,
            [("lstm", 0, 0)],
        ),
    ]
    return Model("char_lm", nodes, [("input", 0, 0)], [("dense", 0, 0)])


def test_training_snapshots_retrace_into_reused_buffers():
    state = ViewerState()
    state.runner = lambda job, done, failed, label: done(job(lambda i, n: None, lambda: False))
    x = np.random.default_rng(0).integers(0, 40, (1, 2500))  # pre, act: 5 MB each: pooled
    state.set_model(_char_lm(0), None, None, x=x)
    snapshots = [_char_lm(k) for k in range(1, 6)]  # five snapshots of "training"
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
