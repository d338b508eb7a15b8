"""Check my LSTM: compare a from-scratch implementation with the model, name the mistake.

A student who writes the six LSTM equations by hand (a ``MyLSTM`` class) saves the arrays
their implementation produced on the model's weights and input; :func:`diagnose` traces the
same input with lstmviz's engine, finds where the two first disagree, and re-runs the layer
under every recognisable mistake to name the one that reproduces the student's numbers:

=============================  ===============================================================
cause                          what the student did
=============================  ===============================================================
``swap_i_f`` (any ``swap_*``)  two gate blocks swapped when slicing the kernels
``tf1_order``                  read Keras's blocks (i, f, c, o) in TF1 order (i, j, f, o)
``onnx_order``                 read Keras's blocks in ONNX order (i, o, f, c)
``gate_order``                 some other order of the four blocks
``forget_bias_missing``        left out the +1 TF1 adds to the forget gate (``forget_bias``)
``forget_bias_doubled``        added +1 to a forget bias that already holds it
``bias_missing`` / ``_doubled``  no bias at all / bias added twice (PyTorch's two biases)
``activations_swapped``        sigmoid and tanh exchanged everywhere
``candidate_sigmoid``          the candidate g through a sigmoid
``gates_tanh``                 the gates i, f, o through tanh
``cell_tanh_missing``          ``h = o · c`` instead of ``o · tanh(c)``
``cell_sigmoid``               ``h = o · σ(c)``
``cell_squashed``              ``c = tanh(f · c_prev + i · g)``
``output_gate_missing``        ``h = tanh(c)``
``kernel_transposed``          ``x · W_k^T`` per gate (PyTorch's ``weight_ih`` layout; F == U)
``recurrent_transposed``       ``h · U_k^T`` per gate (PyTorch's ``weight_hh`` layout)
``recurrent_missing``          ``h_{t-1}`` never fed back
``x_h_swapped``                ``x`` through the recurrent kernel and ``h`` through the kernel
``activation_not_tanh``        tanh used where the model's activation is another one
``h_c_swapped``                h returned as c and c as h
``initial_state_nonzero``      started from a non-zero state (estimated from the first steps)
``initial_state_ignored``      started from zeros instead of the given ``h0``/``c0``
=============================  ===============================================================
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ..engine import activations
from ..engine.cell import LSTMWeights, run_lstm
from ..engine.model import Model
from ..engine.trace import LayerTrace
from ..errors import InputError, LstmvizError
from ._util import valid_mask

#: Quantities compared, in the order they are computed within a step.
ORDER = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
_ALIASES = {
    "hidden": ("hidden", "h", "outputs", "output", "h_seq", "hidden_states", "hs"),
    "cell": ("cell", "c", "c_seq", "cell_states", "cs"),
    "input_gate": ("input_gate", "i", "i_t", "input"),
    "forget_gate": ("forget_gate", "f", "f_t", "forget"),
    "candidate": ("candidate", "g", "g_t", "c_tilde", "c_hat", "new_memory"),
    "output_gate": ("output_gate", "o", "o_t"),
    "state_h": ("state_h", "h_T", "ht", "final_h", "h_last"),
    "state_c": ("state_c", "c_T", "ct", "final_c", "c_last"),
    "h0": ("h0", "initial_h", "h_0", "init_h"),
    "c0": ("c0", "initial_c", "c_0", "init_c"),
    "layer": ("layer", "layer_name"),
}
_LETTER = {"i": "i", "f": "f", "c": "g", "o": "o"}  # Keras block letter -> gate symbol


@dataclass
class Diagnosis:
    """The result of :func:`diagnose`.

    Attributes
    ----------
    ok : bool
        Every provided array matches the model within tolerance.
    layer : str
        The compared LSTM layer.
    first_step : int or None
        Input position of the first step (in processing order) where anything diverges.
    first_quantity : str or None
        The quantity that diverges first at that step (earliest in computation order:
        gates, then cell, then hidden).
    first_batch, first_unit : int or None
        Where that first divergence is largest.
    max_error : dict
        ``{quantity: max |student - model|}`` over every provided quantity.
    errors : dict
        ``{quantity: (batch, T, units) |student - model|}`` (0 at masked steps) for heatmaps.
    likely_cause : str
        A short text naming the recognised mistake (or saying none was found).
    cause : str or None
        Key of the recognised mistake (see the module docstring), None when none matched.
    hypotheses : list of (str, str, float)
        Every tried mistake ``(key, description, error)``, best first; ``error`` is the
        largest deviation in units of the tolerance (<= 1 is a match).
    initial_state : tuple of ndarray or None
        The estimated ``(h0, c0)`` when the cause is a non-zero initial state.
    notes : list of str
        Things adjusted on the way (time-major arrays transposed, unknown keys ignored).
    """

    ok: bool
    layer: str
    first_step: int | None
    first_quantity: str | None
    first_batch: int | None
    first_unit: int | None
    max_error: dict[str, float]
    errors: dict[str, np.ndarray]
    likely_cause: str
    cause: str | None = None
    hypotheses: list[tuple[str, str, float]] = field(default_factory=list)
    initial_state: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    atol: float = 1e-4
    rtol: float = 1e-4
    outside: dict[str, np.ndarray] = field(default_factory=dict)

    def diverged(self, quantity: str) -> np.ndarray | None:
        """``(batch, T, units)`` bool: where ``quantity`` is outside tolerance (None if the
        student gave no such array)."""
        return self.outside.get(quantity)

    def summary(self) -> str:
        """A few lines for a console or a text panel."""
        lines = [
            f"layer {self.layer!r}: "
            + ("matches the model" if self.ok else "differs from the model")
        ]
        if not self.ok and self.first_step is not None:
            lines.append(
                f"first divergence: {self.first_quantity} at t={self.first_step} "
                f"(batch item {self.first_batch}, unit {self.first_unit})"
            )
        for q, e in self.max_error.items():
            lines.append(f"  max |error| {q:<12} {e:.3g}")
        lines.append(f"likely cause: {self.likely_cause}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class _Common(TypedDict):
    """The fields of a :class:`Diagnosis` that a match and a mismatch fill the same way."""

    layer: str
    max_error: dict[str, float]
    errors: dict[str, np.ndarray]
    notes: list[str]
    atol: float
    rtol: float
    outside: dict[str, np.ndarray]


# ----------------------------------------------------------------------------- student input
def _load_student(student: Any) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    if isinstance(student, (str, os.PathLike)):
        p = Path(student)
        if not p.is_file():
            raise InputError(f"{p}: no such student file")
        try:
            with np.load(p, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except (ValueError, OSError) as e:
            raise InputError(f"{p}: not a readable .npz file ({e})") from None
    elif isinstance(student, dict):
        raw = dict(student)
    else:
        raise InputError(
            f"student must be a dict of arrays or a .npz path; got {type(student).__name__}"
        )
    out: dict[str, Any] = {}
    lookup = {alias: key for key, names in _ALIASES.items() for alias in names}
    for k, v in raw.items():
        key = lookup.get(k, lookup.get(str(k).lower()))
        if key is None:
            notes.append(f"ignored unknown key {k!r}")
            continue
        if key in out:
            notes.append(f"{k!r} duplicates {key!r}; ignored")
            continue
        if key == "layer":
            out[key] = str(np.asarray(v).item()) if not isinstance(v, (str, int)) else v
            continue
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"student array {k!r} is not numeric") from None
        out[key] = a
    if "hidden" not in out and "state_h" not in out:
        raise InputError(
            "the student's arrays need at least 'hidden' (batch, T, units) -- the "
            "whole output sequence of their LSTM"
        )
    return out, notes


def _shape_student(st: dict[str, Any], lt: LayerTrace, notes: list[str]) -> None:
    want = (lt.batch_size, lt.timesteps, lt.units)
    for q in (*ORDER,):
        if q not in st:
            continue
        a = st[q]
        if a.ndim == 2 and lt.batch_size == 1 and a.shape == want[1:]:
            a = a[None]
        if a.shape != want and a.shape == (want[1], want[0], want[2]):
            notes.append(f"{q} was time-major (T, batch, units); transposed to (batch, T, units)")
            a = a.transpose(1, 0, 2)
        if a.shape == (want[0], want[2]) and q in ("hidden", "cell"):
            key = "state_h" if q == "hidden" else "state_c"
            notes.append(f"{q} holds only the final state; compared as {key}")
            st[key] = a
            del st[q]
            continue
        if a.shape != want:
            raise InputError(
                f"student {q} has shape {a.shape}; expected (batch, T, units) = "
                f"{want} for layer {lt.name!r}"
            )
        if not np.all(np.isfinite(a)):
            raise InputError(f"student {q} contains NaN or inf")
        st[q] = a
    for q in ("state_h", "state_c", "h0", "c0"):
        if q in st:
            a = st[q]
            if a.ndim == 1 and a.shape[0] == lt.units:
                a = np.broadcast_to(a, (lt.batch_size, lt.units))
            if a.shape != (lt.batch_size, lt.units):
                raise InputError(
                    f"student {q} has shape {a.shape}; expected (batch, units) = "
                    f"{(lt.batch_size, lt.units)}"
                )
            st[q] = np.asarray(a, np.float64)


# ----------------------------------------------------------------------------- simulations
Sim = dict[str, np.ndarray]


def _from_trace(lt: LayerTrace) -> Sim:
    return {q: np.asarray(lt.get(q), np.float64) for q in ORDER}


def _act64(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name == "sigmoid":
        return lambda z: 0.5 * np.tanh(0.5 * z) + 0.5
    if name == "tanh":
        return np.tanh
    if name in ("linear", "None", "none", ""):
        return lambda z: z
    fn = activations.get(name)
    return lambda z: fn(z.astype(np.float32), np.empty(z.shape, np.float32)).astype(np.float64)


def _simulate(
    lt: LayerTrace,
    w: LSTMWeights,
    h0: np.ndarray,
    c0: np.ndarray,
    *,
    gate_act: str | None = None,
    cand_act: str | None = None,
    cell_act: str | None = None,
    use_o: bool = True,
    squash_cell: bool = False,
    steps: int | None = None,
) -> Sim:
    """The LSTM written plainly (float64), with switchable activations, from ``(h0, c0)``
    ``(B, U)``; only the first ``steps`` steps in processing order when given."""
    x = np.asarray(lt.x, np.float64)  # (B, T, F)
    batch, n, _ = x.shape
    u = w.units
    sig = _act64(gate_act or w.recurrent_activation)
    tanh_g = _act64(cand_act or w.activation)
    tanh_c = _act64(cell_act or w.activation)
    kern = np.asarray(w.kernel, np.float64)
    rec = np.asarray(w.recurrent_kernel, np.float64)
    b = np.zeros(4 * u) if w.bias is None else np.asarray(w.bias, np.float64)
    order = list(range(n - 1, -1, -1) if lt.go_backwards else range(n))
    if steps is not None:
        order = order[:steps]
    zx = x @ kern + b  # (B, T, 4U)
    m = None if lt.mask is None else np.asarray(lt.mask, bool)
    out = {q: np.zeros((batch, n, u)) for q in ORDER}
    h = np.array(h0, np.float64)
    c = np.array(c0, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        _loop(order, zx, rec, h, c, m, out, sig, tanh_g, tanh_c, u, use_o, squash_cell)
    return out


def _loop(
    order: list[int],
    zx: np.ndarray,
    rec: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    m: np.ndarray | None,
    out: Sim,
    sig: Callable[[np.ndarray], np.ndarray],
    tanh_g: Callable[[np.ndarray], np.ndarray],
    tanh_c: Callable[[np.ndarray], np.ndarray],
    u: int,
    use_o: bool,
    squash_cell: bool,
) -> None:
    for t in order:
        z = zx[:, t] + h @ rec  # (B, 4U)
        i = sig(z[:, :u])
        f = sig(z[:, u : 2 * u])
        g = tanh_g(z[:, 2 * u : 3 * u])
        o = sig(z[:, 3 * u :])
        c_new = f * c + i * g
        if squash_cell:
            c_new = tanh_c(c_new)
        h_new = (o * tanh_c(c_new)) if use_o else tanh_c(c_new)
        if m is not None:
            keep = ~m[:, t]
            c_new[keep] = c[keep]
            h_new[keep] = h[keep]
        for q, v in zip(ORDER, (i, f, g, o, c_new, h_new), strict=True):
            out[q][:, t] = v
        h, c = h_new, c_new


def _run(lt: LayerTrace, w: LSTMWeights, h0: np.ndarray, c0: np.ndarray) -> Sim:
    r = run_lstm(np.asarray(lt.x), w, h0=h0, c0=c0, mask=lt.mask, go_backwards=lt.go_backwards)
    return _from_trace(r)


def _blocks(a: np.ndarray, u: int) -> list[np.ndarray]:
    return [a[..., k * u : (k + 1) * u] for k in range(4)]


def _weights(
    w: LSTMWeights,
    kernel: np.ndarray | None = None,
    rec: np.ndarray | None = None,
    bias: Any = "same",
    activation: str | None = None,
    recurrent_activation: str | None = None,
) -> LSTMWeights:
    return LSTMWeights(
        w.kernel if kernel is None else kernel,
        w.recurrent_kernel if rec is None else rec,
        w.bias if isinstance(bias, str) else bias,
        activation or w.activation,
        recurrent_activation or w.recurrent_activation,
    )


# ----------------------------------------------------------------------------- hypotheses
@dataclass
class _Hyp:
    key: str
    text: str
    run: Callable[[], Sim]


def _perm_name(p: tuple[int, ...]) -> tuple[str, str]:
    """Key and text for a student who computes Keras gate k from block p[k]."""
    keras = "ifco"
    if p == (0, 2, 1, 3):
        return (
            "tf1_order",
            "gate blocks read in TF1 order (i, j, f, o) instead of Keras's "
            "(i, f, c, o): the forget gate and the candidate exchange weights",
        )
    if p == (0, 2, 3, 1):
        return (
            "onnx_order",
            "gate blocks read in ONNX order (i, o, f, c) instead of Keras's (i, f, c, o)",
        )
    moved = [k for k in range(4) if p[k] != k]
    if len(moved) == 2:
        a, b = (_LETTER[keras[k]] for k in moved)
        return (
            f"swap_{a}_{b}",
            f"gates {a} and {b} swapped: their weight blocks are "
            "exchanged (Keras and PyTorch order is i, f, c/g, o)",
        )
    used = ", ".join(f"{_LETTER[keras[k]]}←block {p[k]}" for k in range(4))
    return ("gate_order", f"gate blocks in the wrong order ({used}); Keras's order is i, f, c, o")


def _hypotheses(
    lt: LayerTrace, w: LSTMWeights, h0: np.ndarray, c0: np.ndarray, given_state: bool
) -> list[_Hyp]:
    u = w.units
    hyps: list[_Hyp] = []
    kb = _blocks(w.kernel, u)
    rb = _blocks(w.recurrent_kernel, u)
    bb = None if w.bias is None else _blocks(w.bias, u)

    def perm(p: tuple[int, ...]) -> Callable[[], Sim]:
        def go() -> Sim:
            k = np.concatenate([kb[j] for j in p], axis=1)
            r = np.concatenate([rb[j] for j in p], axis=1)
            b = None if bb is None else np.concatenate([bb[j] for j in p])
            return _run(lt, _weights(w, k, r, b), h0, c0)

        return go

    for p in itertools.permutations(range(4)):
        if p != (0, 1, 2, 3):
            key, text = _perm_name(p)
            hyps.append(_Hyp(key, text, perm(p)))

    bias = w.bias
    if bias is not None:

        def fbias(delta: float) -> Callable[[], Sim]:
            def go() -> Sim:
                b = bias.copy()
                b[u : 2 * u] += delta
                return _run(lt, _weights(w, bias=b), h0, c0)

            return go

        hyps.append(
            _Hyp(
                "forget_bias_missing",
                "forget bias missing: the +1 that TF1's "
                "LSTMCell adds to the forget gate (forget_bias=1.0) was left out",
                fbias(-1.0),
            )
        )
        hyps.append(
            _Hyp(
                "forget_bias_doubled",
                "forget bias added twice: +1 on a forget "
                "bias that already includes it (TF1 forget_bias on Keras weights, or "
                "unit_forget_bias applied again)",
                fbias(1.0),
            )
        )
        hyps.append(
            _Hyp(
                "bias_missing",
                "bias left out of every gate",
                lambda: _run(lt, _weights(w, bias=None), h0, c0),
            )
        )
        hyps.append(
            _Hyp(
                "bias_doubled",
                "bias added twice (e.g. PyTorch's bias_ih and bias_hh both set to the whole bias)",
                lambda: _run(lt, _weights(w, bias=2 * bias), h0, c0),
            )
        )
    act, rec_act = w.activation, w.recurrent_activation
    if act != rec_act:
        hyps.append(
            _Hyp(
                "activations_swapped",
                f"activations swapped: {act} on the gates and {rec_act} on the candidate and cell",
                lambda: _run(lt, _weights(w, activation=rec_act, recurrent_activation=act), h0, c0),
            )
        )
        hyps.append(
            _Hyp(
                "candidate_sigmoid",
                f"candidate g computed with {rec_act} instead of {act}",
                lambda: _simulate(lt, w, h0, c0, cand_act=rec_act),
            )
        )
        hyps.append(
            _Hyp(
                "gates_tanh",
                f"gates i, f, o computed with {act} instead of {rec_act}",
                lambda: _simulate(lt, w, h0, c0, gate_act=act),
            )
        )
        hyps.append(
            _Hyp(
                "cell_sigmoid",
                f"h = o·{rec_act}(c) instead of o·{act}(c)",
                lambda: _simulate(lt, w, h0, c0, cell_act=rec_act),
            )
        )
    if act != "tanh":
        hyps.append(
            _Hyp(
                "activation_not_tanh",
                f"tanh used where the model's activation is "
                f"{act} (e.g. LSTM(activation=None) in the model, the textbook tanh "
                "in the student's code)",
                lambda: _run(lt, _weights(w, activation="tanh"), h0, c0),
            )
        )
    if act not in ("linear", None):
        hyps.append(
            _Hyp(
                "cell_tanh_missing",
                f"{act} on the cell state missing: h = o·c instead of o·{act}(c)",
                lambda: _simulate(lt, w, h0, c0, cell_act="linear"),
            )
        )
        hyps.append(
            _Hyp(
                "cell_squashed",
                f"{act} applied to the cell state itself: c = {act}(f·c_prev + i·g)",
                lambda: _simulate(lt, w, h0, c0, squash_cell=True),
            )
        )
    hyps.append(
        _Hyp(
            "output_gate_missing",
            f"output gate missing: h = {act}(c) instead of o·{act}(c)",
            lambda: _simulate(lt, w, h0, c0, use_o=False),
        )
    )
    rt = np.concatenate([blk.T for blk in rb], axis=1)
    hyps.append(
        _Hyp(
            "recurrent_transposed",
            "recurrent weights transposed: h·U_k^T per gate "
            "(PyTorch's weight_hh layout (4H, H) used as Keras's (U, 4U))",
            lambda: _run(lt, _weights(w, rec=rt), h0, c0),
        )
    )
    if w.input_dim == u:
        kt = np.concatenate([blk.T for blk in kb], axis=1)
        hyps.append(
            _Hyp(
                "kernel_transposed",
                "input kernel transposed: x·W_k^T per gate "
                "(PyTorch's weight_ih layout (4H, F) used as Keras's (F, 4U))",
                lambda: _run(lt, _weights(w, kernel=kt), h0, c0),
            )
        )
        hyps.append(
            _Hyp(
                "both_transposed",
                "kernel and recurrent kernel transposed per gate "
                "(PyTorch's layout used as Keras's)",
                lambda: _run(lt, _weights(w, kernel=kt, rec=rt), h0, c0),
            )
        )
        hyps.append(
            _Hyp(
                "x_h_swapped",
                "input and hidden state swapped: x·U + h·W",
                lambda: _run(lt, _weights(w, kernel=w.recurrent_kernel, rec=w.kernel), h0, c0),
            )
        )

    def swapped_states() -> Sim:
        ref = _run(lt, w, h0, c0)
        ref["hidden"], ref["cell"] = ref["cell"], ref["hidden"]
        return ref

    hyps.append(
        _Hyp(
            "h_c_swapped",
            "hidden and cell state swapped: the cell state is returned "
            "as h and the hidden state as c (check the order of (h, c) in your return "
            "and unpacking)",
            swapped_states,
        )
    )
    hyps.append(
        _Hyp(
            "recurrent_missing",
            "h_{t-1} never fed back: the recurrent term h·U is missing",
            lambda: _run(lt, _weights(w, rec=np.zeros_like(w.recurrent_kernel)), h0, c0),
        )
    )
    if given_state and (np.any(h0 != 0) or np.any(c0 != 0)):
        z = np.zeros_like(h0)
        hyps.append(
            _Hyp(
                "initial_state_ignored",
                "initial state ignored: the run starts from zeros instead of the given h0, c0",
                lambda: _run(lt, w, z, z),
            )
        )
    return hyps


# ----------------------------------------------------------------------------- comparing
def _tol(ref: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    return atol + rtol * np.abs(ref)


def _score(
    sim: Sim, st: dict[str, Any], valid: np.ndarray, lt: LayerTrace, atol: float, rtol: float
) -> float:
    """Largest deviation of ``sim`` from the student's arrays, in units of the tolerance."""
    worst = 0.0
    for q in ORDER:
        if q in st:
            with np.errstate(over="ignore", invalid="ignore"):
                d = np.abs(sim[q] - st[q]) / _tol(st[q], atol, rtol)  # (B, T, U)
            d = d[valid]
            if not np.all(np.isfinite(d)):
                return float("inf")
            worst = max(worst, float(d.max(initial=0.0)))
    last = lt.processing_order[-1]
    for q, src in (("state_h", "hidden"), ("state_c", "cell")):
        if q in st:
            d = np.abs(sim[src][:, last] - st[q]) / _tol(st[q], atol, rtol)
            worst = max(worst, float(d.max(initial=0.0)))
    return worst


def _fit_initial_state(
    lt: LayerTrace,
    w: LSTMWeights,
    st: dict[str, Any],
    h_init: np.ndarray,
    c_init: np.ndarray,
    iters: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate the student's ``(h0, c0)`` from their first steps (Levenberg-Marquardt with a
    numerical Jacobian, every batch item at once: the Jacobian is block-diagonal)."""
    u = w.units
    k = min(lt.timesteps, 4)
    order = lt.processing_order[:k]
    qs = [q for q in ORDER if q in st]

    def resid(p: np.ndarray) -> np.ndarray:  # p (B, 2U) -> (B, R)
        sim = _simulate(lt, w, p[:, :u], p[:, u:], steps=k)
        return np.concatenate(
            [(sim[q][:, order] - st[q][:, order]).reshape(p.shape[0], -1) for q in qs], axis=1
        )

    p = np.concatenate([h_init, c_init], axis=1).astype(np.float64)  # (B, 2U)
    guess = _closed_form_state(lt, w, st)
    if guess is not None:
        r0, rg = resid(p), resid(guess)
        better = (rg * rg).sum(axis=1) < (r0 * r0).sum(axis=1)
        p[better] = guess[better]
    batch = p.shape[0]
    lam = np.full(batch, 1e-3)
    r = resid(p)
    cost = (r * r).sum(axis=1)  # (B,)
    eps = 1e-7
    for _ in range(iters):
        jac = np.empty((batch, r.shape[1], 2 * u))  # (B, R, 2U)
        for j in range(2 * u):
            q = p.copy()
            q[:, j] += eps
            jac[:, :, j] = (resid(q) - r) / eps
        if not (np.all(np.isfinite(jac)) and np.all(np.isfinite(r))):
            break
        jtj = np.einsum("bri,brj->bij", jac, jac)  # (B, 2U, 2U)
        jtr = np.einsum("bri,br->bi", jac, r)  # (B, 2U)
        step = np.stack(
            [
                np.linalg.lstsq(
                    jtj[b] + lam[b] * np.diag(np.diag(jtj[b]) + 1e-12), -jtr[b], rcond=None
                )[0]
                for b in range(batch)
            ]
        )
        trial = p + step
        r_new = resid(trial)
        with np.errstate(over="ignore", invalid="ignore"):
            cost_new = (r_new * r_new).sum(axis=1)
        cost_new = np.where(np.isfinite(cost_new), cost_new, np.inf)
        better = cost_new < cost
        p[better] = trial[better]
        r[better] = r_new[better]
        cost[better] = cost_new[better]
        lam = np.where(better, lam / 5, lam * 4)
        if cost.max() < 1e-24:
            break
    return p[:, :u], p[:, u:]


def _closed_form_state(lt: LayerTrace, w: LSTMWeights, st: dict[str, Any]) -> np.ndarray | None:
    """``(h0, c0)`` from the student's first step when they gave h and c: the output gate
    ``o = h / tanh(c)`` is linear in ``h0`` through ``U_o``; then ``c0 = (c - i·g) / f``."""
    if (
        "hidden" not in st
        or "cell" not in st
        or w.activation != "tanh"
        or w.recurrent_activation != "sigmoid"
    ):
        return None
    u = w.units
    t = int(lt.processing_order[0])
    x0 = np.asarray(lt.x, np.float64)[:, t]  # (B, F)
    h1, c1 = st["hidden"][:, t], st["cell"][:, t]  # (B, U)
    b = np.zeros(4 * u) if w.bias is None else np.asarray(w.bias, np.float64)
    kern = np.asarray(w.kernel, np.float64)
    rec = np.asarray(w.recurrent_kernel, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = np.clip(h1 / np.tanh(c1), 1e-6, 1 - 1e-6)
        z_o = np.log(o / (1 - o))  # (B, U)
        rhs = z_o - x0 @ kern[:, 3 * u :] - b[3 * u :]
        h0 = np.linalg.lstsq(rec[:, 3 * u :].T, rhs.T, rcond=None)[0].T  # (B, U)
        z = x0 @ kern + h0 @ rec + b  # (B, 4U)
        sig = 0.5 * np.tanh(0.5 * z) + 0.5
        i, f = sig[:, :u], sig[:, u : 2 * u]
        g = np.tanh(z[:, 2 * u : 3 * u])
        c0 = (c1 - i * g) / np.where(np.abs(f) < 1e-9, 1e-9, f)
    p = np.concatenate([h0, c0], axis=1)
    if not np.all(np.isfinite(p)):
        return None
    return p


def _first_divergence(
    ref: Sim, st: dict[str, Any], valid: np.ndarray, lt: LayerTrace, atol: float, rtol: float
) -> tuple[int | None, str | None, int | None, int | None]:
    """``(t, quantity, batch item, unit)`` where the student first leaves the tolerance (all
    None where it never does)."""
    bad = {
        q: (np.abs(ref[q] - st[q]) > _tol(st[q], atol, rtol)) & valid[..., None]
        for q in ORDER
        if q in st
    }
    for t in lt.processing_order:
        for q in ORDER:
            if q in bad and bad[q][:, t].any():
                e = np.abs(ref[q][:, t] - st[q][:, t]) * bad[q][:, t]  # (B, U)
                b, unit = np.unravel_index(int(np.argmax(e)), e.shape)
                return int(t), q, int(b), int(unit)
    last = int(lt.processing_order[-1])
    for q, src in (("state_h", "hidden"), ("state_c", "cell")):
        if q in st:
            e = np.abs(ref[src][:, last] - st[q])
            if (e > _tol(st[q], atol, rtol)).any():
                b, unit = np.unravel_index(int(np.argmax(e)), e.shape)
                return last, q, int(b), int(unit)
    return None, None, None, None


def _generic_cause(q: str | None, t: int | None, st: dict[str, Any]) -> str:
    if q is None:
        return "unrecognised"
    where = f"at t={t}"
    hints = {
        "input_gate": "check the i slice of W, U and b and the recurrent activation",
        "forget_gate": "check the f slice of W, U and b (and any forget_bias)",
        "candidate": "check the c/g slice of W, U and b and the activation (tanh)",
        "output_gate": "check the o slice of W, U and b",
        "cell": "the gates agree, so check c = f·c_prev + i·g (and which c_prev you use)",
        "hidden": "check h = o·tanh(c)",
        "state_h": "only the final state differs: check what you return",
        "state_c": "only the final cell state differs: check what you return",
    }
    more = (
        ""
        if len([k for k in ORDER if k in st]) > 1
        else ("; save the cell state and the gates too to narrow it down")
    )
    return f"unrecognised: {q} differs first {where}; {hints.get(q, '')}{more}"


# ----------------------------------------------------------------------------- the API
def diagnose(
    model: Model,
    x: Any,
    student: dict[str, Any] | str | os.PathLike[str],
    *,
    layer: str | int | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> Diagnosis:
    """Check a from-scratch LSTM against the model and name the likely mistake.

    Parameters
    ----------
    model : Model
        The lstmviz model whose weights the student used.
    x : array_like
        The model input the student's run corresponds to (the student's LSTM sees the
        chosen layer's input, e.g. the Embedding output).
    student : dict or path to .npz
        The student's arrays, each ``(batch, T, units)`` batch-major: ``hidden`` (required;
        also accepted: ``h``, ``outputs``), optionally ``cell``, ``input_gate``,
        ``forget_gate``, ``candidate``, ``output_gate`` (or ``i, f, g, o``), final states
        ``state_h``/``state_c`` ``(batch, units)``, the initial state both runs used
        ``h0``/``c0``, and ``layer`` (name or index; default the first LSTM).
    layer : str or int, optional
        Overrides ``student["layer"]``.
    atol, rtol : float
        Tolerance: ``|student - model| <= atol + rtol·|student|``.

    Returns
    -------
    Diagnosis

    Examples
    --------
    >>> d = diagnose(model, x, {"hidden": my_outputs, "cell": my_cells})   # doctest: +SKIP
    >>> d.first_step, d.first_quantity, d.likely_cause                     # doctest: +SKIP
    (0, 'forget_gate', 'gates i and f swapped: ...')
    """
    st, notes = _load_student(student)
    name = layer if layer is not None else st.pop("layer", None)
    st.pop("layer", None)
    if name is None:
        name = model.lstm_trace_names[0]
    if isinstance(name, str) and name.isdigit():
        name = int(name)
    if isinstance(name, int):
        names = model.lstm_trace_names
        if not 0 <= name < len(names):
            raise LstmvizError(
                f"layer index {name} out of range: the model has {len(names)} LSTM layer(s)"
            )
        name = names[name]
    init = None
    if "h0" in st or "c0" in st:
        init = {name: (st.get("h0"), st.get("c0"))}
    trace = model.trace(x, initial_state=init)
    lt = trace.layer(name)
    _shape_student(st, lt, notes)
    w = lt.weights
    h0 = np.asarray(lt.h0, np.float64)
    c0 = np.asarray(lt.c0, np.float64)
    valid = valid_mask(lt)  # (B, T)
    ref = _from_trace(lt)
    errors = {
        q: np.where(valid[..., None], np.abs(ref[q] - st[q]), 0.0).astype(np.float32)
        for q in ORDER
        if q in st
    }
    outside = {q: (errors[q] > _tol(st[q], atol, rtol)) for q in errors}
    max_error = {q: float(e.max(initial=0.0)) for q, e in errors.items()}
    last = int(lt.processing_order[-1])
    for q, src in (("state_h", "hidden"), ("state_c", "cell")):
        if q in st:
            max_error[q] = float(np.abs(ref[src][:, last] - st[q]).max())
    t0, q0, b0, u0 = _first_divergence(ref, st, valid, lt, atol, rtol)
    base = _Common(
        layer=lt.name,
        max_error=max_error,
        errors=errors,
        notes=notes,
        atol=atol,
        rtol=rtol,
        outside=outside,
    )
    if q0 is None:
        worst = max(max_error.values(), default=0.0)
        return Diagnosis(
            ok=True,
            first_step=None,
            first_quantity=None,
            first_batch=None,
            first_unit=None,
            likely_cause=f"none: the implementation matches the model (max error {worst:.2g})",
            **base,
        )
    tried: list[tuple[str, str, float]] = []
    best: tuple[str, str, float] | None = None
    for hyp in _hypotheses(lt, w, h0, c0, given_state=init is not None):
        with np.errstate(over="ignore", invalid="ignore"):  # a wrong guess may blow up
            sim = hyp.run()
        s = _score(sim, st, valid, lt, atol, rtol)
        tried.append((hyp.key, hyp.text, s))
        if s <= 1.0 and (best is None or s < best[2]):
            best = (hyp.key, hyp.text, s)
    est = None
    if best is None and w.units <= 64 and any(q in st for q in ORDER):
        # a different initial state: fit it to the first steps, then check every step
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            h_e, c_e = _fit_initial_state(lt, w, st, h0, c0)
            s = _score(_simulate(lt, w, h_e, c_e), st, valid, lt, atol, rtol)
        moved = float(max(np.abs(h_e - h0).max(), np.abs(c_e - c0).max()))
        text = (
            "initial state: the run starts from a non-zero state "
            f"(estimated from the first steps: |h0| ≤ {np.abs(h_e).max():.2f}, "
            f"|c0| ≤ {np.abs(c_e).max():.2f}) where the model starts from "
            + ("the given h0, c0" if init is not None else "zeros")
            + "; pass the same initial_state to both, e.g. as student['h0'], "
            "student['c0']"
        )
        tried.append(("initial_state_nonzero", text, s))
        if s <= 1.0 and moved > atol:
            best = ("initial_state_nonzero", text, s)
            est = (h_e.astype(np.float32), c_e.astype(np.float32))
    tried.sort(key=lambda h: h[2])
    if best is not None:
        cause, text = best[0], best[1]
    else:
        cause = None
        text = _generic_cause(q0, t0, st)
        if tried and tried[0][2] < 0.05 * max(_score(ref, st, valid, lt, atol, rtol), 1e-30):
            text += f" (closest known mistake: {tried[0][1]})"
    return Diagnosis(
        ok=False,
        first_step=t0,
        first_quantity=q0,
        first_batch=b0,
        first_unit=u0,
        likely_cause=text,
        cause=cause,
        hypotheses=tried,
        initial_state=est,
        **base,
    )
