"""Gate saturation (Karpathy et al.'s "left/right saturated" fractions) and dead units."""

from __future__ import annotations

import numpy as np

from ..engine.trace import GATES, LayerTrace
from ._util import check_layer_trace, valid_mask

#: A gate value below LOW (closed) or above HIGH (open) counts as saturated, everywhere
#: lstmviz says "saturated" (Karpathy et al. 2015's thresholds).
LOW = 0.1
HIGH = 0.9


def _check_levels(low: float, high: float) -> None:
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"expected 0 <= low < high <= 1; got low={low!r}, high={high!r}")


def saturation_split(
    layer_trace: LayerTrace, low: float = LOW, high: float = HIGH
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per gate, the fraction of valid steps each unit spends below ``low`` (left
    saturated: closed) and above ``high`` (right saturated: open).

    Returns
    -------
    dict
        ``{gate: (left (units,), right (units,))}`` for ``input_gate``, ``forget_gate``,
        ``output_gate``; fractions in [0, 1] over every batch item and valid timestep.
    """
    lt = check_layer_trace(layer_trace)
    _check_levels(low, high)
    keep = valid_mask(lt)  # (B, T)
    n = max(int(keep.sum()), 1)
    out = {}
    for gate in GATES:
        a = lt.get(gate)[keep]  # (N, U)
        out[gate] = ((a < low).sum(axis=0) / n, (a > high).sum(axis=0) / n)
    return out


def saturation(
    layer_trace: LayerTrace, low: float = LOW, high: float = HIGH
) -> dict[str, np.ndarray]:
    """Fraction of steps each unit's gates are saturated.

    Parameters
    ----------
    layer_trace : LayerTrace
    low, high : float
        A gate value below ``low`` or above ``high`` counts as saturated.

    Returns
    -------
    dict
        ``{gate: (units,) float64}`` for ``"input_gate"``, ``"forget_gate"``,
        ``"output_gate"``: the fraction of valid steps (all batch items) at which the gate is
        ``< low`` or ``> high``. Masked steps are left out.
    """
    return {
        g: left + right for g, (left, right) in saturation_split(layer_trace, low, high).items()
    }


def dead_units(layer_trace: LayerTrace, tol: float = 1e-3) -> dict[int, str]:
    """Units that carry no information.

    A unit is dead when its hidden state never leaves ``±tol`` (it outputs nothing), or when
    it does not vary over the steps and batch items (it outputs a constant).

    Returns
    -------
    dict
        ``{unit: reason}`` for every dead unit, reason a short text such as
        ``"hidden state always within ±0.001"``.
    """
    lt = check_layer_trace(layer_trace)
    keep = valid_mask(lt)
    h = np.asarray(lt.hidden[keep], dtype=np.float64)  # (N, U)
    out: dict[int, str] = {}
    if h.shape[0] == 0:
        return out
    amax = np.abs(h).max(axis=0)
    spread = h.max(axis=0) - h.min(axis=0)
    for u in range(h.shape[1]):
        if amax[u] < tol:
            out[u] = f"hidden state always within ±{tol:g}"
        elif h.shape[0] > 1 and spread[u] < tol:
            out[u] = f"hidden state constant ({h[0, u]:+.3f}, range {spread[u]:.1e})"
    return out


def gate_histograms(
    layer_trace: LayerTrace, bins: int = 20
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Histogram of every gate's values over all units and valid steps.

    Returns
    -------
    dict
        ``{gate: (counts (bins,), edges (bins + 1,))}`` over [0, 1] for the three gates.
    """
    lt = check_layer_trace(layer_trace)
    keep = valid_mask(lt)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {g: (np.histogram(lt.get(g)[keep], bins=edges)[0], edges) for g in GATES}
