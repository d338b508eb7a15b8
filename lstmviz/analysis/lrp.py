"""Layer-wise relevance propagation for LSTMs (Arras et al. 2017, "Explaining recurrent neural
network predictions in sentiment analysis"), in NumPy.

The target's value (a logit, by default) is the relevance to explain; every layer hands its
output's relevance back to its inputs, in proportion to what each input contributed:

* a linear map ``z = Σ_i x_i w_ij + b_j`` (Dense, Conv1D, a gate's pre-activation): the ε-rule
  ``R_i = Σ_j (x_i w_ij + β (b_j + ε sign z_j) / D) / (z_j + ε sign z_j) · R_j`` (``β`` the
  ``bias_factor``: 0, Arras et al.'s recommendation and the default, lets biases and the
  stabiliser keep their share; 1 hands it back to the inputs, so relevance is exactly
  conserved);
* the LSTM's multiplicative gates pass no relevance (Arras et al.'s "signal-take-all"):
  ``h = o · tanh(c)`` gives all of h's relevance to c; ``c = f · c_prev + i · g`` splits c's
  relevance between ``f · c_prev`` (on to c_prev) and ``i · g`` (on to g) by the ε-rule, unit by
  unit; ``g = tanh(z_g)`` passes it to ``z_g = x W_g + h_prev U_g + b_g`` and on to ``x_t`` and
  ``h_prev``;
* elementwise activations pass relevance through; an Embedding sums it over its dimensions.

With ``bias_factor=1`` the input relevances plus what the initial state receives sum to the
target's value (conservation); with 0 the rest is what the biases kept. :class:`LRPResult`
reports the balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import layers as L
from ..engine.model import Model, TensorRef
from ..engine.reprs import dataclass_repr
from ..engine.trace import LayerTrace
from ..errors import InputError, UnsupportedLayerError
from ._util import engine_model

if TYPE_CHECKING:  # the backward machinery loads on the first call (the window starts without it)
    from ..engine.backward import NodeRecord, Tape
    from .gradients import Target

Arr = np.ndarray


def lrp_linear(
    hin: Arr, w: Arr, b: Arr | None, hout: Arr, rout: Arr, eps: float, bias_factor: float
) -> Arr:
    """The ε-rule through ``hout = hin @ w + b``: relevance ``rout`` ``(N, M)`` of the outputs
    to the inputs ``(N, D)``.

    Written as two products, not the ``(N, D, M)`` table of contributions::

        R_in = hin * (s @ w^T) + β/D · Σ_j (b_j + ε sign z_j) s_j,    s = R_out / (z + ε sign z)
    """
    sign = np.where(hout >= 0, 1.0, -1.0)
    s = rout / (hout + eps * sign)  # (N, M)
    r = hin * (s @ w.T)  # (N, D)
    if bias_factor:
        bb = eps * sign if b is None else b + eps * sign
        r += bias_factor * (bb * s).sum(axis=-1, keepdims=True) / hin.shape[-1]
    return r


def _split_sum(
    parts: list[Arr], total: Arr, rout: Arr, eps: float, bias_factor: float
) -> list[Arr]:
    """The ε-rule through an elementwise sum ``total = Σ parts``."""
    sign = np.where(total >= 0, 1.0, -1.0)
    den = total + eps * sign
    share = bias_factor * eps * sign / len(parts)
    return [(p + share) / den * rout for p in parts]


@dataclass(frozen=True, eq=False)
class LRPResult:
    """Relevances of one target.

    Attributes
    ----------
    relevance : ndarray
        ``(batch, T)`` per input step (summed over the features or the embedding).
    per_feature : ndarray
        ``(batch, T, F)``, or ``(batch, T, embedding dim)`` for token ids.
    layers : dict
        ``{trace name: {"hidden", "cell", "candidate": (batch, T, units)}}``: the relevance each
        unit's h, c and g hold at every step (all paths included).
    total : ndarray
        ``(batch,)`` the relevance explained: the target's value.
    initial_state : ndarray
        ``(batch,)`` relevance handed to the LSTMs' initial states.
    absorbed : ndarray
        ``(batch,)`` what neither the inputs nor the initial states received (the biases'
        share when ``bias_factor < 1``, padding of a Conv1D); ~0 with ``bias_factor=1``.
    """

    relevance: Arr
    per_feature: Arr
    layers: dict[str, dict[str, Arr]]
    total: Arr
    initial_state: Arr
    absorbed: Arr
    eps: float
    bias_factor: float
    target: str

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    @property
    def conservation_error(self) -> Arr:
        """``|Σ input relevance + initial state - total| / |total|`` per batch item."""
        got = self.relevance.sum(axis=1) + self.initial_state
        return np.abs(got - self.total) / np.maximum(np.abs(self.total), 1e-300)


_SHAPE_ONLY = (L.Identity, L.Reshape, L.Flatten, L.Masking)


class _Rel:
    def __init__(self) -> None:
        self.r: dict[TensorRef, Arr] = {}
        self.layers: dict[str, dict[str, Arr]] = {}
        self.initial: Arr | None = None
        self.embedded: dict[TensorRef, Arr] = {}  # relevance on an Embedding's output

    def add(self, ref: TensorRef, r: Arr | None) -> None:
        if r is None:
            return
        old = self.r.get(ref)
        self.r[ref] = np.array(r, np.float64) if old is None else old + r

    def add_initial(self, r: Arr) -> None:
        per_item = r.reshape(r.shape[0], -1).sum(axis=1)
        self.initial = per_item if self.initial is None else self.initial + per_item


def lrp(
    model: Model,
    x: Any,
    target: Target,
    *,
    eps: float = 1e-3,
    bias_factor: float = 0.0,
    space: str = "logit",
    initial_state: dict[str, Any] | None = None,
) -> LRPResult:
    """Layer-wise relevance propagation of ``target`` to the input and every LSTM unit.

    Parameters
    ----------
    model : Model
    x : array_like
        ``(batch, T, F)`` floats or ``(batch, T)`` token ids.
    target : (t, k), int, array or callable
        As for :func:`lstmviz.analysis.gradient` (see :mod:`lstmviz.analysis.gradients`).
    eps : float
        The ε-rule's stabiliser.
    bias_factor : float
        0 (default, as Arras et al. recommend): biases and the stabiliser keep their share
        (``LRPResult.absorbed``); 1: they hand it on and relevance is exactly conserved.
    space : {"logit", "output"}
        Explain the head's pre-activation (Arras et al.; default) or the output itself (for a
        head without an activation the two are the same).

    Returns
    -------
    LRPResult
    """
    engine_model(model, "lrp")
    if space not in ("logit", "output"):
        raise InputError(f"space must be 'logit' or 'output' for LRP; got {space!r}")
    if eps < 0:
        raise InputError(f"eps must be >= 0; got {eps}")
    from ..engine.backward import record
    from .gradients import describe_target, output_seed

    tape = record(model, x, initial_state=initial_state, dtype=np.float64)
    seed = output_seed(model, tape, target)
    rel = _Rel()
    total = _start(model, tape, seed, space, rel, eps, bias_factor)
    _propagate(tape, rel, eps, bias_factor)
    b = seed.shape[0]
    inp = tape.inputs[0]
    if np.asarray(inp).dtype.kind == "f":
        per_feature = rel.r.get(model.inputs[0])
        if per_feature is None:
            per_feature = np.zeros(np.shape(inp))
    else:
        per_feature = None
        for r in tape.records:
            if isinstance(r.node.layer, L.Embedding) and r.node.inputs[0] == model.inputs[0]:
                per_feature = rel.embedded.get((r.node.layer.name, r.node.index, 0))
                if per_feature is None:
                    per_feature = np.zeros(np.shape(r.outs[0]))
        if per_feature is None:
            raise UnsupportedLayerError("LRP: the token ids feed no Embedding layer")
    relevance = per_feature.reshape(b, per_feature.shape[1], -1).sum(axis=-1)
    init = rel.initial if rel.initial is not None else np.zeros(b)
    absorbed = total - relevance.sum(axis=1) - init
    return LRPResult(
        relevance=relevance,
        per_feature=per_feature,
        layers=rel.layers,
        total=total,
        initial_state=init,
        absorbed=absorbed,
        eps=float(eps),
        bias_factor=float(bias_factor),
        target=describe_target(model, tape, target),
    )


def _producer(tape: Tape, ref: TensorRef) -> NodeRecord | None:
    for rec in tape.records:
        if (rec.node.layer.name, rec.node.index) == ref[:2]:
            return rec
    return None


def _start(
    model: Model, tape: Tape, seed: Arr, space: str, rel: _Rel, eps: float, bias_factor: float
) -> Arr:
    """Put the target's value as relevance where it lives; returns it per batch item."""
    ref = model.outputs[0]
    out = np.asarray(tape.values[ref], np.float64)
    b = out.shape[0]
    if space == "output":
        r = seed * out
        rel.add(ref, r)
        return r.reshape(b, -1).sum(axis=1)
    s = seed
    rec = _producer(tape, ref)
    while rec is not None and (
        isinstance(rec.node.layer, _SHAPE_ONLY)
        or (
            type(rec.node.layer).__name__ == "OpLayer"
            and rec.node.layer.kind in ("Squeeze", "ExpandDims")
        )
    ):
        s = s.reshape(np.shape(rec.ins[0]))
        ref = rec.node.inputs[0]
        rec = _producer(tape, ref)
    lay = None if rec is None else rec.node.layer
    inner = lay.inner if isinstance(lay, L.TimeDistributed) else lay
    if rec is None or not isinstance(inner, (L.Dense, L.Activation)):
        # no pre-activation to explain (the output is an LSTM's h, say): explain the output
        r = s * np.asarray(tape.values[ref], np.float64)
        rel.add(ref, r)
        return r.reshape(b, -1).sum(axis=1)
    xin = np.asarray(rec.ins[0], np.float64)
    if isinstance(inner, L.Activation):
        r = s * xin
        rel.add(rec.node.inputs[0], r)
        return r.reshape(b, -1).sum(axis=1)
    k = np.asarray(inner.kernel, np.float64)
    bias = None if inner.bias is None else np.asarray(inner.bias, np.float64)
    z = xin @ k + (0 if bias is None else bias)
    rz = s * z
    flat_x = xin.reshape(-1, xin.shape[-1])
    r_in = lrp_linear(
        flat_x, k, bias, z.reshape(-1, z.shape[-1]), rz.reshape(-1, z.shape[-1]), eps, bias_factor
    )
    rel.add(rec.node.inputs[0], r_in.reshape(xin.shape))
    return rz.reshape(b, -1).sum(axis=1)


def _propagate(tape: Tape, rel: _Rel, eps: float, bias_factor: float) -> None:
    for rec in reversed(tape.records):
        lay = rec.node.layer
        routs = [rel.r.pop((lay.name, rec.node.index, i), None) for i in range(len(rec.outs))]
        if all(r is None for r in routs):
            continue
        rins, rstates = _node(rec, routs, rel, eps, bias_factor, tape)
        for ref, r in zip(rec.node.inputs, rins, strict=True):
            rel.add(ref, r)
        if rstates is not None:
            refs = rec.node.kwargs.get("initial_state")
            if refs:
                for ref, r in zip(refs, rstates, strict=False):
                    rel.add(ref, r)
            else:
                for r in rstates:
                    rel.add_initial(r)


def lstm_lrp(
    lt: LayerTrace, rh_out: Arr | None, rc_out: Arr | None, eps: float, bias_factor: float
) -> tuple[Arr, Arr, Arr, dict[str, Arr]]:
    """LRP through one recorded LSTM (direction): ``(R_x (B, T, F), R_h0, R_c0, per-unit)``.

    ``rh_out`` ``(T, B, P)`` / ``rc_out`` ``(T, B, U)``: relevance arriving at h_t / c_t from the
    layer's outputs (time-major, input order)."""
    w = lt.weights
    steps, batch, units = lt.c.shape
    pdim = lt.h.shape[2]
    dt = np.float64
    kernel, rec, bias = (None if a is None else np.asarray(a, dt) for a in w._internal())
    assert kernel is not None and rec is not None
    g3 = 3 * units
    w_g = np.concatenate([kernel[:, g3:], rec[:, g3:]])  # (F + P, U): z_g = [x, h_prev] @ w_g + b_g
    b_g = None if bias is None else bias[g3:]
    proj = None if w.projection is None else np.asarray(w.projection, dt)
    from ..engine import activations

    act_fn = activations.get(w.activation)
    rx = np.zeros((steps, batch, w.input_dim))
    rh_tot = np.zeros((steps, batch, pdim))
    rc_tot = np.zeros((steps, batch, units))
    rg = np.zeros((steps, batch, units))
    rh_carry = np.zeros((batch, pdim))
    rc_carry = np.zeros((batch, units))
    m = None if lt.mask is None else np.asarray(lt.mask, bool)
    order = range(steps) if lt.go_backwards else range(steps - 1, -1, -1)
    x = np.asarray(lt.x, dt)
    for t in order:
        p = lt.prev_index(t)
        h_prev = np.asarray(lt.h0 if p is None else lt.h[p], dt)
        c_prev = np.asarray(lt.c0 if p is None else lt.c[p], dt)
        rh = rh_carry + (0 if rh_out is None else rh_out[t])
        rc = rc_carry + (0 if rc_out is None else rc_out[t])
        rh_tot[t] = rh
        a = np.asarray(lt.act[t], dt)
        i, f, o, g = a[:, :units], a[:, units : 2 * units], a[:, 2 * units : g3], a[:, g3:]
        c = np.asarray(lt.c[t], dt)
        if proj is None:
            r_hu = rh  # h = o * tanh(c): all of h's relevance to c
        else:
            hu = o * act_fn(c, np.empty_like(c))
            r_hu = lrp_linear(hu, proj, None, np.asarray(lt.h[t], dt), rh, eps, bias_factor)
        r_c = rc + r_hu
        keep = None
        if m is not None and not m[:, t].all():
            keep = ~m[:, t]
            r_c = np.where(keep[:, None], rc, r_c)  # a masked step's c did not make its h
        rc_tot[t] = r_c
        r_prev, r_g = _split_sum([f * c_prev, i * g], c, r_c, eps, bias_factor)
        z_g = np.asarray(lt.pre[t][:, g3:], dt)
        r_in = lrp_linear(
            np.concatenate([x[:, t], h_prev], axis=1), w_g, b_g, z_g, r_g, eps, bias_factor
        )
        rx_t = r_in[:, : w.input_dim]
        new_h = r_in[:, w.input_dim :]
        if keep is not None:  # masked: the state passes straight through, the input gets none
            rx_t = np.where(keep[:, None], 0.0, rx_t)
            new_h = np.where(keep[:, None], rh, new_h)
            r_prev = np.where(keep[:, None], rc, r_prev)
            r_g = np.where(keep[:, None], 0.0, r_g)
        rg[t] = r_g
        rx[t] = rx_t
        rh_carry, rc_carry = new_h, r_prev
    per_unit = {
        "hidden": rh_tot.transpose(1, 0, 2),
        "cell": rc_tot.transpose(1, 0, 2),
        "candidate": rg.transpose(1, 0, 2),
    }
    return rx.transpose(1, 0, 2), rh_carry, rc_carry, per_unit


def _node(
    rec: NodeRecord, routs: list[Arr | None], rel: _Rel, eps: float, bf: float, tape: Tape
) -> tuple[Sequence[Arr | None], list[Arr] | None]:
    lay = rec.node.layer
    kind = type(lay).__name__
    if isinstance(lay, L.Bidirectional):
        return _bidi(rec, routs, rel, eps, bf)
    if isinstance(lay, L.LSTM):
        from ..engine.backward import lstm_output_grads

        lt = rec.traces[0]
        rh, rc = lstm_output_grads(
            lay,
            lt,
            rec.masks[0],
            routs[0],
            routs[1] if len(routs) > 1 else None,
            routs[2] if len(routs) > 2 else None,
        )
        rx, rh0, rc0, per_unit = lstm_lrp(lt, rh, rc, eps, bf)
        rel.layers[lt.name] = per_unit
        return [rx], [rh0, rc0]
    if kind == "SubModel":
        assert rec.sub is not None
        for ref, r in zip(rec.sub.model.outputs, routs, strict=True):
            rel.add(ref, r)
        _propagate(rec.sub, rel, eps, bf)
        return [rel.r.pop(ref, None) for ref in rec.sub.model.inputs], None
    r = routs[0]
    assert r is not None
    x = np.asarray(rec.ins[0], np.float64) if rec.ins else None
    y = np.asarray(rec.outs[0], np.float64)
    if isinstance(lay, (L.Identity, L.Masking, L.Activation)):
        return [r], None  # elementwise: relevance passes through
    if isinstance(lay, L.Embedding):  # relevance stays on the embedded vectors (lrp() reads it)
        ref = (lay.name, rec.node.index, 0)
        rel.embedded[ref] = r + rel.embedded.get(ref, 0)
        return [None], None
    if isinstance(lay, (L.Flatten, L.Reshape)) or (
        kind == "OpLayer" and lay.kind in ("Squeeze", "ExpandDims")
    ):
        assert x is not None  # a reshaping layer always has an input
        return [r.reshape(x.shape)] + [None] * (len(rec.ins) - 1), None
    if isinstance(lay, L.Permute):
        return [r.transpose(np.argsort((0, *lay.dims)))], None
    if isinstance(lay, L.RepeatVector):
        return [r.sum(axis=1)], None
    if kind == "LastStep":
        assert x is not None
        out = np.zeros(x.shape)
        out[:, -1] = r
        return [out], None
    if isinstance(lay, (L.Dense, L.TimeDistributed)):
        inner = lay.inner if isinstance(lay, L.TimeDistributed) else lay
        if not isinstance(inner, L.Dense):
            raise UnsupportedLayerError(
                f"LRP: no rule for {lay.name!r} ({lay.kind} of {inner.kind})"
            )
        assert x is not None
        k = np.asarray(inner.kernel, np.float64)
        bias = None if inner.bias is None else np.asarray(inner.bias, np.float64)
        z = x @ k + (0 if bias is None else bias)  # relevance passes the activation unchanged
        fx = x.reshape(-1, x.shape[-1])
        ri = lrp_linear(fx, k, bias, z.reshape(-1, k.shape[1]), r.reshape(-1, k.shape[1]), eps, bf)
        return [ri.reshape(x.shape)], None
    if isinstance(lay, L.Conv1D):
        assert x is not None
        return [_conv_lrp(lay, x, r, eps, bf)], None
    if isinstance(lay, L.BatchNormalization):
        assert x is not None
        axis = lay.axis if lay.axis >= 0 else x.ndim + lay.axis
        shape = [1] * x.ndim
        shape[axis] = -1
        inv = 1.0 / np.sqrt(np.asarray(lay.var, np.float64) + lay.epsilon)
        if lay.gamma is not None:
            inv = inv * np.asarray(lay.gamma, np.float64)
        lin = x * inv.reshape(shape)
        sign = np.where(y >= 0, 1.0, -1.0)
        const = y - lin
        return [(lin + bf * (const + eps * sign)) / (y + eps * sign) * r], None
    if isinstance(lay, L.GlobalPooling1D):
        assert x is not None
        if lay.kind == "GlobalAveragePooling1D":
            m = rec.masks[0]
            w = np.ones(x.shape[:2]) if m is None else np.asarray(m, np.float64)
            w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-7)
            parts = x * w[..., None]  # (B, T, D) contributions to y
            sign = np.where(y >= 0, 1.0, -1.0)[:, None, :]
            share = bf * eps * sign / x.shape[1]
            return [(parts + share) / (y[:, None, :] + eps * sign) * r[:, None, :]], None
        hit = x == y[:, None, :]
        if rec.masks[0] is not None:
            hit &= np.asarray(rec.masks[0], bool)[..., None]
        return [hit / np.maximum(hit.sum(axis=1, keepdims=True), 1) * r[:, None, :]], None
    if isinstance(lay, L.Merge):
        ins = [np.asarray(a, np.float64) for a in rec.ins]
        if lay.kind == "Concatenate":
            ax = lay.axis if lay.axis >= 0 else r.ndim + lay.axis
            return list(np.split(r, np.cumsum([a.shape[ax] for a in ins])[:-1], axis=ax)), None
        if lay.kind in ("Add", "Average", "Subtract"):
            parts = [a / (len(ins) if lay.kind == "Average" else 1) for a in ins]
            if lay.kind == "Subtract":
                parts = [ins[0], -ins[1]]
            return _split_sum(parts, y, r, eps, bf), None
        if lay.kind in ("Maximum", "Minimum"):
            best = np.max(ins, axis=0) if lay.kind == "Maximum" else np.min(ins, axis=0)
            taken = np.zeros(r.shape, bool)
            winners: list[Arr] = []
            for a in ins:
                hit = (a == best) & ~taken
                taken |= hit
                winners.append(r * hit)
            return winners, None
    raise UnsupportedLayerError(
        f"LRP has no rule for layer {lay.name!r} ({lay.kind}); use integrated gradients or "
        "occlusion for this model"
    )


def _bidi(
    rec: NodeRecord, routs: list[Arr | None], rel: _Rel, eps: float, bf: float
) -> tuple[Sequence[Arr | None], list[Arr] | None]:
    lay = rec.node.layer
    assert isinstance(lay, L.Bidirectional)
    lf, lb = rec.traces
    mask = rec.masks[0]
    mm = lay.merge_mode
    n_main = 2 if mm in (None, "None", "none") else 1
    extra = [*routs[n_main:], None, None, None, None]
    of = lay.forward.outputs_from(lf, mask)
    ob = lay.backward.outputs_from(lb, mask)
    yf, yb = np.asarray(of[0], np.float64), np.asarray(ob[0], np.float64)
    if lay.return_sequences:
        if lay.backward.go_backwards:
            yb = yb[:, ::-1]
        if lay.forward.go_backwards:
            yf = yf[:, ::-1]
    r = routs[0]
    if n_main == 2:
        rf, rb = routs[0], routs[1]
    elif r is None:
        rf = rb = None
    elif mm == "concat":
        rf, rb = r[..., : yf.shape[-1]], r[..., yf.shape[-1] :]
    elif mm in ("sum", "ave"):
        total = yf + yb if mm == "sum" else (yf + yb) / 2
        scale = 1.0 if mm == "sum" else 0.5
        rf, rb = _split_sum([scale * yf, scale * yb], total, r, eps, bf)
    else:
        raise UnsupportedLayerError(
            f"LRP has no rule for Bidirectional {lay.name!r} with merge_mode={mm!r}"
        )
    if lay.return_sequences:
        if rb is not None and lay.backward.go_backwards:
            rb = rb[:, ::-1]
        if rf is not None and lay.forward.go_backwards:
            rf = rf[:, ::-1]
    from ..engine.backward import lstm_output_grads

    rx_total = None
    states: list[Arr] = []
    for half, lt, rr, rh_, rc_ in (
        (lay.forward, lf, rf, extra[0], extra[1]),
        (lay.backward, lb, rb, extra[2], extra[3]),
    ):
        rh, rc = lstm_output_grads(half, lt, mask, rr, rh_, rc_)
        rx, rh0, rc0, per_unit = lstm_lrp(lt, rh, rc, eps, bf)
        rel.layers[lt.name] = per_unit
        rx_total = rx if rx_total is None else rx_total + rx
        states += [rh0, rc0]
    return [rx_total], states


def _conv_lrp(lay: L.Conv1D, x: Arr, r: Arr, eps: float, bf: float) -> Arr:
    """The ε-rule through a Conv1D, one output position's receptive field at a time (im2col)."""
    from ..engine.backward import _conv_geometry

    kern = np.asarray(lay.kernel, np.float64)
    k, cin_g, cout = kern.shape
    b_, t, _ = x.shape
    left, right, n_out = _conv_geometry(lay, t)
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)))
    s, d = lay.strides, lay.dilation
    bias = None if lay.bias is None else np.asarray(lay.bias, np.float64)
    rp = np.zeros(xp.shape)
    groups = lay.groups
    cout_g = cout // groups
    for gi in range(groups):
        ci = slice(gi * cin_g, (gi + 1) * cin_g)
        co = slice(gi * cout_g, (gi + 1) * cout_g)
        cols = np.stack(
            [xp[:, j * d : j * d + s * (n_out - 1) + 1 : s, ci] for j in range(k)], axis=2
        )  # (B, n_out, k, Cin_g)
        flat = cols.reshape(b_ * n_out, k * cin_g)
        wmat = kern[:, :, co].reshape(k * cin_g, cout_g)
        bg = None if bias is None else bias[co]
        z = flat @ wmat + (0 if bg is None else bg)
        ri = lrp_linear(flat, wmat, bg, z, r[:, :, co].reshape(-1, cout_g), eps, bf)
        ri = ri.reshape(b_, n_out, k, cin_g)
        for j in range(k):
            rp[:, j * d : j * d + s * (n_out - 1) + 1 : s, ci] += ri[:, :, j]
    return rp[:, left : left + t]  # relevance on the padding is lost (LRPResult.absorbed)
