"""The compiled kernel's ways of computing each step's product, side by side in one process.

* ``projection`` -- BLAS: one input GEMM for all steps (``pre`` filled with the bias, then
  ``x W`` added per batch item), then per step ``h_tm1 @ U`` added into ``pre[t]``
  (``sgemm``/``sgemv`` with ``beta = 1``): the BLAS path at small batches;
* ``x mode`` -- BLAS: per step one product ``[h_tm1, x_t] @ [U; W]`` (K = U + F) written into
  ``pre[t]``, plus the bias: the BLAS path from ``X_MODE_MIN_BATCH`` on (from
  ``X_MODE_MIN_BATCH_WIDE`` at ``X_MODE_WIDE_UNITS`` units), its product unit-major from
  ``REC_T_MIN_UNITS`` units (``lstmviz.engine._accel``);
* ``packed`` -- the kernel's own product (x mode with ``[U; W]`` packed once per call, AVX-512
  or AVX2 register tiles), on one thread: the path wherever the CPU has AVX2 + FMA
  (``bench/threads.py`` measures it on more threads).

All run ``run_lstm(x, w, out=previous)`` (no allocation, no page faults) and are interleaved
round by round with the NumPy floor (``T`` products ``h @ U``), one thread for everything.

    python bench/kernel_modes.py                      # default sizes
    python bench/kernel_modes.py 256x1000x32 32x1000x8   # units x T x batch
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

common.pin_threads(1)  # before NumPy: one BLAS thread

import time  # noqa: E402

import numpy as np  # noqa: E402

DEFAULT = [
    "32x1000x32",
    "256x100x32",
    "256x1000x32",
    "1024x100x32",
    "1024x1000x32",
    "32x10000x32",
    "256x1000x8",
    "256x1000x16",
    "256x1000x1",
]  # x mode forced at every batch


def main(argv: list[str] | None = None) -> int:
    from lstmviz.engine import LSTMWeights, _accel, run_lstm, set_threads

    set_threads(1)
    tiles = _accel.packed()
    _accel.set_packed("")  # BLAS for the first two modes

    if not _accel.available():
        print(f"the compiled kernel is not available: {_accel.describe()}")
        return 1
    sizes = [tuple(int(v) for v in s.split("x")) for s in (argv or DEFAULT)]
    default_rule = _accel.x_mode
    print(
        f"engine: {_accel.describe()}; x mode from batch {_accel.X_MODE_MIN_BATCH} "
        f"({_accel.X_MODE_MIN_BATCH_WIDE} from {_accel.X_MODE_WIDE_UNITS} units), "
        f"unit-major product from {_accel.REC_T_MIN_UNITS} units; F = 16"
    )
    for units, steps, batch in sizes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, steps, 16), dtype=np.float32)
        w = LSTMWeights(
            rng.normal(0, 0.3, (16, 4 * units)),
            rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)),
            rng.normal(0, 0.1, 4 * units),
        )
        traces: dict[str, object] = {}

        def run(mode: str) -> None:
            _accel.x_mode = lambda units, batch: mode == "x mode"
            if mode == "packed":
                _accel.set_packed(tiles)
            try:
                prev = traces.get(mode)
                traces[mode] = run_lstm(x, w, out=prev) if prev is not None else run_lstm(x, w)
            finally:
                _accel.set_packed("")

        rec = common.aligned(w._internal()[1])  # the floor at its fastest, as bench/trace.py
        h = common.aligned(np.zeros((batch, units), np.float32))
        z = common.aligned(np.empty((batch, 4 * units), np.float32))

        def floor() -> None:
            for _ in range(steps):
                np.matmul(h, rec, out=z)

        fns = {
            "projection": lambda: run("projection"),
            "x mode": lambda: run("x mode"),
            "floor": floor,
        }
        if tiles:
            fns["packed"] = lambda: run("packed")
        times: dict[str, list[float]] = {k: [] for k in fns}
        for f in fns.values():  # warm-up (and the buffers out= reuses)
            f()
        rounds = 7 if units * steps * batch < 3e7 else 3
        for _ in range(rounds):
            for k, f in fns.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
        _accel.x_mode = default_rule
        fl = min(times["floor"])
        d = float(np.abs(traces["x mode"].hidden - traces["projection"].hidden).max())
        parts = [f"floor {fl * 1e3:.3g} ms"]
        for k in [m for m in ("projection", "x mode", "packed") if m in times]:
            b = min(times[k])
            parts.append(
                f"{k} {b * 1e3:.3g} ms = {b / fl:.2f}x floor "
                f"(median {np.median(times[k]) / fl:.2f}x)"
            )
        print(
            f"U={units} T={steps} B={batch}: "
            + " | ".join(parts)
            + f" | max|dh| between them {d:.1e}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
