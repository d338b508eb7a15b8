"""The threaded recurrence, the engine's thread settings, and BLAS's threads around it.

The compiled kernel's packed product splits every step over threads (the units cut into
chunks, ``lstmviz/engine/_lstm_kernel.c``): the trace must equal the NumPy reference loop
for every thread count and unit count, and not change by a bit with the number of threads.
The work thresholds that keep small layers on one thread are switched off here, and the
chunks made small, so that every thread really runs (``meta["threads"]`` says how many did).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lstmviz.engine import _accel, get_threads, run_lstm, set_threads
from lstmviz.errors import LstmvizError

from .test_cell import _assert_same, _inputs, _weights

needs_kernel = pytest.mark.skipif(not _accel.available(), reason=_accel.describe())


@pytest.fixture(params=["avx2", "avx512"])
def tiles(request):
    """The packed product with AVX2 or AVX-512 tiles (skipped where the CPU lacks them)."""
    if not _accel.available():
        pytest.skip(_accel.describe())
    try:
        before = _accel.set_packed(request.param)
    except ValueError as e:
        pytest.skip(str(e))
    yield request.param
    _accel.set_packed(before)


@pytest.fixture
def any_split(monkeypatch):
    """Threads at any size: no work thresholds, chunks of 8 units, batch rows split down to
    one row per block; settings restored."""
    monkeypatch.setattr(_accel, "MIN_STEP_WORK_PER_THREAD", 0)
    monkeypatch.setattr(_accel, "MIN_CALL_WORK_PER_THREAD", 0)
    monkeypatch.setattr(_accel, "CHUNK_UNITS", {"avx512": 8, "avx2": 8})
    monkeypatch.setattr(_accel, "CHUNK_UNITS_BATCH", 8)
    monkeypatch.setattr(_accel, "ROW_BLOCK_MIN", 1)
    previous = set_threads(None)
    yield
    set_threads(previous)


@needs_kernel
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("units", [1, 5, 33, 97])
@pytest.mark.parametrize("batch", [1, 3, 9])
@pytest.mark.parametrize("variant", ["plain", "masked-backwards"])
def test_threaded_recurrence_equals_the_reference_loop(
    tiles, any_split, threads, units, batch, variant
):
    masked = go_backwards = variant == "masked-backwards"
    w = _weights(5, units, seed=units + batch)
    x, h0, c0, mask = _inputs(batch, 17, 5, units, seed=threads)
    m = mask if masked else None
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=False)
    set_threads(1)
    one = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards)
    set_threads(threads)
    lt = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards)
    assert lt.meta["path"] == f"packed-{tiles}"
    # chunks of 8 units, and of batch rows where there are fewer unit chunks than threads
    assert lt.meta["threads"] == min(threads, -(-units // 8) * batch)
    # x W, h U and b summed in another order than the loop's (x W + b) + h U (see
    # test_cell.test_kernel_x_mode_at_larger_batches)
    _assert_same(lt, ref, scaled=True)
    _assert_same(lt, one, atol=0, rtol=0)  # the threads change nothing, bit for bit


@needs_kernel
@pytest.mark.parametrize(
    ("units", "batch"),
    [(256, 1), (96, 32), (130, 5), (20, 64), (40, 14), (33, 15), (64, 29), (70, 31)],
)
def test_thread_count_changes_no_bit_at_realistic_sizes(tiles, units, batch, monkeypatch):
    """Default chunks; more threads than this machine has cores (8) included: a thread that
    the OS keeps waiting has its chunks taken by the others.  The batch sizes take every
    AVX-512 tile of packed rows (14, 8, 4, 2 and 1 rows: 14 + 1, 14 + 14 + 1, 14 + 14 + 2 + 1)
    and row blocks of 8-16 rows."""
    monkeypatch.setattr(_accel, "MIN_STEP_WORK_PER_THREAD", 0)
    monkeypatch.setattr(_accel, "MIN_CALL_WORK_PER_THREAD", 0)
    w = _weights(16, units, seed=7)
    x, h0, c0, mask = _inputs(batch, 40, 16, units, seed=8)
    previous = set_threads(1)
    try:
        one = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
        for n in (2, 3, 4, 8):
            set_threads(n)
            lt = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
            n_units = -(-units // _accel.chunk_units(batch))
            assert lt.meta["threads"] == min(n, n_units * -(-batch // _accel.ROW_BLOCK_MIN))
            _assert_same(lt, one, atol=0, rtol=0)
    finally:
        set_threads(previous)
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=False)
    _assert_same(one, ref, scaled=True)


@needs_kernel
@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_blas_path_with_blas_threads_equals_the_reference_loop(batch, threads, monkeypatch):
    """Without the packed product the kernel calls SciPy's BLAS; its threads are set
    around the call (threadpoolctl) to the engine's count, and given back afterwards."""
    try:
        before = _accel.set_packed("")
    except ValueError as e:
        pytest.skip(str(e))
    monkeypatch.setattr(_accel, "BLAS_MIN_WORK", 0)
    seen = []
    real = _accel.blas_limits

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(_accel, "blas_limits", spy)
    previous = set_threads(threads)
    blas_before = _blas_threads()
    try:
        w = _weights(6, 37, seed=threads)
        x, h0, c0, mask = _inputs(batch, 15, 6, 37, seed=batch)
        lt = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
        ref = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=False)
    finally:
        set_threads(previous)
        _accel.set_packed(before)
    assert lt.meta["path"] == ("blas-x" if batch >= 32 else "blas") + f"/{threads}"
    assert seen == [threads, threads]  # the kernel's BLAS, then the NumPy loop's
    assert _blas_threads() == blas_before
    _assert_same(lt, ref, scaled=batch >= 32)


def _blas_threads():
    from threadpoolctl import threadpool_info

    return sorted(
        (i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"
    )


def test_blas_limits_set_blas_threads_inside_and_give_them_back():
    before = _blas_threads()
    with _accel.blas_limits(1):
        inside = _blas_threads()
    assert all(n == 1 for _, n in inside)
    assert _blas_threads() == before
    w = _weights(3, 300, seed=1)  # a product large enough for every thread
    x, _, _, _ = _inputs(2, 3, 3, 300)
    run_lstm(x, w, accelerate=False)
    assert _blas_threads() == before  # nothing changed for the rest of the process


def test_thread_settings(monkeypatch):
    monkeypatch.delenv("LSTMVIZ_THREADS", raising=False)
    previous = set_threads(None)
    try:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        assert get_threads() == cores
        assert _accel.cores() == cores
        monkeypatch.setenv("LSTMVIZ_THREADS", "3")
        assert get_threads() == 3
        assert set_threads(2) is None
        assert get_threads() == 2  # set_threads wins over the environment
        assert set_threads(None) == 2
        assert get_threads() == 3
        for bad in (0, -1, 1.5, "x", True, None):
            if bad is None:
                continue
            with pytest.raises(LstmvizError, match="set_threads"):
                set_threads(bad)
        monkeypatch.setenv("LSTMVIZ_THREADS", "two")
        with pytest.raises(LstmvizError, match=r"LSTMVIZ_THREADS.*'two'"):
            get_threads()
    finally:
        set_threads(previous)


@needs_kernel
def test_small_layers_stay_on_one_thread(tiles):
    previous = set_threads(4)
    try:
        assert _accel.threads_for(32, 1, 16, 1000) == 1  # a step is too little work
        assert _accel.threads_for(256, 1, 16, 3) == 1  # the whole call is
        assert _accel.threads_for(1024, 32, 16, 1000) == 4
        assert _accel.split(32, 64, 16, 1000) == (4, 8)  # one unit chunk: 8 row blocks
        w = _weights(4, 8)
        x, _, _, _ = _inputs(1, 50, 4, 8)
        assert run_lstm(x, w).meta["threads"] == 1
    finally:
        set_threads(previous)


def test_scipy_blas_signature_is_checked(monkeypatch):
    pytest.importorskip("scipy")
    blas, why = _accel._scipy_blas()
    assert blas is not None and not why
    assert not blas.ilp64  # cython_blas is LP64
    wrong = dict(_accel._SCIPY_SIGNATURES)
    wrong["sgemm"] = wrong["sgemm"].replace("int *", "long *", 1)
    monkeypatch.setattr(_accel, "_SCIPY_SIGNATURES", wrong)
    blas, why = _accel._scipy_blas()
    assert blas is None
    assert "unexpected signature" in why


@needs_kernel
def test_kernel_refuses_bad_ranges_and_sizes(tiles):
    w = _weights(3, 4)
    x, h0, c0, _ = _inputs(2, 5, 3, 4)
    lt = run_lstm(x, w)
    args = [lt.pre.copy(), lt.act.copy(), lt.c.copy(), lt.h.copy(), h0, c0, w._packed(2), True]
    with pytest.raises(ValueError, match="invalid sizes"):
        _accel.run_packed(*args, x, None, False, "sigmoid", "tanh", lo=3, hi=2)
    with pytest.raises(ValueError, match="invalid sizes"):
        _accel.run_packed(*args, x, None, False, "sigmoid", "tanh", lo=0, hi=6)
    with pytest.raises(ValueError, match="expected"):  # x of the wrong size
        _accel.run_packed(*args, x[:, :4].copy(), None, False, "sigmoid", "tanh")
    args[6] = w._packed(1)  # packed for batch 1: another layout
    with pytest.raises(ValueError, match="wpack"):
        _accel.run_packed(*args, x, None, False, "sigmoid", "tanh")
    misaligned = np.empty(w._packed(2).size + 1, np.float32)[1:]
    misaligned[...] = w._packed(2)
    args[6] = misaligned
    with pytest.raises(ValueError, match="aligned"):
        _accel.run_packed(*args, x, None, False, "sigmoid", "tanh")


@needs_kernel
def test_packed_weights_are_cached_per_layout(tiles):
    w = _weights(3, 40)
    one, batch = w._packed(1), w._packed(5)
    assert w._packed(1) is one and w._packed(7) is batch  # one layout for every batch > 1
    assert not one.flags.writeable
    assert one.ctypes.data % 64 == 0 and batch.ctypes.data % 64 == 0
    other = "avx2" if tiles == "avx512" else "avx512"
    try:
        before = _accel.set_packed(other)
    except ValueError:
        return
    try:
        assert w._packed(1) is not one  # another instruction set, another layout
    finally:
        _accel.set_packed(before)


@needs_kernel
def test_weights_travel_without_their_caches(tiles):
    """A pickled or copied LSTMWeights (a training snapshot sent to another process) leaves
    its cached copies behind -- an unpickled copy of the packed panels would lose their
    64-byte alignment -- and rebuilds them where it is used."""
    import copy
    import pickle

    w = _weights(3, 40)
    x, h0, c0, _ = _inputs(2, 6, 3, 40)
    lt = run_lstm(x, w, h0=h0, c0=c0)
    assert "_packed_cache" in w.__dict__
    for other in (pickle.loads(pickle.dumps(w)), copy.deepcopy(w), copy.copy(w)):
        assert not [k for k in other.__dict__ if k.endswith("_cache")]
        _assert_same(run_lstm(x, other, h0=h0, c0=c0), lt, atol=0, rtol=0)
    cache = w.__dict__["_packed_cache"]
    key = next(iter(cache))
    raw = np.empty(cache[key].size + 1, np.float32)
    cache[key] = raw[1:]  # misaligned, as a copy might be
    cache[key][...] = 0
    _assert_same(run_lstm(x, w, h0=h0, c0=c0), lt, atol=0, rtol=0)  # packed again


@needs_kernel
def test_threads_limited_caps_this_thread_only(tiles, any_split):
    """A worker thread traces inside ``threads_limited(n)`` on n threads, bit for bit the
    trace of every thread, while a trace started on another thread meanwhile keeps the
    process-wide count; after the block the cap is gone."""
    import threading

    from lstmviz.engine import threads_limited

    w = _weights(5, 64, seed=3)
    x, h0, c0, mask = _inputs(2, 30, 5, 64, seed=4)
    set_threads(4)
    full = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
    assert full.meta["threads"] == 4
    seen: dict[str, object] = {}
    inside, outside = threading.Event(), threading.Event()

    def worker() -> None:
        with threads_limited(3) as cap:
            seen["cap"] = cap
            seen["worker"] = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
            with threads_limited(5) as inner:  # nested: the smaller cap wins
                seen["inner"] = inner
                with threads_limited(1):
                    seen["one"] = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
            inside.set()
            outside.wait(10)  # still in the block while the other thread traces
        seen["after"] = get_threads()

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(60)
    other = run_lstm(x, w, h0=h0, c0=c0, mask=mask)  # this thread: not capped
    assert get_threads() == 4
    outside.set()
    t.join(60)
    assert seen["cap"] == 3 and seen["inner"] == 3 and seen["after"] == 4
    assert other.meta["threads"] == 4
    assert seen["worker"].meta["threads"] == 3  # type: ignore[attr-defined]
    assert seen["one"].meta["threads"] == 1  # type: ignore[attr-defined]
    for lt in (seen["worker"], seen["one"], other):
        _assert_same(lt, full, atol=0, rtol=0)  # type: ignore[arg-type]
    with threads_limited(2):
        assert get_threads() == 2
        set_threads(1)  # a smaller process-wide count still applies inside
        assert get_threads() == 1
    for bad in (0, -2, 1.5, "x", True):
        with pytest.raises(LstmvizError, match="threads_limited"), threads_limited(bad):
            pass


@needs_kernel
def test_traces_from_several_threads_at_once_keep_their_bits(tiles, any_split):
    """Three Python threads trace at the same time (as the app's workers and a notebook may),
    each inside its own ``threads_limited`` cap and on more kernel threads than the cores,
    into an earlier trace's buffers (``out=``) and retracing a what-if (``reuse=``): every
    trace equals the one computed alone on one thread, bit for bit, and nothing hangs (the
    threads are joined with a timeout; ``bench/stress_kernel.py`` runs this for minutes
    against CPU hogs)."""
    import threading

    from lstmviz.engine import threads_limited

    cases = [  # units, batch, features, steps, backwards, masked
        (33, 1, 5, 40, False, False),
        (97, 3, 4, 30, True, True),
        (20, 32, 16, 20, False, True),
        (5, 9, 3, 50, True, False),
    ]
    expected = {}
    for k, (units, batch, feats, steps, back, masked) in enumerate(cases):
        w = _weights(feats, units, seed=k)
        x, h0, c0, mask = _inputs(batch, steps, feats, units, seed=k + 10)
        x2 = x.copy()
        x2[0, steps // 2] += 0.5  # the what-if
        kw = {"h0": h0, "c0": c0, "mask": mask if masked else None, "go_backwards": back}
        with threads_limited(1):
            expected[k] = (w, x, x2, kw, run_lstm(x, w, **kw), run_lstm(x2, w, **kw))
    set_threads(4)  # more kernel threads than the cores: some wait, the others take over
    errors: list[str] = []

    def _check(i: int, k: int, what: str, got: object, ref: object) -> None:
        for q in ("pre", "act", "c", "h"):
            if not np.array_equal(getattr(got, q), getattr(ref, q)):
                errors.append(f"thread {i}, case {k}, {what}: {q} differs")

    def worker(i: int) -> None:
        try:
            with threads_limited(2 + i % 3):
                for r in range(3):
                    for j in range(len(cases)):
                        k = (j + i) % len(cases)
                        w, x, x2, kw, want, want2 = expected[k]
                        lt = run_lstm(x, w, **kw)
                        again = run_lstm(x2, w, reuse=lt, out=lt if r % 2 else None, **kw)
                        _check(i, k, "what-if", again, want2)
                        _check(i, k, "out=", run_lstm(x, w, out=again, **kw), want)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a tracing thread did not finish"
    assert not errors, errors[:5]
