""" "All six now": the six quantities of a few units at one step, as bars, with no hidden scaling.

The app's bar view and the export draw what :func:`all_six_now` returns:

- the **selected units** (up to ``max_units``), or, when none is selected, the most active units
  at that step (largest ``|h|``), and a caption saying which;
- **groups** of bars that share an axis: values bounded to [-1, 1] (the gates, and the candidate
  and hidden state of a tanh LSTM) on one axis; values without a bound (the cell state, and g and
  h of an LSTM without tanh, like the adder) on their own axis, symmetric around 0 at the
  heatmaps' colour levels (:func:`lstmviz.analysis.levels.levels`). Nothing is divided by
  anything: each group's title says its scale in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import LstmvizError
from .levels import SIX, levels

if TYPE_CHECKING:
    from ..engine.trace import LayerTrace

SYMBOLS = {
    "forget_gate": "f",
    "input_gate": "i",
    "output_gate": "o",
    "candidate": "g",
    "cell": "c",
    "hidden": "h",
}
NAMES = {
    "forget_gate": "forget gate",
    "input_gate": "input gate",
    "output_gate": "output gate",
    "candidate": "candidate",
    "cell": "cell state",
    "hidden": "hidden state",
}


@dataclass(frozen=True)
class BarGroup:
    """Bars that share one axis: ``values[k, j]`` is ``quantities[k]`` of ``units[j]``."""

    quantities: tuple[str, ...]
    values: np.ndarray  # (len(quantities), len(units))
    range: tuple[float, float]
    title: str


@dataclass(frozen=True)
class AllSix:
    """What the "all six now" view shows (see the module docstring)."""

    t: int
    batch: int
    units: tuple[int, ...]
    groups: tuple[BarGroup, ...]
    caption: str
    selected: bool  # False: the units were chosen as the most active ones

    def value(self, quantity: str, unit: int) -> float:
        for g in self.groups:
            if quantity in g.quantities:
                return float(g.values[g.quantities.index(quantity), self.units.index(unit)])
        raise LstmvizError(f"{quantity!r} is not shown")


def _names(qs: Sequence[str]) -> str:
    parts = [NAMES[q] for q in qs]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def all_six_now(
    lt: LayerTrace,
    t: int,
    b: int = 0,
    units: Sequence[int] | None = None,
    max_units: int = 8,
) -> AllSix:
    """The six quantities of the selected units (or the most active ones) at step ``t``.

    Parameters
    ----------
    lt : LayerTrace
        The layer.
    t, b : int
        Step and batch item.
    units : sequence of int, optional
        The selected units; None or empty: the ``max_units`` units with the largest ``|h|``
        at ``t``.
    max_units : int
        At most this many units (bars stay wide enough to read).
    """
    T, B, U = lt.timesteps, lt.batch_size, lt.units
    if not 0 <= t < T:
        raise LstmvizError(f"step t = {t} is out of range: the input has {T} timesteps")
    if not 0 <= b < B:
        raise LstmvizError(f"batch item {b} is out of range: the input has {B}")
    if max_units < 1:
        raise LstmvizError(f"max_units must be at least 1; got {max_units}")
    h = np.asarray(lt.at_unit("hidden", t, b), dtype=np.float64)  # (U,)
    if units:
        bad = [u for u in units if not 0 <= int(u) < U]
        if bad:
            raise LstmvizError(
                f"unit {bad[0]} is out of range for layer {lt.name!r}, which has {U} units"
            )
        chosen = tuple(dict.fromkeys(int(u) for u in units))
        selected = True
        shown = chosen[:max_units]
        caption = (
            f"the {len(shown)} selected unit{'s' if len(shown) > 1 else ''} at t = {t}"
            if len(shown) == len(chosen)
            else f"the first {len(shown)} of {len(chosen)} selected units at t = {t}"
        )
    else:
        k = min(max_units, U)
        order = np.argsort(-np.abs(h), kind="stable")[:k]
        shown = tuple(int(u) for u in sorted(order))
        selected = False
        caption = (
            f"the {k} most active units at t = {t} (largest |h|; no unit selected)"
            if k < U
            else f"all {U} units at t = {t}"
        )
    idx = list(shown)
    vals = {q: np.asarray(lt.at_unit(q, t, b), dtype=np.float64)[idx] for q in SIX}
    bounded: list[str] = []
    free: list[str] = []
    for q in SIX:
        lo, hi = levels(q, lt)
        (bounded if (lo, hi) in ((0.0, 1.0), (-1.0, 1.0)) else free).append(q)
    groups = []
    if bounded:
        signed = any(levels(q, lt) == (-1.0, 1.0) for q in bounded)
        rng = (-1.0, 1.0) if signed else (0.0, 1.0)
        where = "between −1 and 1" if signed else "between 0 and 1"
        groups.append(
            BarGroup(
                tuple(bounded),
                np.stack([vals[q] for q in bounded]),
                rng,
                f"{_names(bounded)} (all {where})",
            )
        )
    if free:
        m = max(levels(q, lt)[1] for q in free)
        groups.append(
            BarGroup(
                tuple(free),
                np.stack([vals[q] for q in free]),
                (-m, m),
                f"{_names(free)} (no bound: own scale, −{m:g} to {m:g}, as in the heatmaps)",
            )
        )
    return AllSix(t, b, shown, tuple(groups), caption, selected)
