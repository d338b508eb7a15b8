"""The LSTM cell, in Keras's layout, and the recurrence that records everything.

The six equations (Keras ``keras/src/layers/rnn/lstm.py``; gate order i, f, c, o)::

    i = σ(x_t W_i + h_tm1 U_i + b_i)          input gate
    f = σ(x_t W_f + h_tm1 U_f + b_f)          forget gate
    g = tanh(x_t W_c + h_tm1 U_c + b_c)       candidate
    o = σ(x_t W_o + h_tm1 U_o + b_o)          output gate
    c = f * c_tm1 + i * g                     cell state
    h = o * tanh(c)                           hidden state

with σ = ``recurrent_activation`` and tanh = ``activation`` (both configurable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, LstmvizError, ModelFileError
from . import _accel, _pool, activations
from .trace import LayerTrace

# Keras blocks (i, f, c, o) -> internal blocks (i, f, o, c): the three gates contiguous.
_TO_INTERNAL = (0, 1, 3, 2)


@dataclass(frozen=True, eq=False)
class LSTMWeights:
    """One LSTM's weights in Keras's layout.

    kernel ``(F, 4U)``, recurrent_kernel ``(U, 4U)``, bias ``(4U,)`` or None; gate order
    i, f, c, o along the last axis.

    ``projection`` ``(U, P)`` or None (PyTorch's ``proj_size``, TF1's ``num_proj``):
    when set, ``h = (o * tanh(c)) @ projection`` has P columns and recurrent_kernel is
    ``(P, 4U)``; :func:`run_lstm` then uses :mod:`lstmviz.engine.projection`.
    """

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None = None
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    projection: np.ndarray | None = None  # (U, P) (proj_size), None = none

    def __post_init__(self) -> None:
        # Own read-only float32 copies: the weights are immutable, so the internal
        # (gate-permuted) copies below can be cached safely.
        k = _frozen_f32(self.kernel)
        r = _frozen_f32(self.recurrent_kernel)
        if self.projection is not None:  # proj_size, checked in projection.py
            from .projection import check_projection

            check_projection(self, k, r)
        elif k.ndim != 2 or r.ndim != 2 or r.shape[1] != 4 * r.shape[0] or k.shape[1] != r.shape[1]:
            raise ModelFileError(
                "LSTM weights do not fit together: expected kernel (F, 4U), recurrent_kernel "
                f"(U, 4U); found kernel {k.shape}, recurrent_kernel {r.shape}"
            )
        object.__setattr__(self, "kernel", k)
        object.__setattr__(self, "recurrent_kernel", r)
        if self.bias is not None:
            b = _frozen_f32(np.reshape(self.bias, -1))
            if b.shape != (k.shape[1],):
                raise ModelFileError(
                    f"LSTM bias has shape {np.shape(self.bias)}; expected ({k.shape[1]},)"
                )
            object.__setattr__(self, "bias", b)
        # validate the activation names now, not in the middle of a trace
        activations.get(self.activation)
        activations.get(self.recurrent_activation)

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1] // 4)  # == recurrent_kernel rows without projection

    @property
    def output_units(self) -> int:
        """Columns of h: ``units``, or P with a ``projection`` (U, P)."""
        return self.units if self.projection is None else int(self.projection.shape[1])

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def use_bias(self) -> bool:
        return self.bias is not None

    def gate(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(W, U, b)`` of one gate (``"i"``, ``"f"``, ``"c"``, ``"o"``)."""
        k = "ifco".index(name)
        u = self.units
        sl = slice(k * u, (k + 1) * u)
        return (
            self.kernel[:, sl],
            self.recurrent_kernel[:, sl],
            None if self.bias is None else self.bias[sl],
        )

    def _internal(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(kernel, recurrent_kernel, bias)`` with gate blocks i, f, o, c (read-only).

        Computed once per weights object (the permutation of a 1024-unit layer costs
        ~50 ms, more than a 100-step trace).
        """
        cached = self.__dict__.get("_internal_cache")
        if cached is None:

            def perm(a: np.ndarray) -> np.ndarray:  # (..., 4U) blocks i,f,c,o -> i,f,o,c
                u = a.shape[-1] // 4
                blocks = a.reshape(*a.shape[:-1], 4, u)[..., list(_TO_INTERNAL), :]
                return _frozen_f32(blocks.reshape(a.shape))

            cached = (
                perm(self.kernel),
                perm(self.recurrent_kernel),
                None if self.bias is None else perm(self.bias),
            )
            object.__setattr__(self, "_internal_cache", cached)
        return cached

    def _stacked(self, transposed: bool = False) -> np.ndarray:
        """``[U; W]`` ``(U + F, 4U)`` in the internal block order, or its transpose
        ``(4U, U + F)`` (each cached): the compiled kernel's one product per step at larger
        batches, whose faster operand layout depends on the size (``_accel.rec_transposed``).
        """
        key = "_stacked_t_cache" if transposed else "_stacked_cache"
        cached = self.__dict__.get(key)
        if cached is None:
            kernel, rec, _ = self._internal()
            both = np.concatenate([rec, kernel])
            cached = _frozen_f32(both.T if transposed else both)
            object.__setattr__(self, key, cached)
        return cached

    def _packed(self, batch: int) -> np.ndarray:
        """``[U; W]`` and the bias packed for the compiled kernel's own product at this batch
        size (:func:`lstmviz.engine._accel.pack`), cached per layout like the arrays above:
        a trace (a what-if, a training snapshot's retrace) does not pack them again, and
        the copy belongs to the weights, not to the trace."""
        key = _accel.pack_key(batch)
        cache: dict[tuple[str, bool, int], np.ndarray] = self.__dict__.setdefault(
            "_packed_cache", {}
        )
        buf = cache.get(key)
        if buf is None or buf.ctypes.data % 64:
            with _PACK_LOCK:  # two traces at once pack once
                buf = cache.get(key)
                if buf is None or buf.ctypes.data % 64:  # (a copy may lose the alignment)
                    kernel, rec, bias = self._internal()
                    buf = cache[key] = _accel.pack(np.concatenate([rec, kernel]), bias, batch)
        return buf

    def __getstate__(self) -> dict[str, object]:
        """Pickled and copied without the caches above: they are rebuilt where needed (a
        training snapshot sent to another process, say), and an unpickled copy of the packed
        panels would not keep their 64-byte alignment."""
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}

    @property
    def n_params(self) -> int:
        """``4·U·(F + U + 1)`` with bias, ``4·U·(F + U)`` without."""
        u, f = self.units, self.input_dim
        if self.projection is not None:  # 4·U·(F + P + 1) + U·P
            p = self.output_units
            return 4 * u * (f + p + (1 if self.use_bias else 0)) + u * p
        return 4 * u * (f + u + (1 if self.use_bias else 0))


_PACK_LOCK = threading.Lock()

# Activations that mix the units of a gate (not elementwise): applied gate by gate.
_ACROSS_UNITS = frozenset({"softmax", "log_softmax"})


def _frozen_f32(a: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous float32 copy of ``a``."""
    out = np.array(a, dtype=np.float32, order="C", copy=True)
    out.flags.writeable = False
    return out


def _check_state(name: str, s: np.ndarray | None, batch: int, units: int) -> np.ndarray:
    if s is None:
        return np.zeros((batch, units), np.float32)
    s = np.asarray(s, dtype=np.float32)
    if s.ndim == 1:
        s = np.broadcast_to(s, (batch, s.shape[0]))
    if s.shape != (batch, units):
        raise InputError(f"initial {name} has shape {s.shape}; expected ({batch}, {units})")
    if not np.all(np.isfinite(s)):
        raise InputError(f"initial {name} contains NaN or inf")
    return np.array(s, dtype=np.float32, copy=True)


def run_lstm(
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
    accelerate: bool | None = None,
    out: LayerTrace | None = None,
    reuse: LayerTrace | None = None,
) -> LayerTrace:
    """Run one LSTM over ``x`` ``(batch, T, F)`` and record every internal value.

    Parameters
    ----------
    x : ndarray
        ``(batch, T, F)`` inputs.
    weights : LSTMWeights
    h0, c0 : ndarray, optional
        Initial states ``(batch, units)`` or ``(units,)``; zeros by default.
    mask : ndarray, optional
        ``(batch, T)`` bool, True where the step counts; at a masked step the state is
        carried over unchanged (as in Keras).
    go_backwards : bool
        Process the sequence from its end; the trace is still indexed by input position.
    name, layer_name, direction : str
        Recorded in the trace.
    accelerate : bool, optional
        None (default) runs the recurrence in the optional compiled kernel
        (:mod:`lstmviz.engine._accel`) when it is built and knows both activations, else in
        the NumPy loop below; False forces the NumPy loop (the reference); True requires the
        kernel.  ``LayerTrace.meta["engine"]`` records which one ran, ``meta["path"]`` how,
        ``meta["threads"]`` on how many of the kernel's threads (up to
        :func:`lstmviz.engine.get_threads`; BLAS's threads are set around BLAS calls).
    out : LayerTrace, optional
        A trace of the same shape (batch, T, units) -- typically the previous call's --
        whose arrays are overwritten instead of allocating new ones.  Repeated traces (a
        what-if slider, training snapshots, a benchmark loop) then pay no allocation and no
        page faults; ``out`` itself becomes stale (the returned trace shares its buffers).
    reuse : LayerTrace, optional
        A trace of this LSTM (same weights, computed the same way) on an input that differs
        from ``x`` at some positions only: the steps before the first position where ``x``,
        the mask or nothing else differs -- after the last one, for ``go_backwards`` -- are
        copied from it instead of recomputed.  The result is equal to a full trace, bit for
        bit (each step is computed the same way whatever the range); when ``reuse`` does not
        fit (another shape, weights, initial state, direction or engine path) everything is
        recomputed.  ``meta["recomputed"]`` says which positions ``(lo, hi)`` were.  ``out``
        may be ``reuse`` itself (updated in place).

    Returns
    -------
    LayerTrace
    """
    if weights.projection is not None:  # proj_size LSTMs run in projection.py
        if out is not None:
            raise InputError(f"LSTM {name!r}: out= is not supported for projected LSTMs")
        from .projection import run_lstm_projected

        return run_lstm_projected(
            x,
            weights,
            h0=h0,
            c0=c0,
            mask=mask,
            go_backwards=go_backwards,
            name=name,
            layer_name=layer_name,
            direction=direction,
        )
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise InputError(f"LSTM {name!r} expects input (batch, T, features); found shape {x.shape}")
    batch, steps, feats = x.shape
    if feats != weights.input_dim:
        raise InputError(f"LSTM {name!r} expects {weights.input_dim} input features; found {feats}")
    units = weights.units
    h_tm1 = _check_state("hidden state h0", h0, batch, units)
    c_tm1 = _check_state("cell state c0", c0, batch, units)
    h0_, c0_ = h_tm1.copy(), c_tm1.copy()
    kernel, rec, bias = weights._internal()  # blocks i, f, o, c
    m = None
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (batch, steps):
            raise InputError(f"mask has shape {m.shape}; expected ({batch}, {steps})")
        if m.all():
            m = None

    if accelerate is None:
        accelerate = _accel.supports(weights.recurrent_activation, weights.activation)
    elif accelerate and not _accel.supports(weights.recurrent_activation, weights.activation):
        raise LstmvizError(
            f"LSTM {name!r}: the compiled kernel cannot run it ({_accel.describe()}; "
            f"activations {weights.recurrent_activation!r}/{weights.activation!r}, kernel "
            f"knows {', '.join(_accel.ACT_CODES)}); use accelerate=None or False"
        )
    # how the steps are computed: two traces on the same path agree step for step
    path = _accel.path(units, batch) if accelerate else f"numpy/{_accel.blas_threads(units, batch)}"
    packed = path.startswith("packed")
    x_mode = bool(accelerate) and (packed or (feats > 0 and _accel.x_mode(units, batch)))

    # the input positions to compute: all, or those from the first change on (reuse=)
    lo, hi = 0, steps
    if reuse is not None:
        span = _changed_span(reuse, x, weights, h0_, c0_, m, go_backwards, path)
        if span is not None:
            lo, hi = span
    in_place = False  # out= holds reuse's own buffers (reuse updated in place)
    if reuse is not None and out is not None and (lo, hi) != (0, steps):
        pairs = [(out.pre, reuse.pre), (out.act, reuse.act), (out.c, reuse.c), (out.h, reuse.h)]
        in_place = all(a.ctypes.data == b.ctypes.data and a.shape == b.shape for a, b in pairs)
        if not in_place and any(np.shares_memory(a, b) for a, b in pairs):
            lo, hi = 0, steps  # overlapping some other way: nothing can be kept

    # The input part of every step, time-major (T, B, 4U): x W + b, with no copy of x.
    if out is not None:
        pre, act, cs, hs = _reuse(out, x, steps, batch, units, name)
    else:
        # recycled memory where a freed trace left some (_pool: no page faults to pay)
        pre = _pool.empty((steps, batch, 4 * units))
        act = _pool.empty((steps, batch, 4 * units))  # (T, B, 4U) i, f, o, g
        cs = _pool.empty((steps, batch, units))
        hs = _pool.empty((steps, batch, units))
    if not x_mode and (lo, hi) != (0, steps) and in_place:
        lo, hi = 0, steps  # the projection below would overwrite the rows kept in place
    if x_mode:  # the kernel writes [h_tm1, x_t] @ [U; W] + b itself, step by step
        pass
    elif accelerate:  # bias fill + one sgemm per batch item into the strided rows of `pre`
        _accel.project(x, kernel, bias, pre)
    else:  # one GEMM per batch item (or per step when there are fewer steps than items)
        if batch <= steps:
            for b in range(batch):
                np.matmul(x[b], kernel, out=pre[:, b, :])  # (T, F) @ (F, 4U)
        else:
            for t in range(steps):
                np.matmul(x[:, t, :], kernel, out=pre[t])  # (B, F) @ (F, 4U)
        if bias is not None:
            pre += bias
    if (lo, hi) != (0, steps):  # reuse=: the unchanged steps, and the state before the rest
        assert reuse is not None
        keep = slice(0, lo) if not go_backwards else slice(hi, steps)
        if not in_place:
            for dst, src in ((pre, reuse.pre), (act, reuse.act), (cs, reuse.c), (hs, reuse.h)):
                dst[keep] = src[keep]
        before = lo - 1 if not go_backwards else hi  # the position processed just before
        if 0 <= before < steps:
            h_tm1, c_tm1 = reuse.h[before].copy(), reuse.c[before].copy()
    elif out is not None:
        h_tm1, c_tm1 = h0_, c0_  # copies: h0/c0 may be views of out (a streamed state)
    threads = 1
    if hi > lo:
        if packed:  # the kernel's own product, on its threads (lstmviz/engine/_lstm_kernel.c)
            threads = _accel.run_packed(
                pre,
                act,
                cs,
                hs,
                h_tm1,
                c_tm1,
                weights._packed(batch),
                bias is not None,
                x,
                m,
                go_backwards,
                weights.recurrent_activation,
                weights.activation,
                lo=lo,
                hi=hi,
            )
        elif x_mode:  # BLAS's product of [h_tm1, x_t] and [U; W]
            rec_t = _accel.rec_transposed(units, batch)
            _accel.run(
                pre,
                act,
                cs,
                hs,
                h_tm1,
                c_tm1,
                weights._stacked(rec_t),
                m,
                go_backwards,
                weights.recurrent_activation,
                weights.activation,
                x=x,
                bias=bias,
                rec_t=rec_t,
                lo=lo,
                hi=hi,
            )
        elif accelerate:  # the same recurrence in C, BLAS's h_tm1 @ U
            _accel.run(
                pre,
                act,
                cs,
                hs,
                h_tm1,
                c_tm1,
                rec,
                m,
                go_backwards,
                weights.recurrent_activation,
                weights.activation,
                lo=lo,
                hi=hi,
            )
        else:
            with _accel.blas_limits(_accel.blas_threads(units, batch)):
                _recurrence(
                    pre,
                    act,
                    cs,
                    hs,
                    h_tm1,
                    c_tm1,
                    rec,
                    m,
                    go_backwards,
                    activations.get(weights.recurrent_activation),
                    activations.get(weights.activation),
                    per_gate=weights.recurrent_activation in _ACROSS_UNITS,
                    lo=lo,
                    hi=hi,
                )
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
        meta={
            "engine": "c" if accelerate else "numpy",
            "path": path,
            "threads": threads,
            "recomputed": (lo, hi),
        },
    )


def _same_weights(a: LSTMWeights, b: LSTMWeights) -> bool:
    """The same LSTM: the same object, or equal arrays and activations."""
    if a is b:
        return True
    return (
        a.activation == b.activation
        and a.recurrent_activation == b.recurrent_activation
        and a.projection is None
        and b.projection is None
        and np.array_equal(a.kernel, b.kernel)
        and np.array_equal(a.recurrent_kernel, b.recurrent_kernel)
        and (
            (a.bias is None and b.bias is None)
            or (a.bias is not None and b.bias is not None and np.array_equal(a.bias, b.bias))
        )
    )


def _changed_span(
    reuse: LayerTrace,
    x: np.ndarray,
    weights: LSTMWeights,
    h0: np.ndarray,
    c0: np.ndarray,
    mask: np.ndarray | None,
    go_backwards: bool,
    path: str,
) -> tuple[int, int] | None:
    """The input positions ``(lo, hi)`` a trace of ``x`` must compute when the rest can be
    copied from ``reuse`` (see :func:`run_lstm`); None when ``reuse`` does not fit."""
    if not isinstance(reuse, LayerTrace) or reuse.x.shape != x.shape:
        return None
    batch, steps, _ = x.shape
    if (
        reuse.pre.shape != (steps, batch, 4 * weights.units)
        or reuse.meta.get("path") != path
        or reuse.go_backwards != go_backwards
        or not _same_weights(reuse.weights, weights)
        or not np.array_equal(reuse.h0, h0)
        or not np.array_equal(reuse.c0, c0)
    ):
        return None
    changed = np.any(x != reuse.x, axis=(0, 2)) if x.size else np.zeros(steps, bool)  # (T,)
    if mask is not None or reuse.mask is not None:
        new_m = np.ones((batch, steps), bool) if mask is None else mask
        old_m = np.ones((batch, steps), bool) if reuse.mask is None else reuse.mask
        changed |= np.any(new_m != old_m, axis=0)
    where = np.flatnonzero(changed)
    if where.size == 0:
        return (steps, steps) if not go_backwards else (0, 0)
    return (int(where[0]), steps) if not go_backwards else (0, int(where[-1]) + 1)


def _reuse(
    out: LayerTrace, x: np.ndarray, steps: int, batch: int, units: int, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``out``'s (pre, act, c, h) buffers, checked to fit this call (see :func:`run_lstm`)."""
    bufs = (out.pre, out.act, out.c, out.h)
    want = ((steps, batch, 4 * units),) * 2 + ((steps, batch, units),) * 2
    for a, shape in zip(bufs, want, strict=True):
        if (
            not isinstance(a, np.ndarray)
            or a.shape != shape
            or a.dtype != np.float32
            or not a.flags.c_contiguous
            or not _pool.owns(a)
        ):
            raise InputError(
                f"LSTM {name!r}: out= must be a trace run_lstm made with the same shape "
                f"(batch {batch}, {steps} steps, {units} units); found arrays of shape "
                f"{getattr(a, 'shape', None)} ({getattr(a, 'dtype', None)})"
            )
        if np.shares_memory(a, x):
            raise InputError(f"LSTM {name!r}: out= shares memory with the input x")
    for a in bufs:  # a trace's arrays are read-only; they were run_lstm's, and are again
        a.flags.writeable = True
    return bufs


def _recurrence(
    pre: np.ndarray,
    act: np.ndarray,
    cs: np.ndarray,
    hs: np.ndarray,
    h_tm1: np.ndarray,
    c_tm1: np.ndarray,
    rec: np.ndarray,
    m: np.ndarray | None,
    go_backwards: bool,
    sig: Callable[[np.ndarray, np.ndarray], np.ndarray],
    tanh: Callable[[np.ndarray, np.ndarray], np.ndarray],
    per_gate: bool = False,
    lo: int = 0,
    hi: int | None = None,
) -> None:
    """The NumPy reference recurrence, in place (blocks i, f, o, g; see :func:`run_lstm`).

    ``pre`` ``(T, B, 4U)`` holds ``x W + b`` on entry and ``z`` on return; ``act``, ``cs``,
    ``hs`` are written; ``m`` ``(B, T)`` bool or None.  ``per_gate``: apply ``sig`` to each
    gate's block on its own (softmax-like activations mix the units of one gate only).
    ``lo``, ``hi``: only input positions ``lo .. hi - 1`` (default all), ``h_tm1``/``c_tm1``
    being the state before the first of them in processing order.
    """
    steps, batch, u4 = pre.shape
    units = u4 // 4
    g3 = 3 * units
    rec_z = np.empty((batch, u4), np.float32)  # h_tm1 @ U, reused every step
    ig = np.empty((batch, units), np.float32)  # i * g, reused every step
    hi = steps if hi is None else hi
    order = range(hi - 1, lo - 1, -1) if go_backwards else range(lo, hi)
    for t in order:
        z = pre[t]  # (B, 4U): x_t W + b, completed in place with h_tm1 U
        np.matmul(h_tm1, rec, out=rec_z)
        z += rec_z
        a = act[t]
        if per_gate:
            for k in range(3):
                sig(z[:, k * units : (k + 1) * units], a[:, k * units : (k + 1) * units])
        else:
            sig(z[:, :g3], a[:, :g3])  # i, f, o in one call
        tanh(z[:, g3:], a[:, g3:])  # g
        i, f, o, g = (a[:, :units], a[:, units : 2 * units], a[:, 2 * units : g3], a[:, g3:])
        c = cs[t]
        np.multiply(f, c_tm1, out=c)  # c = f * c_tm1 + i * g
        np.multiply(i, g, out=ig)
        c += ig
        h = hs[t]
        tanh(c, h)  # h = o * tanh(c)
        h *= o
        if m is not None:
            keep = ~m[:, t]
            if keep.any():  # masked step: carry the state over
                c[keep] = c_tm1[keep]
                h[keep] = h_tm1[keep]
        h_tm1, c_tm1 = h, c


def lstm_step(
    x_t: np.ndarray, h_tm1: np.ndarray, c_tm1: np.ndarray, weights: LSTMWeights
) -> dict[str, np.ndarray]:
    """One step, written plainly (the reference the fast loop is tested against).

    ``x_t`` ``(B, F)``, ``h_tm1``/``c_tm1`` ``(B, U)``; returns a dict with the four
    pre-activations ``z_i, z_f, z_c, z_o`` and ``i, f, g, o, c, h``.
    """
    sig = activations.get(weights.recurrent_activation)
    act = activations.get(weights.activation)
    x_t = np.asarray(x_t, np.float32)
    h_tm1 = np.asarray(h_tm1, np.float32)
    c_tm1 = np.asarray(c_tm1, np.float32)
    z = x_t @ weights.kernel + h_tm1 @ weights.recurrent_kernel  # (B, 4U)
    if weights.bias is not None:
        z = z + weights.bias
    u = weights.units
    z_i, z_f, z_c, z_o = (z[:, k * u : (k + 1) * u] for k in range(4))
    i = sig(z_i, np.empty_like(z_i))
    f = sig(z_f, np.empty_like(z_f))
    g = act(z_c, np.empty_like(z_c))
    o = sig(z_o, np.empty_like(z_o))
    c = f * c_tm1 + i * g
    h = o * act(c, np.empty_like(c))
    if weights.projection is not None:  # proj_size
        h = h @ weights.projection  # (B, U) @ (U, P)
    return {
        "z_i": z_i,
        "z_f": z_f,
        "z_c": z_c,
        "z_o": z_o,
        "i": i,
        "f": f,
        "g": g,
        "o": o,
        "c": c,
        "h": h,
    }
