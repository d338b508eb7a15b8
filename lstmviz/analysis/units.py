"""Which units to show: the heatmaps' unit filter and the units selected when a trace opens.

The viewer (``lstmviz.state``), the export and the Saturation panel all call these, so
"most active" and "most saturated" mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine.trace import LayerTrace
from ..errors import LstmvizError
from .saturation import HIGH, LOW

#: The unit filters: every unit, the k most active, the k most saturated, a typed list.
UNIT_FILTERS = ("all", "active", "saturated", "list")


def unit_scores(lt: LayerTrace, b: int, mode: str) -> np.ndarray:
    """A score per unit of batch item ``b``, larger first: ``"active"`` is the mean |h|
    (each unit's own ``o·tanh(c)`` for a projected LSTM), ``"saturated"`` the fraction of
    steps the unit's three gates spend below :data:`LOW` or above :data:`HIGH`.

    Returns
    -------
    ndarray
        ``(units,)`` float64.
    """
    if not 0 <= b < lt.batch_size:
        raise LstmvizError(f"batch item {b} out of range: the trace has {lt.batch_size} item(s)")
    if mode not in ("active", "saturated"):
        raise LstmvizError(f"unit score must be 'active' or 'saturated'; got {mode!r}")
    cache = lt.meta.setdefault("_unit_scores", {})  # computed once per trace (off the GUI
    key = (mode, int(b))  # thread when the app prepares a new trace)
    if key not in cache:
        n = lt.units
        if mode == "active":
            h = lt.per_unit("hidden")[b]  # (T, U)
            score = np.abs(h).mean(axis=0, dtype=np.float64)
        else:
            gates = lt.act[:, b, : 3 * n].reshape(lt.timesteps, 3, n)  # (T, 3, U): i, f, o
            score = ((gates < LOW) | (gates > HIGH)).mean(axis=(0, 1), dtype=np.float64)
        score.flags.writeable = False
        cache[key] = score
    return cache[key]


def unit_rows(lt: LayerTrace, b: int, mode: str, arg: Any = None) -> np.ndarray:
    """Unit indices to show, top to bottom, for the unit filter ``(mode, arg)``: all units;
    the ``arg`` best by :func:`unit_scores` (in unit order); or the units listed in ``arg``.
    """
    n = lt.units
    if mode == "list":
        return np.asarray([int(u) for u in (arg or []) if 0 <= int(u) < n], np.int64)
    if mode in ("active", "saturated"):
        k = min(max(int(arg or 8), 1), n)
        top = np.argsort(-unit_scores(lt, b, mode), kind="stable")[:k]
        return np.sort(top).astype(np.int64)
    if mode == "all":
        return np.arange(n, dtype=np.int64)
    raise LstmvizError(f"unit filter must be one of {', '.join(UNIT_FILTERS)}; got {mode!r}")


def default_units(lt: LayerTrace, b: int, named: Sequence[int] = (), k: int = 3) -> list[int]:
    """The units selected when a trace opens: those the model's info names (``named``,
    e.g. the adder's carry unit), then those whose hidden state varies most; up to ``k``."""
    keep = [int(u) for u in named if 0 <= int(u) < lt.units]
    b = min(b, lt.batch_size - 1)
    cache = lt.meta.setdefault("_unit_spread", {})
    if b not in cache:
        h = lt.per_unit("hidden")[b]  # (T, U)
        cache[b] = np.asarray(h.max(axis=0) - h.min(axis=0)) if h.shape[0] else np.zeros(lt.units)
    spread = cache[b]
    ranked = [int(u) for u in np.argsort(-spread, kind="stable")]
    return list(dict.fromkeys([*keep, *ranked]))[: min(k, lt.units)]
