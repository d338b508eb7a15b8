"""Benchmark: trace a corpus of N token-steps with a random 256-unit LSTM to disk, then run
an LSTMVis-style pattern query over every position. Records time, peak RSS and disk size.

    python bench/corpus.py                       # 10M token-steps x 256 units (the goal)
    python bench/corpus.py --steps 200000        # a quick run

The model is built in memory (Embedding(96, 32) -> LSTM(256)); weights are random but with
realistic gate statistics. The store goes to a temporary directory (or --out), removed at the
end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lstmviz.analysis import find_pattern, open_corpus, select_units, trace_corpus
from lstmviz.engine import LSTMWeights
from lstmviz.engine.layers import LSTM, Embedding, InputLayer
from lstmviz.engine.model import Model, Node


def random_model(units: int, vocab: int = 96, embed: int = 32, seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    w = LSTMWeights(
        rng.normal(0, 1 / np.sqrt(embed), (embed, 4 * units)),
        rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)),
        rng.normal(0, 0.5, 4 * units),
    )
    nodes = [
        Node(InputLayer("input", (None, None), "int32"), 0, []),
        Node(Embedding("embedding", rng.normal(0, 1, (vocab, embed))), 0, [("input", 0, 0)]),
        Node(LSTM("lstm", w, return_sequences=True), 0, [("embedding", 0, 0)]),
    ]
    return Model("random_lstm", nodes, [("input", 0, 0)], [("lstm", 0, 0)], source="<bench>")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000_000, help="total token-steps")
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    ap.add_argument("--quantities", default="hidden,cell")
    ap.add_argument("--chunk-steps", type=int, default=32768)
    ap.add_argument("--out", default=None, help="store directory (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args()

    n_seq = args.steps // args.seq_len
    model = random_model(args.units)
    rng = np.random.default_rng(1)
    seqs = rng.integers(0, 96, (n_seq, args.seq_len)).astype(np.int32)  # (n, T)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lstmviz-corpus-"))
    print(
        f"corpus: {n_seq} sequences x {args.seq_len} steps = {n_seq * args.seq_len:,} "
        f"token-steps, {args.units} units, {args.quantities} as {args.dtype} -> {out}",
        flush=True,
    )
    rss0 = current_rss_mb()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(
                f"  {done:,}/{total:,} ({100 * done / total:.1f}%) "
                f"{now - t0:.0f}s rss {current_rss_mb():.0f} MB",
                flush=True,
            )

    t0 = time.perf_counter()
    store = trace_corpus(
        model,
        seqs,
        out,
        progress,
        quantities=args.quantities.split(","),
        dtype=args.dtype,
        chunk_steps=args.chunk_steps,
    )
    t_trace = time.perf_counter() - t0
    rss_trace = peak_rss_mb()
    disk = sum(f.stat().st_blocks * 512 for f in out.rglob("*") if f.is_file())

    # correctness spot check: three sequences against a direct trace
    store = open_corpus(out)
    err = 0.0
    for k in (0, n_seq // 2, n_seq - 1):
        ref = model.trace(seqs[k][None], step_outputs=False).layer(0).hidden[0]
        got = store.window(store.offsets[k], store.offsets[k + 1], "lstm", "hidden")
        err = max(err, float(np.abs(ref - got).max()))

    # LSTMVis query: units on over a range of the last sequence, searched everywhere
    q0 = store.position(n_seq - 1, 100)
    units = select_units(store, q0, q0 + 3, 0.3)[:5]
    t1 = time.perf_counter()
    res = find_pattern(store, units or [0, 1], q0, q0 + 3, 0.3)
    t_find = time.perf_counter() - t1
    rss_all = peak_rss_mb()
    figures = {
        "token_steps": n_seq * args.seq_len,
        "units": args.units,
        "dtype": args.dtype,
        "quantities": args.quantities,
        "chunk_steps": args.chunk_steps,
        "trace_seconds": round(t_trace, 1),
        "steps_per_second": round(n_seq * args.seq_len / t_trace),
        "peak_rss_mb_trace": round(rss_trace),
        "rss_before_mb": round(rss0),
        "disk_gb": round(disk / 1e9, 2),
        "max_abs_error_vs_direct_trace": err,
        "find_pattern_seconds": round(t_find, 2),
        "find_pattern_units": list(res.units),
        "find_pattern_matches": res.n_matches,
        "peak_rss_mb_total": round(rss_all),
        "machine": f"{os.cpu_count()} CPUs",
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
