"""Optional compiled accelerator for :func:`lstmviz.engine.cell.run_lstm`.

``lstmviz.engine._lstm_kernel`` (``_lstm_kernel.c``, built by ``setup.py`` when a C compiler
is present) runs the whole T-step recurrence in one call: per step one BLAS ``sgemv``/``sgemm``
that adds ``h_tm1 @ U`` into the pre-activations in place (``beta = 1``), then the fused gate
and state math in vectorised C, with the GIL released.  The NumPy loop in ``cell.py`` stays
the reference; the kernel is used only when it

* was built (``pip install -e .`` builds it; a failed build is not an error),
* finds a BLAS: first NumPy's own bundled OpenBLAS (the very library ``np.matmul`` uses, so
  both paths share one thread pool), then SciPy's ``scipy.linalg.cython_blas``,
* passes a self-test against a plain NumPy step on first use,
* knows both activations of the layer (:data:`ACT_CODES`; others use the NumPy loop),
* is not switched off with the environment variable ``LSTMVIZ_ACCEL=0``.

:func:`describe` says which of these happened.
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def _numpy_blas() -> _Blas | None:
    """The OpenBLAS bundled with NumPy's wheels (``scipy_sgemm_64_``: ILP64, Fortran ABI)."""
    root = os.path.dirname(np.__file__)
    patterns = [
        os.path.join(root + ".libs", "*openblas*"),  # Linux (auditwheel), Windows (delvewheel)
        os.path.join(root, ".dylibs", "*openblas*"),  # macOS (delocate)
    ]
    names = (("scipy_sgemm_64_", "scipy_sgemv_64_", True), ("sgemm_64_", "sgemv_64_", True))
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                lib = ctypes.CDLL(path)  # already loaded by NumPy: the same handle
            except OSError:
                continue
            for gemm, gemv, ilp64 in names:
                try:
                    f_gemm, f_gemv = getattr(lib, gemm), getattr(lib, gemv)
                except AttributeError:
                    continue
                addr = ctypes.cast(f_gemm, ctypes.c_void_p).value
                addr_v = ctypes.cast(f_gemv, ctypes.c_void_p).value
                if addr and addr_v:
                    return _Blas(addr, addr_v, ilp64, f"NumPy's {os.path.basename(path)} ({gemm})")
    return None


def _scipy_blas() -> _Blas | None:
    """SciPy's ``cython_blas`` (LP64, Fortran ABI), when SciPy is installed."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    addrs = []
    for name in ("sgemm", "sgemv"):
        cap = cython_blas.__pyx_capi__.get(name)
        if cap is None:
            return None
        addrs.append(api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap)))
    if not all(addrs):
        return None
    return _Blas(addrs[0], addrs[1], False, "SciPy's cython_blas")


def _self_test(kernel: Any, blas: _Blas) -> bool:
    """Run the kernel on a small random problem (gemv and gemm paths) against NumPy."""
    rng = np.random.default_rng(12345)
    steps, units = 5, 7
    for batch in (1, 3):
        rec = rng.normal(0.0, 0.5, (units, 4 * units)).astype(np.float32)
        pre = rng.normal(0.0, 1.0, (steps, batch, 4 * units)).astype(np.float32)
        h0 = rng.normal(0.0, 0.5, (batch, units)).astype(np.float32)
        c0 = rng.normal(0.0, 0.5, (batch, units)).astype(np.float32)
        expect_h = np.empty((steps, batch, units), np.float32)
        h, c = h0.astype(np.float64), c0.astype(np.float64)
        for t in range(steps):
            z = pre[t] + h @ rec  # (B, 4U)
            i, f, o = (1.0 / (1.0 + np.exp(-z[:, k * units : (k + 1) * units])) for k in range(3))
            g = np.tanh(z[:, 3 * units :])
            c = f * c + i * g
            h = o * np.tanh(c)
            expect_h[t] = h
        act = np.empty_like(pre)
        cs = np.empty((steps, batch, units), np.float32)
        hs = np.empty_like(cs)
        kernel.run(
            pre,
            act,
            cs,
            hs,
            h0,
            c0,
            rec,
            None,
            steps,
            batch,
            units,
            False,
            ACT_CODES["sigmoid"],
            ACT_CODES["tanh"],
            blas.gemm,
            blas.gemv,
            blas.ilp64,
        )
        if not np.allclose(hs, expect_h, rtol=0.0, atol=1e-5):
            return False
    return True


def _load() -> dict[str, Any]:
    if _state:
        return _state
    if os.environ.get("LSTMVIZ_ACCEL", "1").strip().lower() in ("0", "false", "no", "off"):
        _state.update(kernel=None, reason="switched off by LSTMVIZ_ACCEL=0")
        return _state
    try:
        from . import _lstm_kernel as kernel  # type: ignore[attr-defined]
    except ImportError:
        _state.update(
            kernel=None,
            reason="the compiled kernel lstmviz.engine._lstm_kernel "
            "was not built (needs a C compiler at install time)",
        )
        return _state
    blas = _numpy_blas() or _scipy_blas()
    if blas is None:
        _state.update(
            kernel=None,
            reason="no BLAS found (neither NumPy's bundled OpenBLAS nor scipy.linalg.cython_blas)",
        )
        return _state
    if not _self_test(kernel, blas):
        _state.update(kernel=None, reason=f"the kernel's self-test failed with {blas.source}")
        return _state
    tiles = kernel.packed()
    _state.update(
        kernel=kernel,
        blas=blas,
        reason=f"C kernel + {blas.source}"
        + (f", packed {tiles.upper()} product from batch 2" if tiles else ""),
    )
    return _state


def available() -> bool:
    """True when the compiled kernel can run (built, BLAS found, self-test passed)."""
    return _load()["kernel"] is not None


def describe() -> str:
    """One line for status bars and benchmarks: the engine that traces, or why not the kernel."""
    st = _load()
    return st["reason"] if st["kernel"] is not None else f"NumPy ({st['reason']})"


def supports(recurrent_activation: str | None, activation: str | None) -> bool:
    """True when the kernel can run a layer with these activations."""
    return (
        available()
        and _act_code(recurrent_activation) is not None
        and _act_code(activation) is not None
    )


#: from this batch size on, :func:`run` takes ``x`` itself (one product per step with
#: K = U + F) instead of a separate input projection. ``bench/kernel_modes.py`` at batch 32:
#: faster in 9 of 11 comparisons over three runs (32 units: ~3.0x instead of ~3.5x the
#: floor), slower in 1; at batch 8-16 it was slower in 2 of 3 runs (batch-major product;
#: with the unit-major one see X_MODE_MIN_BATCH_WIDE)
X_MODE_MIN_BATCH = 32

#: in x mode from this many units on, the kernel takes ``[U; W]`` transposed and its product
#: comes out unit-major (then transposed into ``pre``): OpenBLAS 0.3.31 (SkylakeX kernels,
#: one thread, batch 32, K = U + 16) took 200 instead of 283 us per step at 256 units, 789
#: instead of 1095 at 512, 3638 instead of 4328 at 1024 and 54 instead of 61 at 128, but
#: 6.5 instead of 4.6 at 32 and 16.5 instead of 12.6 at 64 (``bench/kernel_modes.py``)
REC_T_MIN_UNITS = 128


def rec_transposed(units: int, batch: int) -> bool:
    """Whether x mode at this size takes ``[U; W]`` transposed (see :data:`REC_T_MIN_UNITS`):
    only for BLAS's product -- the packed product packs ``[U; W]`` as it is."""
    return batch > 1 and units >= REC_T_MIN_UNITS and not packed()


#: with the unit-major product, x mode pays from batch 8 on at 256 units and more
#: (``bench/kernel_modes.py``, T 100-1000: 0.68-0.82x the floor at batch 8 where the
#: projection path took 1.03-1.11x; at batch 4 a tie, at batch 2 and at 128 units x batch
#: 4-8 slower)
X_MODE_MIN_BATCH_WIDE, X_MODE_WIDE_UNITS = 8, 256


def x_mode(units: int, batch: int) -> bool:
    """Whether :func:`~lstmviz.engine.cell.run_lstm` hands ``x`` to the kernel at this size.

    With the kernel's own packed product (:func:`packed`) from batch 2 on
    (``bench/kernel_modes.py``: 0.25-0.99x the floor from 256 units, where BLAS's x mode
    took 0.8-1.2x and the projection path 1.0-2.4x; a tie at 32 units x batch 2, and at
    batch 1, where the gemv path stays); else by :data:`X_MODE_MIN_BATCH` and
    :data:`X_MODE_MIN_BATCH_WIDE`.
    """
    if batch >= 2 and packed():
        return True
    return batch >= X_MODE_MIN_BATCH or (
        batch >= X_MODE_MIN_BATCH_WIDE
        and units >= X_MODE_WIDE_UNITS
        and rec_transposed(units, batch)
    )


def packed() -> str:
    """``"avx512"`` or ``"avx2"``: the instruction set of the kernel's packed product (x mode
    packs ``[U; W]`` once per call into column panels and multiplies them with its own
    register tiles, instead of BLAS repacking the weights at every step); ``""`` when it uses
    BLAS (no kernel, a CPU without AVX2 + FMA, or ``LSTMVIZ_PACKED=0``)."""
    st = _load()
    return st["kernel"].packed() if st["kernel"] is not None else ""


def set_packed(name: str) -> str:
    """Choose the packed product's instruction set (``"avx512"``, ``"avx2"`` or ``""`` for
    BLAS) for this process; returns the previous choice.  For tests and benchmarks."""
    st = _load()
    if st["kernel"] is None:
        if name:
            raise RuntimeError("the compiled LSTM kernel cannot run here: " + describe())
        return ""
    return st["kernel"].set_packed(name)


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
) -> None:
    """The recurrence of :func:`~lstmviz.engine.cell.run_lstm` in C, in place.

    ``pre`` ``(T, B, 4U)`` holds ``x W + b`` and receives the pre-activations; ``act``
    ``(T, B, 4U)``, ``cs``/``hs`` ``(T, B, U)`` are written; blocks i, f, o, g.  ``mask``
    ``(B, T)`` bool or None.  All float32 C-contiguous (checked by the kernel).

    With ``x`` ``(B, T, F)``: ``rec`` is ``[U; W]`` ``(U + F, 4U)`` -- or its transpose
    ``(4U, U + F)`` with ``rec_t`` -- ``pre`` need not hold anything and each step writes
    ``[h_tm1, x_t] @ [U; W] + bias`` into it.
    """
    st = _load()
    kernel, blas = st["kernel"], st["blas"]
    steps, batch, u4 = pre.shape
    m = None if mask is None else np.ascontiguousarray(mask, dtype=np.uint8)  # (B, T)
    r_code, c_code = _act_code(recurrent_activation), _act_code(activation)
    if kernel is None or r_code is None or c_code is None:
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
    if x is None:
        kernel.run(*args)
    else:
        x = np.ascontiguousarray(x, dtype=np.float32)
        kernel.run(*args, x, bias, x.shape[2], bool(rec_t))


def project(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, pre: np.ndarray) -> None:
    """``pre[t, b] = x[b, t] @ kernel + bias`` in C (one sgemm per batch item, no copy of x).

    ``x`` ``(B, T, F)``, ``kernel`` ``(F, 4U)``, ``bias`` ``(4U,)`` or None, ``pre``
    ``(T, B, 4U)`` float32 C-contiguous (written).
    """
    st = _load()
    if st["kernel"] is None:
        raise RuntimeError("the compiled LSTM kernel cannot run here: " + describe())
    batch, steps, feats = x.shape
    blas = st["blas"]
    st["kernel"].project(
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
    "describe",
    "packed",
    "project",
    "run",
    "set_packed",
    "supports",
    "x_mode",
]
