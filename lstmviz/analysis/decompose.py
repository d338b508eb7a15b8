"""What the cell keeps and what it writes, and how long a written value survives.

The cell update ``c_t = f_t · c_{t-1} + i_t · g_t`` splits into two parts per unit and step:

* ``kept = f_t · c_{t-1}``: what survives of the old memory,
* ``written = i_t · g_t``: what is written now.

Their sum is the cell state exactly (the engine computes ``c`` with the same float32 products).
"""

from __future__ import annotations

import numpy as np

from ..engine.trace import LayerTrace
from ._util import check_layer_trace, valid_mask


def decompose(layer_trace: LayerTrace) -> tuple[np.ndarray, np.ndarray]:
    """Split the cell state into the kept and the written part.

    Parameters
    ----------
    layer_trace : LayerTrace
        One LSTM layer (or one direction of a Bidirectional) of a trace.

    Returns
    -------
    kept : ndarray, float32, (batch, T, units)
        ``f_t · c_{t-1}``, with ``c_{t-1}`` the previous step in processing order
        (``layer_trace.cell_prev``: the step after t for a ``go_backwards`` layer).
    written : ndarray, float32, (batch, T, units)
        ``i_t · g_t``.

    Notes
    -----
    ``kept + written == layer_trace.cell`` holds exactly. At a masked step the LSTM carries
    its state over unchanged; there ``kept`` is the carried cell state and ``written`` is 0,
    so the identity still holds.
    """
    lt = check_layer_trace(layer_trace)
    kept = np.multiply(lt.forget_gate, lt.cell_prev)  # (B, T, U)
    written = np.multiply(lt.input_gate, lt.candidate)  # (B, T, U)
    if lt.mask is not None:
        off = ~valid_mask(lt)  # (B, T)
        if off.any():
            kept[off] = lt.cell_prev[off]
            written[off] = 0.0
    return kept, written


def _forget_in_processing_order(lt: LayerTrace) -> np.ndarray:
    """Forget gates ``(batch, T, units)`` in processing order, 1 at masked steps (the state
    is carried over there, so nothing is forgotten)."""
    f = np.array(lt.forget_gate, dtype=np.float64)  # (B, T, U)
    if lt.mask is not None:
        f[~valid_mask(lt)] = 1.0
    if lt.go_backwards:
        f = f[:, ::-1]
    return f


def retention(layer_trace: LayerTrace, t: int, b: int = 0) -> np.ndarray:
    """Fraction of a value written at step ``t`` still in the cell at every step.

    The running product of the forget gates after ``t``:
    ``r[s] = f_{t+1} · f_{t+2} · … · f_s`` for steps ``s`` after ``t`` in processing order,
    ``r[t] = 1``, and 0 before ``t`` (the value did not exist yet).

    Parameters
    ----------
    layer_trace : LayerTrace
    t : int
        Input position at which the value is written.
    b : int
        Batch item.

    Returns
    -------
    ndarray, float32, (T, units)
        Indexed by input position, like the trace.
    """
    lt = check_layer_trace(layer_trace)
    steps = lt.timesteps
    if not 0 <= t < steps:
        raise IndexError(f"t={t} is outside the sequence (0..{steps - 1})")
    f = _forget_in_processing_order(lt)[b]  # (T, U) processing order
    p = steps - 1 - t if lt.go_backwards else t
    out = np.zeros_like(f)  # (T, U)
    out[p] = 1.0
    if p + 1 < steps:
        out[p + 1 :] = np.cumprod(f[p + 1 :], axis=0)
    if lt.go_backwards:
        out = out[::-1]
    return out.astype(np.float32)


def memory_lifetime(layer_trace: LayerTrace, threshold: float = 0.5) -> np.ndarray:
    """How many steps a value written at each step survives.

    A value written at step ``t`` keeps the fraction ``f_{t+1} · … · f_s`` of itself at step
    ``s``. Its lifetime is the number of steps until that running product of forget gates
    first falls below ``threshold`` (0.5: the half-life).

    Parameters
    ----------
    layer_trace : LayerTrace
    threshold : float
        Fraction in (0, 1) below which the value counts as forgotten.

    Returns
    -------
    ndarray, float32, (batch, T, units)
        Lifetime in steps, indexed by input position; ``inf`` where the value still holds at
        least ``threshold`` at the end of the sequence (it outlives the input).

    Notes
    -----
    Vectorised with log-cumulative sums: the log retention is monotone, so one
    ``searchsorted`` per (batch item, unit) finds every lifetime at once.
    """
    lt = check_layer_trace(layer_trace)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold!r}")
    f = _forget_in_processing_order(lt)  # (B, T, U)
    batch, steps, units = f.shape
    logf = np.log(np.clip(f, 1e-30, 1.0))  # (B, T, U) <= 0
    # L[s] = sum_{k<=s} log f_k; retention from t to s is exp(L[s] - L[t]).
    cum = np.cumsum(logf, axis=1)  # (B, T, U), non-increasing in s
    target = cum + np.log(threshold)  # forgotten once L[s] < L[t] + log(threshold)
    out = np.empty((batch, steps, units), np.float32)
    idx = np.arange(steps)
    for b in range(batch):
        for u in range(units):
            neg = -cum[b, :, u]  # non-decreasing
            # first s with -L[s] > -target[t]
            first = np.searchsorted(neg, -target[b, :, u], side="right")  # (T,)
            life = (first - idx).astype(np.float32)
            life[first >= steps] = np.inf
            out[b, :, u] = life
    if lt.go_backwards:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def mean_lifetime(layer_trace: LayerTrace, threshold: float = 0.5) -> np.ndarray:
    """A per-unit summary of :func:`memory_lifetime`: the median lifetime over every valid
    step and batch item, ``(units,)`` float32 (``inf`` when most values outlive the input)."""
    lt = check_layer_trace(layer_trace)
    life = memory_lifetime(lt, threshold)  # (B, T, U)
    vals = life[valid_mask(lt)]  # (N, U)
    if vals.shape[0] == 0:
        return np.zeros(lt.units, np.float32)
    return np.median(vals, axis=0).astype(np.float32)
