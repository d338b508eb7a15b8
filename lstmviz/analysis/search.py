"""Unit search: which unit tracks a signal? Rank every unit by its Pearson correlation."""

from __future__ import annotations

import numpy as np

from ..engine.trace import LayerTrace
from ..errors import LstmvizError
from ._util import check_layer_trace, quantity, valid_mask


def correlations(
    layer_trace: LayerTrace, signal: np.ndarray, quantity_name: str = "cell"
) -> np.ndarray:
    """Pearson r of every unit's ``quantity_name`` with ``signal``: ``(units,)`` float64.

    Pooled over every batch item and timestep that counts: masked steps and steps where the
    signal is NaN are left out. A unit (or a signal) that never varies gets r = 0.
    """
    lt = check_layer_trace(layer_trace)
    sig = np.asarray(signal, dtype=np.float64)
    want = (lt.batch_size, lt.timesteps)
    if sig.ndim == 1 and lt.batch_size == 1 and sig.shape[0] == lt.timesteps:
        sig = sig[None]
    if sig.shape != want:
        raise LstmvizError(
            f"signal has shape {sig.shape}; expected (batch, T) = {want} to match layer {lt.name!r}"
        )
    keep = valid_mask(lt) & np.isfinite(sig)  # (B, T)
    n = int(keep.sum())
    if n < 2:
        raise LstmvizError(f"the signal has {n} usable step(s); at least 2 are needed")
    a = np.asarray(quantity(lt, quantity_name), dtype=np.float64)[keep]  # (N, U)
    s = sig[keep]  # (N,)
    a = a - a.mean(axis=0)
    s = s - s.mean()
    den = np.sqrt((a * a).sum(axis=0) * (s * s).sum())  # (U,)
    num = s @ a  # (U,)
    r = np.zeros(a.shape[1])
    ok = den > 1e-12 * max(1.0, float(np.abs(num).max(initial=0.0)))
    r[ok] = num[ok] / den[ok]
    return np.clip(r, -1.0, 1.0)


def rank_units(
    layer_trace: LayerTrace, signal: np.ndarray, quantity: str = "cell"
) -> list[tuple[int, float]]:
    """Rank the units of a layer by how well they track a signal.

    Parameters
    ----------
    layer_trace : LayerTrace
        One LSTM layer of a trace.
    signal : array_like, (batch, T)
        A value per batch item and timestep: a painted mask, a regex match, a probe such as
        the carry bit (:mod:`lstmviz.analysis.probes`). NaN marks steps to ignore.
    quantity : str
        Which quantity to correlate: ``"cell"`` (default), ``"hidden"``, a gate, or a
        pre-activation (``"z_f"``...).

    Returns
    -------
    list of (int, float)
        ``(unit, r)`` for every unit, sorted by ``|r|`` (largest first); r is Pearson's
        correlation over all batch items and valid timesteps.

    Examples
    --------
    >>> from lstmviz.analysis import rank_units, probes
    >>> lt = model.trace(x).layer(0)
    >>> rank_units(lt, probes.carry_out(x))[:3]      # doctest: +SKIP
    [(5, -0.97), (2, 0.41), (0, 0.12)]
    """
    r = correlations(layer_trace, signal, quantity)
    order = np.argsort(-np.abs(r), kind="stable")
    return [(int(u), float(r[u])) for u in order]
