"""Trace memory: the peak memory of a trace against the raw size of the arrays it keeps.

A trace of one LSTM layer keeps ``pre`` and ``act`` ``(T, B, 4U)``, ``c`` and ``h``
``(T, B, U)``, ``h0``/``c0`` ``(B, U)`` and its input ``x`` ``(B, T, F)``, all float32: the
*raw* size is the sum of their ``nbytes``.  Each size runs in a fresh child process, which
measures around one call

* ``peak``: the highest memory NumPy allocated during the call (``tracemalloc``, which
  NumPy reports its array buffers to) plus the input ``x`` that already existed,
* ``rss``: the growth of the process's peak resident set (``ru_maxrss``) over the call,

and prints ``peak / raw`` (the goal: <= 1.1x).  ``run_lstm`` is the engine call;
``model.trace`` is the whole model (``Sequential([Input, LSTM])``), which also returns the
layer's output sequence (Keras's ``model(x)``, ``(B, T, U)``).

    python bench/memory.py                     # units 256/1024 x T 1000/10000, batch 1
    python bench/memory.py --units 1024 --steps 10000 --batch 1 32 --features 16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # before NumPy: pins the BLAS thread count


def child(units: int, steps: int, batch: int, feats: int, what: str) -> dict:
    import gc
    import resource
    import tracemalloc

    import numpy as np

    from lstmviz.engine import LSTMWeights, run_lstm
    from lstmviz.engine.layers import LSTM, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(0)
    w = LSTMWeights(
        rng.normal(0, 0.3, (feats, 4 * units)),
        rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)),
        np.zeros(4 * units),
    )
    x = rng.standard_normal((batch, steps, feats), dtype=np.float32)
    # the weights' cached copies (gate order, the kernel's packed panels) belong to the
    # model, not to the trace: made by a one-step trace before measuring
    run_lstm(x[:, :1], w)
    model = None
    if what == "model.trace":
        nodes = [
            Node(InputLayer("input", (None, None, feats)), 0, []),
            Node(LSTM("lstm", w, return_sequences=True), 0, [("input", 0, 0)]),
        ]
        model = Model("bench", nodes, [("input", 0, 0)], [("lstm", 0, 0)], source="<memory>")
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    if model is None:
        lt = run_lstm(x, w)
    else:
        tr = model.trace(x)
        lt = tr.layer(0)
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kept = [lt.pre, lt.act, lt.c, lt.h, lt.h0, lt.c0]
    raw = sum(a.nbytes for a in kept) + x.nbytes
    x_copied = not np.shares_memory(lt.x, x)
    return {
        "what": what,
        "units": units,
        "steps": steps,
        "batch": batch,
        "features": feats,
        "engine": lt.meta.get("engine"),
        "raw": raw,
        "peak": peak - base + (0 if x_copied else x.nbytes),
        "kept": cur - base + (0 if x_copied else x.nbytes),
        "rss": rss1 - rss0,
        "x_copied": x_copied,
    }


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--steps", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--features", type=int, default=16)
    p.add_argument(
        "--what",
        nargs="+",
        default=["run_lstm", "model.trace"],
        choices=["run_lstm", "model.trace"],
    )
    p.add_argument("--max-gb", type=float, default=3.0, help="skip larger traces")
    p.add_argument(
        "--openblas-coretype",
        metavar="NAME",
        help="set OPENBLAS_CORETYPE (e.g. Haswell) before NumPy loads",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--json")
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    common.pin_threads(a.threads, a.openblas_coretype)
    if a.child:
        u, t, b, f = (int(v) for v in a.child[:4])
        print(json.dumps(child(u, t, b, f, a.child[4])))
        return 0
    print(f"machine: {common.machine()}")
    rows = []
    for what in a.what:
        for units in a.units:
            for steps in a.steps:
                for batch in a.batch:
                    size = f"U={units} T={steps} B={batch}"
                    need = steps * batch * (10 * units + a.features) * 4
                    if need > a.max_gb * 1e9:
                        print(
                            f"memory {what} {size}: skipped (trace needs "
                            f"{need / 1e9:.1f} GB > --max-gb {a.max_gb:g})"
                        )
                        continue
                    cmd = [
                        sys.executable,
                        os.path.abspath(__file__),
                        "--threads",
                        str(a.threads),
                        "--child",
                        str(units),
                        str(steps),
                        str(batch),
                        str(a.features),
                        what,
                    ]
                    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if res.returncode != 0:
                        print(f"memory {what} {size}: failed\n{res.stderr[-2000:]}")
                        continue
                    row = json.loads(res.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    print(summary(row), flush=True)
    if a.markdown:
        print()
        print(markdown(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": common.machine(), "rows": rows}, f, indent=1)
    return 0


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def summary(row: dict) -> str:
    raw = row["raw"]
    return (
        f"memory {row['what']} U={row['units']} T={row['steps']} B={row['batch']} "
        f"[{row['engine']}]: raw {_mb(raw)} | peak {_mb(row['peak'])} -> "
        f"{row['peak'] / raw:.3f}x raw | kept {_mb(row['kept'])} -> "
        f"{row['kept'] / raw:.3f}x raw | peak RSS growth {_mb(row['rss'])} -> "
        f"{row['rss'] / raw:.3f}x raw"
    )


def markdown(rows: list[dict]) -> str:
    lines = [
        "| call | units | T | B | raw | peak (tracemalloc) | peak / raw | kept / raw | "
        "peak RSS growth / raw |",
        "|" + "---|" * 9,
    ]
    for r in rows:
        raw = r["raw"]
        lines.append(
            f"| {r['what']} | {r['units']} | {r['steps']} | {r['batch']} | "
            f"{_mb(raw)} | {_mb(r['peak'])} | {r['peak'] / raw:.3f}x | "
            f"{r['kept'] / raw:.3f}x | {r['rss'] / raw:.3f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
