"""Backpropagation through time, in NumPy: gradients of any output through every layer.

Two steps, as in every autodiff system:

1. :func:`record` runs the model like :meth:`Model.trace <lstmviz.engine.model.Model.trace>`
   and keeps what the backward pass needs: every layer call's inputs, masks and outputs, and the
   recorded trace of every LSTM (:class:`Tape`). In float32 the values are the engine's own; in
   float64 (``dtype=np.float64``) every layer runs again in double precision, which is what
   finite-difference checks need.
2. :func:`backward` walks the calls in reverse, from a seed ``d target / d output`` to the
   model's inputs, every tensor in between, every LSTM's recorded quantities (each gate, the
   cell and hidden state at every step, the initial state) and every weight
   (:class:`Gradients`).

The LSTM's backward step (Keras layout; ``σ'`` and ``tanh'`` the activations' derivatives)::

    dh   = dh_from_outputs[t] + dz_{t+1} U^T            every path to h_t
    do   = dh * tanh(c_t)
    dc   = dc_from_outputs[t] + dc_{t+1} * f_{t+1} + dh * o_t * tanh'(c_t)
    df   = dc * c_{t-1};  di = dc * g_t;  dg = dc * i_t
    dz   = [di σ'(z_i), df σ'(z_f), dg tanh'(z_c), do σ'(z_o)]
    dx_t = dz W^T;  dW = Σ_t x_t^T dz;  dU = Σ_t h_{t-1}^T dz;  db = Σ_t dz

vectorised over the batch: one ``(B, 4U) @ (4U, U)`` product per step in the loop, the input
and weight gradients as single GEMMs over all steps afterwards, every buffer preallocated.

Layers without a backward (a Lambda never loads; an ONNX operator outside the list below)
raise :class:`~lstmviz.errors.UnsupportedLayerError` naming the layer. An ONNX graph is
differentiated through its node graph (the ONNX reader keeps one when every operator has a NumPy
function here and it reproduces ``onnx.reference``); a model that is a whole graph run by another
interpreter and nothing else (a ``torch.export`` program run by torch, an ONNX graph without a
node graph) has no lstmviz layers around its LSTMs: it is refused with what to load instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import InputError, LstmvizError, UnsupportedLayerError
from . import activations
from . import layers as L
from .cell import LSTMWeights, run_lstm
from .intervene import Intervention, run_lstm_intervened
from .model import Model, Node, TensorRef
from .trace import LayerTrace, Trace

Arr = np.ndarray
#: A function that runs one LSTM (the engine's run_lstm, or an intervened loop).
Runner = Callable[..., LayerTrace]

# Keras gate blocks (i, f, c, o) <-> the engine's internal blocks (i, f, o, c); a permutation
# that is its own inverse.
_PERM = (0, 1, 3, 2)


# ------------------------------------------------------------------------------------------
# activation derivatives
# ------------------------------------------------------------------------------------------
def _sigmoid(z: Arr) -> Arr:
    return 0.5 * np.tanh(0.5 * z) + 0.5


def _erf(z: Arr) -> Arr:
    flat = np.asarray(z, np.float64).ravel()
    return np.fromiter((math.erf(v) for v in flat), np.float64, flat.size).reshape(np.shape(z))


def activation_derivative(name: str | None, z: Arr, a: Arr) -> Arr:
    """The elementwise derivative ``f'(z)`` of activation ``name`` (``a = f(z)`` given).

    Softmax-like activations are not elementwise: use :func:`activation_vjp`.
    """
    key = "linear" if name in (None, "None", "none", "") else str(name)
    dt = np.result_type(z, a)
    if key == "linear":
        return np.ones_like(z, dtype=dt)
    if key == "sigmoid":
        return np.asarray(a * (1 - a), dt)
    if key == "tanh":
        return np.asarray(1 - a * a, dt)
    if key == "relu":
        return (z > 0).astype(dt)
    if key == "relu6":
        return ((z > 0) & (z < 6)).astype(dt)
    if key == "hard_sigmoid":
        return (((z > -3) & (z < 3)) / 6.0).astype(dt)
    if key == "hard_sigmoid_keras2":
        u = 0.2 * z + 0.5
        return (((u > 0) & (u < 1)) * 0.2).astype(dt)
    if key == "softplus":
        return _sigmoid(z).astype(dt)
    if key == "softsign":
        return np.asarray(1.0 / np.square(1.0 + np.abs(z)), dt)
    if key == "elu":
        return np.where(z > 0, 1.0, a + 1.0).astype(dt)
    if key == "selu":
        alpha, scale = 1.6732632423543772, 1.0507009873554805
        return np.where(z > 0, scale, scale * alpha * np.exp(np.minimum(z, 0))).astype(dt)
    if key == "exponential":
        return np.asarray(a, dt)
    if key in ("silu", "swish"):
        s = _sigmoid(z)
        return np.asarray(s * (1 + z * (1 - s)), dt)
    if key in ("hard_silu", "hard_swish"):
        hs = np.clip(z + 3.0, 0.0, 6.0) / 6.0
        return (hs + z * (((z > -3) & (z < 3)) / 6.0)).astype(dt)
    if key == "leaky_relu":
        return np.where(z >= 0, 1.0, 0.2).astype(dt)
    if key == "gelu":
        phi = np.exp(-0.5 * np.square(z)) / np.sqrt(2 * np.pi)
        cdf = 0.5 * (1 + _erf(z / np.sqrt(2.0)))
        return np.asarray(cdf + z * phi, dt)
    if key == "mish":
        sp = np.logaddexp(z, 0.0)
        tsp = np.tanh(sp)
        return np.asarray(tsp + z * (1 - tsp * tsp) * _sigmoid(z), dt)
    if key == "celu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0))).astype(dt)
    if key in ("softmax", "log_softmax"):
        raise LstmvizError(f"{key} is not elementwise; use activation_vjp")
    raise UnsupportedLayerError(f"activation {name!r} has no derivative in lstmviz's backward pass")


def activation_vjp(name: str | None, z: Arr, a: Arr, g: Arr) -> Arr:
    """``g · ∂f(z)/∂z`` for activation ``name``: the gradient at ``z`` given ``g`` at ``a``."""
    if name == "softmax":  # over the last axis
        return np.asarray(a * (g - np.sum(g * a, axis=-1, keepdims=True)))
    if name == "log_softmax":
        return np.asarray(g - np.exp(a) * np.sum(g, axis=-1, keepdims=True))
    return np.asarray(g * activation_derivative(name, z, a))


# ------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------
_QUANTITY_ALIASES = {
    "f": "forget_gate",
    "i": "input_gate",
    "o": "output_gate",
    "g": "candidate",
    "c": "cell",
    "h": "hidden",
    "forget": "forget_gate",
    "input": "input_gate",
    "output": "output_gate",
}
_ACT_BLOCK = {"input_gate": 0, "forget_gate": 1, "output_gate": 2, "candidate": 3}
_PRE_BLOCK = {"z_i": 0, "z_f": 1, "z_o": 2, "z_c": 3}
GRADIENT_QUANTITIES = (*_ACT_BLOCK, "cell", "hidden", *_PRE_BLOCK)


@dataclass(frozen=True, eq=False)
class LSTMGradients:
    """Gradients of a target with respect to everything one LSTM (direction) recorded.

    Every array is the *total* derivative: ``cell`` at step t includes the paths through
    ``h_t`` and through every later step. Time-major internal buffers, handed out batch-major
    ``(batch, T, units)`` by :meth:`get`, like :class:`~lstmviz.engine.trace.LayerTrace`.
    """

    name: str
    dpre: Arr  # (T, B, 4U) d/d pre-activations, blocks i, f, o, c
    dact: Arr  # (T, B, 4U) d/d gate activations, blocks i, f, o, g
    dc: Arr  # (T, B, U)
    dh: Arr  # (T, B, P)
    dx: Arr  # (B, T, F) d/d the layer's input sequence
    dh0: Arr  # (B, P) d/d the initial hidden state
    dc0: Arr  # (B, U) d/d the initial cell state
    params: dict[str, Arr] = field(default_factory=dict)  # Keras layout

    def get(self, quantity: str) -> Arr:
        """d target / d ``quantity`` ``(batch, T, units)``: a gate, ``cell``, ``hidden`` or a
        pre-activation ``z_i, z_f, z_c, z_o``."""
        q = _QUANTITY_ALIASES.get(quantity, quantity)
        u = self.dc.shape[2]
        if q in _ACT_BLOCK:
            k = _ACT_BLOCK[q]
            return self.dact[:, :, k * u : (k + 1) * u].transpose(1, 0, 2)
        if q in _PRE_BLOCK:
            k = _PRE_BLOCK[q]
            return self.dpre[:, :, k * u : (k + 1) * u].transpose(1, 0, 2)
        if q == "cell":
            return self.dc.transpose(1, 0, 2)
        if q == "hidden":
            return self.dh.transpose(1, 0, 2)
        raise LstmvizError(
            f"unknown quantity {quantity!r}; expected one of {', '.join(GRADIENT_QUANTITIES)}"
        )


@dataclass(frozen=True, eq=False)
class Gradients:
    """What :func:`backward` returns.

    Attributes
    ----------
    inputs : list of ndarray or None
        d target / d each model input, shaped like it (None for token-id inputs).
    embedded : list of ndarray or None
        For each token-id input, d target / d the output of the Embedding it feeds
        ``(batch, T, dim)`` (None for float inputs).
    layers : dict
        ``{trace name: LSTMGradients}``.
    params : dict
        ``{layer name: {weight name: gradient}}``, in the layer's own layout (Keras's for an
        LSTM: ``kernel``, ``recurrent_kernel``, ``bias``).
    tensors : dict
        ``{(layer, node, index): gradient}`` of every tensor the target depends on.
    value : float
        The target's value (the seed's inner product with the output).
    """

    inputs: list[Arr | None]
    embedded: list[Arr | None]
    layers: dict[str, LSTMGradients]
    params: dict[str, dict[str, Arr]]
    tensors: dict[TensorRef, Arr]
    value: float

    def layer(self, name: str) -> LSTMGradients:
        """The gradients of one LSTM trace (``"lstm"``, ``"bidi/forward"``)."""
        if name in self.layers:
            return self.layers[name]
        for k, v in self.layers.items():  # a Bidirectional by its own name: the forward half
            if k.split("/")[0] == name:
                return v
        raise LstmvizError(
            f"no gradients for LSTM layer {name!r}; layers: {', '.join(self.layers) or '(none)'}"
            " (a layer the target does not depend on has none)"
        )


# ------------------------------------------------------------------------------------------
# the tape
# ------------------------------------------------------------------------------------------
@dataclass(eq=False)
class NodeRecord:
    """One layer call: what went in and came out, and the LSTM traces it recorded."""

    node: Node
    ins: list[Any]
    masks: list[Arr | None]
    states: list[Arr] | None  # initial_state tensors passed to an LSTM call
    outs: list[Any]
    out_masks: list[Arr | None]
    traces: list[LayerTrace] = field(default_factory=list)
    sub: Tape | None = None  # a nested model's own tape


@dataclass(eq=False)
class Tape:
    """A recorded forward pass (see :func:`record`)."""

    model: Model
    inputs: list[Any]
    dtype: np.dtype
    records: list[NodeRecord]
    values: dict[TensorRef, Any]
    layer_traces: list[LayerTrace]
    initial_state: dict[str, Any]

    @property
    def outputs(self) -> list[Any]:
        return [self.values[r] for r in self.model.outputs]

    @property
    def output(self) -> Any:
        """The model's output (a list for a multi-output model), as ``Model.trace`` gives it."""
        outs = self.outputs
        return outs[0] if self.model.single_output else outs

    def trace(self, name: str) -> LayerTrace:
        for lt in self.layer_traces:
            if lt.name == name:
                return lt
        raise LstmvizError(
            f"no LSTM layer named {name!r}; LSTM layers: "
            f"{', '.join(lt.name for lt in self.layer_traces)}"
        )

    def to_trace(self, step_outputs: bool = True) -> Trace:
        """The recorded pass as an engine :class:`~lstmviz.engine.trace.Trace`."""
        step = None
        if step_outputs and self.dtype == np.float32:
            ctx = L.Context(record=False)
            ctx.layer_traces = list(self.layer_traces)
            step = self.model._step_output(self.values, ctx)
        layer_outputs = {k[0]: v for k, v in self.values.items() if k[1] == 0 and k[2] == 0}
        xs = self.inputs if len(self.inputs) > 1 else self.inputs[0]
        return Trace(
            output=self.output,
            layers=tuple(self.layer_traces),
            inputs=xs,
            engine="numpy",
            step_output=step,
            layer_outputs=layer_outputs,
        )


def _runner_for(
    dtype: np.dtype, interventions: dict[str, list[Intervention]] | None
) -> Callable[[str], Runner]:
    """Which function runs the LSTM called ``name``: the engine's run_lstm in float32 when
    ``interventions`` does not name the layer, the reference loop otherwise (also for an empty
    list: a clean trace to compare intervened ones with)."""

    def pick(name: str) -> Runner:
        if dtype == np.float32 and (interventions is None or name not in interventions):
            return run_lstm
        ivs = (interventions or {}).get(name, [])

        def run(x: Arr, weights: LSTMWeights, **kw: Any) -> LayerTrace:
            return run_lstm_intervened(x, weights, interventions=ivs, dtype=dtype, **kw)

        return run

    return pick


def record(
    model: Model,
    x: Any,
    *,
    initial_state: dict[str, Any] | None = None,
    dtype: Any = np.float32,
    interventions: dict[str, list[Intervention]] | None = None,
    overrides: dict[TensorRef, tuple[Arr, Arr | None]] | None = None,
) -> Tape:
    """Run ``model`` on ``x`` and keep everything :func:`backward` needs.

    Parameters
    ----------
    model : Model
    x : array_like
        As for :meth:`Model.trace`: ``(batch, T, F)`` floats, ``(batch, T)`` token ids, or a
        list for a multi-input model.
    initial_state : dict, optional
        ``{lstm trace name: (h0, c0)}`` as for :meth:`Model.trace`.
    dtype : numpy dtype
        ``np.float32`` (the engine's own values) or ``np.float64`` (every layer again in double
        precision: for finite-difference checks).
    interventions : dict, optional
        ``{lstm trace name: [Intervention, ...]}``; those LSTMs run with the interventions
        (:mod:`lstmviz.engine.intervene`).
    overrides : dict, optional
        ``{tensor ref: (value, mask)}``: the layer call that produces this tensor is skipped
        and ``value`` used instead (an Embedding's output replaced by interpolated vectors, for
        integrated gradients of a token model). :func:`backward` stops there: the gradient of
        the tensor is in ``Gradients.tensors[ref]``.
    """
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64; got {dt}")
    check_layer_graph(model)
    xs = model.check_input(x)
    xs = list(xs) if isinstance(xs, list) else [xs]
    if dt == np.float64:  # check_input validated (and rounded to float32): keep full precision
        given = list(x) if isinstance(x, (list, tuple)) and len(xs) > 1 else [x]
        xs = [
            np.asarray(g, dt).reshape(a.shape) if a.dtype.kind == "f" else a
            for a, g in zip(xs, given, strict=True)
        ]
    ctx = L.Context(initial_states=dict(initial_state or {}))
    if dt == np.float64:
        ctx.initial_states = {
            k: tuple(np.asarray(s, np.float64) for s in v) for k, v in ctx.initial_states.items()
        }
    ov = None
    if overrides:
        ov = {}
        for ref, (v, m) in overrides.items():
            a = np.asarray(v)
            ov[(str(ref[0]), int(ref[1]), int(ref[2]))] = (
                a.astype(dt) if a.dtype.kind == "f" else a,
                m,
            )
    records, values = _run(model, xs, ctx, dt, _runner_for(dt, interventions), ov)
    return Tape(model, xs, dt, records, values, list(ctx.layer_traces), dict(initial_state or {}))


def check_layer_graph(model: Model) -> None:
    """Raise :class:`UnsupportedLayerError` for a model that is a whole graph run by another
    interpreter (its LSTMs are recorded, the operations around them are not lstmviz layers):
    gradients and interventions need lstmviz's own layer graph."""
    for n in model.nodes:
        if _kind(n.layer) == "GraphLayer":
            runner = getattr(n.layer, "_runner", "its interpreter")
            raise UnsupportedLayerError(
                f"{model.source or model.name}: this model is a whole {model.format or 'graph'} "
                f"graph run by {runner}; lstmviz records its LSTMs but runs no layers of its own "
                "around them, so it cannot differentiate or intervene through it. Load the model "
                "from its weights instead (a Keras .keras/.h5 file, or a PyTorch state_dict "
                "with a .lstmviz.json naming the head), or take gradients with the framework "
                "itself (torch.autograd on the live model)"
            )


def _run(
    model: Model,
    xs: list[Any],
    ctx: L.Context,
    dt: np.dtype,
    pick: Callable[[str], Runner],
    overrides: dict[TensorRef, tuple[Any, Any]] | None = None,
) -> tuple[list[NodeRecord], dict[TensorRef, Any]]:
    """:meth:`Model._run` that keeps every call (see :class:`NodeRecord`)."""
    values: dict[TensorRef, Any] = {}
    masks: dict[TensorRef, Any] = {}
    for ref, a in zip(model.inputs, xs, strict=True):
        values[ref] = a
        masks[ref] = None
    records: list[NodeRecord] = []
    for node in model.nodes:
        lay = node.layer
        if isinstance(lay, L.InputLayer):
            continue
        if overrides and any(k[:2] == (lay.name, node.index) for k in overrides):
            for k, (v, m) in overrides.items():
                if k[:2] == (lay.name, node.index):
                    values[k] = v
                    masks[k] = m
            continue
        try:
            ins = [values[r] for r in node.inputs]
            ms = [masks.get(r) for r in node.inputs]
            states = None
            if "initial_state" in node.kwargs:
                states = [values[r] for r in node.kwargs["initial_state"]]
            if "mask" in node.kwargs:
                ms = [values[r] for r in node.kwargs["mask"]]
        except KeyError as e:
            raise LstmvizError(
                f"{model.source or model.name}: layer {lay.name!r} needs tensor {e} that nothing "
                "produced"
            ) from None
        kw: dict[str, Any] = {}
        if "_consts" in node.kwargs:
            kw["_consts"] = node.kwargs["_consts"]
        n_before = len(ctx.layer_traces)
        rec = NodeRecord(node, ins, ms, states, [], [])
        try:
            outs, out_masks = _forward(lay, ins, ms, states, kw, ctx, dt, pick, rec)
        except (ValueError, IndexError, TypeError) as e:
            shapes = ", ".join(str(getattr(a, "shape", "?")) for a in ins) or "none"
            raise LstmvizError(
                f"{model.source or model.name}: layer {lay.name!r} ({lay.kind}) cannot run on "
                f"its input (shapes {shapes}): {e}"
            ) from None
        rec.outs, rec.out_masks = list(outs), list(out_masks)
        rec.traces = list(ctx.layer_traces[n_before:])
        records.append(rec)
        for i, (o, m) in enumerate(zip(outs, out_masks, strict=True)):
            values[(lay.name, node.index, i)] = o
            masks[(lay.name, node.index, i)] = m
    return records, values


def _kind(lay: L.Layer) -> str:
    """The layer's class name: io-level layers (ONNX, nested models) are told apart by it, as
    the engine may not import :mod:`lstmviz.io`."""
    return type(lay).__name__


@runtime_checkable
class _NestsModel(Protocol):
    """A layer that runs a whole model (the io's ``SubModel``: a model used as a layer)."""

    model: Model


@runtime_checkable
class _OnnxLSTMNode(Protocol):
    """An ONNX LSTM node (the io's ``OnnxLSTM`` / ``OnnxBidirectionalLSTM``)."""

    layout: int  # 0: (T, B, ...), 1: (B, T, ...)
    present: list[bool]  # which of the node's optional inputs are given


@runtime_checkable
class _OnnxOpNode(Protocol):
    """Any other ONNX node (the io's ``OnnxOp``)."""

    op: str


def _forward(
    lay: L.Layer,
    ins: list[Any],
    ms: list[Any],
    states: list[Arr] | None,
    kw: dict[str, Any],
    ctx: L.Context,
    dt: np.dtype,
    pick: Callable[[str], Runner],
    rec: NodeRecord,
) -> tuple[list[Any], list[Any]]:
    kind = _kind(lay)
    if kind in ("OnnxLSTM", "OnnxBidirectionalLSTM"):
        return _onnx_lstm_forward(lay, ins, ctx, dt, pick)
    if isinstance(lay, L.Bidirectional):
        return _bidi_forward(lay, ins[0], ms[0], states, ctx, dt, pick)
    if isinstance(lay, L.LSTM):
        lt = _lstm_run(lay, ins[0], ms[0], ctx, states, pick)
        outs = lay.outputs_from(lt, ms[0])
        out_mask = None
        if lay.return_sequences and ms[0] is not None:
            out_mask = ms[0][:, ::-1] if lay.go_backwards else ms[0]
        return outs, [out_mask] + [None] * (len(outs) - 1)
    if kind == "SubModel":
        assert isinstance(lay, _NestsModel)  # every SubModel holds its model
        sub_model = lay.model
        records, values = _run(sub_model, list(ins), ctx, dt, pick)
        rec.sub = Tape(sub_model, list(ins), dt, records, values, [], {})
        outs = [values[r] for r in sub_model.outputs]
        return outs, [None] * len(outs)
    if dt == np.float32:
        return lay(ins, ms, ctx, **kw)
    outs64, masks64 = _forward64(lay, ins, ms, kw)
    return list(outs64), list(masks64)


def _lstm_run(
    lay: L.LSTM,
    x: Arr,
    mask: Arr | None,
    ctx: L.Context,
    initial_state: Any,
    pick: Callable[[str], Runner],
    trace_name: str | None = None,
    layer_name: str | None = None,
    direction: str = "forward",
    go_backwards: bool | None = None,
) -> LayerTrace:
    """:meth:`lstmviz.engine.layers.LSTM.run` with the runner ``pick`` chooses."""
    name = trace_name or lay.name
    h0 = c0 = None
    state = initial_state if initial_state is not None else ctx.initial_states.get(name)
    if state is None and layer_name is not None:
        state = ctx.initial_states.get(layer_name)
    if state is not None:
        h0, c0 = state[0], state[1]
    lt = pick(name)(
        x,
        lay.weights,
        h0=h0,
        c0=c0,
        mask=mask,
        go_backwards=lay.go_backwards if go_backwards is None else go_backwards,
        name=name,
        layer_name=layer_name or lay.name,
        direction=direction,
    )
    if ctx.record:
        ctx.layer_traces.append(lt)
    return lt


def _bidi_forward(
    lay: L.Bidirectional,
    x: Arr,
    mask: Arr | None,
    states: list[Arr] | None,
    ctx: L.Context,
    dt: np.dtype,
    pick: Callable[[str], Runner],
) -> tuple[list[Any], list[Any]]:
    """:meth:`lstmviz.engine.layers.Bidirectional.__call__` with the chosen runner."""
    fs = bs = None
    if states is not None:
        fs, bs = states[:2], states[2:4]
    halves = []
    for half, st, direction in ((lay.forward, fs, "forward"), (lay.backward, bs, "backward")):
        lt = _lstm_run(
            half,
            x,
            mask,
            ctx,
            st,
            pick,
            trace_name=f"{lay.name}/{direction}",
            layer_name=lay.name,
            direction=direction,
        )
        halves.append(half.outputs_from(lt, mask))
    of, ob = halves
    ys = lay.merge(of[0], ob[0], dt)
    if lay.return_state:
        ys += of[1:] + ob[1:]
    out_mask = mask if (lay.return_sequences and mask is not None) else None
    return ys, [out_mask] * len(ys)


def _onnx_states(ins: list[Any], dirs: int, dt: np.dtype) -> list[tuple[Arr, Arr] | None]:
    h0, c0 = ins[1], ins[2]
    out: list[tuple[Arr, Arr] | None] = []
    for d in range(dirs):
        h = None if h0 is None else np.asarray(h0, dt)[d]
        c = None if c0 is None else np.asarray(c0, dt)[d]
        if (h is None or not h.any()) and (c is None or not c.any()):
            out.append(None)
        else:
            hh = np.zeros_like(c) if h is None else h
            out.append((hh, np.zeros_like(hh) if c is None else c))
    return out


def _onnx_halves(lay: Any) -> list[tuple[L.LSTM, str]]:
    if _kind(lay) == "OnnxBidirectionalLSTM":
        return [(lay.forward, "forward"), (lay.backward, "backward")]
    return [(lay, "backward" if lay.go_backwards else "forward")]


def _onnx_lstm_forward(
    lay: Any, inputs: list[Any], ctx: L.Context, dt: np.dtype, pick: Callable[[str], Runner]
) -> tuple[list[Any], list[Any]]:
    """An ONNX LSTM node ``[X, initial_h, initial_c] -> [Y, Y_h, Y_c]`` with the chosen runner
    (the same steps as the ONNX loader's own, which lives above the engine)."""
    it = iter(inputs)
    ins = [next(it) if p else None for p in lay.present]
    x = np.asarray(ins[0], dt)
    if x.ndim != 3:
        raise InputError(f"ONNX LSTM {lay.name!r}: X must be 3-D; found shape {x.shape}")
    xb = x if lay.layout == 1 else x.transpose(1, 0, 2)  # (B, T, F)
    if lay.layout == 1:
        ins = [ins[0]] + [None if v is None else np.swapaxes(v, 0, 1) for v in ins[1:3]]
    halves = _onnx_halves(lay)
    states = _onnx_states(ins, len(halves), dt)
    ys, hs, cs = [], [], []
    for (lstm, direction), st in zip(halves, states, strict=True):
        back = direction == "backward"
        lt = _lstm_run(
            lstm,
            xb,
            None,
            ctx,
            st,
            pick,
            trace_name=f"{lay.name}/{direction}" if len(halves) == 2 else lay.name,
            layer_name=lay.name,
            direction=direction,
            go_backwards=back,
        )
        ys.append(lt.h)
        last = 0 if back else lt.timesteps - 1
        hs.append(lt.h[last])
        cs.append(lt.c[last])
    y = np.stack(ys, axis=1)  # (T, dirs, B, H)
    yh, yc = np.stack(hs), np.stack(cs)
    if lay.layout == 1:
        y = y.transpose(2, 0, 1, 3)
        yh, yc = yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
    return [np.ascontiguousarray(v) for v in (y, yh, yc)], [None, None, None]


# ---- float64 forward of the layers around the LSTMs (the float32 path calls the engine) ----
def _dense_z(lay: Any, x: Arr) -> Arr:
    k = np.asarray(lay.kernel, x.dtype)
    if x.shape[-1] != k.shape[0]:
        raise InputError(
            f"layer {lay.name!r} ({lay.kind}) expects {k.shape[0]} input features on the last "
            f"axis; found shape {x.shape}"
        )
    z = np.asarray(x @ k)
    if lay.bias is not None:
        z = z + np.asarray(lay.bias, x.dtype)
    return z


def _conv_geometry(lay: L.Conv1D, t: int) -> tuple[int, int, int]:
    """``(pad_left, pad_right, n_out)`` of a Conv1D on a sequence of ``t`` steps."""
    k = lay.kernel.shape[0]
    d, s = lay.dilation, lay.strides
    span = d * (k - 1) + 1
    if lay.padding == "causal":
        left, right = span - 1, 0
    elif lay.padding == "same":
        out_len = -(-t // s)
        total = max((out_len - 1) * s + span - t, 0)
        left, right = total // 2, total - total // 2
    else:
        left = right = 0
    n_out = (t + left + right - span) // s + 1
    if n_out <= 0:
        raise InputError(
            f"layer {lay.name!r} (Conv1D): sequence of length {t} is shorter than the receptive "
            f"field {span}"
        )
    return left, right, n_out


def _conv_z(lay: L.Conv1D, x: Arr) -> Arr:
    kern = np.asarray(lay.kernel, x.dtype)
    k, cin_g, cout = kern.shape
    b, t, _ = x.shape
    left, right, n_out = _conv_geometry(lay, t)
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)))
    y = np.zeros((b, n_out, cout), x.dtype)
    g = lay.groups
    cout_g = cout // g
    for j in range(k):
        start = j * lay.dilation
        xs = xp[:, start : start + lay.strides * (n_out - 1) + 1 : lay.strides, :]
        for gi in range(g):
            y[:, :, gi * cout_g : (gi + 1) * cout_g] += (
                xs[:, :, gi * cin_g : (gi + 1) * cin_g]
                @ kern[j][:, gi * cout_g : (gi + 1) * cout_g]
            )
    if lay.bias is not None:
        y += np.asarray(lay.bias, x.dtype)
    return y


def _layernorm(lay: L.LayerNormalization, x: Arr) -> tuple[Arr, Arr, tuple[int, ...]]:
    """``(x_hat, sigma, axes)`` of a LayerNormalization."""
    axes = tuple(a if a >= 0 else x.ndim + a for a in lay.axis)
    if lay.rms_scaling:
        var = np.mean(np.square(x), axis=axes, keepdims=True)
        sigma = np.sqrt(var + lay.epsilon)
        return x / sigma, sigma, axes
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    sigma = np.sqrt(var + lay.epsilon)
    return (x - mean) / sigma, sigma, axes


def _bn_shape(lay: L.BatchNormalization, ndim: int) -> tuple[int, list[int]]:
    axis = lay.axis if lay.axis >= 0 else ndim + lay.axis
    shape = [1] * ndim
    shape[axis] = -1
    return axis, shape


def _forward64(lay: L.Layer, ins: list[Any], ms: list[Any], kw: dict[str, Any]) -> Any:
    x = ins[0]
    dt = np.float64
    if isinstance(lay, (L.Identity, L.InputLayer)):
        return [x], [ms[0]]
    if isinstance(lay, L.Embedding):
        ids = L.check_token_ids(x, lay.input_dim, lay.name)
        mask = (ids != 0) if lay.mask_zero else ms[0]
        return [np.asarray(lay.embeddings, dt)[ids]], [mask]
    if isinstance(lay, L.Dense):
        z = _dense_z(lay, x)
        return [activations.get(lay.activation)(z, np.empty_like(z))], [ms[0]]
    if isinstance(lay, L.TimeDistributed):
        b, t = x.shape[:2]
        (y,), _ = _forward64(lay.inner, [x.reshape((b * t, *x.shape[2:]))], [None], {})
        return [y.reshape((b, t, *y.shape[1:]))], [ms[0]]
    if isinstance(lay, L.Activation):
        return [activations.get(lay.activation)(x, np.empty_like(x))], [ms[0]]
    if isinstance(lay, L.Conv1D):
        z = _conv_z(lay, x)
        return [activations.get(lay.activation)(z, np.empty_like(z))], [None]
    if isinstance(lay, L.Flatten):
        return [x.reshape(x.shape[0], -1)], [None]
    if isinstance(lay, L.Reshape):
        return [lay.call(x)], [None]
    if isinstance(lay, L.Permute):
        return [np.ascontiguousarray(x.transpose((0, *lay.dims)))], [None]
    if isinstance(lay, L.RepeatVector):
        return [np.repeat(x[:, None, :], lay.n, axis=1)], [None]
    if isinstance(lay, L.LayerNormalization):
        xh, _, _ = _layernorm(lay, x)
        y = xh
        if lay.gamma is not None:
            y = y * np.asarray(lay.gamma, dt)
        if lay.beta is not None and not lay.rms_scaling:
            y = y + np.asarray(lay.beta, dt)
        return [y], [ms[0]]
    if isinstance(lay, L.BatchNormalization):
        _, shape = _bn_shape(lay, x.ndim)
        inv = 1.0 / np.sqrt(np.asarray(lay.var, dt) + lay.epsilon)
        if lay.gamma is not None:
            inv = inv * np.asarray(lay.gamma, dt)
        y = (x - np.asarray(lay.mean, dt).reshape(shape)) * inv.reshape(shape)
        if lay.beta is not None:
            y = y + np.asarray(lay.beta, dt).reshape(shape)
        return [y], [ms[0]]
    if isinstance(lay, L.Masking):
        keep = np.any(x != lay.mask_value, axis=-1)
        return [x * keep[..., None]], [keep]
    if isinstance(lay, L.GlobalPooling1D):
        m = ms[0]
        if lay.kind == "GlobalAveragePooling1D":
            if m is None:
                return [x.mean(axis=1)], [None]
            w = m[..., None].astype(dt)
            return [(x * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-7)], [None]
        y = x.max(axis=1) if m is None else np.where(m[..., None], x, -np.inf).max(axis=1)
        return [y], [None]
    if isinstance(lay, L.Merge):
        present = [m for m in ms if m is not None]
        mask = np.logical_and.reduce(present) if present else None
        return [_merge64(lay, [np.asarray(a, dt) for a in ins])], [mask]
    kind = _kind(lay)
    if kind == "LastStep":
        return [np.ascontiguousarray(x[:, -1])], [None]
    if kind == "OpLayer":
        outs, masks = lay(ins, ms, L.Context(record=False), **kw)
        o = outs[0]
        if lay.kind == "Cast" and np.asarray(o).dtype.kind == "f":
            o = np.asarray(x, dt) if np.asarray(x).dtype.kind == "f" else np.asarray(o, dt)
        return [o], masks
    if kind in ("OnnxConst", "SwapBatchTime", "_Transpose01"):
        outs, masks = lay(ins, ms, L.Context(record=False), **kw)
        return [np.asarray(o, dt) if np.asarray(o).dtype.kind == "f" else o for o in outs], masks
    raise UnsupportedLayerError(
        f"layer {lay.name!r} ({lay.kind}) has no float64 path in lstmviz's backward pass; use "
        "dtype=np.float32"
    )


def _merge64(lay: L.Merge, ins: list[Arr]) -> Arr:
    k = lay.kind
    if k == "Concatenate":
        return np.concatenate(ins, axis=lay.axis)
    if k == "Add":
        return np.asarray(np.sum(ins, axis=0))
    if k == "Subtract":
        return np.asarray(ins[0] - ins[1])
    if k == "Multiply":
        return np.asarray(np.prod(ins, axis=0))
    if k == "Average":
        return np.asarray(np.mean(ins, axis=0))
    if k == "Maximum":
        return np.asarray(np.max(ins, axis=0))
    return np.asarray(np.min(ins, axis=0))


# ------------------------------------------------------------------------------------------
# the LSTM's backward pass
# ------------------------------------------------------------------------------------------
def lstm_backward(
    lt: LayerTrace,
    dh_out: Arr | None,
    dc_out: Arr | None = None,
    *,
    params: bool = True,
) -> LSTMGradients:
    """Backpropagation through time for one recorded LSTM (direction).

    Parameters
    ----------
    lt : LayerTrace
        The LSTM's recorded forward pass (float32 from the engine, or float64).
    dh_out : ndarray or None
        ``(T, B, P)`` time-major, in input order: d target / d ``h_t`` along the paths that
        leave the layer (its outputs); None for zeros.
    dc_out : ndarray or None
        ``(T, B, U)``: the same for ``c_t`` (an LSTM with ``return_state`` hands ``c_T`` on).
    params : bool
        Also compute the weight gradients (two GEMMs over all steps).

    Returns
    -------
    LSTMGradients
    """
    w = lt.weights
    steps, batch, units = lt.c.shape
    pdim = lt.h.shape[2]
    dt = lt.c.dtype
    kernel, rec, _ = (None if a is None else np.asarray(a, dt) for a in w._internal())
    assert kernel is not None and rec is not None
    proj = None if w.projection is None else np.asarray(w.projection, dt)
    sig_name, act_name = w.recurrent_activation, w.activation
    act_fn = activations.get(act_name)
    per_gate = sig_name in ("softmax", "log_softmax")
    g3 = 3 * units

    from .. import budget

    budget.check(
        (3 * 4 * units + 2 * units + pdim) * steps * batch * np.dtype(dt).itemsize,
        what=f"the backward pass of LSTM {lt.name!r} ({steps} steps, batch {batch}, {units} units)",
        hint="a shorter input or a smaller batch",
    )
    # every activation's derivative for every step at once (one vectorised pass each), so that
    # the loop below is only products into preallocated buffers and one GEMM per step
    tc = act_fn(np.asarray(lt.c, dt), np.empty((steps, batch, units), dt))  # tanh(c_t)
    dtc = activation_derivative(act_name, lt.c, tc)  # tanh'(c_t)
    deriv = np.empty((steps, batch, 4 * units), dt)  # σ'(z_i, z_f, z_o), tanh'(z_c)
    if not per_gate:
        deriv[..., :g3] = activation_derivative(sig_name, lt.pre[..., :g3], lt.act[..., :g3])
    deriv[..., g3:] = activation_derivative(act_name, lt.pre[..., g3:], lt.act[..., g3:])

    dpre = np.zeros((steps, batch, 4 * units), dt)  # (T, B, 4U) d/dz, blocks i, f, o, c
    dact = np.zeros((steps, batch, 4 * units), dt)  # (T, B, 4U) d/d(i, f, o, g)
    dcs = np.empty((steps, batch, units), dt)  # total d/dc_t
    dhs = np.empty((steps, batch, pdim), dt)  # total d/dh_t
    dh_next = np.zeros((batch, pdim), dt)  # from the step processed after t
    dc_next = np.zeros((batch, units), dt)
    contrib = np.empty((batch, units), dt)
    dhu_buf = np.empty((batch, units), dt)
    dproj = None if proj is None else np.zeros_like(proj)
    rec_t = np.ascontiguousarray(rec.T)  # (4U, P)
    proj_t = None if proj is None else np.ascontiguousarray(proj.T)  # (P, U)
    m = None if lt.mask is None else np.asarray(lt.mask, bool)
    if m is not None and m.all():
        m = None
    # reverse processing order: a forward layer from T-1 down, a backward one from 0 up
    order = range(steps) if lt.go_backwards else range(steps - 1, -1, -1)
    for t in order:
        p = lt.prev_index(t)
        c_prev = lt.c0 if p is None else lt.c[p]  # (B, U)
        dh = dhs[t]
        if dh_out is not None:
            np.add(dh_out[t], dh_next, out=dh)
        else:
            dh[...] = dh_next
        dc = dcs[t]
        if dc_out is not None:
            np.add(dc_out[t], dc_next, out=dc)
        else:
            dc[...] = dc_next
        a = lt.act[t]
        i, f, o, g = (a[:, :units], a[:, units : 2 * units], a[:, 2 * units : g3], a[:, g3:])
        if proj_t is None:
            dhu = dh  # (B, U)
        else:
            dhu = np.matmul(dh, proj_t, out=dhu_buf)  # h = (o * tanh(c)) @ P
            assert dproj is not None
            dproj += (tc[t] * o).T @ dh  # (U, B) @ (B, P)
        da = dact[t]
        np.multiply(dhu, tc[t], out=da[:, 2 * units : g3])  # do = dh * tanh(c)
        np.multiply(dhu, o, out=contrib)  # dc += dh * o * tanh'(c)
        contrib *= dtc[t]
        keep = None
        if m is not None:
            keep = ~m[:, t]
            if keep.any():
                contrib[keep] = 0.0
            else:
                keep = None
        dc += contrib
        np.multiply(dc, c_prev, out=da[:, units : 2 * units])  # df = dc * c_prev
        np.multiply(dc, g, out=da[:, :units])  # di = dc * g
        np.multiply(dc, i, out=da[:, g3:])  # dg = dc * i
        if keep is not None:
            da[keep] = 0.0
        dz = dpre[t]
        if per_gate:  # softmax-like gates mix their units: the vector-Jacobian product
            z = lt.pre[t]
            for k in range(3):
                sl = slice(k * units, (k + 1) * units)
                dz[:, sl] = activation_vjp(sig_name, z[:, sl], a[:, sl], da[:, sl])
            np.multiply(da[:, g3:], deriv[t, :, g3:], out=dz[:, g3:])
        else:
            np.multiply(da, deriv[t], out=dz)  # dz = da * act'(z)
        np.multiply(dc, f, out=dc_next)  # c_t = f * c_prev + ...
        np.matmul(dz, rec_t, out=dh_next)  # z = ... + h_prev U
        if keep is not None:  # a masked step hands its state's gradient straight on
            dc_next[keep] = dc[keep]
            dh_next[keep] = dh[keep]
    # the input sequence: one GEMM over all steps
    dx = np.matmul(dpre, kernel.T).transpose(1, 0, 2)  # (T, B, 4U) @ (4U, F) -> (B, T, F)
    grads: dict[str, Arr] = {}
    if params:
        x_tm = np.asarray(lt.x, dt).transpose(1, 0, 2).reshape(steps * batch, -1)  # (T*B, F)
        dz2 = dpre.reshape(steps * batch, 4 * units)
        h_prev = np.asarray(lt.hidden_prev, dt).transpose(1, 0, 2).reshape(steps * batch, pdim)

        def keras_order(a: Arr) -> Arr:  # blocks i, f, o, c -> i, f, c, o
            blocks = a.reshape(*a.shape[:-1], 4, units)[..., list(_PERM), :]
            return blocks.reshape(a.shape)

        grads["kernel"] = keras_order(x_tm.T @ dz2)  # (F, 4U)
        grads["recurrent_kernel"] = keras_order(h_prev.T @ dz2)  # (P, 4U)
        if w.bias is not None:
            grads["bias"] = keras_order(dz2.sum(axis=0))
        if dproj is not None:
            grads["projection"] = dproj
    return LSTMGradients(
        name=lt.name,
        dpre=dpre,
        dact=dact,
        dc=dcs,
        dh=dhs,
        dx=np.ascontiguousarray(dx),
        dh0=dh_next.copy(),
        dc0=dc_next.copy(),
        params=grads,
    )


def lstm_output_grads(
    lay: L.LSTM,
    lt: LayerTrace,
    mask: Arr | None,
    g_out: Arr | None,
    g_h: Arr | None,
    g_c: Arr | None,
) -> tuple[Arr | None, Arr | None]:
    """The inverse of :meth:`LSTM.outputs_from`: gradients (or relevances: the map only places
    values) of the layer's outputs -- the sequence in processing order or h_T, then h_T and
    c_T -- as ``(dh_out, dc_out)``, time-major in input order."""
    steps, batch, pdim = lt.h.shape
    last = 0 if lay.go_backwards else steps - 1
    dh = None
    dc = None
    if g_out is not None or g_h is not None:
        dh = np.zeros((steps, batch, pdim), lt.h.dtype)
    if g_out is not None:
        assert dh is not None
        if lay.return_sequences:
            g = np.asarray(g_out, lt.h.dtype)  # (B, T, P) processing order
            if mask is not None and lay.zero_output_for_mask:
                mm = mask[:, ::-1] if lay.go_backwards else mask
                g = g * mm[..., None]
            if lay.go_backwards:
                g = g[:, ::-1]
            dh += g.transpose(1, 0, 2)
        else:
            dh[last] += g_out
    if g_h is not None:
        assert dh is not None
        dh[last] += g_h
    if g_c is not None:
        dc = np.zeros(lt.c.shape, lt.c.dtype)
        dc[last] += g_c
    return dh, dc


# ------------------------------------------------------------------------------------------
# backward through the graph
# ------------------------------------------------------------------------------------------
@dataclass
class _Acc:
    """Gradients collected on the way back."""

    tensors: dict[TensorRef, Arr] = field(default_factory=dict)
    layers: dict[str, LSTMGradients] = field(default_factory=dict)
    params: dict[str, dict[str, Arr]] = field(default_factory=dict)
    want_params: bool = True

    def add(self, ref: TensorRef, g: Arr | None) -> None:
        if g is None:
            return
        old = self.tensors.get(ref)
        self.tensors[ref] = np.array(g) if old is None else old + g

    def param(self, layer: str, name: str, g: Arr) -> None:
        d = self.params.setdefault(layer, {})
        d[name] = g if name not in d else d[name] + g


def _as_seed(tape: Tape, seed: Any) -> dict[TensorRef, Arr]:
    outs = tape.model.outputs
    if isinstance(seed, dict):
        return {
            (str(k[0]), int(k[1]), int(k[2])): np.asarray(v, tape.dtype) for k, v in seed.items()
        }
    if isinstance(seed, (list, tuple)) and len(outs) > 1:
        if len(seed) != len(outs):
            raise InputError(f"seed: the model has {len(outs)} outputs; got {len(seed)} seeds")
        return {
            r: np.asarray(s, tape.dtype) for r, s in zip(outs, seed, strict=True) if s is not None
        }
    if len(outs) != 1:
        raise InputError(f"seed: the model has {len(outs)} outputs; pass a list of seeds")
    return {outs[0]: np.asarray(seed, tape.dtype)}


def backward(tape: Tape, seed: Any, *, params: bool = True) -> Gradients:
    """Backpropagate ``seed`` (d target / d output) through a recorded pass.

    Parameters
    ----------
    tape : Tape
        From :func:`record`.
    seed : ndarray, list or dict
        d target / d the model's output, shaped like it (a list for a multi-output model, or
        ``{tensor ref: array}`` to start anywhere in the graph). The target is the inner product
        of the seed with the output: a one-hot seed picks one output value; ``dL/dy`` of a loss
        gives the loss's gradient.
    params : bool
        Also compute every weight's gradient.

    Returns
    -------
    Gradients
    """
    seeds = _as_seed(tape, seed)
    value = 0.0
    for ref, s in seeds.items():
        if ref not in tape.values:
            raise InputError(f"seed: no tensor {ref} in the recorded pass")
        v = np.asarray(tape.values[ref])
        if s.shape != v.shape:
            raise InputError(f"seed for {ref[0]!r} has shape {s.shape}; the output is {v.shape}")
        value += float(np.sum(s * v))
    acc = _Acc(want_params=params)
    for ref, s in seeds.items():
        acc.add(ref, s)
    _backward_records(tape, acc)
    model = tape.model
    inputs: list[Arr | None] = []
    embedded: list[Arr | None] = []
    for ref, xin in zip(model.inputs, tape.inputs, strict=True):
        if np.asarray(xin).dtype.kind == "f":
            g = acc.tensors.get(ref)
            inputs.append(np.zeros_like(xin) if g is None else g)
            embedded.append(None)
        else:
            inputs.append(None)
            emb = None
            for rec in tape.records:
                if isinstance(rec.node.layer, L.Embedding) and rec.node.inputs[0] == ref:
                    out_ref = (rec.node.layer.name, rec.node.index, 0)
                    g = acc.tensors.get(out_ref)
                    emb = np.zeros_like(rec.outs[0]) if g is None else g
                    break
            embedded.append(emb)
    return Gradients(
        inputs=inputs,
        embedded=embedded,
        layers=acc.layers,
        params=acc.params,
        tensors=acc.tensors,
        value=value,
    )


def _backward_records(tape: Tape, acc: _Acc) -> None:
    for rec in reversed(tape.records):
        node = rec.node
        lay = node.layer
        gouts = [acc.tensors.get((lay.name, node.index, i)) for i in range(len(rec.outs))]
        if all(g is None for g in gouts):
            continue
        if not node.inputs and "initial_state" not in node.kwargs:
            continue  # a constant (an ONNX initial state folded in): nothing to pass on to
        gins, gstates = _backward_node(rec, gouts, acc, tape.dtype)
        for ref, g in zip(node.inputs, gins, strict=True):
            acc.add(ref, g)
        if gstates is not None and "initial_state" in node.kwargs:
            for ref, g in zip(node.kwargs["initial_state"], gstates, strict=False):
                acc.add(ref, g)


def _backward_node(
    rec: NodeRecord, gouts: list[Arr | None], acc: _Acc, dt: np.dtype
) -> tuple[list[Arr | None], list[Arr] | None]:
    lay = rec.node.layer
    kind = _kind(lay)
    if kind in ("OnnxLSTM", "OnnxBidirectionalLSTM"):
        return _onnx_lstm_backward(rec, gouts, acc, dt), None
    if isinstance(lay, L.Bidirectional):
        return _bidi_backward(rec, gouts, acc)
    if isinstance(lay, L.LSTM):
        lt = rec.traces[0]
        g_h = gouts[1] if len(gouts) > 1 else None
        g_c = gouts[2] if len(gouts) > 2 else None
        dh, dc = lstm_output_grads(lay, lt, rec.masks[0], gouts[0], g_h, g_c)
        lg = lstm_backward(lt, dh, dc, params=acc.want_params)
        acc.layers[lt.name] = lg
        for k, v in lg.params.items():
            acc.param(lay.name, k, v)
        states = [lg.dh0, lg.dc0] if rec.states is not None else None
        return [lg.dx], states
    if kind == "SubModel":
        assert rec.sub is not None
        sub = rec.sub
        # the nested model's tensors in their own namespace (its names may repeat the outer
        # model's: an inner "in" is not the outer "in"); its LSTMs and weights are the model's
        inner = _Acc(layers=acc.layers, params=acc.params, want_params=acc.want_params)
        for ref, g in zip(sub.model.outputs, gouts, strict=True):
            inner.add(ref, g)
        _backward_records(sub, inner)
        for ref, g in inner.tensors.items():  # inner tensors stay readable where unambiguous
            if ref not in sub.model.inputs:
                acc.tensors.setdefault(ref, g)
        return [inner.tensors.get(ref) for ref in sub.model.inputs], None
    g = gouts[0]
    if len(rec.outs) == 1 and g is None:
        return [None] * len(rec.ins), None
    return _backward_layer(lay, rec.ins, rec.masks, rec.outs, gouts, acc, dt), None


def _bidi_backward(
    rec: NodeRecord, gouts: list[Arr | None], acc: _Acc
) -> tuple[list[Arr | None], list[Arr] | None]:
    lay = rec.node.layer
    assert isinstance(lay, L.Bidirectional)
    lf, lb = rec.traces
    mask = rec.masks[0]
    mm = lay.merge_mode
    n_main = 2 if mm in (None, "None", "none") else 1
    main = gouts[:n_main]
    extra = list(gouts[n_main:]) + [None] * 4
    of = lay.forward.outputs_from(lf, mask)
    ob = lay.backward.outputs_from(lb, mask)
    yf, yb = of[0], ob[0]
    if lay.return_sequences:
        if lay.backward.go_backwards:
            yb = yb[:, ::-1]
        if lay.forward.go_backwards:
            yf = yf[:, ::-1]
    g = main[0]
    gyf: Arr | None
    gyb: Arr | None
    if n_main == 2:
        gyf, gyb = main[0], main[1]
    elif g is None:
        gyf = gyb = None
    elif mm == "concat":
        pf = yf.shape[-1]
        gyf, gyb = g[..., :pf], g[..., pf:]
    elif mm == "sum":
        gyf = gyb = g
    elif mm == "mul":
        gyf, gyb = g * yb, g * yf
    else:  # ave
        gyf = gyb = g / 2
    if lay.return_sequences:  # back to each half's processing order
        if gyb is not None and lay.backward.go_backwards:
            gyb = gyb[:, ::-1]
        if gyf is not None and lay.forward.go_backwards:
            gyf = gyf[:, ::-1]
    dx = None
    states: list[Arr] = []
    for half, lt, gy, gh, gc in (
        (lay.forward, lf, gyf, extra[0], extra[1]),
        (lay.backward, lb, gyb, extra[2], extra[3]),
    ):
        dh, dc = lstm_output_grads(half, lt, mask, gy, gh, gc)
        lg = lstm_backward(lt, dh, dc, params=acc.want_params)
        acc.layers[lt.name] = lg
        for k, v in lg.params.items():
            acc.param(f"{lay.name}/{lt.direction}", k, v)
        dx = lg.dx if dx is None else dx + lg.dx
        states += [lg.dh0, lg.dc0]
    return [dx], states if rec.states is not None else None


def _onnx_lstm_backward(
    rec: NodeRecord, gouts: list[Arr | None], acc: _Acc, dt: np.dtype
) -> list[Arr | None]:
    lay = rec.node.layer
    assert isinstance(lay, _OnnxLSTMNode)  # the caller dispatched on its kind
    halves = _onnx_halves(lay)
    layout = lay.layout
    gy, gyh, gyc = [*gouts, None, None, None][:3]
    if layout == 1:  # back to (T, dirs, B, H) and (dirs, B, H)
        gy = None if gy is None else gy.transpose(1, 2, 0, 3)
        gyh = None if gyh is None else gyh.transpose(1, 0, 2)
        gyc = None if gyc is None else gyc.transpose(1, 0, 2)
    dxb = None
    dstates_h, dstates_c = [], []
    for d, ((_lstm, direction), lt) in enumerate(zip(halves, rec.traces, strict=True)):
        steps = lt.timesteps
        back = direction == "backward"
        last = 0 if back else steps - 1
        dh = np.zeros(lt.h.shape, dt)
        if gy is not None:
            dh += gy[:, d]
        if gyh is not None:
            dh[last] += gyh[d]
        dc = None
        if gyc is not None:
            dc = np.zeros(lt.c.shape, dt)
            dc[last] += gyc[d]
        lg = lstm_backward(lt, dh, dc, params=acc.want_params)
        acc.layers[lt.name] = lg
        for k, v in lg.params.items():
            acc.param(lt.name, k, v)
        dxb = lg.dx if dxb is None else dxb + lg.dx
        dstates_h.append(lg.dh0)
        dstates_c.append(lg.dc0)
    assert dxb is not None
    dx = dxb if layout == 1 else dxb.transpose(1, 0, 2)
    present = lay.present
    out: list[Arr | None] = []
    for idx, p in enumerate(present):
        if not p:
            continue
        if idx == 0:
            out.append(np.ascontiguousarray(dx))
        elif idx in (1, 2):
            st = np.stack(dstates_h if idx == 1 else dstates_c)  # (dirs, B, H)
            out.append(np.swapaxes(st, 0, 1) if layout == 1 else st)
        else:
            out.append(None)
    return out


def _reduce_to(g: Arr, shape: tuple[int, ...]) -> Arr:
    """Sum a broadcast gradient back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def _backward_layer(
    lay: L.Layer,
    ins: list[Any],
    ms: list[Any],
    outs: list[Any],
    gouts: list[Arr | None],
    acc: _Acc,
    dt: np.dtype,
) -> list[Arr | None]:
    """Gradients of a (non-LSTM) layer's inputs from its outputs' gradients; weight
    gradients go to ``acc``."""
    g = gouts[0]
    assert g is not None
    x = ins[0]
    y = outs[0]
    if isinstance(lay, (L.Identity, L.InputLayer)):
        return [g]
    if isinstance(lay, L.Embedding):
        if acc.want_params:
            ids = np.asarray(x, np.int64)
            de = np.zeros(lay.embeddings.shape, dt)
            np.add.at(de, ids.reshape(-1), g.reshape(-1, de.shape[1]))
            acc.param(lay.name, "embeddings", de)
        return [None]
    if isinstance(lay, L.Dense):
        xx = np.asarray(x, dt)
        z = _dense_z(lay, xx)
        dz = activation_vjp(lay.activation, z, np.asarray(y, dt), g)
        if acc.want_params:
            f = xx.reshape(-1, xx.shape[-1])
            acc.param(lay.name, "kernel", f.T @ dz.reshape(-1, dz.shape[-1]))
            if lay.bias is not None:
                acc.param(lay.name, "bias", dz.reshape(-1, dz.shape[-1]).sum(axis=0))
        return [dz @ np.asarray(lay.kernel, dt).T]
    if isinstance(lay, L.TimeDistributed):
        b, t = x.shape[:2]
        flat_x = np.asarray(x).reshape((b * t, *x.shape[2:]))
        flat_y = np.asarray(y).reshape((b * t, *y.shape[2:]))
        flat_g = g.reshape((b * t, *g.shape[2:]))
        inner = _Acc(want_params=acc.want_params)
        (dx,) = _backward_layer(lay.inner, [flat_x], [None], [flat_y], [flat_g], inner, dt)
        for grads in inner.params.values():  # weights under the TimeDistributed's own name
            for k, v in grads.items():
                acc.param(lay.name, k, v)
        return [None if dx is None else dx.reshape(x.shape)]
    if isinstance(lay, L.Activation):
        return [activation_vjp(lay.activation, np.asarray(x, dt), np.asarray(y, dt), g)]
    if isinstance(lay, L.Conv1D):
        return [_conv_backward(lay, np.asarray(x, dt), np.asarray(y, dt), g, acc)]
    if isinstance(lay, (L.Flatten, L.Reshape)):
        return [g.reshape(np.shape(x))]
    if isinstance(lay, L.Permute):
        perm = (0, *lay.dims)
        return [np.ascontiguousarray(g.transpose(np.argsort(perm)))]
    if isinstance(lay, L.RepeatVector):
        return [g.sum(axis=1)]
    if isinstance(lay, L.LayerNormalization):
        xx = np.asarray(x, dt)
        xh, sigma, axes = _layernorm(lay, xx)
        dxh = g if lay.gamma is None else g * np.asarray(lay.gamma, dt)
        rest = tuple(a for a in range(xx.ndim) if a not in axes)
        if acc.want_params:
            if lay.gamma is not None:
                acc.param(lay.name, "gamma", (g * xh).sum(axis=rest).reshape(lay.gamma.shape))
            if lay.beta is not None and not lay.rms_scaling:
                acc.param(lay.name, "beta", g.sum(axis=rest).reshape(lay.beta.shape))
        proj = np.mean(dxh * xh, axis=axes, keepdims=True)
        if lay.rms_scaling:
            return [(dxh - xh * proj) / sigma]
        return [(dxh - np.mean(dxh, axis=axes, keepdims=True) - xh * proj) / sigma]
    if isinstance(lay, L.BatchNormalization):
        xx = np.asarray(x, dt)
        axis, shape = _bn_shape(lay, xx.ndim)
        inv = 1.0 / np.sqrt(np.asarray(lay.var, dt) + lay.epsilon)
        rest = tuple(a for a in range(xx.ndim) if a != axis)
        if acc.want_params:
            if lay.gamma is not None:
                xh = (xx - np.asarray(lay.mean, dt).reshape(shape)) * inv.reshape(shape)
                acc.param(lay.name, "gamma", (g * xh).sum(axis=rest))
            if lay.beta is not None:
                acc.param(lay.name, "beta", g.sum(axis=rest))
        if lay.gamma is not None:
            inv = inv * np.asarray(lay.gamma, dt)
        return [g * inv.reshape(shape)]
    if isinstance(lay, L.Masking):
        keep = np.any(np.asarray(x) != lay.mask_value, axis=-1)
        return [g * keep[..., None]]
    if isinstance(lay, L.GlobalPooling1D):
        xx = np.asarray(x, dt)
        m = ms[0]
        if lay.kind == "GlobalAveragePooling1D":
            if m is None:
                return [np.broadcast_to(g[:, None, :] / xx.shape[1], xx.shape).copy()]
            w = m[..., None].astype(dt)
            return [g[:, None, :] * w / np.maximum(w.sum(axis=1, keepdims=True), 1e-7)]
        yy = np.asarray(y, dt)
        hit = xx == yy[:, None, :]
        if m is not None:
            hit &= m[..., None]
        return [g[:, None, :] * hit / np.maximum(hit.sum(axis=1, keepdims=True), 1)]
    if isinstance(lay, L.Merge):
        return _merge_backward(lay, [np.asarray(a, dt) for a in ins], g)
    kind = _kind(lay)
    if kind == "LastStep":
        dx = np.zeros(np.shape(x), dt)
        dx[:, -1] = g
        return [dx]
    if kind == "OpLayer":
        op = lay.kind
        if op in ("Squeeze", "ExpandDims"):
            return [g.reshape(np.shape(x))] + [None] * (len(ins) - 1)
        if op == "Cast" and np.asarray(x).dtype.kind == "f":
            return [np.asarray(g, dt)]
        return [None] * len(ins)
    if kind in ("SwapBatchTime", "_Transpose01"):
        return [np.ascontiguousarray(np.swapaxes(g, 0, 1))]
    if kind == "OnnxConst":
        return []
    if kind == "OnnxOp":
        return _onnx_op_backward(lay, ins, outs, gouts, dt)
    raise UnsupportedLayerError(
        f"layer {lay.name!r} ({lay.kind}) has no backward pass in lstmviz; gradients, "
        "integrated gradients and LRP cannot go through it"
    )


def _conv_backward(lay: L.Conv1D, x: Arr, y: Arr, g: Arr, acc: _Acc) -> Arr:
    z = _conv_z(lay, x)
    dz = activation_vjp(lay.activation, z, y, g)  # (B, n_out, Cout)
    kern = np.asarray(lay.kernel, x.dtype)
    k, cin_g, cout = kern.shape
    t = x.shape[1]
    left, right, n_out = _conv_geometry(lay, t)
    xp = np.pad(x, ((0, 0), (left, right), (0, 0)))
    dxp = np.zeros_like(xp)
    dk = np.zeros_like(kern)
    groups = lay.groups
    cout_g = cout // groups
    s = lay.strides
    for j in range(k):
        start = j * lay.dilation
        sl = slice(start, start + s * (n_out - 1) + 1, s)
        xs = xp[:, sl, :]  # (B, n_out, Cin)
        for gi in range(groups):
            ci = slice(gi * cin_g, (gi + 1) * cin_g)
            co = slice(gi * cout_g, (gi + 1) * cout_g)
            dzg = dz[:, :, co]
            dxp[:, sl, ci] += dzg @ kern[j][:, co].T
            if acc.want_params:
                dk[j][:, co] += xs[:, :, ci].reshape(-1, cin_g).T @ dzg.reshape(-1, cout_g)
    if acc.want_params:
        acc.param(lay.name, "kernel", dk)
        if lay.bias is not None:
            acc.param(lay.name, "bias", dz.sum(axis=(0, 1)))
    return dxp[:, left : left + t]


def _merge_backward(lay: L.Merge, ins: list[Arr], g: Arr) -> list[Arr | None]:
    k = lay.kind
    n = len(ins)
    if k == "Concatenate":
        ax = lay.axis if lay.axis >= 0 else g.ndim + lay.axis
        idx = np.cumsum([a.shape[ax] for a in ins])[:-1]
        return list(np.split(g, idx, axis=ax))
    if k == "Add":
        return [_reduce_to(g, a.shape) for a in ins]
    if k == "Subtract":
        return [_reduce_to(g, ins[0].shape), _reduce_to(-g, ins[1].shape)]
    if k == "Average":
        return [_reduce_to(g / n, a.shape) for a in ins]
    out: list[Arr | None] = []
    if k == "Multiply":
        for i in range(n):
            others = np.ones_like(g)
            for j, a in enumerate(ins):
                if j != i:
                    others = others * a
            out.append(_reduce_to(g * others, ins[i].shape))
        return out
    # Maximum / Minimum: the gradient goes to the (first) input that won
    best = np.max(ins, axis=0) if k == "Maximum" else np.min(ins, axis=0)
    taken = np.zeros(g.shape, bool)
    for a in ins:
        hit = (a == best) & ~taken
        taken |= hit
        out.append(g * hit)
    return out


# ---- ONNX operators (the graph a torch.onnx / tf2onnx export holds around its LSTMs) ------
_ONNX_GRAD_OPS = (
    "Identity",
    "Dropout",
    "Cast",
    "Expand",
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "MatMul",
    "Gemm",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Relu",
    "Tanh",
    "Sigmoid",
    "Exp",
    "Log",
    "Softmax",
    "LogSoftmax",
)


#: Ops whose outputs carry no gradient (shapes, zeros of a shape): nothing to propagate.
_ONNX_NO_GRADIENT = frozenset({"Shape", "ConstantOfShape", "Size", "Range", "Equal", "Less"})

#: Ops that only pick and move elements: their backward scatters the gradient back.
_SELECT_OPS = frozenset(
    {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Gather", "Expand"}
)


def _onnx_op_backward(
    lay: Any, ins: list[Any], outs: list[Any], gouts: list[Arr | None], dt: np.dtype
) -> list[Arr | None]:
    op = lay.op
    dyn_in = [np.asarray(v) for v in ins]
    if not any(v.dtype.kind == "f" for v in dyn_in) or not any(
        np.asarray(o).dtype.kind == "f" for o in outs
    ):  # shapes, masks, indices, zeros of a shape: nothing a gradient flows through
        return [None] * len(ins)
    if op not in _ONNX_GRAD_OPS:
        raise UnsupportedLayerError(
            f"ONNX node {lay.name!r} ({op}) has no backward pass in lstmviz; ops with one: "
            f"{', '.join(_ONNX_GRAD_OPS)}"
        )
    # full argument list: graph values where the spec says dynamic, constants elsewhere
    it = iter(ins)
    full = [next(it) if isinstance(v, str) else v for v in lay.spec]
    dyn = [isinstance(v, str) for v in lay.spec]
    a = lay.attrs
    x = None if full[0] is None else np.asarray(full[0])
    g = gouts[0]
    gfull: list[Arr | None] = [None] * len(full)
    if op == "Split":
        assert x is not None  # Split's input is a graph value
        ax = a.get("axis", 0) % x.ndim
        parts = [
            np.zeros(np.shape(o), dt) if gg is None else gg
            for o, gg in zip(outs, gouts, strict=True)
        ]
        gfull[0] = np.concatenate(parts, axis=ax)
    elif g is None:
        pass
    elif op in ("Identity", "Dropout"):
        gfull[0] = g
    elif op == "Cast":
        gfull[0] = np.asarray(g, dt) if x is not None and x.dtype.kind == "f" else None
    elif op in _SELECT_OPS:
        if dyn[0]:  # which element of x each output element is: run the op on positions
            assert x is not None  # a dynamic input is a graph value
            pos = np.arange(x.size, dtype=np.int64).reshape(x.shape)
            picked = lay([pos, *ins[1:]], [None] * len(ins), L.Context(record=False))[0][0]
            gx = np.zeros(x.size, dt)
            np.add.at(gx, np.asarray(picked).reshape(-1), np.asarray(g, dt).reshape(-1))
            gfull[0] = gx.reshape(x.shape)
    elif op == "Concat":
        vals = [np.asarray(v) for v in full if v is not None]
        ax = a["axis"] % g.ndim
        parts = np.split(g, np.cumsum([v.shape[ax] for v in vals])[:-1], axis=ax)
        k = 0
        for idx, v in enumerate(full):
            if v is not None:
                gfull[idx] = parts[k]
                k += 1
    elif op in ("MatMul", "Gemm"):
        b = np.asarray(full[1], dt)
        xx = np.asarray(x, dt)
        if op == "MatMul":
            gfull[0] = _reduce_to(g @ np.swapaxes(b, -1, -2), xx.shape) if xx.ndim > 1 else None
            gfull[1] = _reduce_to(np.swapaxes(xx, -1, -2) @ g, b.shape) if b.ndim > 1 else None
        else:
            alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
            xa = xx.T if a.get("transA", 0) else xx
            wb = b.T if a.get("transB", 0) else b
            gxa = alpha * g @ wb.T
            gwb = alpha * xa.T @ g
            gfull[0] = gxa.T if a.get("transA", 0) else gxa
            gfull[1] = gwb.T if a.get("transB", 0) else gwb
            if len(full) > 2 and full[2] is not None:
                gfull[2] = _reduce_to(beta * g, np.shape(full[2]))
    elif op in ("Add", "Sub", "Mul", "Div"):
        u, v = np.asarray(full[0], dt), np.asarray(full[1], dt)
        if op == "Add":
            gu, gv = g, g
        elif op == "Sub":
            gu, gv = g, -g
        elif op == "Mul":
            gu, gv = g * v, g * u
        else:
            gu, gv = g / v, -g * u / (v * v)
        gfull[0], gfull[1] = _reduce_to(gu, u.shape), _reduce_to(gv, v.shape)
    elif op == "Neg":
        gfull[0] = -g
    elif op in ("Relu", "Tanh", "Sigmoid", "Exp"):
        name = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Exp": "exponential"}[op]
        gfull[0] = activation_vjp(name, np.asarray(x, dt), np.asarray(outs[0], dt), g)
    elif op == "Log":
        gfull[0] = g / np.asarray(x, dt)
    elif op in ("Softmax", "LogSoftmax"):
        yy = np.asarray(outs[0], dt)
        if lay.opset >= 13:
            ax = a.get("axis", -1)
            if op == "Softmax":
                gfull[0] = yy * (g - np.sum(g * yy, axis=ax, keepdims=True))
            else:
                gfull[0] = g - np.exp(yy) * np.sum(g, axis=ax, keepdims=True)
        else:
            ax = a.get("axis", 1) % yy.ndim
            shp = yy.shape
            f_y = yy.reshape(int(np.prod(shp[:ax])), -1)
            f_g = g.reshape(f_y.shape)
            if op == "Softmax":
                r = f_y * (f_g - np.sum(f_g * f_y, axis=1, keepdims=True))
            else:
                r = f_g - np.exp(f_y) * np.sum(f_g, axis=1, keepdims=True)
            gfull[0] = r.reshape(shp)
    return [gg for gg, d in zip(gfull, dyn, strict=True) if d]


# ------------------------------------------------------------------------------------------
# convenience
# ------------------------------------------------------------------------------------------
def gradients(
    model: Model,
    x: Any,
    seed: Any,
    *,
    initial_state: dict[str, Any] | None = None,
    dtype: Any = np.float32,
    params: bool = True,
) -> Gradients:
    """``backward(record(model, x), seed)``: gradients of ``<seed, model(x)>``."""
    tape = record(model, x, initial_state=initial_state, dtype=dtype)
    if callable(seed):
        seed = seed(tape.output)
    return backward(tape, seed, params=params)


def supports_backward(model: Model) -> list[str]:
    """The layers of ``model`` that have no backward pass (an empty list: all have one)."""
    bad = []
    ok = (
        L.Identity,
        L.InputLayer,
        L.Embedding,
        L.Dense,
        L.Activation,
        L.Conv1D,
        L.Flatten,
        L.Reshape,
        L.Permute,
        L.RepeatVector,
        L.LayerNormalization,
        L.BatchNormalization,
        L.Masking,
        L.GlobalPooling1D,
        L.Merge,
        L.LSTM,
        L.Bidirectional,
    )

    def visit(m: Model) -> None:
        for n in m.nodes:
            lay = n.layer
            kind = _kind(lay)
            if isinstance(lay, L.TimeDistributed):
                if not isinstance(lay.inner, ok):
                    bad.append(f"{lay.name} ({lay.kind} of {lay.inner.kind})")
            elif kind == "SubModel":
                assert isinstance(lay, _NestsModel)  # every SubModel holds its model
                visit(lay.model)
            elif kind == "OnnxOp":
                assert isinstance(lay, _OnnxOpNode)  # every ONNX node names its op
                if lay.op not in _ONNX_GRAD_OPS and lay.op not in _ONNX_NO_GRADIENT:
                    bad.append(f"{lay.name} (ONNX {lay.op})")
            elif not isinstance(lay, ok) and kind not in (
                "LastStep",
                "OpLayer",
                "OnnxConst",
                "SwapBatchTime",
                "_Transpose01",
                "OnnxLSTM",
                "OnnxBidirectionalLSTM",
            ):
                bad.append(f"{lay.name} ({lay.kind})")

    visit(model)
    return bad


__all__ = [
    "GRADIENT_QUANTITIES",
    "Gradients",
    "LSTMGradients",
    "NodeRecord",
    "Tape",
    "activation_derivative",
    "activation_vjp",
    "backward",
    "check_layer_graph",
    "gradients",
    "lstm_backward",
    "lstm_output_grads",
    "record",
    "supports_backward",
]
