"""Overview images of long traces: a units x time map reduced to what a screen can show.

A 1024-unit layer over 10,000 steps is 10M values per quantity; a heatmap a few hundred
pixels tall and a thousand wide shows block averages of it. :func:`overview` computes them
with block means along time first (the trace is stored time-major), then along units, and
keeps the result on the layer trace, so the app can compute it off the GUI thread right after
tracing and draw it at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.trace import LayerTrace

#: The largest overview drawn: rows (units) x columns (steps).
MAX_ROWS = 384
MAX_COLS = 1200


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Means of consecutive blocks of ``f`` rows of ``a`` (the last block may be smaller),
    float32; ``a`` itself when ``f`` is 1."""
    n = a.shape[0]
    if f <= 1:
        return a
    m, rest = divmod(n, f)
    out = np.empty((m + (1 if rest else 0), *a.shape[1:]), np.float32)
    if m:
        np.mean(a[: m * f].reshape((m, f, *a.shape[1:])), axis=1, dtype=np.float32, out=out[:m])
    if rest:
        np.mean(a[m * f :], axis=0, dtype=np.float32, out=out[m])
    return out


def reduce_image(
    full: np.ndarray,
    rows: np.ndarray | None = None,
    max_rows: int = MAX_ROWS,
    max_cols: int = MAX_COLS,
) -> np.ndarray:
    """``full`` ``(T, U)`` (time-major, as traces store it) -> the ``(R', T')`` image of
    ``rows`` (all units by default) with at most ``max_rows x max_cols`` block means."""
    steps, units = full.shape
    fc = max(1, -(-steps // max(int(max_cols), 1)))
    a = block_mean(full, fc)  # (T', U)
    if rows is not None and len(rows) != units:
        a = a[:, np.asarray(rows, np.int64)]
    r = a.shape[1]
    fr = max(1, -(-r // max(int(max_rows), 1)))
    img = block_mean(np.ascontiguousarray(a.T), fr)  # (R', T')
    return np.ascontiguousarray(img, dtype=np.float32)


def overview(
    lt: LayerTrace,
    quantity: str,
    b: int = 0,
    rows: Any = None,
    max_rows: int = MAX_ROWS,
    max_cols: int = MAX_COLS,
) -> np.ndarray:
    """The ``(R', T')`` image of ``quantity`` (each unit's own column; ``hidden`` of a
    projected LSTM is ``o·tanh(c)``) for batch item ``b`` and the units ``rows`` (all by
    default), reduced to at most ``max_rows x max_cols``. Cached on the layer trace."""
    b = min(int(b), lt.batch_size - 1)
    key_rows = None if rows is None else tuple(int(r) for r in rows)
    cache = lt.meta.setdefault("_overview", {})
    key = (quantity, b, key_rows, int(max_rows), int(max_cols))
    got = cache.get(key)
    if got is None:
        # the reduction along time (the costly part: every value is read) is kept per
        # quantity; a different choice of units then only selects and reduces its columns
        tkey = (quantity, b, int(max_cols))
        reduced = cache.get(tkey)
        if reduced is None:
            full = lt.per_unit(quantity)[b]  # (T, U)
            fc = max(1, -(-full.shape[0] // max(int(max_cols), 1)))
            # kept unit-major (U, T'): a choice of units is then a copy of whole rows (the
            # column gather from (T', U) took 1-7 ms per map on the GUI thread at 1024 units)
            reduced = np.ascontiguousarray(block_mean(full, fc).T, dtype=np.float32)
            cache[tkey] = reduced
        a = reduced if rows is None else reduced[np.asarray(rows, np.int64)]  # (R, T')
        fr = max(1, -(-a.shape[0] // max(int(max_rows), 1)))
        got = np.ascontiguousarray(block_mean(a, fr), dtype=np.float32)  # (R', T')
        got.flags.writeable = False  # (may be the cached reduction itself: never written)
        if len(cache) > 64:  # many selections over time: keep memory bounded
            cache.clear()
            cache[tkey] = reduced
        cache[key] = got
    return got
