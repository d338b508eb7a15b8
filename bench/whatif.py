"""What-if latency: one token changed in the middle of a sequence, retraced from there.

A character-level language model (Embedding(96, 32) -> LSTM(U, return_sequences) ->
Dense(96, softmax), random weights) traces a sequence of T tokens; then token T/2 changes and

* ``full trace``     ``model.trace(x_new)``: everything again (what the app did before);
* ``retrace``        ``model.trace(x_new, reuse=before)``: the LSTM copies the steps before the
                     change and computes from there on (new buffers);
* ``retrace out=``   the same into the buffers of the previous what-if's trace (``out=``): no
                     allocation, no page faults -- a what-if slider;
* ``what_if``        ``lstmviz.analysis.what_if(model, x, t, token, before=..., out=...)``: the
                     retrace plus what the What-if panel shows (per-step divergence of the six
                     quantities, the change of the model's output at every step).

Each figure is the min and median of ``--repeat`` interleaved rounds, at the engine's default
threads and at one thread (``lstmviz.engine.set_threads``); every retrace is checked equal,
bit for bit, to the full trace.  Goal: <= 16 ms for a change in the middle at 256 units x
1000 steps.

    python bench/whatif.py                       # 256 units x 1000 steps, batch 1
    python bench/whatif.py --units 256 1024 --steps 1000 10000 --repeat 20
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def _model(np, units: int, vocab: int = 96, embed: int = 32, seed: int = 0):
    from lstmviz.engine import LSTMWeights
    from lstmviz.engine.layers import LSTM, Dense, Embedding, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(seed)
    lim = np.sqrt(6.0 / (embed + 4 * units))
    q, _ = np.linalg.qr(rng.standard_normal((4 * units, units)))
    bias = np.zeros(4 * units)
    bias[units : 2 * units] = 1.0
    w = LSTMWeights(rng.uniform(-lim, lim, (embed, 4 * units)), q.T, bias)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, nargs="+", default=[256])
    p.add_argument("--steps", type=int, nargs="+", default=[1000])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=15)
    a = p.parse_args(argv)
    import numpy as np

    from lstmviz.analysis import what_if
    from lstmviz.engine import _accel, get_threads, set_threads

    print(f"machine: {common.machine()}")
    default_threads = get_threads()
    for units in a.units:
        for steps in a.steps:
            model = _model(np, units)
            rng = np.random.default_rng(1)
            x = rng.integers(0, 96, (a.batch, steps))
            t = steps // 2
            x_new = x.copy()
            x_new[0, t] = (x_new[0, t] + 1) % 96
            for threads in (default_threads, 1):
                set_threads(threads)
                before = model.trace(x)
                state: dict = {}

                def full():
                    state.pop("full", None)
                    state["full"] = model.trace(x_new)

                def retrace():
                    state.pop("retrace", None)
                    state["retrace"] = model.trace(x_new, reuse=before)

                def retrace_out():
                    state["out"] = model.trace(x_new, reuse=before, out=state.get("out"))

                def whatif():
                    prev = state.get("whatif")
                    state["whatif"] = what_if(
                        model,
                        x,
                        t,
                        int(x_new[0, t]),
                        before=before,
                        out=None if prev is None else prev.after,
                    )

                fns = {
                    "full trace": full,
                    "retrace": retrace,
                    "retrace out=": retrace_out,
                    "what_if": whatif,
                }
                times = common.interleaved_times(fns, a.repeat)
                ref = state["full"]
                for k in ("retrace", "out"):
                    for la, lb in zip(state[k].layers, ref.layers, strict=True):
                        assert np.array_equal(la.h, lb.h) and np.array_equal(la.act, lb.act)
                    assert np.array_equal(state[k].output, ref.output)
                lt = state["out"].layers[0]
                print(
                    f"U={units} T={steps} B={a.batch} change at t={t} "
                    f"[{threads} thread(s); {lt.meta['path']}, {lt.meta['threads']} ran; "
                    f"recomputed {lt.meta['recomputed']}]: "
                    + " | ".join(
                        f"{k} {common.fmt_ms(min(v))} / {common.fmt_ms(float(np.median(v)))} ms"
                        for k, v in times.items()
                    )
                    + " (min / median); retraces equal to the full trace bit for bit",
                    flush=True,
                )
    set_threads(None)
    print(f"engine: {_accel.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
