"""Optional compiled accelerator for :func:`lstmviz.engine.cell.run_lstm`.

``lstmviz.engine._lstm_kernel`` (``_lstm_kernel.c``, built by ``setup.py`` when a C compiler
is present) runs the whole T-step recurrence in one call, with the GIL released:

* **packed** (x86-64 with AVX2 + FMA, GCC or Clang builds): the kernel's own product -- the
  weights ``[U; W]`` packed once per call, each step's ``[h_tm1, x_t] @ [U; W] + b`` in
  AVX-512 or AVX2 register tiles -- split over up to :func:`get_threads` threads (pthreads,
  the units cut into chunks, one wait per step; see ``_lstm_kernel.c``).  No BLAS involved.
* **BLAS** otherwise: per step one ``sgemv``/``sgemm`` from SciPy's ``scipy.linalg.cython_blas``
  (its documented LP64 Fortran interface, taken from the capsules it exports, signature
  checked), with BLAS's own threads set around the call by threadpoolctl
  (:func:`blas_threads`).

The NumPy loop in ``cell.py`` stays the reference (its BLAS threads are set the same way).
The kernel is used only when it

* was built (``pip install -e .`` builds it; a failed build is not an error),
* has a product to run: the packed one, or a BLAS from SciPy,
* passes a self-test against a plain NumPy step on first use,
* knows both activations of the layer (:data:`ACT_CODES`; others use the NumPy loop),
* is not switched off with the environment variable ``LSTMVIZ_ACCEL=0``.

:func:`describe` says which of these happened.  Threads: :func:`set_threads`, or the
environment variable ``LSTMVIZ_THREADS``; by default every core the process may run on;
:func:`threads_limited` caps them for the calls of one thread only (an app's worker thread
leaving a core to its window while a notebook's own traces keep every core).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LstmvizError

#: Activation name -> the kernel's code (``enum`` in ``_lstm_kernel.c``).
ACT_CODES = {
    "linear": 0,
    "sigmoid": 1,
    "tanh": 2,
    "hard_sigmoid": 3,
    "hard_sigmoid_keras2": 4,
    "relu": 5,
    "relu6": 6,
    "softsign": 7,
}


#: the extension's interface version (``ABI`` in ``_lstm_kernel.c``)
_KERNEL_ABI = 4


@dataclass(frozen=True)
class _Blas:
    gemm: int  # address of sgemm in the Fortran calling convention
    gemv: int  # address of sgemv
    ilp64: bool  # 64-bit integer arguments
    source: str  # where it came from, for describe()


_state: dict[str, Any] = {}


def _act_code(name: str | None) -> int | None:
    key = "linear" if name in (None, "None", "none", "") else str(name)
    return ACT_CODES.get(key)


#: What SciPy's ``cython_blas`` capsules must declare for the kernel's calls: LP64 ``int``
#: sizes and float32 (``cython_blas.s``, a ``ctypedef float``; ``{s}``: its C name) in the
#: Fortran convention.
_SCIPY_SIGNATURES = {
    "sgemm": "void (char *, char *, int *, int *, int *, {s} *, {s} *, int *, {s} *, int *, "
    "{s} *, {s} *, int *)",
    "sgemv": "void (char *, int *, int *, {s} *, {s} *, int *, {s} *, int *, {s} *, {s} *, int *)",
}


def _scipy_blas() -> tuple[_Blas | None, str]:
    """SciPy's ``cython_blas`` sgemm/sgemv (LP64, Fortran ABI), and why not when not.

    The addresses come from the PyCapsules of ``cython_blas.__pyx_capi__`` -- SciPy's
    documented way for compiled code to call its BLAS -- and each capsule's name, which is the
    C signature Cython exported, must be the one the kernel calls with.
    """
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None, "SciPy is not installed"
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    capi = getattr(cython_blas, "__pyx_capi__", {})
    addrs = []
    for name, pattern in _SCIPY_SIGNATURES.items():
        cap = capi.get(name)
        if cap is None:
            return None, f"scipy.linalg.cython_blas has no {name}"
        sig = (api.PyCapsule_GetName(cap) or b"").decode("ascii", "replace")
        args = sig[sig.find("(") + 1 : sig.rfind(")")].split(", ")
        real = next((a for a in args if a not in ("char *", "int *")), "").removesuffix(" *")
        if not real.endswith("cython_blas_s") or sig != pattern.format(s=real):
            return None, f"scipy.linalg.cython_blas.{name} has an unexpected signature {sig!r}"
        addrs.append(api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap)))
    if not all(addrs):
        return None, "scipy.linalg.cython_blas gave a null pointer"
    return _Blas(addrs[0], addrs[1], False, "SciPy's cython_blas"), ""


def _scrambled(shape: tuple[int, ...], scale: float, seed: int) -> Any:
    """Deterministic values of both signs in (-scale, scale) that follow no pattern a wrong
    product could match (the fractional part of a magnified sine, a well-known hash).
    ``numpy.random`` is not needed: importing it was ~9 ms of every start-up, for the
    self-test alone."""
    k = np.arange(int(np.prod(shape)), dtype=np.float64)
    h = np.sin(k * 12.9898 + seed * 78.233) * 43758.5453
    return (scale * (2.0 * (h - np.floor(h)) - 1.0)).astype(np.float32).reshape(shape)


def _self_test_step(steps: int, batch: int, units: int, seed: int) -> tuple[Any, ...]:
    """A small scrambled problem and its float64 reference h: ``(pre, rec, h0, c0,
    expect_h)`` with ``pre`` = x W + b and ``rec`` the recurrent kernel (blocks i, f, o, g)."""
    rec = _scrambled((units, 4 * units), 1.0, seed)
    pre = _scrambled((steps, batch, 4 * units), 2.0, seed + 1)
    h0 = _scrambled((batch, units), 1.0, seed + 2)
    c0 = _scrambled((batch, units), 1.0, seed + 3)
    expect_h = np.empty((steps, batch, units), np.float32)
    h, c = h0.astype(np.float64), c0.astype(np.float64)
    for t in range(steps):
        z = pre[t] + h @ rec  # (B, 4U)
        i, f, o = (1.0 / (1.0 + np.exp(-z[:, k * units : (k + 1) * units])) for k in range(3))
        g = np.tanh(z[:, 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        expect_h[t] = h
    return pre, rec, h0, c0, expect_h


def _self_test(kernel: Any, blas: _Blas | None, packed: bool) -> str:
    """Run the kernel's products on small random problems (batch 1 and 3; BLAS's gemv and
    gemm; the packed product on one and two threads) against NumPy; "" or what failed."""
    sig, tanh = ACT_CODES["sigmoid"], ACT_CODES["tanh"]
    steps, units = 5, 7
    for batch in (1, 3):
        pre, rec, h0, c0, expect_h = _self_test_step(steps, batch, units, 12345 + batch)
        # h starts as NaN: a kernel that writes nothing fails (empty memory could hold an
        # earlier run's values)
        cs = np.empty((steps, batch, units), np.float32)
        if blas is not None:
            p, act, hs = pre.copy(), np.empty_like(pre), np.full_like(cs, np.nan)
            kernel.run(
                *(p, act, cs, hs, h0, c0, rec, None, steps, batch, units, False, sig, tanh),
                *(blas.gemm, blas.gemv, blas.ilp64),
            )
            if not np.allclose(hs, expect_h, rtol=0.0, atol=1e-5):
                return f"the kernel's self-test failed with {blas.source}"
        if packed:
            # x = the one-hot identity, W = the given pre-activations: x W = pre
            eye = np.eye(steps, dtype=np.float32)
            ukw = np.concatenate([rec] + [pre[:, b, :] for b in range(batch)])  # row bT + t
            x = np.zeros((batch, steps, batch * steps), np.float32)
            for b in range(batch):
                x[b, :, b * steps : (b + 1) * steps] = eye
            feats = batch * steps
            raw = np.zeros(int(kernel.pack_size(units, feats, batch, 4)) + 16, np.float32)
            start = (-raw.ctypes.data % 64) // 4
            wpack = raw[start : start + raw.size - 16]
            kernel.pack(ukw, None, wpack, units, feats, batch, 4)
            for threads in (1, 2):
                p, act, hs = np.empty_like(pre), np.empty_like(pre), np.full_like(cs, np.nan)
                kernel.run_packed(
                    *(p, act, cs, hs, h0, c0, wpack, False, x, None, steps, batch, units),
                    *(feats, False, sig, tanh, threads, 4, 1, 0, steps),
                )
                if not np.allclose(hs, expect_h, rtol=0.0, atol=1e-5):
                    return f"the kernel's packed product failed its self-test ({threads} threads)"
    return ""


def _load() -> dict[str, Any]:
    """The kernel, checked (``_state["kernel"]``: None when it cannot run, with the reason).
    SciPy's BLAS is looked up only when needed (:func:`_blas`): importing ``scipy.linalg``
    takes ~0.2 s, and the packed product needs no BLAS."""
    if _state:
        return _state
    if os.environ.get("LSTMVIZ_ACCEL", "1").strip().lower() in ("0", "false", "no", "off"):
        _state.update(kernel=None, blas=None, reason="switched off by LSTMVIZ_ACCEL=0")
        return _state
    try:
        from . import _lstm_kernel as kernel  # type: ignore[attr-defined]  # C, no stub
    except ImportError:
        _state.update(
            kernel=None,
            blas=None,
            reason="the compiled kernel lstmviz.engine._lstm_kernel "
            "was not built (needs a C compiler at install time)",
        )
        return _state
    if getattr(kernel, "ABI", 0) != _KERNEL_ABI:
        _state.update(
            kernel=None,
            blas=None,
            reason=f"the compiled kernel is from another version of lstmviz (ABI "
            f"{getattr(kernel, 'ABI', '?')}, expected {_KERNEL_ABI}): rebuild it with "
            "`pip install -e .` or `python setup.py build_ext --inplace`",
        )
        return _state
    tiles = str(kernel.packed())
    failed = _self_test(kernel, None, True) if tiles else ""
    if failed:
        kernel.set_packed("")  # the BLAS path may still pass its own test
    _state.update(kernel=kernel, reason="C kernel")
    if (not tiles or failed) and _blas() is None:
        _state.update(
            kernel=None,
            reason=failed
            or "no product to run: no packed product on this CPU or build, "
            f"and no BLAS ({_state['why_no_blas']}; `pip install scipy` gives one)",
        )
    return _state


def _blas() -> _Blas | None:
    """SciPy's BLAS for the kernel, found and self-tested on first use (None: none)."""
    st = _load()
    if "blas" not in st:
        blas, why = _scipy_blas()
        if blas is not None and st["kernel"] is not None:
            failed = _self_test(st["kernel"], blas, False)
            if failed:
                blas, why = None, failed
        st.update(blas=blas, why_no_blas=why)
    found: _Blas | None = st["blas"]
    return found


def available() -> bool:
    """True when the compiled kernel can run (built, a product found, self-test passed)."""
    return _load()["kernel"] is not None


def describe() -> str:
    """One line for status bars and benchmarks: the engine that traces (with its threads),
    or why not the kernel."""
    st = _load()
    if st["kernel"] is None:
        return f"NumPy ({st['reason']})"
    n = get_threads()
    tiles = packed()
    if tiles:
        return f"C kernel, packed {tiles.upper()} product, up to {n} thread{'s' * (n > 1)}"
    blas = _blas()
    return f"C kernel + {blas.source if blas else '?'}, BLAS threads up to {n}"


def supports(recurrent_activation: str | None, activation: str | None) -> bool:
    """True when the kernel can run a layer with these activations."""
    return (
        available()
        and _act_code(recurrent_activation) is not None
        and _act_code(activation) is not None
    )


# ------------------------------------------------------------------------------- threads
_threads: dict[str, int | None] = {"set": None}


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_threads(n: Any, what: str) -> int:
    try:
        v = int(n)
    except (TypeError, ValueError):
        v = 0
    if isinstance(n, bool) or v < 1 or str(n).strip() not in (str(v), f"{v}.0"):
        raise LstmvizError(f"{what} must be a whole number of threads >= 1; found {n!r}")
    return v


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else the
    machine's CPU count)."""
    return _cores()


#: the per-thread caps of :func:`threads_limited` (``limit``: None outside any block)
_local = threading.local()


def get_threads() -> int:
    """How many threads the engine may use: :func:`set_threads`'s value, else the
    environment variable ``LSTMVIZ_THREADS``, else every core the process may run on --
    at most the cap of a :func:`threads_limited` block the calling thread is in."""
    if _threads["set"] is not None:
        n = _threads["set"]
    else:
        env = os.environ.get("LSTMVIZ_THREADS", "").strip()
        n = _check_threads(env, "the environment variable LSTMVIZ_THREADS") if env else _cores()
    limit: int | None = getattr(_local, "limit", None)
    return n if limit is None else min(n, limit)


@contextlib.contextmanager
def threads_limited(n: int) -> Iterator[int]:
    """Inside the block, the engine's calls made **by this thread** use at most ``n``
    threads (:func:`get_threads` is capped at ``n``); other threads, and this one after the
    block, are not affected.  Yields the cap in force (blocks nest: the smaller cap wins).

    For an application's worker thread that must leave cores to others -- a window's GUI
    thread, say -- while traces started elsewhere in the process (a notebook's) keep
    :func:`set_threads`'s count.  The trace does not change by a bit with the threads.

    Parameters
    ----------
    n : int
        The most threads the engine may use on this thread, >= 1.

    Examples
    --------
    >>> from lstmviz.engine import cores, threads_limited
    >>> with threads_limited(max(1, cores() - 1)):
    ...     pass  # model.trace(x) here leaves one core free
    """
    cap = _check_threads(n, "threads_limited(n)")
    previous: int | None = getattr(_local, "limit", None)
    _local.limit = cap if previous is None else min(previous, cap)
    try:
        yield _local.limit
    finally:
        _local.limit = previous


def set_threads(n: int | None) -> int | None:
    """Let the engine use up to ``n`` threads from now on (``None``: back to the default,
    see :func:`get_threads`); returns the previous setting (``None`` when it was the default).

    The engine's own threads split each step of the compiled recurrence; BLAS's threads (the
    NumPy loop, the kernel without its packed product) are set to at most ``n`` around the
    engine's calls with threadpoolctl and given back afterwards.  Fewer threads are used
    where more would not pay (small layers, short sequences).
    """
    previous = _threads["set"]
    _threads["set"] = None if n is None else _check_threads(n, "set_threads(n)")
    return previous


#: the units of one chunk of the threaded recurrence (4 x this many columns of each step's
#: product): at batch 1 one 128-column AVX-512 matrix-vector panel (64 with AVX2), at larger
#: batches 4 panels of 32 (8 of 16)
CHUNK_UNITS = {"avx512": 32, "avx2": 16}
CHUNK_UNITS_BATCH = 32

#: a step's product must have at least this many multiply-adds per thread for a thread more
#: to pay (bench/threads.py), and the whole call this many per thread (starting a thread and
#: the one wait per step cost a few microseconds)
MIN_STEP_WORK_PER_THREAD = 64 * 1024
MIN_CALL_WORK_PER_THREAD = 4 * 1024 * 1024


def chunk_units(batch: int) -> int:
    """Units per chunk of the threaded recurrence at this batch size."""
    return CHUNK_UNITS.get(packed(), 16) if batch == 1 else CHUNK_UNITS_BATCH


#: where there are fewer unit chunks than threads (few units, many batch rows) the batch rows
#: are split too, in blocks of at least this many rows (one AVX-512 register tile)
ROW_BLOCK_MIN = 8


def split(units: int, batch: int, features: int, steps: int) -> tuple[int, int]:
    """How the packed recurrence splits a layer of this size: ``(threads, chunk_rows)``.

    At most :func:`get_threads` threads, only as many as the work pays for
    (:data:`MIN_STEP_WORK_PER_THREAD`, :data:`MIN_CALL_WORK_PER_THREAD`) and as there are
    chunks: unit chunks (:func:`chunk_units`), times blocks of batch rows when there are
    fewer unit chunks than threads (about two blocks per thread, :data:`ROW_BLOCK_MIN` rows
    or more each).
    """
    n = get_threads()
    if n <= 1:
        return 1, batch
    step_work = batch * (units + features) * 4 * units
    by_work = min(
        step_work // max(1, MIN_STEP_WORK_PER_THREAD),
        step_work * steps // max(1, MIN_CALL_WORK_PER_THREAD),
    )
    n_units = -(-units // chunk_units(batch))
    row_blocks = -(-batch // max(1, ROW_BLOCK_MIN))
    n = int(max(1, min(n, by_work, n_units * row_blocks)))
    if n <= n_units:
        return n, batch
    blocks = min(row_blocks, -(-2 * n // n_units))
    return n, -(-batch // blocks)


def threads_for(units: int, batch: int, features: int, steps: int) -> int:
    """The threads the packed recurrence uses for a layer of this size (see :func:`split`)."""
    return split(units, batch, features, steps)[0]


#: BLAS gets more than one thread only for products of at least this many multiply-adds
#: (a batch-1 matrix-vector product ran up to 13x slower on two OpenBLAS threads than on
#: one when the machine was busy)
BLAS_MIN_WORK = 1024 * 1024


def blas_threads(units: int, batch: int) -> int:
    """BLAS threads for the recurrence's per-step product ``(B, U) @ (U, 4U)``."""
    return get_threads() if batch * units * 4 * units >= BLAS_MIN_WORK else 1


_controller: dict[str, Any] = {}


@contextlib.contextmanager
def blas_limits(n: int) -> Iterator[None]:
    """BLAS (NumPy's, SciPy's) at ``n`` threads inside the block, as before after it
    (threadpoolctl; nothing else of the process changes)."""
    ctl = _controller.get("ctl")
    if ctl is None:
        from threadpoolctl import ThreadpoolController

        ctl = _controller["ctl"] = ThreadpoolController()
    elif _state.get("blas") is not None and not _controller.get("scipy"):
        # SciPy's BLAS came later: a new controller sees it too
        from threadpoolctl import ThreadpoolController

        ctl = _controller["ctl"] = ThreadpoolController()
    _controller["scipy"] = _state.get("blas") is not None
    info = ctl.select(user_api="blas")
    if not info.lib_controllers or all(c.num_threads == n for c in info.lib_controllers):
        yield
        return
    with ctl.limit(limits=n, user_api="blas"):
        yield


#: without the packed product (BLAS): from this batch size on, :func:`run` takes ``x``
#: itself (one product per step with K = U + F) instead of a separate input projection.
#: ``bench/kernel_modes.py`` at batch 32: faster in 9 of 11 comparisons over three runs
#: (32 units: ~3.0x instead of ~3.5x the floor), slower in 1; at batch 8-16 it was slower in
#: 2 of 3 runs (batch-major product; with the unit-major one see X_MODE_MIN_BATCH_WIDE)
X_MODE_MIN_BATCH = 32

#: in BLAS's x mode from this many units on, the kernel takes ``[U; W]`` transposed and its
#: product comes out unit-major (then transposed into ``pre``): OpenBLAS 0.3.31 (SkylakeX
#: kernels, one thread, batch 32, K = U + 16) took 200 instead of 283 us per step at 256
#: units, 789 instead of 1095 at 512, 3638 instead of 4328 at 1024 and 54 instead of 61 at
#: 128, but 6.5 instead of 4.6 at 32 and 16.5 instead of 12.6 at 64
#: (``bench/kernel_modes.py``)
REC_T_MIN_UNITS = 128


def rec_transposed(units: int, batch: int) -> bool:
    """Whether BLAS's x mode at this size takes ``[U; W]`` transposed (see
    :data:`REC_T_MIN_UNITS`); the packed product packs ``[U; W]`` as it is."""
    return batch > 1 and units >= REC_T_MIN_UNITS and not packed()


#: with the unit-major product, BLAS's x mode pays from batch 8 on at 256 units and more
#: (``bench/kernel_modes.py``, T 100-1000: 0.68-0.82x the floor at batch 8 where the
#: projection path took 1.03-1.11x; at batch 4 a tie, at batch 2 and at 128 units x batch
#: 4-8 slower)
X_MODE_MIN_BATCH_WIDE, X_MODE_WIDE_UNITS = 8, 256


def x_mode(units: int, batch: int) -> bool:
    """Whether :func:`~lstmviz.engine.cell.run_lstm` hands ``x`` to the kernel at this size.

    Always with the kernel's own packed product (:func:`packed`, :func:`run_packed`): each
    step's product is ``[h_tm1, x_t] @ [U; W]``.  With BLAS from :data:`X_MODE_MIN_BATCH`
    and :data:`X_MODE_MIN_BATCH_WIDE`; below that a separate input projection
    (:func:`project`) and the per-step ``h_tm1 @ U``.
    """
    if packed():
        return True
    return batch >= X_MODE_MIN_BATCH or (
        batch >= X_MODE_MIN_BATCH_WIDE
        and units >= X_MODE_WIDE_UNITS
        and rec_transposed(units, batch)
    )


def packed() -> str:
    """``"avx512"`` or ``"avx2"``: the instruction set of the kernel's packed product (which
    packs ``[U; W]`` once per call into column panels and multiplies them with its own
    register tiles, on up to :func:`get_threads` threads); ``""`` when the kernel uses BLAS
    (no kernel, a CPU without AVX2 + FMA, or ``LSTMVIZ_PACKED=0``)."""
    st = _load()
    return str(st["kernel"].packed()) if st["kernel"] is not None else ""


def set_packed(name: str) -> str:
    """Choose the packed product's instruction set (``"avx512"``, ``"avx2"`` or ``""`` for
    BLAS) for this process; returns the previous choice.  For tests and benchmarks."""
    st = _load()
    if st["kernel"] is None:
        if name:
            raise RuntimeError("the compiled LSTM kernel cannot run here: " + describe())
        return ""
    if not name and _blas() is None:
        raise ValueError(f"set_packed(''): no BLAS to use instead ({_state['why_no_blas']})")
    return str(st["kernel"].set_packed(name))


def path(units: int, batch: int) -> str:
    """Which computation :func:`~lstmviz.engine.cell.run_lstm` runs at this size with the
    kernel: ``"packed-avx512"``, ``"packed-avx2"``, ``"blas-x/<threads>"`` (BLAS, x mode),
    ``"blas/<threads>"`` (BLAS after an input projection).  Two traces computed on the same
    path agree bit for bit step by step (a retrace from a changed step relies on it)."""
    tiles = packed()
    if tiles:
        return f"packed-{tiles}"
    n = blas_threads(units, batch)
    return f"blas-x/{n}" if x_mode(units, batch) else f"blas/{n}"


def run(
    pre: np.ndarray,
    act: np.ndarray,
    cs: np.ndarray,
    hs: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    rec: np.ndarray,
    mask: np.ndarray | None,
    go_backwards: bool,
    recurrent_activation: str | None,
    activation: str | None,
    x: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    rec_t: bool = False,
    lo: int = 0,
    hi: int | None = None,
) -> None:
    """The recurrence of :func:`~lstmviz.engine.cell.run_lstm` in C with BLAS's product, in
    place.

    ``pre`` ``(T, B, 4U)`` holds ``x W + b`` and receives the pre-activations; ``act``
    ``(T, B, 4U)``, ``cs``/``hs`` ``(T, B, U)`` are written; blocks i, f, o, g.  ``mask``
    ``(B, T)`` bool or None.  All float32 C-contiguous (checked by the kernel).

    With ``x`` ``(B, T, F)``: ``rec`` is ``[U; W]`` ``(U + F, 4U)`` -- or its transpose
    ``(4U, U + F)`` with ``rec_t`` -- ``pre`` need not hold anything and each step writes
    ``[h_tm1, x_t] @ [U; W] + bias`` into it.

    ``lo``, ``hi``: only input positions ``lo .. hi - 1`` (default: all), ``h0``/``c0`` being
    the state before the first of them in processing order.
    """
    kernel, blas = _load()["kernel"], _blas()
    steps, batch, u4 = pre.shape
    m = None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)  # (B, T)
    r_code, c_code = _act_code(recurrent_activation), _act_code(activation)
    if kernel is None or blas is None or r_code is None or c_code is None:
        raise RuntimeError("the compiled LSTM kernel cannot run here: " + describe())
    args = (
        pre,
        act,
        cs,
        hs,
        np.ascontiguousarray(h0),
        np.ascontiguousarray(c0),
        rec,
        m,
        steps,
        batch,
        u4 // 4,
        bool(go_backwards),
        r_code,
        c_code,
        blas.gemm,
        blas.gemv,
        blas.ilp64,
    )
    hi = steps if hi is None else hi
    with blas_limits(blas_threads(u4 // 4, batch)):
        if x is None:
            kernel.run(*args, None, None, 0, False, lo, hi)
        else:
            x = np.ascontiguousarray(x, dtype=np.float32)
            kernel.run(*args, x, bias, x.shape[2], bool(rec_t), lo, hi)


def pack(ukw: np.ndarray, bias: np.ndarray | None, batch: int) -> np.ndarray:
    """``[U; W]`` ``(U + F, 4U)`` (blocks i, f, o, g) and ``bias`` packed for
    :func:`run_packed` at this batch size (1, or more) with the current instruction set:
    a 64-byte aligned float32 array (``LSTMWeights`` keeps it, see ``_packed``)."""
    kernel = _load()["kernel"]
    if kernel is None or not packed():
        raise RuntimeError("the kernel's packed product cannot run here: " + describe())
    k, u4 = ukw.shape
    units = u4 // 4
    n = int(kernel.pack_size(units, k - units, batch, chunk_units(batch)))
    raw = np.empty(n + 16, np.float32)
    start = (-raw.ctypes.data % 64) // 4
    out = raw[start : start + n]
    kernel.pack(ukw, bias, out, units, k - units, batch, chunk_units(batch))
    out.flags.writeable = False
    return out


def pack_key(batch: int) -> tuple[str, bool, int]:
    """What :func:`pack`'s layout depends on: instruction set, batch 1 or more, chunking."""
    return (packed(), batch == 1, chunk_units(batch))


def run_packed(
    pre: np.ndarray,
    act: np.ndarray,
    cs: np.ndarray,
    hs: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    wpack: np.ndarray,
    has_bias: bool,
    x: np.ndarray,
    mask: np.ndarray | None,
    go_backwards: bool,
    recurrent_activation: str | None,
    activation: str | None,
    lo: int = 0,
    hi: int | None = None,
    threads: int | None = None,
) -> int:
    """The recurrence of :func:`~lstmviz.engine.cell.run_lstm` with the kernel's packed
    product, split as :func:`split` says (or on ``threads``), in place; returns the number
    of threads that ran.

    ``x`` ``(B, T, F)``; ``wpack``: ``[U; W]`` and the bias packed by :func:`pack` for this
    batch size (``has_bias``: add the bias); ``pre``, ``act`` ``(T, B, 4U)`` and ``cs``,
    ``hs`` ``(T, B, U)`` are written at input positions ``lo .. hi - 1`` (default: all),
    ``h0`` and ``c0`` ``(B, U)`` being the state before the first of them in processing
    order.  The result does not depend on the number of threads, bit for bit.
    """
    st = _load()
    kernel = st["kernel"]
    r_code, c_code = _act_code(recurrent_activation), _act_code(activation)
    if kernel is None or not packed() or r_code is None or c_code is None:
        raise RuntimeError("the kernel's packed product cannot run here: " + describe())
    steps, batch, u4 = pre.shape
    units = u4 // 4
    x = np.ascontiguousarray(x, dtype=np.float32)
    feats = x.shape[2]
    hi = steps if hi is None else hi
    n, rows = split(units, batch, feats, hi - lo)
    if threads is not None:
        n = threads
    m = None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)  # (B, T)
    return int(
        kernel.run_packed(
            pre,
            act,
            cs,
            hs,
            np.ascontiguousarray(h0, dtype=np.float32),
            np.ascontiguousarray(c0, dtype=np.float32),
            wpack,
            bool(has_bias),
            x,
            m,
            steps,
            batch,
            units,
            feats,
            bool(go_backwards),
            r_code,
            c_code,
            int(n),
            chunk_units(batch),
            int(rows),
            int(lo),
            int(hi),
        )
    )


def project(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, pre: np.ndarray) -> None:
    """``pre[t, b] = x[b, t] @ kernel + bias`` in C (one sgemm per batch item, no copy of x).

    ``x`` ``(B, T, F)``, ``kernel`` ``(F, 4U)``, ``bias`` ``(4U,)`` or None, ``pre``
    ``(T, B, 4U)`` float32 C-contiguous (written).  Needs BLAS (SciPy).
    """
    ext, blas = _load()["kernel"], _blas()
    if ext is None or blas is None:
        raise RuntimeError("the compiled kernel has no BLAS here: " + describe())
    batch, steps, feats = x.shape
    ext.project(
        np.ascontiguousarray(x, dtype=np.float32),
        kernel,
        bias,
        pre,
        steps,
        batch,
        feats,
        pre.shape[2] // 4,
        blas.gemm,
        blas.ilp64,
    )


def activate(name: str, x: np.ndarray) -> np.ndarray:
    """The kernel's own activation ``name`` on float32 ``x`` (for tests)."""
    st = _load()
    code = _act_code(name)
    if st["kernel"] is None or code is None:
        raise RuntimeError(f"no compiled activation {name!r}: " + describe())
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    st["kernel"].activate(code, x, out)
    return out


def _reset_for_tests() -> None:
    _state.clear()


__all__ = [
    "ACT_CODES",
    "available",
    "blas_limits",
    "blas_threads",
    "cores",
    "describe",
    "get_threads",
    "pack",
    "pack_key",
    "packed",
    "path",
    "project",
    "run",
    "run_packed",
    "set_packed",
    "set_threads",
    "split",
    "supports",
    "threads_for",
    "threads_limited",
    "x_mode",
]
