"""Compare two models (or two training snapshots) on the same input, units aligned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..engine.trace import LayerTrace, Trace
from ..errors import LstmvizError
from ._util import check_layer_trace, quantity, valid_mask


def _corr_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between every column of ``a`` (N, Ua) and of ``b`` (N, Ub): (Ua, Ub)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na = np.sqrt((a * a).sum(axis=0))  # (Ua,)
    nb = np.sqrt((b * b).sum(axis=0))  # (Ub,)
    r = a.T @ b  # (Ua, Ub)
    den = np.outer(na, nb)
    ok = den > 1e-12
    out = np.zeros_like(r)
    out[ok] = r[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def align_units(
    lt_a: LayerTrace, lt_b: LayerTrace, quantity_name: str = "hidden"
) -> tuple[np.ndarray, np.ndarray]:
    """Match every unit of layer A to a distinct unit of layer B by correlation.

    Both traces must come from the same input (same batch and timesteps). The pairs are
    chosen greedily by the largest ``|r|`` first (units of a network are only defined up to
    a permutation and a sign, so ``r = -0.98`` is a good match).

    Parameters
    ----------
    lt_a, lt_b : LayerTrace
    quantity_name : str
        The quantity whose time courses are correlated (default the hidden state).

    Returns
    -------
    order : ndarray, int, (units_a,)
        ``order[k]`` is the unit of B matched to unit k of A, or -1 when B has fewer units.
    r : ndarray, float, (units_a,)
        The correlation of each pair (0 for unmatched units).
    """
    lt_a = check_layer_trace(lt_a, "lt_a")
    lt_b = check_layer_trace(lt_b, "lt_b")
    if (lt_a.batch_size, lt_a.timesteps) != (lt_b.batch_size, lt_b.timesteps):
        raise LstmvizError(
            f"the two traces cover different inputs: (batch, T) = "
            f"{(lt_a.batch_size, lt_a.timesteps)} vs {(lt_b.batch_size, lt_b.timesteps)}"
        )
    keep = valid_mask(lt_a) & valid_mask(lt_b)
    a = np.asarray(quantity(lt_a, quantity_name)[keep], np.float64)  # (N, Ua)
    b = np.asarray(quantity(lt_b, quantity_name)[keep], np.float64)  # (N, Ub)
    r = _corr_matrix(a, b)  # (Ua, Ub)
    ua, ub = r.shape
    order = -np.ones(ua, np.int64)
    rr = np.zeros(ua)
    score = np.abs(r)
    flat = np.argsort(-score, axis=None, kind="stable")
    used_a = np.zeros(ua, bool)
    used_b = np.zeros(ub, bool)
    left = min(ua, ub)
    for idx in flat:
        i, j = divmod(int(idx), ub)
        if used_a[i] or used_b[j]:
            continue
        order[i] = j
        rr[i] = r[i, j]
        used_a[i] = used_b[j] = True
        left -= 1
        if left == 0:
            break
    return order, rr


@dataclass(frozen=True)
class Comparison:
    """Two traces on the same input, with B's units aligned to A's.

    Attributes
    ----------
    a, b : Trace
    layer_a, layer_b : str
        The compared layers.
    order, r : ndarray
        From :func:`align_units`.
    quantity : str
        The quantity used for the alignment.
    """

    a: Trace
    b: Trace
    layer_a: str
    layer_b: str
    order: np.ndarray
    r: np.ndarray
    quantity: str

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    def aligned(self, quantity_name: str | None = None) -> np.ndarray:
        """B's ``quantity`` with its units reordered (and signs flipped where r < 0 for
        signed quantities) to line up with A: ``(batch, T, units_a)``; NaN for unmatched
        units."""
        q = quantity_name or self.quantity
        b = np.asarray(self.b.layer(self.layer_b).get(q), np.float32)  # (B, T, Ub)
        out = np.full((*b.shape[:2], len(self.order)), np.nan, np.float32)
        ok = self.order >= 0
        out[..., ok] = b[..., self.order[ok]]
        if q in ("cell", "hidden", "candidate", "z_i", "z_f", "z_c", "z_o"):
            flip = ok & (self.r < 0)
            out[..., flip] *= -1.0
        return out

    def difference(self, quantity_name: str | None = None) -> np.ndarray:
        """``A - aligned B`` of ``quantity``: ``(batch, T, units_a)`` (NaN where unmatched)."""
        q = quantity_name or self.quantity
        a = np.asarray(self.a.layer(self.layer_a).get(q), np.float32)
        return a - self.aligned(q)

    @property
    def output_difference(self) -> np.ndarray | None:
        """``|A - B|`` of the per-step model outputs, ``(batch, T)`` max over classes, when
        both have the same head shape."""
        sa, sb = self.a.step_output, self.b.step_output
        if sa is None or sb is None or sa.shape != sb.shape:
            return None
        return np.abs(sa - sb).max(axis=-1)


def compare(
    model_a: Model,
    model_b: Model,
    x: Any,
    layer_a: str | int = 0,
    layer_b: str | int = 0,
    quantity: str = "hidden",
) -> Comparison:
    """Run two models on the same input and align their units.

    Parameters
    ----------
    model_a, model_b : Model
        Two models taking the same input (e.g. two training snapshots).
    x : array_like
    layer_a, layer_b : str or int
        The LSTM layers to compare (default the first of each).
    quantity : str
        The quantity used to align units.

    Returns
    -------
    Comparison
    """
    ta = model_a.trace(x)
    tb = model_b.trace(x)
    la, lb = ta.layer(layer_a), tb.layer(layer_b)
    order, r = align_units(la, lb, quantity)
    return Comparison(
        a=ta, b=tb, layer_a=la.name, layer_b=lb.name, order=order, r=r, quantity=quantity
    )
