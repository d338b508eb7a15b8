"""Gradients of a model's output: saliency, integrated gradients, connectivity, memory paths.

All NumPy, on the engine's backward pass (:mod:`lstmviz.engine.backward`).

A *target* names one scalar per batch item, summed over the batch (each item's gradient is then
its own, as items do not interact):

* ``(t, k)``: output unit ``k`` at step ``t`` of the model's output (``t = -1`` the last step;
  for a model that outputs only its last step ``t`` is ignored);
* ``k``: the same as ``(-1, k)``;
* an array shaped like the output: the seed ``d target / d output`` itself (the target is the
  seed's inner product with the output; ``dL/dy`` gives a loss's gradient);
* a callable ``f(output) -> seed``.

``space`` says which number of the output unit is the target: ``"output"`` (what the model
returns: a probability for a softmax head), ``"logit"`` (the head's pre-activation) or ``"log"``
(the log of the output: a log-probability).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import budget
from ..engine import layers as L
from ..engine.backward import Gradients, NodeRecord, Tape, backward, record
from ..engine.model import Model, TensorRef
from ..engine.reprs import dataclass_repr
from ..errors import InputError, LstmvizError
from ..io.keras import OpLayer
from ._util import engine_model

SPACES = ("output", "logit", "log")
IG_METHODS = (
    "gausslegendre",
    "riemann_trapezoid",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
)
Target = Any


# ------------------------------------------------------------------------------------------
# targets
# ------------------------------------------------------------------------------------------
def per_step_output(model: Model, output: np.ndarray, steps: int) -> bool:
    """True when ``output`` ``(batch, ...)`` has one entry per timestep (axis 1 is time).

    A 3-D output always has; a 2-D output ``(batch, n)`` has when the last LSTM returns its
    whole sequence, ``n`` equals the number of steps and no layer after it pools over time
    (the binary-addition example's ``(batch, T)`` sum bits).
    """
    if output.ndim >= 3:
        return True
    if output.ndim != 2 or output.shape[1] != steps:
        return False
    last = None
    pooled = False
    for n in model.nodes:
        lay = n.layer
        if isinstance(lay, (L.LSTM, L.Bidirectional)):
            last = lay
            pooled = False
        elif isinstance(lay, (L.GlobalPooling1D, L.Flatten)) or type(lay).__name__ == "LastStep":
            pooled = True
    return bool(last is not None and last.return_sequences and not pooled)


def _steps_of(tape: Tape) -> int:
    return tape.layer_traces[-1].timesteps if tape.layer_traces else 0


def describe_target(model: Model, tape: Tape, target: Target) -> str:
    """``"output 3 at t=5"`` / ``"output 3"``: a label for figures and the CLI."""
    if isinstance(target, tuple):
        t, k = target
        out = np.asarray(tape.outputs[0])
        if per_step_output(model, out, _steps_of(tape)):
            return f"output {k} at t={t if t >= 0 else _steps_of(tape) + t}"
        return f"output {k}"
    if isinstance(target, (int, np.integer)):
        return f"output {int(target)}"
    return "custom target"


def output_seed(model: Model, tape: Tape, target: Target) -> np.ndarray:
    """The seed ``d target / d output`` (shaped like the model's first output) for ``target``."""
    if len(tape.outputs) != 1:
        shapes = ", ".join(str(tuple(np.shape(o))) for o in tape.outputs)
        raise InputError(
            f"{model.source or model.name}: the model has {len(tape.outputs)} outputs "
            f"({shapes}); a target names one unit of a single-output model. Give the model "
            "one output: export it from a wrapper that returns only the output to explain "
            "(a torch language model's forward returns (log_probs, hidden): return "
            "model(x, hidden)[0]), or from the live model use lstmviz.bridge.as_model(model, "
            "x, ...); lstmviz.engine.backward.backward takes a seed per output"
        )
    if callable(target):
        target = target(tape.output)
    return seed_for(model, np.asarray(tape.outputs[0]), _steps_of(tape), target, tape.dtype)


def seed_for(
    model: Model, out: np.ndarray, steps: int, target: Target, dtype: Any = np.float64
) -> np.ndarray:
    """The seed for ``target`` on an output ``out`` of a model whose last LSTM ran ``steps``."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        target = (-1, int(target))
    if (
        isinstance(target, tuple)
        and len(target) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in target)
    ):
        t, k = int(target[0]), int(target[1])
        seed = np.zeros(out.shape, dtype)
        if per_step_output(model, out, steps):
            n_t = out.shape[1]
            if not -n_t <= t < n_t:
                raise InputError(
                    f"target: step t={t} is outside the output's {n_t} steps (0..{n_t - 1}, or "
                    "-1 for the last)"
                )
            view = seed.reshape(out.shape[0], n_t, -1)
            n_k = view.shape[2]
            if not -n_k <= k < n_k:
                raise InputError(
                    f"target: output unit k={k} does not exist; the output has {n_k} per step "
                    f"(0..{n_k - 1})"
                )
            view[:, t, k] = 1.0
        else:
            flat = seed.reshape(out.shape[0], -1)
            if not -flat.shape[1] <= k < flat.shape[1]:
                raise InputError(
                    f"target: output unit k={k} does not exist; the output has {flat.shape[1]} "
                    f"units (0..{flat.shape[1] - 1})"
                )
            flat[:, k] = 1.0
        return seed
    try:
        arr = np.asarray(target, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != out.shape:
        raise InputError(
            f"target: expected (t, k), an output unit k, or a seed array shaped like the output "
            f"{out.shape}; found {target!r:.80}"
        )
    return arr.astype(dtype)


LOSSES = ("sparse_categorical_crossentropy", "binary_crossentropy", "mse")


def loss_target(
    y: Any, loss: str = "sparse_categorical_crossentropy"
) -> Callable[[Any], np.ndarray]:
    """A target that is a loss: ``gradient(model, x, loss_target(y))`` is ``dL/dx``.

    Returns a callable ``output -> dL/d output`` (the seed). ``L`` is summed over every entry
    (batch items and steps), as Keras sums before it averages:

    * ``"sparse_categorical_crossentropy"``: ``y`` class ids shaped like the output without its
      last axis; the output holds probabilities (a softmax head) or log-probabilities (a
      log_softmax head, as PyTorch's language models end); ``L = -Σ log p[y]``; any other
      output (logits) is refused;
    * ``"binary_crossentropy"``: ``y`` in [0, 1] shaped like the output (sigmoid outputs);
    * ``"mse"``: ``L = Σ (output - y)²``.
    """
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    yy = np.asarray(y)

    def seed(output: Any) -> np.ndarray:
        out = np.asarray(output, np.float64)
        if loss == "sparse_categorical_crossentropy":
            if yy.shape != out.shape[:-1] or yy.dtype.kind not in "iu":
                raise InputError(
                    f"loss_target: class ids of shape {out.shape[:-1]} expected for an output "
                    f"{out.shape}; got {yy.dtype} {yy.shape}"
                )
            if yy.size and (yy.min() < 0 or yy.max() >= out.shape[-1]):
                raise InputError(f"loss_target: class ids must lie in 0..{out.shape[-1] - 1}")
            g = np.zeros(out.shape)
            kind = _class_scores(out)
            if kind == "log-probabilities":  # a log_softmax head: L = -Σ log_p[y]
                np.put_along_axis(g, yy[..., None], -1.0, axis=-1)
                return g
            if kind != "probabilities":
                raise InputError(
                    "loss_target: sparse_categorical_crossentropy reads the output as "
                    "probabilities (a softmax head) or log-probabilities (log_softmax); this "
                    f"output is neither ({kind}), so the loss and its gradient would be wrong. "
                    "Give the model its softmax or log_softmax (in a state_dict's head list, "
                    "say), or take a target on one output unit instead"
                )
            p = np.take_along_axis(out, yy[..., None], axis=-1)
            np.put_along_axis(g, yy[..., None], -1.0 / np.maximum(p, 1e-12), axis=-1)
            return g
        if yy.shape != out.shape:
            raise InputError(
                f"loss_target: y must have the output's shape {out.shape}; got {yy.shape}"
            )
        t = yy.astype(np.float64)
        if loss == "mse":
            return 2.0 * (out - t)
        if np.any(out < -1e-6) or np.any(out > 1 + 1e-6):
            raise InputError(
                "loss_target: binary_crossentropy reads the output as probabilities (a "
                f"sigmoid head); this output has values from {float(out.min()):.3g} to "
                f"{float(out.max()):.3g} (logits, say), so the loss and its gradient would be "
                "wrong. Give the model its sigmoid (in a state_dict's head list, say)"
            )
        p = np.clip(out, 1e-12, 1 - 1e-12)
        return (p - t) / (p * (1 - p))

    return seed


def _class_scores(out: np.ndarray, tol: float = 1e-3) -> str:
    """``"probabilities"`` (each row in [0, 1], summing to 1), ``"log-probabilities"`` (each
    row <= 0, its exponentials summing to 1), or what the rows are instead."""
    if out.size == 0:
        return "probabilities"
    if np.all(out >= -tol) and np.all(out <= 1 + tol):
        total = out.sum(axis=-1)
        if np.allclose(total, 1.0, atol=tol):
            return "probabilities"
        return (
            f"values in [0, 1] whose rows sum to {float(total.min()):.3g}..{float(total.max()):.3g}"
        )
    if np.all(out <= tol):
        top = out.max(axis=-1, keepdims=True)
        lse = (top + np.log(np.exp(out - top).sum(axis=-1, keepdims=True)))[..., 0]
        if np.allclose(lse, 0.0, atol=tol):
            return "log-probabilities"
    return f"values from {float(out.min()):.3g} to {float(out.max()):.3g}: logits, say"


_SHAPE_ONLY = (L.Identity, L.Reshape, L.Flatten)


def _producer(tape: Tape, ref: TensorRef) -> NodeRecord | None:
    for rec in tape.records:
        if (rec.node.layer.name, rec.node.index) == ref[:2]:
            return rec
    return None


def seed_in_space(
    model: Model, tape: Tape, seed: np.ndarray, space: str
) -> tuple[dict[TensorRef, np.ndarray], np.ndarray]:
    """The seed moved to where ``space`` says the target lives, and the target's value per
    batch item ``(batch,)``.

    ``"logit"`` walks back from the output through shape-only layers to the Dense,
    TimeDistributed(Dense) or Activation that produced it and seeds that layer's input with
    ``seed @ kernel^T``: the target is then the pre-activation.
    """
    if space not in SPACES:
        raise InputError(f"space must be one of {', '.join(SPACES)}; got {space!r}")
    ref = model.outputs[0]
    out = np.asarray(tape.values[ref], tape.dtype)
    b = out.shape[0]
    if space == "output":
        return {ref: seed}, (seed * out).reshape(b, -1).sum(axis=1)
    if space == "log":
        if np.any(out[seed != 0] <= 0):
            if _class_scores(out) == "log-probabilities":
                raise InputError(
                    "space='log': the output is already log-probabilities (a log_softmax "
                    "head): space='output' is the log-probability"
                )
            raise InputError("space='log' needs a positive output (a probability) at the target")
        safe = np.where(seed != 0, out, 1.0)
        return {ref: seed / safe}, (seed * np.log(safe)).reshape(b, -1).sum(axis=1)
    s = seed
    while True:
        rec = _producer(tape, ref)
        lay = None if rec is None else rec.node.layer
        if rec is not None and (
            isinstance(lay, _SHAPE_ONLY)
            or (isinstance(lay, OpLayer) and lay.kind in ("Squeeze", "ExpandDims"))
        ):
            s = s.reshape(np.shape(rec.ins[0]))
            ref = rec.node.inputs[0]
            continue
        break
    inner = lay.inner if isinstance(lay, L.TimeDistributed) else lay
    if rec is None or not isinstance(inner, (L.Dense, L.Activation)):
        what = "nothing" if lay is None else f"{lay.name!r} ({lay.kind})"
        raise LstmvizError(
            f"space='logit': the model's output comes from {what}, not from a Dense or "
            "Activation layer with a pre-activation; use space='output'"
        )
    x = np.asarray(rec.ins[0], tape.dtype)
    if isinstance(inner, L.Activation):
        return {rec.node.inputs[0]: s}, (s * x).reshape(b, -1).sum(axis=1)
    k = np.asarray(inner.kernel, tape.dtype)
    z = x @ k + (0 if inner.bias is None else np.asarray(inner.bias, tape.dtype))
    return {rec.node.inputs[0]: s @ k.T}, (s * z).reshape(b, -1).sum(axis=1)


def _target_backward(
    model: Model, tape: Tape, target: Target, space: str, params: bool = False
) -> tuple[Gradients, np.ndarray]:
    seed = output_seed(model, tape, target)
    seeds, values = seed_in_space(model, tape, seed, space)
    return backward(tape, seeds, params=params), values


def target_values(
    model: Model,
    x: Any,
    target: Target,
    *,
    space: str = "output",
    initial_state: dict[str, Any] | None = None,
) -> np.ndarray:
    """The target's value for every batch item ``(batch,)`` (float64)."""
    tape = record(model, x, initial_state=initial_state, dtype=np.float64)
    _, values = seed_in_space(model, tape, output_seed(model, tape, target), space)
    return values


# ------------------------------------------------------------------------------------------
# gradient
# ------------------------------------------------------------------------------------------
def gradient(
    model: Model,
    x: Any,
    target: Target,
    wrt: str = "input",
    *,
    space: str = "output",
    initial_state: dict[str, Any] | None = None,
    dtype: Any = np.float32,
) -> np.ndarray:
    """d target / d ``wrt``.

    Parameters
    ----------
    model : Model
    x : array_like
        ``(batch, T, F)`` floats or ``(batch, T)`` token ids.
    target : (t, k), int, array or callable
        See the module docstring; summed over the batch items' own targets.
    wrt : str
        ``"input"``: shaped like ``x`` (float inputs) or ``(batch, T, embedding dim)`` (token
        ids: the gradient at the embedded input); a list of those for a multi-input model.
        ``"<layer>/<quantity>"`` (``"lstm/cell"``,
        ``"bidi/forward/forget_gate"``, ``"lstm/z_f"``): shaped like that quantity
        ``(batch, T, units)``. ``"<layer>/h0"`` / ``"<layer>/c0"``: the initial state.
        ``"<layer>/<weight>"`` (``"lstm/kernel"``, ``"dense/bias"``): shaped like the weight.
    space : {"output", "logit", "log"}
        Which number of the output unit is the target.
    initial_state : dict, optional
        As for :meth:`Model.trace`.
    dtype : numpy dtype
        float32 (the engine) or float64.

    Returns
    -------
    ndarray
    """
    engine_model(model, "gradient")
    tape = record(model, x, initial_state=initial_state, dtype=dtype)
    want_params = wrt != "input" and wrt.rsplit("/", 1)[-1] not in _LAYER_QUANTITIES
    g, _ = _target_backward(model, tape, target, space, params=want_params)
    return pick(g, tape, wrt)


_LAYER_QUANTITIES = frozenset(
    {
        "input_gate",
        "forget_gate",
        "output_gate",
        "candidate",
        "cell",
        "hidden",
        "z_i",
        "z_f",
        "z_c",
        "z_o",
        "i",
        "f",
        "o",
        "g",
        "c",
        "h",
        "h0",
        "c0",
    }
)


def pick(g: Gradients, tape: Tape, wrt: str) -> np.ndarray:
    """One array out of :class:`Gradients` by the names :func:`gradient` takes."""
    model = tape.model
    if wrt == "input" and len(g.inputs) > 1:  # a multi-input model: one array per input
        # documented: a list of arrays for a multi-input model (typed for the common case)
        return [e if i is None else i for i, e in zip(g.inputs, g.embedded, strict=True)]  # type: ignore[return-value]
    if wrt == "input":
        if g.inputs[0] is not None:
            return g.inputs[0]
        if g.embedded[0] is not None:
            return g.embedded[0]
        lstms = model.lstm_trace_names
        raise LstmvizError(
            f"{model.source or model.name}: the model's token ids go through other operations "
            "(a transpose to time-major, say) before their embedding lookup, so there is no "
            "embedded input to take the gradient with respect to; take it with respect to an "
            f"LSTM quantity instead (wrt='{lstms[0] if lstms else 'lstm'}/hidden'), or get the "
            "model from the live one with lstmviz.bridge.as_model(model, x, ...)"
        )
    if "/" not in wrt:
        raise InputError(
            f"wrt must be 'input' or '<layer>/<quantity>' (e.g. 'lstm/cell'); got {wrt!r}"
        )
    layer, what = wrt.rsplit("/", 1)
    if what in _LAYER_QUANTITIES:
        names = [lt.name for lt in tape.layer_traces]
        if layer not in names and layer in model.layers and f"{layer}/forward" in names:
            layer = f"{layer}/forward"
        if layer not in names:
            raise InputError(
                f"wrt={wrt!r}: no LSTM layer {layer!r}; LSTM layers: {', '.join(names)}"
            )
        if layer not in g.layers:  # the target does not depend on this layer
            lt = tape.trace(layer)
            shape = {"h0": lt.h0.shape, "c0": lt.c0.shape}.get(what)
            if shape is None:
                shape = lt.per_unit(what).shape if what not in ("h", "hidden") else lt.hidden.shape
            return np.zeros(shape, tape.dtype)
        lg = g.layers[layer]
        if what == "h0":
            return lg.dh0
        if what == "c0":
            return lg.dc0
        return lg.get(what)
    params = g.params.get(layer)
    if params is None or what not in params:
        lay = model.layers.get(layer.split("/")[0])
        if lay is None:
            raise InputError(f"wrt={wrt!r}: no layer {layer!r}; layers: {', '.join(model.layers)}")
        have = sorted(params) if params else []
        raise InputError(
            f"wrt={wrt!r}: layer {layer!r} has no gradient for {what!r}"
            + (f" (weights: {', '.join(have)})" if have else " (the target does not depend on it)")
        )
    return params[what]


# ------------------------------------------------------------------------------------------
# attribution to the input: gradient x input, integrated gradients
# ------------------------------------------------------------------------------------------
def _embedding_ref(model: Model) -> tuple[TensorRef, L.Embedding]:
    emb = model.embedding
    if emb is None:
        raise LstmvizError("the model takes token ids that feed no Embedding layer directly")
    for rec_node in model.nodes:
        if rec_node.layer is emb:
            return (emb.name, rec_node.index, 0), emb
    raise LstmvizError(f"Embedding {emb.name!r} is not called in the model")  # invariant


def _embed(model: Model, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    _, emb = _embedding_ref(model)
    ids = L.check_token_ids(ids, emb.input_dim, emb.name)
    return np.asarray(emb.embeddings, np.float64)[ids], (ids != 0) if emb.mask_zero else None


def gradient_x_input(
    model: Model,
    x: Any,
    target: Target,
    *,
    space: str = "output",
    initial_state: dict[str, Any] | None = None,
) -> np.ndarray:
    """Gradient × input: shaped like ``x`` (floats) or ``(batch, T)`` (token ids: the
    embedded input times its gradient, summed over the embedding)."""
    engine_model(model, "gradient_x_input")
    g = gradient(model, x, target, "input", space=space, initial_state=initial_state)
    if model.takes_tokens:
        e, _ = _embed(model, np.asarray(x))
        return (g * e).sum(axis=-1)
    return g * np.asarray(model.check_input(x), np.float32)


def tape_bytes(model: Model, steps: int, features: int, itemsize: int = 8) -> int:
    """A generous estimate of what recording and backpropagating one sequence of ``steps``
    steps costs: the input, its gradient, and every LSTM's recorded buffers and their
    gradients (used to check the memory budget before batching many sequences)."""
    per_step = 4 * features
    for lay in model.lstm_layers:
        halves = [lay.forward, lay.backward] if isinstance(lay, L.Bidirectional) else [lay]
        for h in halves:
            per_step += 2 * (8 * h.units + 2 * h.weights.output_units + h.weights.input_dim)
    return int(steps * per_step * itemsize)


def _ig_weights(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, weights)`` of the path integral's quadrature (Captum's methods)."""
    if method not in IG_METHODS:
        raise InputError(f"method must be one of {', '.join(IG_METHODS)}; got {method!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps must be a positive integer; got {steps!r}")
    n = int(steps)
    if method == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1), 0.5 * w
    if method == "riemann_trapezoid":
        if n < 2:
            raise InputError("riemann_trapezoid needs steps >= 2")
        a = np.linspace(0, 1, n)
        w = np.full(n, 1.0 / (n - 1))
        w[[0, -1]] /= 2
        return a, w
    if method == "riemann_left":
        return np.arange(n) / n, np.full(n, 1.0 / n)
    if method == "riemann_right":
        return np.arange(1, n + 1) / n, np.full(n, 1.0 / n)
    return (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)


@dataclass(frozen=True, eq=False)
class IntegratedGradients:
    """Integrated gradients with what checks them.

    Attributes
    ----------
    attributions : ndarray
        Shaped like ``x`` (floats) or ``(batch, T)`` (token ids).
    per_feature : ndarray
        Shaped like ``x`` or ``(batch, T, embedding dim)``: before summing over the embedding.
    value, baseline_value : ndarray
        The target at the input and at the baseline, ``(batch,)``.
    delta : ndarray
        ``sum(attributions) - (value - baseline_value)`` per batch item: the quadrature's
        error (completeness holds when it is small).
    """

    attributions: np.ndarray
    per_feature: np.ndarray
    value: np.ndarray
    baseline_value: np.ndarray
    delta: np.ndarray
    method: str
    steps: int

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    @property
    def relative_error(self) -> np.ndarray:
        """``|delta| / |value - baseline_value|`` per batch item."""
        diff = np.abs(self.value - self.baseline_value)
        return np.abs(self.delta) / np.maximum(diff, 1e-12)


def _baseline(model: Model, x: np.ndarray, baseline: Any) -> np.ndarray:
    """The baseline in the space the path runs in (the input, or the embedded input)."""
    if model.takes_tokens:
        e, _ = _embed(model, x)
        if baseline is None:
            return np.zeros_like(e)
        b = np.asarray(baseline)
        if b.dtype.kind in "iu" or (b.ndim <= 2 and b.dtype.kind != "f"):
            ids = np.broadcast_to(b, x.shape)
            return _embed(model, ids)[0]
        if b.ndim == 0:
            return np.full_like(e, float(b))
        if b.shape == x.shape:  # token ids given as floats
            return _embed(model, b)[0]
        try:
            return np.broadcast_to(np.asarray(b, np.float64), e.shape).copy()
        except ValueError:
            raise InputError(
                f"baseline: expected None (zeros), token id(s) broadcastable to {x.shape}, or "
                f"embedding vectors broadcastable to {e.shape}; found shape {b.shape}"
            ) from None
    if baseline is None:
        return np.zeros(x.shape)
    try:
        return np.broadcast_to(np.asarray(baseline, np.float64), x.shape).copy()
    except ValueError:
        raise InputError(
            f"baseline: expected None (zeros), a number or an array broadcastable to the input "
            f"{x.shape}; found shape {np.shape(baseline)}"
        ) from None


def integrated_gradients_full(
    model: Model,
    x: Any,
    target: Target,
    baseline: Any = None,
    steps: int = 64,
    *,
    method: str = "gausslegendre",
    space: str = "output",
    internal_batch_size: int | None = None,
    dtype: Any = np.float32,
    progress: Callable[[int, int], None] | None = None,
) -> IntegratedGradients:
    """Integrated gradients (Sundararajan et al. 2017) with their completeness check.

    ``attr = (x - x') · ∫₀¹ ∂f(x' + α (x - x')) / ∂x dα`` along the straight path from the
    baseline ``x'`` to ``x``, by ``method``'s quadrature with ``steps`` points (Gauss-Legendre by
    default, as Captum). For token ids the path runs in embedding space: from the baseline's
    embedding (zeros, or the embedding of the token id ``baseline``) to the input's; a mask the
    ids imply (``mask_zero``) is kept along the path.

    Parameters
    ----------
    internal_batch_size : int, optional
        Path points evaluated together (all of them by default, within the memory budget).
    progress : callable, optional
        ``progress(done, total)`` after every chunk.
    """
    engine_model(model, "integrated_gradients_full")
    if isinstance(x, list):
        raise InputError("integrated gradients work on single-input models")
    xc = model.check_input(x)
    alphas, weights = _ig_weights(method, steps)
    n = len(alphas)
    b = xc.shape[0]
    tokens = model.takes_tokens
    # token models: the path runs in embedding space, fed in at the embedding's output
    emb_ref: TensorRef | None = None
    if tokens:
        start, mask = _embed(model, xc)
        emb_ref, _ = _embedding_ref(model)
    else:
        start, mask = np.asarray(xc, np.float64), None
    base = _baseline(model, xc, baseline)
    diff = start - base
    per_point = tape_bytes(model, start.shape[1], int(np.prod(start.shape[2:])))
    chunk = internal_batch_size or max(1, n)
    chunk = max(1, min(int(chunk), n))
    budget.check(
        chunk * b * per_point,
        what=f"integrated gradients over {chunk} path points of {b} sequences",
        hint="pass internal_batch_size= to evaluate fewer path points at once",
    )
    total = np.zeros(start.shape, np.float64)
    dt = np.dtype(dtype)
    done = 0
    for lo in range(0, n, chunk):
        a = alphas[lo : lo + chunk]
        pts = base[None] + a[:, None, None, None] * diff[None]  # (n, B, T, F)
        flat = pts.reshape(len(a) * b, *start.shape[1:])
        if emb_ref is not None:
            ids = np.tile(xc, (len(a), 1))
            m = None if mask is None else np.tile(mask, (len(a), 1))
            tape = record(model, ids, dtype=dt, overrides={emb_ref: (flat, m)})
        else:
            tape = record(model, flat.astype(dt), dtype=dt)
        g, _ = _target_backward(model, tape, target, space)
        grad = g.tensors.get(emb_ref) if emb_ref is not None else g.inputs[0]
        if grad is None:
            grad = np.zeros(flat.shape)
        grad = np.asarray(grad, np.float64).reshape(len(a), *start.shape)
        total += np.tensordot(weights[lo : lo + chunk], grad, axes=1)
        done += len(a)
        if progress is not None:
            progress(done, n)
    per_feature = diff * total
    attributions = per_feature.sum(axis=-1) if tokens else per_feature
    value = _values_at(model, xc, start, mask, emb_ref, target, space)
    base_value = _values_at(model, xc, base, mask, emb_ref, target, space)
    delta = per_feature.reshape(b, -1).sum(axis=1) - (value - base_value)
    return IntegratedGradients(
        attributions=attributions,
        per_feature=per_feature,
        value=value,
        baseline_value=base_value,
        delta=delta,
        method=method,
        steps=n,
    )


def _values_at(
    model: Model,
    ids: np.ndarray,
    point: np.ndarray,
    mask: np.ndarray | None,
    ref: TensorRef | None,
    target: Target,
    space: str,
) -> np.ndarray:
    if ref is not None:
        tape = record(model, ids, dtype=np.float64, overrides={ref: (point, mask)})
    else:
        tape = record(model, point, dtype=np.float64)
    _, values = seed_in_space(model, tape, output_seed(model, tape, target), space)
    return values


def integrated_gradients(
    model: Model,
    x: Any,
    target: Target,
    baseline: Any = None,
    steps: int = 64,
    **kwargs: Any,
) -> np.ndarray:
    """Integrated gradients: shaped like ``x`` (float inputs) or ``(batch, T)`` (token ids:
    summed over the embedding).

    ``baseline``: None (zeros; for token ids the zero embedding), a number or an array
    broadcastable to ``x``, or for token ids a token id (array) whose embedding is the
    baseline. Keyword arguments go to :func:`integrated_gradients_full` (``method``,
    ``space``, ``internal_batch_size``); its result also says how well completeness holds:
    the attributions sum to ``f(x) - f(baseline)``.
    """
    engine_model(model, "integrated_gradients")
    return integrated_gradients_full(model, x, target, baseline, steps, **kwargs).attributions


# ------------------------------------------------------------------------------------------
# connectivity and memory paths
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Connectivity:
    """``‖∂y_t / ∂x_s‖`` for every output step t and input step s of one sequence.

    Attributes
    ----------
    matrix : ndarray
        ``(T_out, T_in)``; zero above the diagonal for a causal (forward) model.
    output_steps : ndarray
        The output steps (rows): ``0..T-1`` for a per-step output, ``[T-1]`` otherwise.
    unit : int or None
        The output unit whose gradient is measured, or None for the norm over all units
        (the Jacobian block's Frobenius norm).
    """

    matrix: np.ndarray
    output_steps: np.ndarray
    unit: int | None
    space: str
    batch: int

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value


def connectivity(
    model: Model,
    x: Any,
    unit: int | None = None,
    *,
    batch: int = 0,
    space: str = "output",
    max_rows: int = 4096,
) -> Connectivity:
    """How strongly each output step depends on each input step: ``‖∂y_t / ∂x_s‖``.

    One backward pass per (output step, output unit), all run together as one batch. For
    token ids ``x_s`` is the embedded token. ``unit`` picks one output unit; None takes the
    Frobenius norm over all of them (distill's "memorization in RNNs" connectivity).
    """
    engine_model(model, "connectivity")
    if isinstance(x, list):
        raise InputError("connectivity works on single-input models")
    xc = model.check_input(x)
    if not 0 <= batch < xc.shape[0]:
        raise InputError(f"batch item {batch} outside 0..{xc.shape[0] - 1}")
    x1 = xc[batch : batch + 1]
    probe = record(model, x1)
    out = np.asarray(probe.outputs[0])
    steps = _steps_of(probe)
    per_step = per_step_output(model, out, steps)
    view = out.reshape(1, out.shape[1], -1) if per_step else out.reshape(1, 1, -1)
    n_t, n_k = view.shape[1], view.shape[2]
    if unit is not None and not -n_k <= unit < n_k:
        raise InputError(f"unit {unit} does not exist; the output has {n_k} units per step")
    ks = [unit] if unit is not None else list(range(n_k))
    rows = [(t, k) for t in range(n_t) for k in ks]
    if len(rows) > max_rows:
        raise InputError(
            f"connectivity would need {len(rows)} backward passes ({n_t} steps x {len(ks)} "
            f"units); pick one output unit (unit=) or raise max_rows"
        )
    xs = np.repeat(x1, len(rows), axis=0)
    tape = record(model, xs)
    seed = np.zeros((len(rows), n_t, n_k), np.float32)
    for r, (t, k) in enumerate(rows):
        seed[r, t, k] = 1.0
    seeds, _ = seed_in_space(model, tape, seed.reshape(np.shape(tape.outputs[0])), space)
    g = backward(tape, seeds, params=False)
    grad = g.inputs[0] if g.inputs[0] is not None else g.embedded[0]
    assert grad is not None
    sq = np.square(np.asarray(grad, np.float64)).sum(axis=-1)  # (rows, T_in)
    sq = sq.reshape(n_t, len(ks), -1).sum(axis=1)
    return Connectivity(
        matrix=np.sqrt(sq),
        output_steps=np.arange(n_t) if per_step else np.array([steps - 1]),
        unit=unit,
        space=space,
        batch=batch,
    )


@dataclass(frozen=True, eq=False)
class MemoryPaths:
    """How the gradient of a target reaches each unit's cell: along the cell path or through h.

    The gradient of the target with respect to ``c_t`` of a unit is the sum of two paths::

        ∂/∂c_t = ∂/∂c_{t+1} · f_{t+1}      (cell path: the memory carried on the conveyor belt)
               + ∂/∂h_t · o_t · tanh'(c_t)  (hidden path: through h_t, to the output and the gates)

    Attributes
    ----------
    cell_path, hidden_path : ndarray
        ``(batch, T, units)`` the two terms (with a ``return_state`` output, a gradient that
        leaves through ``c_T`` itself counts as cell path).
    layer : str
    """

    cell_path: np.ndarray
    hidden_path: np.ndarray
    layer: str

    __repr__ = dataclass_repr  # arrays by dtype and shape, not every value

    @property
    def cell_share(self) -> np.ndarray:
        """Each unit's share of the cell path, ``Σ|cell| / (Σ|cell| + Σ|hidden|)`` over batch
        and time: ``(units,)`` (0.5 for a unit the target does not reach)."""
        a = np.abs(self.cell_path).sum(axis=(0, 1))
        h = np.abs(self.hidden_path).sum(axis=(0, 1))
        return np.where(a + h > 0, a / np.maximum(a + h, 1e-300), 0.5)


def memory_paths(
    model: Model,
    x: Any,
    target: Target,
    layer: str | None = None,
    *,
    space: str = "output",
    initial_state: dict[str, Any] | None = None,
) -> MemoryPaths:
    """Split each unit's cell-state gradient into the cell path and the hidden path."""
    engine_model(model, "memory_paths")
    from ..engine.backward import activation_derivative

    tape = record(model, x, initial_state=initial_state)
    g, _ = _target_backward(model, tape, target, space)
    name = layer or tape.layer_traces[0].name
    lt = tape.trace(name) if "/" in name or name in [t.name for t in tape.layer_traces] else None
    if lt is None:
        lt = tape.trace(f"{name}/forward")
    if lt.name not in g.layers:
        z = np.zeros(lt.cell.shape, np.float32)
        return MemoryPaths(z, z.copy(), lt.name)
    lg = g.layers[lt.name]
    u = lt.units
    o = lt.act[:, :, 2 * u : 3 * u]  # (T, B, U)
    hu = np.empty_like(lt.c)
    from ..engine import activations

    activations.get(lt.weights.activation)(lt.c, hu)
    dhu = lg.dh if not lt.projected else lg.dh @ np.asarray(lt.weights.projection).T
    hidden = dhu * o * activation_derivative(lt.weights.activation, lt.c, hu)
    if lt.mask is not None:
        hidden = hidden * np.asarray(lt.mask, bool).T[..., None]
    cell = lg.dc - hidden
    return MemoryPaths(
        cell_path=np.ascontiguousarray(cell.transpose(1, 0, 2)),
        hidden_path=np.ascontiguousarray(hidden.transpose(1, 0, 2)),
        layer=lt.name,
    )
