"""Benchmark: corpora in Zarr with Dask -- tracing, the on/off search, and a LocalCluster.

    python bench/corpus.py                      # the figures of docs/benchmarks.md, "Corpora"
    python bench/corpus.py --quick              # a smaller run (a minute or two)
    python bench/corpus.py --no-cluster --json result.json

What it measures, all in one run on the same data:

1. **Tracing** a corpus with a 650-unit language model shaped like the medium PTB model
   (Embedding(10000, 650) -> LSTM(650) -> LSTM(650), random weights, sequences of 1,000
   tokens) into a Zarr store (hidden + cell of both layers, float16): token-steps per second
   on one thread (``scheduler="sync"``, so per core) and on Dask's local threads (every
   core), beside the engine tracing the same batches and storing nothing.
2. **Searching**: the on/off index of the corpus is built, then tiled to ``--search-steps``
   positions (the same real on/off bits, repeated) in a second store, and
   ``find_pattern`` is run for a 650-unit pattern (every unit of the layer): positions
   searched per second on one thread and on every core. The "every row" figure scans all
   650 bit rows of every block (the case where the rarest-first early exit never helps);
   the floor is NumPy's AND of 650 rows already in memory, and the machine's memory read
   bandwidth divided by the 81.25 bytes a 650-unit position takes in the index.
3. **A LocalCluster** of 2 worker processes vs 1 (one thread each): the same trace and the
   same search through ``dask.distributed``.

Stores go to a temporary folder (or ``--out``), removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lstmviz.analysis.corpus import (
    find_pattern,
    get_index,
    open_corpus,
    select_units,
    trace_corpus,
)
from lstmviz.analysis.corpus._common import INDEX_BLOCK, MANIFEST_ATTR
from lstmviz.analysis.corpus.index import _index_path, _stamp, threshold_key
from lstmviz.analysis.corpus.tracing import create_store
from lstmviz.engine import LSTMWeights
from lstmviz.engine.layers import LSTM, Embedding, InputLayer
from lstmviz.engine.model import Model, Node


def lm(units: int, layers: int, vocab: int, seed: int = 0) -> Model:
    """Embedding(vocab, units) -> LSTM(units) x layers, random weights at Keras's scales."""
    rng = np.random.default_rng(seed)
    nodes = [Node(InputLayer("input", (None, None), "int32"), 0, [])]
    nodes.append(
        Node(Embedding("embedding", rng.normal(0, 1, (vocab, units))), 0, [("input", 0, 0)])
    )
    prev = "embedding"
    for k in range(layers):
        name = "lstm" if k == 0 else f"lstm_{k + 1}"
        bias = np.zeros(4 * units)
        bias[units : 2 * units] = 1.0  # unit forget bias
        w = LSTMWeights(
            rng.normal(0, np.sqrt(2 / (5 * units)), (units, 4 * units)),
            rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)),
            bias,
        )
        nodes.append(Node(LSTM(name, w, return_sequences=True), 0, [(prev, 0, 0)]))
        prev = name
    return Model("lm650", nodes, [("input", 0, 0)], [(prev, 0, 0)], source="<bench>")


CPU: dict[str, float] = {}


def timed(fn, label: str = ""):
    """Wall seconds and the result; the process's CPU seconds (every thread) go to
    ``CPU[label]``: on a machine shared with other jobs, work per CPU-second is the per-core
    figure that the other jobs do not dilute."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    CPU[label] = time.process_time() - c
    return dt, out


def bare_trace_rate(model: Model, seqs: np.ndarray, batch: int) -> float:
    """Token-steps/s of the engine tracing the same batches on one thread, storing nothing."""
    from threadpoolctl import threadpool_limits

    n = 0
    with threadpool_limits(1, user_api="blas"):
        c = time.process_time()
        t = time.perf_counter()
        for a in range(0, len(seqs), batch):
            x = seqs[a : a + batch]
            model.trace(x, step_outputs=False)
            n += x.size
        dt = time.perf_counter() - t
        CPU["bare"] = time.process_time() - c
    return n / dt


def tile_index(src, dst_dir: Path, n_big: int, layer: str, threshold: float):
    """A store of ``n_big`` positions whose on/off index is ``src``'s index repeated (states
    left unwritten: they read as zeros). Returns the opened store."""
    idx = get_index(src, layer, "hidden", threshold)
    reps = -(-n_big // src.n_steps)
    n_big = reps * src.n_steps
    offsets = np.concatenate(
        [[0], (np.arange(reps)[:, None] * src.n_steps + src.offsets[1:][None]).ravel()]
    )
    m = dict(src.manifest)
    m.update(n_steps=int(n_big), n_sequences=len(offsets) - 1, complete=True, created=time.ctime())
    m["layers"] = [d for d in m["layers"] if d["name"] == layer]
    big_dir = dst_dir / "tiled.zarr"
    group = create_store(str(big_dir), m, offsets, None)
    group["done"][:] = True
    group.attrs[MANIFEST_ATTR] = m
    big = open_corpus(big_dir)
    units = src.units[layer]
    path = _index_path(big, layer, "hidden", threshold_key(threshold))
    g = group.require_group(path)
    block = INDEX_BLOCK
    assert src.n_steps % 8 == 0
    bits = g.create_array(
        "bits",
        shape=(units, n_big // 8),
        dtype="uint8",
        chunks=(min(units, 64), block // 8),
        compressors=None,
        fill_value=0,
    )
    small = np.asarray(idx.bits[:, :])  # (units, n_src / 8)
    row = src.n_steps // 8
    for b0 in range(0, n_big // 8, block // 8):  # one index block of chunks at a time
        b1 = min(n_big // 8, b0 + block // 8)
        cols = np.arange(b0, b1) % row
        bits[:, b0:b1] = small[:, cols]
    on = np.unpackbits(small, axis=1).astype(bool)[:, : src.n_steps]
    n_blocks = -(-n_big // block)
    counts = np.zeros((n_blocks, units), np.int64)
    for b in range(n_blocks):
        pos = np.arange(b * block, min(n_big, (b + 1) * block)) % src.n_steps
        counts[b] = on[:, pos].sum(axis=1)
    g.create_array("counts", data=counts, chunks=counts.shape)
    g.attrs.update(
        {"complete": True, "corpus": _stamp(big), "threshold": float(np.float32(threshold))}
    )
    return big


def scan_every_row(store, layer: str, threshold: float, units: int) -> float:
    """Positions/s of reading and ANDing all ``units`` bit rows of every block (one thread):
    the search's inner loop when the early exit never triggers."""
    idx = get_index(store, layer, "hidden", threshold)
    n = store.n_steps
    t = time.perf_counter()
    for p0 in range(0, n, idx.block):
        p1 = min(n, p0 + idx.block)
        acc = None
        for g0 in range(0, units, 64):
            rows = idx.read(g0, min(units, g0 + 64), p0, p1)
            r = np.bitwise_and.reduce(rows, axis=0)
            acc = r if acc is None else np.bitwise_and(acc, r, out=acc)
    return n / (time.perf_counter() - t)


def floors(units: int) -> dict[str, float]:
    """NumPy's AND of ``units`` rows resident in memory (positions/s, one thread) and the
    memory read bandwidth (GB/s) with the floor it implies."""
    rng = np.random.default_rng(0)
    block = np.ascontiguousarray(rng.integers(0, 256, (units, INDEX_BLOCK // 8), dtype=np.uint8))
    reps = 20
    np.bitwise_and.reduce(block, axis=0)
    t = time.perf_counter()
    for _ in range(reps):
        np.bitwise_and.reduce(block, axis=0)
    and_rate = reps * INDEX_BLOCK / (time.perf_counter() - t)
    big = np.ones(2**27, np.uint64)  # 1 GiB
    np.bitwise_or.reduce(big)
    t = time.perf_counter()
    for _ in range(3):
        np.bitwise_or.reduce(big)
    bw = 3 * big.nbytes / (time.perf_counter() - t)
    return {
        "numpy_and_in_memory_positions_per_s": and_rate,
        "memory_read_gb_per_s": bw / 1e9,
        "bandwidth_floor_positions_per_s": bw / (units / 8),
    }


def cluster_runs(model, seqs, out: Path, big, layer, units, q0, thr, block_steps) -> dict:
    from distributed import Client, LocalCluster

    res = {}
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as lc,
            Client(lc) as client,
        ):
            d = out / f"cluster{workers}.zarr"
            cpu0 = sum(client.run(time.process_time).values())
            dt, _ = timed(
                lambda d=d, client=client: trace_corpus(
                    model, seqs, d, scheduler=client, block_steps=block_steps
                )
            )
            res[f"trace_{workers}_workers_token_steps_per_s"] = seqs.size / dt
            cpu = sum(client.run(time.process_time).values()) - cpu0
            res[f"trace_{workers}_workers_token_steps_per_worker_cpu_s"] = seqs.size / cpu
            find_pattern(
                big, list(range(units)), q0, q0 + 3, thr, layer=layer, scheduler=client
            )  # warm
            ds, _ = timed(
                lambda client=client: find_pattern(
                    big, list(range(units)), q0, q0 + 3, thr, layer=layer, scheduler=client
                )
            )
            res[f"find_{workers}_workers_positions_per_s"] = big.n_steps / ds
            shutil.rmtree(d, ignore_errors=True)
    res["trace_2_vs_1_workers"] = (
        res["trace_2_workers_token_steps_per_s"] / res["trace_1_workers_token_steps_per_s"]
    )
    res["find_2_vs_1_workers"] = (
        res["find_2_workers_positions_per_s"] / res["find_1_workers_positions_per_s"]
    )
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=650)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1 << 17, help="token-steps traced")
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--search-steps", type=int, default=1 << 25, help="positions searched")
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--quick", action="store_true", help="2**15 steps traced, 2**22 searched")
    ap.add_argument("--no-cluster", action="store_true")
    ap.add_argument("--out", default=None, help="folder for the stores (default: temporary)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.quick:
        a.steps, a.search_steps = 1 << 15, 1 << 22
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="lstmviz-bench-corpus-"))
    out.mkdir(parents=True, exist_ok=True)
    model = lm(a.units, a.layers, a.vocab)
    n_seq = max(2, a.steps // a.seq_len)
    seqs = np.random.default_rng(1).integers(0, a.vocab, (n_seq, a.seq_len)).astype(np.int32)
    cores = os.cpu_count() or 1
    fig: dict = {
        "machine": f"{cores} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
        "model": f"Embedding({a.vocab}, {a.units}) -> LSTM({a.units}) x {a.layers}",
        "token_steps": int(seqs.size),
        "seq_len": a.seq_len,
    }
    print(json.dumps(fig), flush=True)

    # 1. tracing
    probe = trace_corpus(model, seqs[:2], out / "probe.zarr")
    bs = probe.block_steps
    batch = max(1, bs // a.seq_len)
    fig["block_steps"] = bs
    fig["bare_engine_batch"] = batch
    fig["bare_engine_1_thread_token_steps_per_s"] = bare_trace_rate(model, seqs, batch)
    fig["bare_engine_token_steps_per_cpu_s"] = seqs.size / CPU["bare"]
    dt, _ = timed(lambda: trace_corpus(model, seqs, out / "sync.zarr", scheduler="sync"), "sync")
    fig["trace_1_thread_token_steps_per_s"] = seqs.size / dt
    fig["trace_1_thread_token_steps_per_cpu_s"] = seqs.size / CPU["sync"]
    fig["trace_vs_bare_engine_per_cpu_s"] = (
        fig["trace_1_thread_token_steps_per_cpu_s"] / fig["bare_engine_token_steps_per_cpu_s"]
    )
    dt, st = timed(lambda: trace_corpus(model, seqs, out / "threads.zarr"), "threads")
    fig[f"trace_{cores}_threads_token_steps_per_s"] = seqs.size / dt
    fig["trace_threads_token_steps_per_cpu_s"] = seqs.size / CPU["threads"]
    err = 0.0
    for k in (0, n_seq // 2, n_seq - 1):
        ref = model.trace(seqs[k][None], step_outputs=False).layer(a.layers - 1).hidden[0]
        got = st.window(st.offsets[k], st.offsets[k + 1], st.layers[-1])
        err = max(err, float(np.abs(ref - got).max()))
    fig["max_abs_error_stored_vs_direct"] = err
    fig["stored_bytes"] = st.stored_bytes()
    fig["stored_bytes_per_token_step"] = st.stored_bytes() / seqs.size
    print(json.dumps(fig, indent=1), flush=True)

    # 2. searching
    layer = st.layers[-1]
    dt, _ = timed(lambda: get_index(st, layer, "hidden", a.threshold), "index")
    fig["index_build_positions_per_s"] = seqs.size / dt
    fig["index_build_positions_per_cpu_s"] = seqs.size / CPU["index"]
    big = tile_index(st, out, a.search_steps, layer, a.threshold)
    fig["search_positions"] = big.n_steps
    q0 = int(st.offsets[1]) + 100
    # the pattern: every unit of the layer; and the units on over a brushed range (what the
    # app and `lstmviz corpus find` pick when no units are given)
    auto = select_units(st, q0, q0 + 3, a.threshold, layer)
    fig["auto_units"] = len(auto)
    for name, units in (("all", list(range(a.units))), ("auto", auto)):
        if not units:
            continue
        for sched, label in (("sync", "1_thread"), (None, f"{cores}_threads")):
            find_pattern(big, units, q0, q0 + 3, a.threshold, layer=layer, scheduler=sched)
            dt, res = timed(
                lambda sched=sched, units=units: find_pattern(
                    big, units, q0, q0 + 3, a.threshold, layer=layer, scheduler=sched
                ),
                label,
            )
            fig[f"find_{name}_units_{label}_positions_per_s"] = big.n_steps / dt
            fig[f"find_{name}_units_{label}_positions_per_cpu_s"] = big.n_steps / CPU[label]
            fig[f"find_{name}_units_matches"] = res.n_matches
    scan_every_row(big, layer, a.threshold, a.units)  # warm the page cache
    c = time.process_time()
    fig["scan_every_row_1_thread_positions_per_s"] = scan_every_row(
        big, layer, a.threshold, a.units
    )
    fig["scan_every_row_positions_per_cpu_s"] = big.n_steps / (time.process_time() - c)
    fig.update(floors(a.units))
    print(json.dumps(fig, indent=1), flush=True)

    # 3. a LocalCluster of 2 worker processes vs 1
    if not a.no_cluster:
        small = seqs[: max(2, (1 << 16) // a.seq_len)]
        fig.update(cluster_runs(model, small, out, big, layer, a.units, q0, a.threshold, bs))
        fig["cluster_trace_token_steps"] = int(small.size)
    fig["load_average_at_the_end"] = os.getloadavg()[0]
    print(json.dumps(fig, indent=1), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(fig, indent=1))
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
