"""Activation patching: where in time, and in which memory path, does the information travel?

Two inputs of the same length: a *clean* one and a *corrupted* one that changes the answer
(``"1011 + 0110"`` against ``"1011 + 0111"``; a sentence with "keys" against one with "key").
Run the corrupted input, and at one step t put back the clean value of one quantity (c, h or
a gate) of some units; measure how much of the clean target comes back::

    restored(t, q) = (f(corrupted, q_t := clean q_t) - f(corrupted)) / (f(clean) - f(corrupted))

1 means that value at that step carries everything the corruption changed; 0 means nothing.
The patch is applied *inside* the recurrence (:mod:`lstmviz.engine.intervene`), so what it
restores flows on through the later steps as the network would carry it. The ``(quantity, t)``
map shows in which path -- the cell state's conveyor belt, the hidden state, a gate -- the
information sits at each step; the ``(unit, t)`` map which units carry it.

``direction="noise"`` does the converse (run clean, patch in one corrupted value): the share of
the corruption's damage that one value alone causes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.intervene import Intervention, quantity_name
from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..engine.trace import QUANTITIES
from ..errors import InputError
from ._util import engine_model
from .gradients import Target, describe_target
from .interventions import _layer_name, _units, evaluate, intervene

DIRECTIONS = ("denoise", "noise")


@dataclass(frozen=True, eq=False)
class PatchingResult:
    """What :func:`activation_patching` found.

    Attributes
    ----------
    by_quantity : ndarray
        ``(n_quantities, T)``: the fraction restored when ``quantities[q]`` of the unit group
        (every unit by default) is patched at step t.
    quantities : tuple of str
    by_unit : ndarray or None
        ``(units, T)``: the fraction restored when one unit's ``unit_quantity`` is patched at t.
    unit_quantity : str
    clean_value, corrupted_value : float
        The target on the clean and on the corrupted input.
    layer, target, direction : str
    units : tuple of int
        The unit group patched for ``by_quantity``.
    clean, corrupted : ndarray
        The two inputs (one sequence each).
    """

    by_quantity: np.ndarray
    quantities: tuple[str, ...]
    by_unit: np.ndarray | None
    unit_quantity: str
    clean_value: float
    corrupted_value: float
    layer: str
    target: str
    direction: str
    units: tuple[int, ...]
    clean: np.ndarray
    corrupted: np.ndarray

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    def top(self, n: int = 5) -> list[tuple[str, int, float]]:
        """The ``n`` largest entries of ``by_quantity``: ``[(quantity, t, restored), ...]``."""
        flat = np.argsort(-self.by_quantity, axis=None, kind="stable")[:n]
        out = []
        for k in flat:
            q, t = np.unravel_index(k, self.by_quantity.shape)
            out.append((self.quantities[q], int(t), float(self.by_quantity[q, t])))
        return out


def _one(model: Model, x: Any, batch: int, what: str) -> np.ndarray:
    xc = model.check_input(x)
    if isinstance(xc, list):
        raise InputError("activation patching works on single-input models")
    if not 0 <= batch < xc.shape[0]:
        raise InputError(f"{what}: batch item {batch} outside 0..{xc.shape[0] - 1}")
    return xc[batch : batch + 1]


def activation_patching(
    model: Model,
    clean: Any,
    corrupted: Any,
    target: Target,
    layer: str | int = 0,
    *,
    quantities: Sequence[str] = QUANTITIES,
    units: Sequence[int] | None = None,
    by_unit: bool = True,
    unit_quantity: str = "cell",
    direction: str = "denoise",
    space: str = "output",
    batch: int = 0,
    min_difference: float = 1e-6,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PatchingResult:
    """Patch one quantity at one step at a time; map the fraction of the target restored.

    Parameters
    ----------
    model : Model
    clean, corrupted : array_like
        Two inputs of the same length (batch item ``batch`` of each is used).
    target : (t, k), int, array or callable
        The output measured (see :mod:`lstmviz.analysis.gradients`).
    layer : str or int
        The LSTM whose values are patched.
    quantities : sequence of str
        Rows of the ``(quantity, t)`` map (default: the six quantities).
    units : sequence of int, optional
        The unit group patched for that map (default: every unit).
    by_unit : bool
        Also compute the ``(unit, t)`` map for ``unit_quantity`` (one batched run per unit).
    direction : {"denoise", "noise"}
        Run the corrupted input and patch in clean values (default), or the converse.
    progress, should_stop : callable, optional
        ``progress(done, total)`` after every batched run; ``should_stop()`` ends early
        (the runs not done stay NaN).

    Returns
    -------
    PatchingResult
    """
    engine_model(model, "activation_patching")
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    xc = _one(model, clean, batch, "clean")
    xr = _one(model, corrupted, batch, "corrupted")
    if xc.shape != xr.shape:
        raise InputError(
            f"the clean and corrupted inputs must have the same shape (patching matches step t "
            f"to step t); found {xc.shape[1:]} and {xr.shape[1:]}"
        )
    name = _layer_name(model, layer)
    n_units = model.lstm(name).weights.units
    group = tuple(range(n_units)) if units is None else _units(units, n_units, name)
    qs = tuple(quantity_name(q) for q in quantities)
    uq = quantity_name(unit_quantity)
    run_x, src_x = (xr, xc) if direction == "denoise" else (xc, xr)
    f_clean = float(evaluate(model, xc, [], target, space)[0])
    f_corr = float(evaluate(model, xr, [], target, space)[0])
    diff = f_clean - f_corr
    if abs(diff) < min_difference:
        raise InputError(
            f"the clean and the corrupted input give the same target ({f_clean:.6g} and "
            f"{f_corr:.6g}): there is nothing for a patch to restore; choose inputs or a target "
            "that differ"
        )
    src = intervene(model, src_x, []).layer(name)  # the values patched in
    steps = src.timesteps
    reps = np.repeat(run_x, steps, axis=0)  # (T, ...) one copy per patched step
    base = f_corr if direction == "denoise" else f_clean
    total = len(qs) + (n_units if by_unit else 0)
    done = 0

    def restored(q: str, us: tuple[int, ...]) -> np.ndarray:
        vals = np.full((steps, steps, len(us)), np.nan)  # (copy, t, unit): copy r patches t = r
        clean_vals = np.asarray(src.per_unit(q), np.float64)[0][:, list(us)]  # (T, n)
        idx = np.arange(steps)
        vals[idx, idx] = clean_vals
        iv = Intervention(name, us, q, "patch", values=vals)
        f = evaluate(model, reps, [iv], target, space)  # (T,)
        if direction == "denoise":
            return (f - base) / diff
        return (base - f) / diff

    by_q = np.full((len(qs), steps), np.nan)
    for i, q in enumerate(qs):
        if should_stop is not None and should_stop():
            break
        by_q[i] = restored(q, group)
        done += 1
        if progress is not None:
            progress(done, total)
    by_u = None
    if by_unit:
        by_u = np.full((n_units, steps), np.nan)
        for u in range(n_units):
            if should_stop is not None and should_stop():
                break
            by_u[u] = restored(uq, (u,))
            done += 1
            if progress is not None:
                progress(done, total)
    from ..engine.backward import record

    return PatchingResult(
        by_quantity=by_q,
        quantities=qs,
        by_unit=by_u,
        unit_quantity=uq,
        clean_value=f_clean,
        corrupted_value=f_corr,
        layer=name,
        target=describe_target(model, record(model, xc), target),
        direction=direction,
        units=group,
        clean=xc,
        corrupted=xr,
    )
