"""LSTMs with a projection of the hidden state (PyTorch ``proj_size``, TF1 ``num_proj``).

The usual six equations, then one more (PyTorch ``nn.LSTM`` with ``proj_size > 0``)::

    h = (o * tanh(c)) @ P                      P = weight_hr^T, (U, P)

so ``h`` has P columns, the recurrent kernel is ``(P, 4U)`` and the gates and the cell keep U.
This loop is separate from :func:`lstmviz.engine.cell.run_lstm` so that the common path stays
as it is; ``run_lstm`` dispatches here when ``weights.projection`` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, ModelFileError
from . import activations
from .trace import LayerTrace

if TYPE_CHECKING:
    from .cell import LSTMWeights


def check_projection(w: LSTMWeights, k: np.ndarray, r: np.ndarray) -> None:
    """Validate kernel ``(F, 4U)``, recurrent_kernel ``(P, 4U)``, projection ``(U, P)`` and
    store the float32 projection on ``w`` (called from ``LSTMWeights.__post_init__``)."""
    p = np.ascontiguousarray(w.projection, dtype=np.float32)
    if k.ndim != 2 or k.shape[1] % 4 or p.ndim != 2 or p.shape[0] != k.shape[1] // 4:
        raise ModelFileError(
            "projected LSTM weights do not fit together: expected kernel (F, 4U) and "
            f"projection (U, P); found kernel {k.shape}, projection {p.shape}"
        )
    if r.shape != (p.shape[1], k.shape[1]):
        raise ModelFileError(
            "projected LSTM weights do not fit together: expected recurrent_kernel (P, 4U) = "
            f"{(p.shape[1], k.shape[1])}; found {r.shape}"
        )
    object.__setattr__(w, "projection", p)


def run_lstm_projected(
    x: np.ndarray,
    weights: LSTMWeights,
    *,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    name: str = "lstm",
    layer_name: str | None = None,
    direction: str = "forward",
) -> LayerTrace:
    """:func:`~lstmviz.engine.cell.run_lstm` for weights with a ``projection``.

    The trace's gates and ``cell`` are ``(batch, T, U)``; ``hidden`` (the projected h) and
    ``h0`` have P columns. ``LayerTrace.units`` is U, ``LayerTrace.hidden_units`` is P.
    """
    proj = weights.projection
    assert proj is not None
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise InputError(f"LSTM {name!r} expects input (batch, T, features); found shape {x.shape}")
    batch, steps, feats = x.shape
    if feats != weights.input_dim:
        raise InputError(f"LSTM {name!r} expects {weights.input_dim} input features; found {feats}")
    units, pdim = weights.units, weights.output_units
    from .cell import _check_state  # (cell imports this module)

    h_tm1 = _check_state("hidden state h0", h0, batch, pdim)  # (B, P)
    c_tm1 = _check_state("cell state c0", c0, batch, units)  # (B, U)
    h0_, c0_ = h_tm1.copy(), c_tm1.copy()
    kernel, rec, bias = weights._internal()  # blocks i, f, o, c; rec (P, 4U)

    pre = np.empty((steps, batch, 4 * units), np.float32)
    np.matmul(x.transpose(1, 0, 2), kernel, out=pre)  # (T, B, F) @ (F, 4U)
    if bias is not None:
        pre += bias
    act = np.empty_like(pre)  # (T, B, 4U) i, f, o, g
    cs = np.empty((steps, batch, units), np.float32)
    hs = np.empty((steps, batch, pdim), np.float32)
    rec_z = np.empty((batch, 4 * units), np.float32)
    ig = np.empty((batch, units), np.float32)
    hu = np.empty((batch, units), np.float32)  # o * tanh(c) before the projection
    sig = activations.get(weights.recurrent_activation)
    tanh = activations.get(weights.activation)
    m = None
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (batch, steps):
            raise InputError(f"mask has shape {m.shape}; expected ({batch}, {steps})")
        if m.all():
            m = None
    g3 = 3 * units
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    for t in order:
        z = pre[t]  # (B, 4U)
        np.matmul(h_tm1, rec, out=rec_z)  # (B, P) @ (P, 4U)
        z += rec_z
        a = act[t]
        sig(z[:, :g3], a[:, :g3])  # i, f, o
        tanh(z[:, g3:], a[:, g3:])  # g
        i, f, o, g = (a[:, :units], a[:, units : 2 * units], a[:, 2 * units : g3], a[:, g3:])
        c = cs[t]
        np.multiply(f, c_tm1, out=c)  # c = f * c_tm1 + i * g
        np.multiply(i, g, out=ig)
        c += ig
        tanh(c, hu)  # h = (o * tanh(c)) @ P
        hu *= o
        h = hs[t]
        np.matmul(hu, proj, out=h)  # (B, U) @ (U, P)
        if m is not None:
            keep = ~m[:, t]
            if keep.any():
                c[keep] = c_tm1[keep]
                h[keep] = h_tm1[keep]
        h_tm1, c_tm1 = h, c
    return LayerTrace(
        name=name,
        weights=weights,
        pre=pre,
        act=act,
        c=cs,
        h=hs,
        h0=h0_,
        c0=c0_,
        x=np.array(x, copy=True) if not x.flags.owndata else x,
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        go_backwards=go_backwards,
        layer_name=layer_name or name,
        direction=direction,
        meta={"projection": pdim},
    )
