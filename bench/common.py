"""Helpers shared by the engine benchmarks (bench/trace.py, bench/memory.py).

Import this module *before* NumPy: :func:`pin_threads` only works when it runs before the
first import of NumPy (OpenBLAS reads its thread count when it loads).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(n: int, openblas_coretype: str | None = None) -> None:
    """Give every BLAS / OpenMP runtime ``n`` threads (call before importing NumPy);
    ``openblas_coretype`` forces OpenBLAS's kernel family (``OPENBLAS_CORETYPE``)."""
    if "numpy" in sys.modules:
        raise RuntimeError("pin_threads() must run before NumPy is imported")
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    if openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = openblas_coretype
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def openblas_core() -> str:
    """The kernel family NumPy's OpenBLAS picked (``openblas_get_corename``), or ``"?"``."""
    import ctypes
    import glob

    import numpy as np

    root = os.path.dirname(np.__file__)
    for path in glob.glob(root + ".libs/*openblas*") + glob.glob(root + "/.dylibs/*openblas*"):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in (
            "scipy_openblas_get_corename64_",
            "openblas_get_corename64_",
            "openblas_get_corename",
        ):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "?"


def machine() -> str:
    """``"<CPU model>, <n> cores, <RAM> GiB RAM, Python x.y, NumPy v (BLAS)"``."""
    import numpy as np

    model, cores = platform.processor() or platform.machine(), os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "Model name":
                model = val.strip()
    except OSError:
        pass
    ram = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        ram = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f" ({cfg.get('name', '?')} {cfg.get('version', '')})".rstrip()
    except Exception:  # noqa: BLE001 - only decoration for the report
        pass
    return (
        f"{model}, {cores} cores{ram}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}{blas}, OpenBLAS kernels: {openblas_core()}"
    )


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Minimum wall time of ``repeat`` calls, in seconds (the machine is shared: the minimum
    is the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def interleaved(
    fns: dict[str, Callable[[], Any]], repeat: int, warmup: bool = True, rest: float = 0.0
) -> dict[str, float]:
    """Best wall time of each function, calling them in turn ``repeat`` rounds (so that a
    burst of load from elsewhere hits every column alike)."""
    return {k: min(v) for k, v in interleaved_times(fns, repeat, warmup, rest).items()}


def interleaved_times(
    fns: dict[str, Callable[[], Any]], repeat: int, warmup: bool = True, rest: float = 0.0
) -> dict[str, list[float]]:
    """Every wall time of each function over ``repeat`` interleaved rounds (see
    :func:`interleaved`); ``rest`` seconds of idle before each timed call (the worker
    threads a library left spinning go to sleep)."""
    if warmup:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if rest > 0:
                time.sleep(rest)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def blas_threads() -> str:
    """The BLAS libraries loaded in this process and their thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "?"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return (
        ", ".join(
            f"{i.get('internal_api', '?')} {i.get('version', '')} x{i.get('num_threads')}"
            for i in libs
        )
        or "none loaded"
    )


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.0f}x" if r >= 20 else f"{r:.2f}x"


def aligned(a: Any, align: int = 64) -> Any:
    """A C-contiguous copy of NumPy array ``a`` starting on an ``align``-byte boundary.

    NumPy guarantees only 16-byte alignment, and OpenBLAS's speed depends on it at
    power-of-two widths: ``h @ U`` at 256 units x batch 32 took 206-213 us per product with
    ``U`` 64-byte aligned but 261 us 16 bytes off (one thread, this machine).  The floor is
    measured on aligned operands, so that it is the faster of the two and the same in every
    run.
    """
    import numpy as np

    a = np.asarray(a)
    buf = np.empty(a.nbytes + align, np.uint8)
    start = (-buf.ctypes.data) % align
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out
