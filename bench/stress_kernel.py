"""Stress the compiled kernel's threaded recurrence and the buffer pool from several Python
threads at once, with the cores contended, and a watchdog: a hang, a crash or a wrong bit
ends the run with every thread's stack.

Each trial is a child process in which ``--workers`` Python threads trace at random, for
``--seconds``: units 1, 5, 33, 97, 130 or 256; batch 1, 3 or 32; 1-17 features; forwards or
backwards; with or without a mask; each inside ``threads_limited(1..4)`` (one of them
changes ``set_threads`` now and then); into a previous trace's pooled buffers (``out=``)
or fresh ones; and what-if retraces from a random step (``reuse=``, in place or not). The
work thresholds that keep small layers on one thread are off and the chunks are small, so
every trace with more than one thread really splits its steps. Every trace is compared with
the same trace on one thread (the kernel promises the same bits whatever the split) and
with the NumPy reference loop; traces are dropped from random threads, and collections
started in them, so the pool's blocks come back on any thread. Meanwhile ``--hogs``
processes spin on the cores, so the kernel's threads are kept waiting by the OS and their
chunks are taken by the others (the steal path).

A child not done ``--grace`` seconds after its time is a hang: its C stacks are printed
(gdb) and its Python stacks (faulthandler on SIGABRT), then it is killed. The trials
alternate between the AVX-512 and the AVX2 tiles where the CPU has both.

    python bench/stress_kernel.py [--trials 6] [--seconds 30] [--workers 4] [--hogs 2]
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import subprocess
import sys
import threading
import time

import numpy as np
from _watchdog import Watchdog

UNITS = (1, 5, 33, 97, 130, 256)
BATCHES = (1, 3, 32)


def _weights(rng: np.random.Generator, feats: int, units: int):
    from lstmviz.engine.cell import LSTMWeights

    return LSTMWeights(
        rng.normal(0.0, 0.5, (feats, 4 * units)),
        rng.normal(0.0, 1.0 / np.sqrt(units), (units, 4 * units)),
        rng.normal(0.0, 0.5, 4 * units),
    )


def _same(a, b, what: str) -> str | None:
    for q in ("pre", "act", "c", "h"):
        if not np.array_equal(getattr(a, q), getattr(b, q)):
            return f"{what}: {q} differs"
    return None


def _close(a, ref, what: str) -> str | None:
    for q in ("c", "h"):
        got, want = getattr(a, q), getattr(ref, q)
        err = float(np.abs(got - want).max(initial=0.0))
        if not err <= 1e-4:  # NaN fails too
            return f"{what}: {q} is {err:.2e} from the NumPy loop"
    return None


def child(seconds: float, workers: int, isa: str, seed: int) -> int:
    """One trial; exit status 0 when every trace was right."""
    faulthandler.enable()
    from lstmviz.engine import _accel, run_lstm, set_threads, threads_limited

    if not _accel.available() or not _accel.packed():
        print("skipped: no packed kernel here:", _accel.describe())
        return 0
    if isa:
        _accel.set_packed(isa)
    # every size splits over the threads (as tests/engine/test_threads.py's any_split)
    _accel.MIN_STEP_WORK_PER_THREAD = 0
    _accel.MIN_CALL_WORK_PER_THREAD = 0
    _accel.CHUNK_UNITS = {"avx512": 8, "avx2": 8}
    _accel.CHUNK_UNITS_BATCH = 8
    _accel.ROW_BLOCK_MIN = 1
    stop = threading.Event()
    errors: list[str] = []
    counts = {"traces": 0, "retraces": 0, "out": 0, "threads>1": 0}
    lock = threading.Lock()
    shared: list[object] = []  # traces handed between threads, dropped by another one

    def one(rng: np.random.Generator, prev: dict) -> None:
        if prev and rng.random() < 0.5:  # the shape of an earlier trace: out= can take it
            units, batch, feats, steps = list(prev)[int(rng.integers(0, len(prev)))]
        else:
            units = int(rng.choice(UNITS))
            batch = int(rng.choice(BATCHES))
            feats = int(rng.integers(1, 18))
            steps = int(rng.integers(2, 120 if units * batch < 4096 else 40))
            if rng.random() < 0.05:  # big enough for the pool (4 MB and more per buffer)
                units, batch, steps = 97, 32, 400
        backwards = bool(rng.random() < 0.3)
        w = _weights(rng, feats, units)
        x = rng.normal(0.0, 1.0, (batch, steps, feats)).astype(np.float32)
        mask = rng.random((batch, steps)) > 0.2 if rng.random() < 0.25 else None
        kw = {"mask": mask, "go_backwards": backwards}
        cap = int(rng.integers(1, 5))
        key = (units, batch, feats, steps)
        out = prev.pop(key, None) if rng.random() < 0.5 else None
        if out is not None and out.weights.kernel.shape != w.kernel.shape:
            out = None
        with threads_limited(cap):
            lt = run_lstm(x, w, out=out, **kw)
        counts["traces"] += 1
        counts["out"] += out is not None
        counts["threads>1"] += lt.meta["threads"] > 1
        with threads_limited(1):
            one_thread = run_lstm(x, w, **kw)
        err = _same(lt, one_thread, f"{key} on {cap} threads")
        if err is None and units * batch * steps <= 200_000:  # the NumPy loop is slow
            err = _close(lt, run_lstm(x, w, accelerate=False, **kw), f"{key}")
        if err:
            errors.append(err)
        # a what-if: one step changed, retraced from there (in place half of the time)
        t = int(rng.integers(0, steps))
        x2 = x.copy()
        x2[int(rng.integers(0, batch)), t] += 0.5
        in_place = rng.random() < 0.5
        with threads_limited(int(rng.integers(1, 5))):
            again = run_lstm(x2, w, reuse=lt, out=lt if in_place else None, **kw)
        counts["retraces"] += 1
        with threads_limited(1):
            full = run_lstm(x2, w, **kw)
        err = _same(again, full, f"{key} what-if at {t}{' in place' if in_place else ''}")
        if err:
            errors.append(err)
        prev[key] = again
        if len(prev) > 6:
            prev.pop(next(iter(prev)))
        with lock:  # another thread drops it (the pool takes its buffers back there)
            shared.append(one_thread)
            shared.append(full)
            while len(shared) > 8:
                shared.pop(int(rng.integers(0, len(shared))))

    def worker(k: int) -> None:
        rng = np.random.default_rng(seed * 100 + k)
        prev: dict = {}
        try:
            while not stop.is_set() and not errors:
                one(rng, prev)
                if rng.random() < 0.1:
                    gc.collect(0)
                if k == 0 and rng.random() < 0.1:
                    set_threads(int(rng.integers(1, 5)) if rng.random() < 0.7 else None)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            errors.append(f"worker {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and not errors and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    print(
        f"{isa or 'default'} tiles: {counts['traces']} traces ({counts['threads>1']} on more "
        f"than one thread, {counts['out']} into a previous trace's buffers), "
        f"{counts['retraces']} what-ifs; pool {_accel_pool_stats()}",
        flush=True,
    )
    for e in errors[:5]:
        print("WRONG:", e, flush=True)
    return 3 if errors else 0


def _accel_pool_stats() -> str:
    from lstmviz.engine import _pool

    s = _pool.stats()
    return f"reused {s['reused']}, fresh {s['fresh']}"


def hog() -> None:
    """Spin (a CPU competitor for the kernel's threads)."""
    x = 0
    while True:
        x += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--seconds", type=float, default=30.0, help="per trial")
    p.add_argument("--workers", type=int, default=4, help="Python threads tracing at once")
    p.add_argument("--hogs", type=int, default=2, help="spinning processes competing")
    p.add_argument("--grace", type=float, default=120.0, help="after which a trial hangs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gdb", action="store_true", help="print a hung trial's C stacks")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--isa", default="", help=argparse.SUPPRESS)
    p.add_argument("--hog", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.hog:
        hog()
    if a.child:
        return child(a.seconds, a.workers, a.isa, a.seed)
    from lstmviz.engine import _accel

    isas = [i for i in ("avx512", "avx2") if _cpu_has(_accel, i)] or [""]
    print(
        f"{a.trials} trials of {a.seconds:g} s, {a.workers} tracing threads, {a.hogs} hogs; "
        f"{_accel.describe()}",
        flush=True,
    )
    hogs = [subprocess.Popen([sys.executable, __file__, "--hog"]) for _ in range(a.hogs)]
    dog = Watchdog({0: "ok", 3: "WRONG"}, gdb=a.gdb, tail=60, show_ok=True)
    try:
        for i in range(a.trials):
            isa = isas[i % len(isas)]
            cmd = [sys.executable, __file__, "--child", "--seconds", str(a.seconds)]
            cmd += ["--workers", str(a.workers), "--isa", isa, "--seed", str(a.seed + i)]
            dog.trial(f"{i + 1} ({isa or 'default'})", cmd, a.seconds + a.grace)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    return dog.finish(a.trials)


def _cpu_has(accel, isa: str) -> bool:
    try:
        before = accel.set_packed(isa)
    except (ValueError, RuntimeError):
        return False
    accel.set_packed(before)
    return True


if __name__ == "__main__":
    sys.exit(main())
