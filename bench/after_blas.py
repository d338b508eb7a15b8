"""A trace right after another library's call: do its spinning threads take a core?

OpenBLAS, and torch's OpenMP, keep their worker threads spinning for a while after a call
before they sleep. lstmviz's kernel runs its recurrence on every core; a trace started right
after a NumPy matmul (OpenBLAS on two threads) or a torch LSTM forward shares a core with
those spinning threads. This script times ``run_lstm(x, w, out=previous)`` at one and two
kernel threads, after 0.3 s of idle ("rest"), right after 20 NumPy matmuls of 512 x 512
("after BLAS") and right after a ``torch.nn.LSTM`` forward of the same size ("after torch"),
best and median of 7, beside torch's own forward at rest.

    python bench/after_blas.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def main() -> int:
    import numpy as np

    from lstmviz.engine import LSTMWeights, run_lstm, set_threads

    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512), dtype=np.float32)
    print(f"machine: {common.machine()}")
    for units, batch in ((256, 1), (256, 32), (1024, 1)):
        feats, steps = 16, 1000
        w = LSTMWeights(
            rng.standard_normal((feats, 4 * units), dtype=np.float32) * 0.1,
            rng.standard_normal((units, 4 * units), dtype=np.float32) * 0.1,
            np.zeros(4 * units, np.float32),
        )
        x = rng.standard_normal((batch, steps, feats), dtype=np.float32)
        prev = run_lstm(x, w)
        lstm = torch.nn.LSTM(feats, units, batch_first=True) if torch is not None else None
        xt = torch.from_numpy(x) if torch is not None else None

        def blas() -> None:
            for _ in range(20):
                a @ a

        def forward() -> None:
            with torch.no_grad():
                lstm(xt)

        def timed(fn, before=None) -> tuple[float, float]:
            ts = []
            for _ in range(7):
                time.sleep(0.3)
                if before is not None:
                    before()
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            return min(ts) * 1e3, float(np.median(ts)) * 1e3

        parts = []
        for threads in (1, 2):
            set_threads(threads)
            cases = [("rest", None), ("after BLAS", blas)]
            if torch is not None:
                cases.append(("after torch", forward))
            for name, before in cases:
                best, med = timed(lambda: run_lstm(x, w, out=prev), before)
                parts.append(f"{threads} thread(s) {name} {best:.1f}/{med:.1f}")
        set_threads(None)
        line = f"U={units} B={batch} T={steps}: ours " + "; ".join(parts)
        if torch is not None:
            best, med = timed(forward)
            line += f" | torch at rest {best:.1f}/{med:.1f} ms (best/median)"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
