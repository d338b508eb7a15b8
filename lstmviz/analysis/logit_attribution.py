"""Direct logit attribution: how much each unit's hidden state writes into one output.

A Dense head reads the last LSTM's hidden state: ``logit_k(t) = Σ_u W[u, k] · h_t[u] + b_k``.
Each term ``W[u, k] · h_t[u]`` is unit u's *direct* contribution to output k at step t -- no
gradient, no approximation: the terms and the bias add up to the logit exactly. (What unit u
does through the later steps is not in it: that is what interventions and gradients show.)

In a stacked model every LSTM layer's hidden state can be read through the same head where the
sizes fit ("what would the model say if this layer were the last?"), as a logit lens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import layers as L
from ..engine.model import Model
from ..engine.reprs import dataclass_repr
from ..errors import InputError, LstmvizError
from ._util import engine_model

Arr = np.ndarray


@dataclass(frozen=True, eq=False)
class LogitAttribution:
    """Each unit's direct contribution to one output of a Dense head.

    Attributes
    ----------
    contributions : ndarray
        ``(batch, T, units)``: ``W[u, k] · h_t[u]``.
    bias : float
        ``b_k`` (0 without a bias).
    logit : ndarray
        ``(batch, T)``: the contributions summed plus the bias -- the head's pre-activation.
    layer : str
        The LSTM trace read (for a Bidirectional: both halves, forward units first).
    head : str
        The Dense layer.
    k : int
        The output unit.
    lens : dict
        ``{trace name: (batch, T, K)}``: every LSTM layer whose hidden state fits the head,
        read through it (the logit lens).
    """

    contributions: Arr
    bias: float
    logit: Arr
    layer: str
    head: str
    k: int
    lens: dict[str, Arr]

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    def top_units(self, b: int = 0, t: int = -1, n: int = 5) -> list[tuple[int, float]]:
        """The ``n`` units with the largest ``|contribution|`` at step ``t``."""
        c = self.contributions[b, t]
        order = np.argsort(-np.abs(c), kind="stable")[:n]
        return [(int(u), float(c[u])) for u in order]


def _head(model: Model) -> tuple[Any, Any]:
    """The Dense head that reads the last LSTM (through dropout-like layers only), and that
    LSTM layer."""
    last = None
    for n in model.nodes:
        if isinstance(n.layer, (L.LSTM, L.Bidirectional)):
            last = n
    if last is None:
        raise LstmvizError("the model has no LSTM layer")
    src = {(last.layer.name, last.index)}
    for n in model.nodes:
        ins = {(r[0], r[1]) for r in n.inputs}
        if not ins or not ins <= src:
            continue
        lay = n.layer
        if isinstance(lay, L.Identity):
            src.add(n.key)
            continue
        inner = lay.inner if isinstance(lay, L.TimeDistributed) else lay
        if isinstance(inner, L.Dense):
            return inner, last.layer
        break
    raise LstmvizError(
        "direct logit attribution needs a Dense layer reading the last LSTM's output; this "
        f"model's last LSTM {last.layer.name!r} feeds something else"
    )


def logit_attribution(
    model: Model, x: Any, k: int, *, batch: int | None = None
) -> LogitAttribution:
    """Each unit's direct contribution ``W[u, k] · h_t[u]`` to output ``k`` at every step.

    For a model whose last LSTM returns only ``h_T`` the head is applied at every step, as
    :attr:`Trace.step_output` does ("the answer if the sequence ended here").

    Parameters
    ----------
    model : Model
    x : array_like
        The input.
    k : int
        The output unit of the head.
    batch : int, optional
        Keep only this batch item (as a batch of one).
    """
    engine_model(model, "logit_attribution")
    head, lstm = _head(model)
    kern = np.asarray(head.kernel, np.float64)
    n_k = kern.shape[1]
    if not isinstance(k, (int, np.integer)) or not -n_k <= k < n_k:
        raise InputError(f"k: the head {head.name!r} has {n_k} outputs (0..{n_k - 1}); got {k!r}")
    tr = model.trace(x, step_outputs=False)
    if isinstance(lstm, L.Bidirectional):
        if lstm.merge_mode != "concat":
            raise LstmvizError(
                f"direct logit attribution reads a Bidirectional with merge_mode='concat'; "
                f"{lstm.name!r} uses {lstm.merge_mode!r}"
            )
        f, b = tr.layer(f"{lstm.name}/forward"), tr.layer(f"{lstm.name}/backward")
        h = np.concatenate([np.asarray(f.hidden), np.asarray(b.hidden)], axis=-1)
        name = lstm.name
    else:
        lt = tr.layer(lstm.name)
        h, name = np.asarray(lt.hidden), lt.name
    h = np.asarray(h, np.float64)
    if batch is not None:
        if not 0 <= batch < h.shape[0]:
            raise InputError(f"batch item {batch} outside 0..{h.shape[0] - 1}")
        h = h[batch : batch + 1]
    if h.shape[-1] != kern.shape[0]:
        raise LstmvizError(
            f"the head {head.name!r} reads {kern.shape[0]} values; the LSTM gives {h.shape[-1]}"
        )
    contrib = h * kern[:, k]  # (B, T, U)
    bias = 0.0 if head.bias is None else float(head.bias[k])
    lens: dict[str, Arr] = {}
    for lt in tr.layers:
        hh = np.asarray(lt.hidden, np.float64)
        if batch is not None:
            hh = hh[batch : batch + 1]
        if hh.shape[-1] == kern.shape[0]:
            lens[lt.name] = hh @ kern + (0 if head.bias is None else np.asarray(head.bias))
    return LogitAttribution(
        contributions=contrib,
        bias=bias,
        logit=contrib.sum(axis=-1) + bias,
        layer=name,
        head=head.name,
        k=int(k),
        lens=lens,
    )
