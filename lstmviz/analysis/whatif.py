"""What-if: change the input at one step and see everything that changes downstream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..engine.trace import QUANTITIES, Trace
from ..errors import InputError
from ._util import engine_model


@dataclass(frozen=True)
class WhatIf:
    """Two traces of the same model, before and after one input change.

    Attributes
    ----------
    t, batch : int
        Where the input changed.
    x_before, x_after : ndarray
        The two inputs.
    before, after : Trace
    divergence : dict
        ``{layer: {quantity: (T,) float32}}``: the largest ``|after - before|`` over units at
        every step, for batch item ``batch``. Zero before ``t`` for forward layers.
    output_change : ndarray or None
        ``(T,)`` largest change of the model's head at every step (``Trace.step_output``),
        or None when the model has no per-step output.
    """

    t: int
    batch: int
    x_before: Any
    x_after: Any
    before: Trace
    after: Trace
    divergence: dict[str, dict[str, np.ndarray]]
    output_change: np.ndarray | None

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    def diff(self, layer: str | int, quantity: str) -> np.ndarray:
        """``after - before`` of one quantity for batch item ``batch``: ``(T, units)``."""
        a = self.after.layer(layer).get(quantity)[self.batch]
        b = self.before.layer(layer).get(quantity)[self.batch]
        return np.asarray(np.asarray(a, np.float32) - b, np.float32)

    @property
    def output_before(self) -> Any:
        return self.before.output

    @property
    def output_after(self) -> Any:
        return self.after.output

    def first_affected(self, layer: str | int, tol: float = 1e-6) -> int | None:
        """The first input position where any quantity of ``layer`` changed by more than
        ``tol`` (None when nothing did)."""
        lt = self.before.layer(layer)
        div = self.divergence[lt.name]
        worst = np.max(np.stack(list(div.values())), axis=0)  # (T,)
        hit = np.flatnonzero(worst > tol)
        return int(hit[0]) if hit.size else None


def what_if(
    model: Model,
    x: Any,
    t: int,
    value: Any,
    batch: int = 0,
    before: Trace | None = None,
    initial_state: dict[str, Any] | None = None,
    out: Trace | None = None,
) -> WhatIf:
    """Replace the input at step ``t`` of batch item ``batch`` and retrace from ``t``.

    The new trace reuses ``before``: every LSTM copies the steps its input did not change
    and computes the rest (``Model.trace(x, reuse=before)``; equal to a full trace bit for
    bit), so a change in the middle of a forward model costs half a trace.

    Parameters
    ----------
    model : Model
    x : array_like
        ``(batch, T)`` token ids or ``(batch, T, F)`` features.
    t : int
        The step to change.
    value : int or array_like
        The new token id (a token model) or feature vector ``(F,)``.
    batch : int
        Batch item to change.
    before : Trace, optional
        The trace of ``x`` if already computed (saves one pass).
    initial_state : dict, optional
        Passed to :meth:`Model.trace` for both runs.
    out : Trace, optional
        The ``after`` trace of a previous what-if on this model and an input of the same
        shape: its buffers are overwritten instead of allocating new ones (a what-if slider);
        it becomes stale.  Not ``before`` itself.

    Returns
    -------
    WhatIf
    """
    engine_model(model, "what_if", live_ok=True)
    if isinstance(x, list):
        raise InputError("what-if works on single-input models")
    xb = np.array(model.check_input(x))  # validated copy
    if not 0 <= batch < xb.shape[0]:
        raise InputError(f"batch item {batch} outside 0..{xb.shape[0] - 1}")
    if not 0 <= t < xb.shape[1]:
        raise InputError(f"step t={t} outside the sequence (0..{xb.shape[1] - 1})")
    xa = xb.copy()
    if model.takes_tokens:
        try:
            xa[batch, t] = int(value)
        except (TypeError, ValueError):
            raise InputError(f"a token model needs an integer token id; got {value!r}") from None
    else:
        v = np.asarray(value, np.float32).reshape(-1)
        if v.shape[0] != xb.shape[2]:
            raise InputError(
                f"the new input at t={t} needs {xb.shape[2]} features; got {v.shape[0]}"
            )
        xa[batch, t] = v
    tb = before if before is not None else model.trace(xb, initial_state=initial_state)
    if out is not None and any(
        np.shares_memory(lo.pre, lb.pre) for lo in out.layers for lb in tb.layers
    ):
        raise InputError(
            "out= shares its buffers with the trace before the change; pass the previous "
            "what-if's `after` trace, or None"
        )
    ta = model.trace(xa, initial_state=initial_state, reuse=tb, out=out)
    div: dict[str, dict[str, np.ndarray]] = {}
    for la, lb in zip(ta.layers, tb.layers, strict=True):
        # steps outside the recomputed range were copied from `before`: no change there
        lo, hi = la.meta.get("recomputed", (0, la.timesteps))
        div[lb.name] = {}
        for q in QUANTITIES:
            d = np.zeros(la.timesteps, np.float32)
            if hi > lo:
                a = np.asarray(la.get(q)[batch, lo:hi], np.float32)
                d[lo:hi] = np.abs(a - lb.get(q)[batch, lo:hi]).max(axis=1)
            div[lb.name][q] = d
    out_change = None
    if ta.step_output is not None and tb.step_output is not None:
        out_change = np.abs(ta.step_output[batch] - tb.step_output[batch]).max(axis=-1)
        out_change = out_change.astype(np.float32)
    return WhatIf(
        t=t,
        batch=batch,
        x_before=xb,
        x_after=xa,
        before=tb,
        after=ta,
        divergence=div,
        output_change=out_change,
    )
