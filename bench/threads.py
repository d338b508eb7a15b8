"""How the threaded recurrence scales: the packed kernel on 1 .. N threads, per size.

For each size (units x T x batch) one random LSTM is traced with ``run_lstm(x, w,
out=previous)`` (no allocation, no page faults) with the engine's thread count forced to
1, 2, .. ``--threads`` (the work thresholds of ``lstmviz.engine._accel.threads_for`` switched
off, so each count really runs), interleaved round by round with the NumPy floor (``T``
products ``h @ U``) at one BLAS thread and at BLAS's default.  Prints min and median per
column and the speed-up over one thread; the last column is what the engine picks itself.
This is how ``MIN_STEP_WORK_PER_THREAD`` / ``MIN_CALL_WORK_PER_THREAD`` were chosen.

    python bench/threads.py
    python bench/threads.py 256x1000x1 1024x300x32 --threads 4 --repeat 9
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

DEFAULT = [
    "32x1000x1",
    "64x1000x1",
    "128x1000x1",
    "256x1000x1",
    "512x1000x1",
    "1024x300x1",
    "32x1000x32",
    "64x1000x32",
    "128x1000x8",
    "256x1000x4",
    "256x300x32",
    "1024x100x32",
    "256x30x1",
    "256x10x1",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sizes", nargs="*", default=DEFAULT, help="UNITSxTxBATCH")
    p.add_argument("--threads", type=int, default=None, help="up to (default: every core)")
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    import numpy as np

    from lstmviz.engine import LSTMWeights, _accel, get_threads, run_lstm, set_threads

    if not _accel.packed():
        print(f"the packed kernel is not available: {_accel.describe()}")
        return 1
    top = a.threads or get_threads()
    print(f"machine: {common.machine()}")
    print(f"engine: {_accel.describe()}; BLAS: {common.blas_threads()}; F = 16")
    defaults = (_accel.MIN_STEP_WORK_PER_THREAD, _accel.MIN_CALL_WORK_PER_THREAD)
    for size in a.sizes:
        units, steps, batch = (int(v) for v in size.split("x"))
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.standard_normal((4 * units, units)))
        w = LSTMWeights(rng.uniform(-0.1, 0.1, (16, 4 * units)), q.T, np.zeros(4 * units))
        x = rng.standard_normal((batch, steps, 16), dtype=np.float32)
        rec = common.aligned(w.recurrent_kernel)
        h = common.aligned(np.full((batch, units), 0.1, np.float32))
        z = common.aligned(np.empty((batch, 4 * units), np.float32))
        prev: dict = {}

        def floor():
            for _ in range(steps):
                np.matmul(h, rec, out=z)

        def floor_1():
            with _accel.blas_limits(1):
                floor()

        def ours(n):
            def run():
                set_threads(n)
                if n:  # forced: the thresholds off
                    _accel.MIN_STEP_WORK_PER_THREAD = _accel.MIN_CALL_WORK_PER_THREAD = 0
                try:
                    prev[n] = run_lstm(x, w, out=prev.get(n))
                finally:
                    _accel.MIN_STEP_WORK_PER_THREAD, _accel.MIN_CALL_WORK_PER_THREAD = defaults
                    set_threads(None)

            return run

        fns = {"floor 1 BLAS thread": floor_1, "floor default": floor}
        fns.update({f"{n} thread{'s' * (n > 1)}": ours(n) for n in range(1, top + 1)})
        fns["engine's choice"] = ours(None)
        times = common.interleaved_times(fns, a.repeat)
        one = min(times["1 thread"])
        for n in range(2, top + 1):
            assert np.array_equal(prev[n].h, prev[1].h)  # bit for bit whatever the threads
        cells = []
        for k, v in times.items():
            m = min(v)
            extra = f" ({one / m:.2f}x)" if "thread" in k and not k.startswith("floor") else ""
            cells.append(f"{k} {common.fmt_ms(m)}/{common.fmt_ms(float(np.median(v)))}{extra}")
        print(
            f"U={units} T={steps} B={batch}: "
            + " | ".join(cells)
            + f" | chosen: {prev[None].meta['threads']} thread(s)  (ms min/median)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
