"""What the PyTorch and Keras bridges share: recomputing the gates from what a framework
recorded, checking them against the framework, and the model object the app talks to.

The framework runs the user's model; hooks record, for every LSTM, its input sequence, the
state it started each step from and the state it produced. The engine's equations then give
the pre-activations and the gates -- one matrix product for all steps instead of a Python
loop -- and the h and c they imply are compared with the framework's own (:data:`TOL`). A
trace whose numbers cannot be reproduced is refused (:class:`VerificationError`); the h and c
a trace holds are the framework's.

Arrays here are time-major, ``(T, B, ...)``, indexed by input position (as
:class:`~lstmviz.engine.trace.LayerTrace` stores them), also for a backward direction.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import budget
from ..engine import activations
from ..engine.cell import LSTMWeights
from ..engine.layers import LSTM, Bidirectional, Layer
from ..engine.trace import LayerTrace, Trace
from ..errors import InputError, LstmvizError

#: Largest difference allowed between the framework's h or c and the engine's:
#: ``|ours - theirs| <= TOL * max(1, |theirs|)`` (absolute for gates and h, which are at most
#: 1 in size; relative for a large cell state).
TOL = 1e-5

# Activations that mix the units of a gate: applied to each gate's block on its own.
_ACROSS_UNITS = frozenset({"softmax", "log_softmax"})


class VerificationError(LstmvizError):
    """The engine's recomputation of an LSTM does not reproduce what the framework computed
    (a custom cell, a patched forward, low precision): the trace is refused, not shown."""


def framework_of(obj: Any) -> str | None:
    """``"keras"``, ``"torch"`` or None, from the module names of ``type(obj)``'s classes.

    Nothing is imported: a model can only be a torch or Keras object if its framework is
    already loaded. Keras comes first (a Keras layer on the torch backend is also an
    ``nn.Module``).
    """
    mods = [getattr(c, "__module__", "") or "" for c in type(obj).__mro__]
    if any(m == "keras" or m.startswith(("keras.", "tf_keras.")) for m in mods):
        return "keras"
    if any(m.startswith("tensorflow.python.keras") for m in mods):
        return "keras"
    if any(m == "torch" or m.startswith("torch.") for m in mods):
        return "torch"
    return None


# ------------------------------------------------------------------------- verification
def max_excess(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, tuple[int, ...] | None]:
    """Largest ``|ours - theirs| / max(1, |theirs|)`` and where it is (None when empty)."""
    if ours.size == 0:
        return 0.0, None
    d = np.subtract(ours, theirs, dtype=np.float32)
    np.abs(d, out=d)
    top = float(d.max())
    if top <= TOL:  # the usual case: no need for the relative form, nor where it is
        return top, None
    err = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    err /= np.maximum(1.0, np.abs(theirs.astype(np.float64)))
    flat = int(np.argmax(err))
    return float(err.flat[flat]), tuple(int(i) for i in np.unravel_index(flat, err.shape))


def _refuse(
    what: str,
    layer: str,
    framework: str,
    err: float,
    where: tuple[int, ...],
    ours: float,
    theirs: float,
    axes: str,
    hint: str,
) -> VerificationError:
    return VerificationError(
        f"LSTM {layer!r}: the engine's {what} differs from {framework}'s by {err:.3g} at "
        f"{axes} = {where} (ours {ours:.7g}, {framework} {theirs:.7g}; allowed {TOL:g}). The "
        "LSTM does not compute what a standard LSTM computes from its weights"
        + (f" ({hint})" if hint else " (a custom cell, a patched forward, or low precision)")
        + ", so lstmviz refuses to show gates it cannot reproduce"
    )


def check_close(
    ours: np.ndarray,
    theirs: np.ndarray,
    *,
    what: str,
    layer: str,
    framework: str,
    axes: str = "(t, batch, unit)",
    hint: str = "",
    offset: int = 0,
    batch: int = 0,
) -> float:
    """Raise :class:`VerificationError` unless ``ours`` equals ``theirs`` to :data:`TOL`
    (``|ours - theirs| <= TOL * max(1, |theirs|)``); returns the largest difference.
    ``offset`` is added to the first index in the message (a block of a longer array);
    with ``batch``, that index is a row ``t * batch + b`` of a ``(T*B, ...)`` array, named
    ``(t, b, ...)``."""
    if ours.shape != theirs.shape:
        raise VerificationError(
            f"LSTM {layer!r}: the recomputed {what} has shape {ours.shape}, {framework}'s "
            f"{theirs.shape}; the trace is refused"
        )
    err, where = max_excess(ours, theirs)
    if not np.isfinite(err) or err > TOL:
        assert where is not None  # only within the tolerance is the place left out
        if not np.all(np.isfinite(theirs)):
            raise VerificationError(
                f"LSTM {layer!r}: {framework}'s {what} contains NaN or inf; nothing to show"
            )
        row = where[0] + offset
        at = (*divmod(row, batch), *where[1:]) if batch else (row, *where[1:])
        raise _refuse(
            what, layer, framework, err, at, float(ours[where]), float(theirs[where]), axes, hint
        )
    return err


# ------------------------------------------------------------------------- the two routes
#: ``verify=`` values: how a live trace makes sure its numbers are the framework's.
#:
#: ``"full"`` -- the framework runs its LSTM; the engine recomputes every gate from the h the
#: framework produced and the h and c this implies must equal the framework's at every step.
#: ``"spot"`` -- the engine *replaces* the framework's LSTM call (the framework runs the rest
#: of the model on the engine's h), and a spot check (:func:`spot_check`) runs the
#: framework's own LSTM over a few windows of steps. ``"auto"`` -- ``"spot"`` for an LSTM
#: call of at least :data:`SPOT_MIN_BATCH` sequences that the engine can replace, else
#: ``"full"``.
VERIFY = ("auto", "full", "spot")

#: ``verify="auto"`` replaces an LSTM call from this many sequences in the batch on. For
#: one sequence the framework's forward pass is a matrix-vector product per step and the
#: full check (one matrix-matrix product) costs less than it (1.8x the forward pass in all);
#: from 2 sequences on it costs 2.3-3.4x (docs/benchmarks.md, "Live models"), the spot
#: route 1.0-2.0x.
SPOT_MIN_BATCH = 2
#: Each spot-check window runs this many steps in the framework ...
SPOT_STEPS = 16
#: ... and there are this many windows, evenly spaced, the first and the last included.
SPOT_WINDOWS = 4


def check_verify(verify: Any) -> str:
    """``verify`` checked against :data:`VERIFY` (an :class:`InputError` otherwise)."""
    if not isinstance(verify, str) or verify not in VERIFY:
        raise InputError(
            f"verify={verify!r}: expected one of {', '.join(map(repr, VERIFY))} "
            '("full" checks every step against the framework, "spot" lets the engine '
            'replace the framework\'s LSTM and spot-checks it, "auto" picks)'
        )
    return verify


def replace_route(verify: str, batch: int) -> bool:
    """Whether a replaceable LSTM call of ``batch`` sequences takes the spot-check route."""
    return verify == "spot" or (verify == "auto" and batch >= SPOT_MIN_BATCH)


def spot_windows(steps: int) -> list[tuple[int, int]]:
    """The spot check's windows of input positions ``[start, stop)``: :data:`SPOT_WINDOWS`
    windows of :data:`SPOT_STEPS` steps (fewer when the input is short), evenly spaced from
    the first step to the last."""
    n = min(steps, SPOT_STEPS)
    count = min(SPOT_WINDOWS, steps - n + 1)
    starts = sorted({round(float(s)) for s in np.linspace(0, steps - n, count)})
    return [(s, s + n) for s in starts]


#: ``run(x, h0, c0) -> (h, h_n, c_n)``: the framework's own LSTM (every layer and direction)
#: on ``x`` ``(L, N, F)`` from ``h0`` ``(J, N, P)`` / ``c0`` ``(J, N, U)``; ``h`` ``(L, N, D*P)``
#: by input position, ``h_n`` / ``c_n`` ``(J, N, ...)`` the state after each layer and
#: direction's last processed step.
FrameworkRun = Callable[
    [np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]
]


def spot_check(
    stack: Sequence[Sequence[LayerTrace]],
    run: FrameworkRun,
    *,
    name: str,
    framework: str,
) -> int:
    """Check an LSTM the engine ran in place of the framework's against the framework.

    ``stack[k][d]`` is the engine's trace of layer ``k``, direction ``d`` (all of one call,
    without a mask). For each window of :func:`spot_windows` the framework's own LSTM runs
    the window's steps, every layer and direction starting from the engine's state just
    before the window (in processing order; the real initial state for the window at the
    start of the sequence, and at its end for a backward direction). Its h at every step of
    the window (the last layer) and its h and c after the window (every layer and
    direction) must equal the engine's to :data:`TOL`, else :class:`VerificationError`.
    All windows run as one batch. Returns the number of steps the framework ran.
    """
    flat = [lt for layer in stack for lt in layer]
    first = flat[0]
    steps, batch = first.timesteps, first.batch_size
    x = first.x  # (B, T, F)
    wins = spot_windows(steps)
    n = wins[0][1] - wins[0][0]
    rows = len(wins) * batch
    xw = np.empty((n, rows, x.shape[2]), np.float32)
    h0w = np.empty((len(flat), rows, first.h.shape[2]), np.float32)
    c0w = np.empty((len(flat), rows, first.c.shape[2]), np.float32)
    for k, (s, e) in enumerate(wins):
        r = slice(k * batch, (k + 1) * batch)
        xw[:, r] = x[:, s:e].transpose(1, 0, 2)
        for j, lt in enumerate(flat):
            before = e if lt.go_backwards else s - 1  # the step processed just before
            inside = 0 <= before < steps
            h0w[j, r] = lt.h[before] if inside else lt.h0
            c0w[j, r] = lt.c[before] if inside else lt.c0
    h, h_n, c_n = run(xw, h0w, c0w)
    last = stack[-1]
    for k, (s, e) in enumerate(wins):
        r = slice(k * batch, (k + 1) * batch)
        where = f"(spot check of steps {s}..{e - 1}, {framework} run from the engine's state)"
        ours = np.concatenate([lt.h[s:e] for lt in last], axis=2)
        check_close(
            ours,
            np.asarray(h[:, r], np.float32),
            what=f"hidden state h {where}",
            layer=name,
            framework=framework,
            offset=s,
        )
        for j, lt in enumerate(flat):
            end = s if lt.go_backwards else e - 1  # the window's last processed step
            for what, mine, theirs in (("h", lt.h, h_n), ("c", lt.c, c_n)):
                check_close(
                    mine[end],
                    np.asarray(theirs[j, r], np.float32),
                    what=f"{'hidden' if what == 'h' else 'cell'} state {what} at step {end} "
                    + where,
                    layer=lt.name,
                    framework=framework,
                    axes="(batch, unit)",
                )
    return n * rows


# ------------------------------------------------------------------------- recomputation
#: Rows of ``(T*B, 4U)`` work done at a time: about 4 MiB of pre-activations and at least
#: 2048 rows, so that BLAS packs ``[U; W]`` rarely and each pass stays near the CPU's caches.
BLOCK_BYTES = 4 << 20
MIN_BLOCK_ROWS = 2048
#: ... and the activations run on sub-blocks of about this many bytes (a core's L2 cache).
SUB_BLOCK_BYTES = 512 << 10


def _act(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return activations.get(name)


def _gates(pre: np.ndarray, act: np.ndarray, w: LSTMWeights) -> None:
    """``act`` = the activations of ``pre`` (both ``(N, 4U)``, blocks i, f, o, c)."""
    u = w.units
    g3 = 3 * u
    sig = _act(w.recurrent_activation)
    if w.recurrent_activation in _ACROSS_UNITS:
        for k in range(3):
            sig(pre[:, k * u : (k + 1) * u], act[:, k * u : (k + 1) * u])
    else:
        sig(pre[:, :g3], act[:, :g3])  # i, f, o
    _act(w.activation)(pre[:, g3:], act[:, g3:])  # g


def _workers() -> int:
    """Threads for the block work: ``LSTMVIZ_THREADS`` when set, else the CPU cores this
    process may use (at most 8)."""
    env = os.environ.get("LSTMVIZ_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def blockwise(n_rows: int, row_bytes: int, fn: Callable[[int, int], Any]) -> list[Any]:
    """``fn(start, stop)`` over blocks of rows (about :data:`BLOCK_BYTES` each), on every
    core: NumPy, BLAS and the compiled activations release the GIL, so blocks run in
    parallel, each with one BLAS thread (threadpoolctl)."""
    rows = max(MIN_BLOCK_ROWS, BLOCK_BYTES // max(row_bytes, 1))
    blocks = [(s, min(s + rows, n_rows)) for s in range(0, n_rows, rows)]
    n = min(_workers(), len(blocks))
    if n <= 1:
        return [fn(s, e) for s, e in blocks]
    from concurrent.futures import ThreadPoolExecutor

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl missing: BLAS keeps its threads
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1, user_api="blas")
    with limits, ThreadPoolExecutor(n, thread_name_prefix="lstmviz-gates") as pool:
        return list(pool.map(lambda be: fn(*be), blocks))


def _preactivations(both: np.ndarray, w: LSTMWeights) -> tuple[np.ndarray, np.ndarray]:
    """``[h_prev, x] @ [U; W] + b`` and its activations for every step at once:
    ``both`` ``(N, P + F)`` -> ``pre``, ``act`` ``(N, 4U)`` (blocks i, f, o, c / g).

    One matrix product per block of rows instead of one product per step.
    """
    n = both.shape[0]
    u4 = 4 * w.units
    pre = np.empty((n, u4), np.float32)
    act = np.empty((n, u4), np.float32)
    stacked = w._stacked()  # (P + F, 4U): [U; W]
    bias = w._internal()[2]

    sub = max(8, SUB_BLOCK_BYTES // (4 * u4))

    def work(s: int, e: int) -> None:
        np.matmul(both[s:e], stacked, out=pre[s:e])  # (rows, P+F) @ (P+F, 4U)
        for r in range(s, e, sub):  # the elementwise passes on blocks that stay in cache
            q = slice(r, min(r + sub, e))
            if bias is not None:
                pre[q] += bias
            _gates(pre[q], act[q], w)

    blockwise(n, 4 * u4, work)
    return pre, act


def _project(w: LSTMWeights, hu: np.ndarray) -> np.ndarray:
    """``h`` from ``o * tanh(c)``: the projection (proj_size) when the weights have one."""
    if w.projection is None:
        return hu
    h: np.ndarray = hu @ w.projection  # (..., U) @ (U, P)
    return h


def _check_h(
    w: LSTMWeights,
    cs: np.ndarray,
    act: np.ndarray,
    h: np.ndarray,
    *,
    name: str,
    framework: str,
    batch: int,
    skip: np.ndarray | None = None,
) -> None:
    """``o * tanh(c)`` (projected) against the framework's ``h``, block by block: all
    ``(N, ...)`` rows (``t * batch + b``); rows where ``skip`` is True (padding) are not
    compared."""
    u = w.units

    tanh = _act(w.activation)

    def work(s: int, e: int) -> None:
        hu = tanh(cs[s:e], np.empty_like(cs[s:e]))
        hu *= act[s:e, 2 * u : 3 * u]  # o
        ours = _project(w, hu)
        theirs = h[s:e]
        if skip is not None and skip[s:e].any():
            ours[skip[s:e]] = theirs[skip[s:e]]
        check_close(
            ours,
            theirs,
            what="hidden state h",
            layer=name,
            framework=framework,
            offset=s,
            batch=batch,
        )

    blockwise(cs.shape[0], 4 * u, work)


def trace_from_steps(
    *,
    name: str,
    weights: LSTMWeights,
    x: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    framework: str,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    layer_name: str | None = None,
    direction: str = "forward",
    meta: dict[str, Any] | None = None,
) -> LayerTrace:
    """A trace from per-step records: every step's input, the state it started from and the
    state the framework produced (an ``nn.LSTMCell`` or Keras ``LSTMCell`` called per step).

    All arrays ``(T, B, ...)`` by input position. ``mask`` ``(B, T)``: at a masked step the
    framework carried the state over (Keras's masking); the cell's own result there is
    checked, and the trace keeps the carried state, as the engine does.
    """
    steps, batch, feats = x.shape
    u = weights.units
    p = h_prev.shape[2]
    n = steps * batch
    budget.check_array((n, 8 * u + p + feats), 4, f"the trace of LSTM {name!r}")
    both = np.empty((steps, batch, p + feats), np.float32)
    both[..., :p] = h_prev
    both[..., p:] = x
    pre, act = _preactivations(both.reshape(n, p + feats), weights)
    cp = np.ascontiguousarray(c_prev, np.float32).reshape(n, u)
    c_fw = np.ascontiguousarray(c, np.float32).reshape(n, u)

    def cell(s: int, e: int) -> None:
        a = act[s:e]
        ours = a[:, :u] * a[:, 3 * u :]  # i * g
        ours += a[:, u : 2 * u] * cp[s:e]  # + f * c_prev
        check_close(
            ours,
            c_fw[s:e],
            what="cell state c",
            layer=name,
            framework=framework,
            offset=s,
            batch=batch,
        )

    blockwise(n, 4 * u, cell)
    _check_h(
        weights,
        c_fw,
        act,
        np.asarray(h, np.float32).reshape(n, -1),
        name=name,
        framework=framework,
        batch=batch,
    )
    h_out = np.array(h, np.float32)
    c_out = c_fw.reshape(steps, batch, u).copy()
    if mask is not None and not mask.all():
        keep = ~mask.T  # (T, B): steps where the state was carried over
        h_out[keep] = h_prev[keep]
        c_out[keep] = c_prev[keep]
    first = steps - 1 if go_backwards else 0
    return LayerTrace(
        name=name,
        weights=weights,
        pre=pre.reshape(steps, batch, 4 * u),
        act=act.reshape(steps, batch, 4 * u),
        c=c_out,
        h=h_out,
        h0=np.array(h_prev[first], np.float32),
        c0=np.array(c_prev[first], np.float32),
        x=np.ascontiguousarray(x.transpose(1, 0, 2), np.float32),
        mask=None if mask is None else np.asarray(mask, bool),
        go_backwards=go_backwards,
        layer_name=layer_name or name,
        direction=direction,
        meta={"engine": f"{framework} (live)", "verified": "full", **(meta or {})},
    )


def trace_from_sequence(
    *,
    name: str,
    weights: LSTMWeights,
    x: np.ndarray,
    h: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    c_last: np.ndarray | None,
    framework: str,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    layer_name: str | None = None,
    direction: str = "forward",
    meta: dict[str, Any] | None = None,
) -> LayerTrace:
    """A trace from a fused LSTM's input and output: ``x`` ``(T, B, F)``, the h it returned
    for every step ``(T, B, P)`` and its initial state; ``c_last`` the final cell state it
    returned (``c_n``), checked too.

    The gates of step t come from the framework's own ``h_{t-1}`` (one matrix product for
    all steps); only ``c = f c_prev + i g`` runs step by step. The h this implies must equal
    the framework's at every step. ``mask`` ``(B, T)`` marks real steps (packed sequences);
    padded steps carry the state over. ``h`` becomes the trace's own array when it is a
    C-contiguous float32 array (no copy).
    """
    steps, batch, feats = x.shape
    u = weights.units
    p = weights.output_units
    n = steps * batch
    budget.check_array((n, 9 * u + 2 * p + feats), 4, f"the trace of LSTM {name!r}")
    h_fw = h if _owned(h) else np.array(h, np.float32)  # (T, B, P)
    m = None if mask is None or mask.all() else np.asarray(mask, bool).T  # (T, B)
    h0 = np.asarray(h0, np.float32)
    both = np.empty((steps, batch, p + feats), np.float32)  # [h_prev, x] per step
    both[..., p:] = x
    if m is None:  # the state each step starts from: the previous step's, in processing order
        if go_backwards:
            both[:-1, :, :p] = h_fw[1:]
            both[-1, :, :p] = h0
        else:
            both[1:, :, :p] = h_fw[:-1]
            both[0, :, :p] = h0
    else:
        prev = h0
        for t in range(steps - 1, -1, -1) if go_backwards else range(steps):
            both[t, :, :p] = prev
            h_fw[t][~m[t]] = prev[~m[t]]  # padded: carried over (torch pads with zeros)
            prev = h_fw[t]
    pre, act = _preactivations(both.reshape(n, p + feats), weights)
    del both
    a3 = act.reshape(steps, batch, 4 * u)
    cs = np.multiply(a3[..., :u], a3[..., 3 * u :])  # i * g for every step, (T, B, U)
    f = a3[..., u : 2 * u]
    c_tm1 = np.asarray(c0, np.float32)
    mul, add = np.multiply, np.add
    for t in range(steps - 1, -1, -1) if go_backwards else range(steps):
        ct = cs[t]  # c = f * c_tm1 + i * g: ct holds i * g on entry
        ig = mul(f[t], c_tm1)
        add(ct, ig, out=ct)
        if m is not None and not m[t].all():
            ct[~m[t]] = c_tm1[~m[t]]
        c_tm1 = ct
    _check_h(
        weights,
        cs.reshape(n, u),
        act,
        h_fw.reshape(n, p),
        name=name,
        framework=framework,
        batch=batch,
        skip=None if m is None else ~m.reshape(n),
    )
    if c_last is not None:
        last = 0 if go_backwards else steps - 1
        c_fw = np.asarray(c_last, np.float32)
        check_close(
            cs[last],
            c_fw,
            what="final cell state c",
            layer=name,
            framework=framework,
            axes="(batch, unit)",
        )
        cs[last] = c_fw  # the framework's own, as it hands it on (a next call starts there)
    return LayerTrace(
        name=name,
        weights=weights,
        pre=pre.reshape(steps, batch, 4 * u),
        act=a3,
        c=cs,
        h=h_fw,
        h0=np.array(h0, np.float32),
        c0=np.array(c0, np.float32),
        x=np.ascontiguousarray(x.transpose(1, 0, 2), np.float32),
        mask=None if mask is None else np.asarray(mask, bool),
        go_backwards=go_backwards,
        layer_name=layer_name or name,
        direction=direction,
        meta={"engine": f"{framework} (live)", "verified": "full", **(meta or {})},
    )


def _owned(a: np.ndarray) -> bool:
    return (
        isinstance(a, np.ndarray)
        and a.dtype == np.float32
        and a.flags.c_contiguous
        and a.flags.writeable
        and a.flags.owndata
    )


def concat_traces(parts: Sequence[LayerTrace], name: str) -> LayerTrace:
    """Consecutive calls of one LSTM, each starting from the state the last one ended in,
    as one trace along time (a decoder called one step at a time)."""
    first = parts[0]
    if len(parts) == 1 and first.name == name:
        return first

    def cat(attr: str) -> np.ndarray:
        return np.concatenate([getattr(p, attr) for p in parts], axis=0)

    return LayerTrace(
        name=name,
        weights=first.weights,
        pre=cat("pre"),
        act=cat("act"),
        c=cat("c"),
        h=cat("h"),
        h0=first.h0,
        c0=first.c0,
        x=np.concatenate([p.x for p in parts], axis=1),
        mask=None,
        go_backwards=False,
        layer_name=name if first.layer_name == first.name else first.layer_name,
        direction=first.direction,
        meta={**first.meta, "calls": len(parts)},
    )


def model_failed(
    name: str,
    feed: list[np.ndarray],
    error: BaseException,
    layouts: Sequence[Layout] = (),
    extra_args: bool = False,
) -> InputError:
    """The error for a model that raised on an input (the original is chained to it).

    ``layouts``: given for a new input of a wrapped model (not its example), whose arrays are
    in lstmviz's layout; a time-major model got them transposed, which the message says.
    """
    shapes = ", ".join(str(tuple(np.shape(a))) for a in feed)
    note = ""
    if any(lay.time_major for lay in layouts):
        note = (
            " (a new input is taken in lstmviz's layout, (batch, T, ...), and given to this "
            "time-major model as (T, batch, ...): pass x.swapaxes(0, 1) if x is already as "
            "the model takes it)"
        )
    if layouts and extra_args:
        note += (
            " (the further arguments given with the example input -- a hidden state, say -- "
            "are passed again unchanged: for another batch size wrap the model again with "
            "new ones, lstmviz.bridge.live_model(model, x2, *new_args))"
        )
    return InputError(
        f"{name}: the model raised {type(error).__name__} on an input of shape {shapes}"
        f"{note}: {str(error)[:300]}"
    )


_CALL = re.compile(r"#\d+(?=/|$)")


def chain_calls(traces: list[LayerTrace]) -> list[LayerTrace]:
    """Join the traces of successive calls of one layer (named ``name``, ``name#2``, ...)
    where each call starts exactly from the state the previous one ended in -- a decoder
    run one step at a time -- and number what remains ``name``, ``name#2``, ..."""
    groups: list[list[LayerTrace]] = []
    latest: dict[str, int] = {}
    for lt in traces:
        key = _CALL.sub("", lt.name, count=1)
        g = latest.get(key)
        prev = groups[g][-1] if g is not None else None
        if (
            g is not None
            and prev is not None
            and prev.mask is None
            and lt.mask is None
            and not prev.go_backwards
            and not lt.go_backwards
            and prev.h.shape[1:] == lt.h0.shape
            and prev.c.shape[1:] == lt.c0.shape
            and np.array_equal(prev.h[-1], lt.h0)
            and np.array_equal(prev.c[-1], lt.c0)
        ):
            groups[g].append(lt)
            continue
        latest[key] = len(groups)
        groups.append([lt])
    out = []
    count: dict[str, int] = {}
    for parts in groups:
        key = _CALL.sub("", parts[0].name, count=1)
        k = count[key] = count.get(key, 0) + 1
        head, sep, tail = key.partition("/")
        name = key if k == 1 else f"{head}#{k}{sep}{tail}"
        out.append(concat_traces(parts, name) if len(parts) > 1 else _renamed(parts[0], name))
    return out


def _renamed(lt: LayerTrace, name: str) -> LayerTrace:
    if lt.name == name:
        return lt
    from dataclasses import replace

    layer_name = name.rsplit("/", 1)[0] if "/" in name else name
    return replace(lt, name=name, layer_name=layer_name)


# ------------------------------------------------------------------------- inputs
def to_numpy(obj: Any) -> Any:
    """Framework tensors -> NumPy arrays, through tuples, lists and dicts (other values as
    they are)."""
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, (list, tuple)):
        items = [to_numpy(v) for v in obj]
        if hasattr(obj, "_fields"):  # a namedtuple
            return type(obj)(*items)
        return type(obj)(items)
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    mod = type(obj).__module__ or ""
    if mod.startswith("torch"):
        if type(obj).__name__ == "PackedSequence":
            from torch.nn.utils.rnn import pad_packed_sequence

            padded, lengths = pad_packed_sequence(obj, batch_first=True)
            return (to_numpy(padded), to_numpy(lengths))
        if hasattr(obj, "detach"):
            t = obj.detach()
            if str(t.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
                t = t.float()
            return np.array(t.cpu().numpy(), copy=True)
    if hasattr(obj, "numpy") and callable(obj.numpy):
        try:
            return np.array(obj.numpy(), copy=True)
        except (TypeError, ValueError, AttributeError):
            return obj
    return obj


@dataclass(frozen=True)
class Layout:
    """How the arrays the model takes map to lstmviz's layout, ``(batch, T, F)`` floats or
    ``(batch, T)`` token ids.

    ``time_major``: the model takes ``(T, batch, ...)``. ``scalar_steps``: the model takes
    ``(batch, T)`` floats, one number per step (lstmviz adds a feature axis of 1).
    """

    time_major: bool = False
    scalar_steps: bool = False
    dtype: str = "float32"

    def to_lstmviz(self, a: np.ndarray) -> np.ndarray:
        if self.time_major and a.ndim >= 2:
            a = a.swapaxes(0, 1)
        if self.scalar_steps:
            a = a[..., None]
        return np.ascontiguousarray(a)

    def to_model(self, a: np.ndarray) -> np.ndarray:
        if self.scalar_steps:
            a = a[..., 0]
        if self.time_major and a.ndim >= 2:
            a = a.swapaxes(0, 1)
        return np.ascontiguousarray(a, dtype=self.dtype)


def layout_of(a: np.ndarray, time_major: bool, what: str) -> Layout:
    """The :class:`Layout` of one model input ``a`` (as the model takes it)."""
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise InputError(f"{what} must be a numeric array or tensor; found dtype {a.dtype}")
    if a.ndim not in (2, 3):
        raise InputError(
            f"{what} must be (batch, T, features) floats, (batch, T) token ids or (batch, T) "
            f"numbers (or (T, batch, ...) with time_major=True); found shape {a.shape}. "
            "Add a batch axis to a single sequence: x[None]"
        )
    tokens = a.dtype.kind in "biu"
    return Layout(
        time_major=time_major,
        scalar_steps=(a.ndim == 2 and not tokens),
        dtype=str(a.dtype),
    )


@dataclass
class Vocabulary:
    """The embedding a token-id model starts with (what the app's input tools need)."""

    name: str
    input_dim: int
    mask_zero: bool = False


class FrameworkLayer(Layer):
    """A layer the framework runs and lstmviz only names (for the model panel)."""

    def __init__(self, name: str, kind: str, params: int) -> None:
        super().__init__(name)
        self.kind = kind
        self._params = int(params)

    @property
    def n_params(self) -> int:
        return self._params


_SUFFIX = re.compile(r"/(forward|backward)$")
_LAYER = re.compile(r"_l\d+$")  # layer k of a multi-layer nn.LSTM


def state_for(
    initial_state: dict[str, Any], names: list[str], batch: int, units: tuple[int, int], what: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``(h0, c0)`` that ``initial_state`` gives the first of ``names`` it has (a trace
    name, then the names of what holds it), as float32 ``(batch, P)`` / ``(batch, U)``."""
    for key in names:
        if key in initial_state:
            pair = initial_state[key]
            break
    else:
        return None
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise InputError(f"initial_state[{key!r}] must be a pair (h0, c0); got {type(pair)}")
    out = []
    for label, v, n in (("h0", pair[0], units[0]), ("c0", pair[1], units[1])):
        a = np.asarray(to_numpy(v), np.float32)
        if a.ndim == 1:
            a = np.broadcast_to(a, (batch, a.shape[0]))
        if a.shape != (batch, n):
            raise InputError(
                f"initial_state[{key!r}] {label} has shape {a.shape}; {what} needs "
                f"({batch}, {n}) or ({n},)"
            )
        if not np.all(np.isfinite(a)):
            raise InputError(f"initial_state[{key!r}] {label} contains NaN or inf")
        out.append(np.array(a, np.float32))
    return out[0], out[1]


class LiveModel:
    """A live torch or Keras model behind the interface the app and
    :mod:`lstmviz.export` use from :class:`lstmviz.engine.Model`.

    Its inputs are in lstmviz's layout -- ``(batch, T, F)`` floats or ``(batch, T)`` token
    ids, one array per model input -- and :meth:`trace` calls the framework again: a new
    input or a what-if in the app runs the user's model.

    ``verify`` (:data:`VERIFY`) picks, per LSTM call, between the full check (the framework
    runs its LSTM, the engine recomputes and checks every step) and the engine replacing the
    framework's LSTM with a spot check; ``LayerTrace.meta["verified"]`` records which ran.

    Subclasses implement :meth:`_run` (call the model with hooks, return its output and the
    layer traces) and the descriptive hooks :meth:`_framework_layers`, :meth:`_vocabulary`,
    :meth:`_n_params`.
    """

    framework = ""

    def __init__(
        self,
        model: Any,
        example: list[np.ndarray],
        layouts: list[Layout],
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        multi_input: bool = False,
        input_names: list[str] | None = None,
        name: str | None = None,
        verify: str = "auto",
    ) -> None:
        #: how each LSTM call is checked against the framework (see :data:`VERIFY`)
        self.verify = check_verify(verify)
        self.module = model
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.layouts = list(layouts)
        self.multi_input = multi_input
        self.input_names = list(input_names or [f"input_{k}" for k in range(len(layouts))])
        self.name = name or type(model).__name__
        self.source = ""
        self.format = f"{self.framework} (live)"
        self.meta: dict[str, Any] = {"live": self.framework, "class": type(model).__qualname__}
        self._example = example
        #: the first trace and its input: handed out once more for the same input (the app
        #: traces the example right after this), then every call runs the framework again
        #: (the weights may have changed in between)
        self._last: tuple[list[np.ndarray], Trace] | None = None
        self.example_trace: Trace | None = None
        self.layers: dict[str, Layer] = {}
        lv = [lay.to_lstmviz(a) for lay, a in zip(layouts, example, strict=True)]
        first = self.trace(lv if multi_input else lv[0])
        self.example_input: Any = lv if multi_input else lv[0]  # lstmviz's layout
        self.example_trace = first
        self._last = (lv, first)
        self._describe(first)

    # --- what the app reads -----------------------------------------------------------------
    @property
    def inputs(self) -> list[tuple[str, int, int]]:
        return [(n, 0, 0) for n in self.input_names]

    @property
    def takes_tokens(self) -> bool:
        return self.layouts[0].dtype[0] in "iub"

    @property
    def embedding(self) -> Vocabulary | None:
        if not self.takes_tokens:
            return None
        found = self._vocabulary()
        if found is not None:
            return found
        return Vocabulary("input", int(np.max(self._example[0])) + 1, False)

    @property
    def input_features(self) -> int | None:
        if self.takes_tokens:
            return None
        return int(self.layouts[0].to_lstmviz(self._example[0]).shape[-1])

    @property
    def input_timesteps(self) -> int | None:
        return None

    @property
    def lstm_layers(self) -> list[Layer]:
        return [lay for lay in self.layers.values() if isinstance(lay, (LSTM, Bidirectional))]

    @property
    def lstm_trace_names(self) -> list[str]:
        return list(self._trace_names)

    def lstm(self, name: str) -> LSTM:
        """The engine LSTM (weights, shapes) behind a trace name."""
        base = _SUFFIX.sub("", name)
        lay = self.layers.get(base)
        if isinstance(lay, Bidirectional):
            return lay.backward if name.endswith("/backward") else lay.forward
        if isinstance(lay, LSTM):
            return lay
        raise LstmvizError(
            f"no LSTM named {name!r} in the live model; LSTMs: {', '.join(self._trace_names)}"
        )

    @property
    def n_params(self) -> int:
        return self._n_params()

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer: name, kind, parameters, description."""
        return [
            {"name": lay.name, "kind": lay.kind, "params": lay.n_params, "description": lay.kind}
            for lay in self.layers.values()
        ]

    # --- inputs ---------------------------------------------------------------------------
    def _new_input_layouts(self) -> list[Layout]:
        """The input layouts once the example has been traced (a new input, given in
        lstmviz's layout); none while tracing the example (given as the model takes it)."""
        return self.layouts if self.example_trace is not None else []

    def check_input(self, x: Any) -> Any:
        """``x`` in lstmviz's layout, checked against the example input: the same rank, dtype
        kind and features (a list of arrays for a model with several inputs)."""
        if self.multi_input:
            if not isinstance(x, (list, tuple)) or len(x) != len(self.layouts):
                raise InputError(
                    f"{self.name}: the model takes {len(self.layouts)} inputs "
                    f"({', '.join(self.input_names)}); pass a list of {len(self.layouts)} arrays"
                )
            return [self._check_one(a, k) for k, a in enumerate(x)]
        return self._check_one(x, 0)

    def _check_one(self, x: Any, k: int) -> np.ndarray:
        name = self.input_names[k]
        a = to_numpy(x)
        try:
            a = np.asarray(a)
        except (TypeError, ValueError) as e:
            raise InputError(f"{self.name}: input {name!r} is not an array: {e}") from None
        want = self.layouts[k].to_lstmviz(self._example[k])
        tokens = want.dtype.kind in "iub"
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise InputError(f"{self.name}: input {name!r} must be numeric; found {a.dtype}")
        if a.ndim != want.ndim:
            shape = "(batch, T)" if want.ndim == 2 else "(batch, T, features)"
            raise InputError(
                f"{self.name}: input {name!r} must have shape {shape} like the example "
                f"{want.shape}; found shape {a.shape}"
            )
        if want.ndim == 3 and a.shape[2] != want.shape[2]:
            raise InputError(
                f"{self.name}: input {name!r} has {a.shape[2]} features per step; the model "
                f"takes {want.shape[2]} (example shape {want.shape})"
            )
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise InputError(f"{self.name}: input {name!r} is empty (shape {a.shape})")
        if tokens:
            if a.dtype.kind == "f" and (
                not np.all(np.isfinite(a)) or not np.all(np.mod(a, 1) == 0)
            ):
                raise InputError(f"{self.name}: input {name!r} takes integer token ids")
            a = a.astype(want.dtype)
            if a.min() < 0:
                raise InputError(f"{self.name}: input {name!r}: token id {a.min()} is negative")
            emb = self._vocabulary() if k == 0 else None
            if emb is not None and a.max() >= emb.input_dim:
                raise InputError(
                    f"{self.name}: input {name!r}: token id {a.max()} is out of the "
                    f"vocabulary of {emb.name!r} (ids 0..{emb.input_dim - 1})"
                )
            return a
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise InputError(f"{self.name}: input {name!r} contains NaN or inf")
        return a

    # --- the trace --------------------------------------------------------------------------
    def trace(
        self,
        x: Any,
        initial_state: dict[str, Any] | None = None,
        step_outputs: bool = True,
        reuse: Trace | None = None,
        out: Trace | None = None,
    ) -> Trace:
        """Run the framework's model on ``x`` (lstmviz's layout) and record every LSTM.

        ``initial_state`` ``{trace name: (h0, c0)}`` (each ``(batch, units)`` or
        ``(units,)``; a Bidirectional's or a multi-layer ``nn.LSTM``'s own name sets every
        half) replaces the state the model's code starts that LSTM from, on its first call:
        the framework then runs from it. ``trace.output`` is the framework's output (tensors
        as NumPy arrays). ``step_outputs``, ``reuse`` and ``out`` are accepted for the
        engine model's interface: the framework always runs the whole input (a per-step
        output is kept when the model's output is one).
        """
        del reuse, out  # the framework reruns the model; nothing of an old trace is reused
        overrides = dict(initial_state or {})
        if overrides:
            known = set(self._trace_names) | {lt.split("/")[0] for lt in self._trace_names}
            known |= {_LAYER.sub("", n) for n in known}
            unknown = [k for k in overrides if k not in known]
            if unknown:
                raise InputError(
                    f"{self.name}: initial_state names {', '.join(map(repr, unknown))}; the "
                    f"LSTMs are {', '.join(self._trace_names)}"
                )
        xs = self.check_input(x)
        xs_list = list(xs) if self.multi_input else [xs]
        last, self._last = self._last, None
        if not overrides and last is not None and _same_inputs(last[0], xs_list):
            return last[1]
        feed = [lay.to_model(a) for lay, a in zip(self.layouts, xs_list, strict=True)]
        output, layer_traces = self._run(feed, overrides)
        if not layer_traces:
            raise LstmvizError(
                f"{self.name}: the model ran, but no LSTM was called" + self._no_lstm_hint()
            )
        self._check_layout(feed[0], layer_traces)
        step = (
            _step_output(output, layer_traces, self.layouts[0].time_major) if step_outputs else None
        )
        tr = Trace(
            output=output,
            layers=tuple(layer_traces),
            inputs=xs,
            engine=f"{self.framework} (live)",
            step_output=step,
        )
        return tr

    def _run(
        self, feed: list[np.ndarray], initial_state: dict[str, Any]
    ) -> tuple[Any, list[LayerTrace]]:
        raise NotImplementedError

    def _n_params(self) -> int:
        raise NotImplementedError

    def _vocabulary(self) -> Vocabulary | None:
        return None

    def _no_lstm_hint(self) -> str:
        return ""

    def _check_layout(self, fed: np.ndarray, traces: list[LayerTrace]) -> None:
        """Refuse an input whose time axis the model reads differently from what lstmviz was
        told (the torch bridge checks an ``nn.LSTM``'s ``batch_first``)."""

    def _framework_layers(self) -> list[Layer]:
        return []

    def _describe(self, tr: Trace) -> None:
        """The layers dict: every LSTM the trace recorded (engine LSTM / Bidirectional
        objects), after the framework's other layers."""
        layers: dict[str, Layer] = {}
        for lay in self._framework_layers():
            layers[lay.name] = lay
        names: list[str] = []
        by_group: dict[str, dict[str, LayerTrace]] = {}
        for lt in tr.layers:
            names.append(lt.name)
            m = _SUFFIX.search(lt.name)
            if m is not None:
                by_group.setdefault(_SUFFIX.sub("", lt.name), {})[m.group(1)] = lt
            else:
                layers[lt.name] = _engine_lstm(lt)
        for base, halves in by_group.items():
            if set(halves) == {"forward", "backward"}:
                fwd, bwd = _engine_lstm(halves["forward"]), _engine_lstm(halves["backward"])
                layers[base] = Bidirectional(base, fwd, bwd, "concat")
            else:
                for lt in halves.values():
                    layers[lt.name] = _engine_lstm(lt)
        self.layers = layers
        self._trace_names = names

    def __repr__(self) -> str:
        return (
            f"LiveModel({self.framework}: {self.name}, LSTMs {self._trace_names}, "
            f"{self.n_params:,} parameters)"
        )


def _engine_lstm(lt: LayerTrace) -> LSTM:
    """What the model panel shows of one recorded LSTM: its weights and what it hands on
    (``meta["return_sequences"]`` / ``["return_state"]`` where the framework says)."""
    return LSTM(
        lt.name,
        lt.weights,
        return_sequences=bool(lt.meta.get("return_sequences", True)),
        return_state=bool(lt.meta.get("return_state", False)),
        go_backwards=lt.go_backwards,
    )


def _same_inputs(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)
        for x, y in zip(a, b, strict=True)
    )


def _first_array(output: Any) -> np.ndarray | None:
    if isinstance(output, np.ndarray):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], np.ndarray):
        return output[0]  # torch's (output, hidden), Keras's [output, h, c]
    return None


def _step_output(output: Any, traces: list[LayerTrace], time_major: bool) -> np.ndarray | None:
    """The model's output at every step of its last LSTM, when its output is per step."""
    out = _first_array(output)
    last = traces[-1]
    if out is None or out.ndim < 2 or out.dtype.kind != "f":
        return None
    b, t = last.batch_size, last.timesteps
    if time_major and out.shape[:2] == (t, b):
        out = out.swapaxes(0, 1)
    elif out.shape[:2] != (b, t):
        return None
    return np.ascontiguousarray(out.reshape(b, t, -1), np.float32)
