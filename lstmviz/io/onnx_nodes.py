"""ONNX graphs as a graph of engine layers, for the backward pass.

:mod:`lstmviz.io.onnx_format` *runs* a graph with ONNX's reference evaluator; the backward
pass (:mod:`lstmviz.engine.backward`) needs the graph as engine layers whose forward it can
replay node by node and differentiate: LSTM nodes as engine LSTMs (:class:`OnnxLSTM`,
:class:`OnnxBidirectionalLSTM`), the ops around them as small NumPy functions
(:class:`OnnxOp`, :data:`SUPPORTED_OPS`), constants as :class:`OnnxConst`.
:func:`node_graph` builds that graph with the layouts the reader measured, and the reader
keeps it only when it reproduces the reference evaluator's outputs on the probe input; graphs
with other ops simply have no node graph (and no backward pass).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import convert
from ..engine import layers as L
from ..engine.cell import LSTMWeights
from ..engine.model import Node, TensorRef
from ..errors import InputError, ModelFileError, UnsupportedLayerError

Arr = np.ndarray
_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}
MAX_TENSOR_ELEMENTS = 2**31


class NoNodeGraph(Exception):
    """The graph cannot be expressed as engine layers (an op without a NumPy function)."""


# ------------------------------------------------------------------------------------ ops
def _axes(ins: list[Any], a: dict[str, Any], pos: int = 1) -> list[int] | None:
    if len(ins) > pos and ins[pos] is not None:
        return [int(v) for v in np.asarray(ins[pos]).reshape(-1)]
    return None if a.get("axes") is None else [int(v) for v in a["axes"]]


def _reshape(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    x, shape = ins[0], [int(v) for v in ins[1]]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return [x.reshape(shape)]


def _squeeze(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    axes = _axes(ins, a)
    x = ins[0]
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(v % x.ndim for v in axes))]


def _unsqueeze(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    x = ins[0]
    axes = _axes(ins, a) or []
    n = x.ndim + len(axes)
    for v in sorted(v % n for v in axes):
        x = np.expand_dims(x, v)
    return [x]


def _slice(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    x = ins[0]
    if len(ins) > 1 and ins[1] is not None:
        starts, ends = np.asarray(ins[1]).reshape(-1), np.asarray(ins[2]).reshape(-1)
        axes = _axes(ins, {}, 3) or list(range(len(starts)))
        steps = (
            np.asarray(ins[4]).reshape(-1)
            if len(ins) > 4 and ins[4] is not None
            else np.ones(len(starts), np.int64)
        )
    else:  # opset < 10: attributes
        starts, ends = a["starts"], a["ends"]
        axes = a.get("axes") or list(range(len(starts)))
        steps = np.ones(len(starts), np.int64)
    sl = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=False):
        big = np.iinfo(np.int64).max // 2
        e = None if int(e) >= big else (None if int(e) <= -big else int(e))
        sl[int(ax) % x.ndim] = slice(int(s), e, int(st))
    return [x[tuple(sl)]]


def _gemm(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    x, w = ins[0], ins[1]
    if a.get("transA", 0):
        x = x.T
    if a.get("transB", 0):
        w = w.T
    y = a.get("alpha", 1.0) * (x @ w)
    if len(ins) > 2 and ins[2] is not None:
        y = y + a.get("beta", 1.0) * ins[2]
    return [y.astype(np.float32)]


def _softmax(ins: list[Any], a: dict[str, Any], opset: int, log: bool = False) -> list[Any]:
    x = ins[0]
    if opset >= 13:
        ax = a.get("axis", -1)
        z = x - x.max(axis=ax, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=ax, keepdims=True)
        return [(z - np.log(s)) if log else e / s]
    ax = a.get("axis", 1) % x.ndim
    flat = x.reshape(int(np.prod(x.shape[:ax])), -1)
    z = flat - flat.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    return [((z - np.log(s)) if log else e / s).reshape(x.shape)]


def _shape(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    shp = np.array(ins[0].shape, np.int64)
    start, end = a.get("start", 0), a.get("end")
    return [shp[start:end]]


def _size(shape: Any) -> list[int]:
    """A shape computed in the graph, refused when it is absurd."""
    dims = [int(s) for s in np.asarray(shape).reshape(-1)]
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"shape {dims} is not a tensor lstmviz will allocate")
    return dims


def _const_of_shape(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    v = a.get("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    return [np.full(_size(ins[0]), v[0], dtype=v.dtype)]


def _split(ins: list[Any], a: dict[str, Any], opset: int) -> list[Any]:
    x = ins[0]
    ax = a.get("axis", 0) % x.ndim
    split = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("split")
    n = a.get("_n_outputs", 1)
    if split is None:
        return list(np.array_split(x, n, axis=ax))
    idx = np.cumsum([int(v) for v in split])[:-1]
    return list(np.split(x, idx, axis=ax))


def _cast(ins: list[Any], a: dict[str, Any]) -> list[Any]:
    from onnx import helper

    return [ins[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))]


def _f(fn: Callable[..., Any]) -> Callable[[list[Any], dict[str, Any]], list[Any]]:
    return lambda ins, a: [fn(*[v for v in ins if v is not None])]


_OPS: dict[str, Callable[..., list[Any]]] = {
    "Identity": lambda ins, a: [ins[0]],
    "Dropout": lambda ins, a: [ins[0]],
    "Cast": _cast,
    "Transpose": lambda ins, a: [np.transpose(ins[0], a.get("perm"))],
    "Reshape": _reshape,
    "Flatten": lambda ins, a: [ins[0].reshape(int(np.prod(ins[0].shape[: a.get("axis", 1)])), -1)],
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": lambda ins, a: [np.concatenate([v for v in ins if v is not None], a["axis"])],
    "Gather": lambda ins, a: [
        np.take(ins[0], np.asarray(ins[1]).astype(np.int64), axis=a.get("axis", 0))
    ],
    "Slice": _slice,
    "Shape": _shape,
    "ConstantOfShape": _const_of_shape,
    "Expand": lambda ins, a: [ins[0] * np.ones(_size(ins[1]), ins[0].dtype)],
    "MatMul": _f(np.matmul),
    "Gemm": _gemm,
    "Add": _f(np.add),
    "Sub": _f(np.subtract),
    "Mul": _f(np.multiply),
    "Div": lambda ins, a: [ins[0] // ins[1] if ins[0].dtype.kind in "iu" else ins[0] / ins[1]],
    "Neg": _f(np.negative),
    "Relu": _f(lambda x: np.maximum(x, 0)),
    "Tanh": _f(np.tanh),
    "Sigmoid": _f(lambda x: 1 / (1 + np.exp(-x))),
    "Exp": _f(np.exp),
    "Log": _f(np.log),
    "Sqrt": _f(np.sqrt),
    "Pow": _f(np.power),
}
#: ONNX ops lstmviz interprets (besides LSTM and Constant).
SUPPORTED_OPS = sorted([*_OPS, "Softmax", "LogSoftmax", "Split", "LSTM", "Constant"])


class OnnxConst(L.Layer):
    """An initializer or Constant node: no inputs, one output."""

    kind = "Constant"
    supports_masking = False

    def __init__(self, name: str, value: Arr):
        super().__init__(name)
        self.value = value

    @property
    def n_params(self) -> int:
        return int(self.value.size) if self.value.dtype.kind == "f" and self.value.ndim else 0

    def __call__(self, inputs: Any, masks: Any, ctx: Any, **kwargs: Any) -> Any:
        return [self.value], [None]


_DYN = "dynamic"  # an input computed in the graph (the others are constants or absent)


class OnnxOp(L.Layer):
    """One ONNX node other than LSTM, computed in NumPy.

    ``spec`` has one entry per ONNX input: :data:`_DYN` (the next graph value), None (absent),
    or the constant array itself (initializers and Constant nodes are kept here, not as
    layers of their own).
    """

    supports_masking = False

    def __init__(
        self, name: str, op: str, attrs: dict[str, Any], spec: list[Any], n_outputs: int, opset: int
    ):
        super().__init__(name)
        self.kind = op
        self.op = op
        self.attrs = attrs
        self.spec = spec
        self.n_outputs = n_outputs
        self.opset = opset

    @property
    def n_params(self) -> int:
        return sum(
            int(v.size)
            for v in self.spec
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim
        )

    def __call__(self, inputs: Any, masks: Any, ctx: Any, **kwargs: Any) -> Any:
        it = iter(inputs)
        ins = [next(it) if isinstance(v, str) else v for v in self.spec]
        ins = [np.asarray(v) if v is not None else None for v in ins]
        try:
            if self.op in ("Softmax", "LogSoftmax"):
                outs = _softmax(ins, self.attrs, self.opset, log=self.op == "LogSoftmax")
            elif self.op == "Split":
                outs = _split(ins, {**self.attrs, "_n_outputs": self.n_outputs}, self.opset)
            else:
                outs = _OPS[self.op](ins, self.attrs)
        except (ValueError, IndexError, TypeError, KeyError, MemoryError, ArithmeticError) as e:
            raise InputError(
                f"ONNX node {self.name!r} ({self.op}) failed on inputs of shapes "
                f"{[None if v is None else v.shape for v in ins]}: {e}"
            ) from None
        outs = [
            np.asarray(o, dtype=np.float32) if np.asarray(o).dtype.kind == "f" else np.asarray(o)
            for o in outs
        ]
        return outs[: self.n_outputs], [None] * len(outs[: self.n_outputs])

    def describe(self) -> str:
        return f"ONNX {self.op}"


def _states(ins: list[Any], dirs: int) -> list[tuple[Arr, Arr] | None]:
    """Per-direction (h0, c0) from initial_h/initial_c ``(dirs, B, H)``; None where the graph
    passes zeros or nothing (so the user's ``initial_state`` applies)."""
    h0, c0 = ins[1], ins[2]
    out: list[tuple[Arr, Arr] | None] = []
    for d in range(dirs):
        h = None if h0 is None else np.asarray(h0, np.float32)[d]
        c = None if c0 is None else np.asarray(c0, np.float32)[d]
        if (h is None or not h.any()) and (c is None or not c.any()):
            out.append(None)
        else:
            hh = np.zeros_like(c) if h is None else h
            out.append((hh, np.zeros_like(hh) if c is None else c))
    return out


class _OnnxLSTMMixin:
    """Runs an ONNX LSTM node: inputs [X, initial_h, initial_c] -> [Y, Y_h, Y_c]."""

    layout: int
    present: list[bool]
    name: str

    def _onnx_run(
        self, inputs: list[Any], ctx: L.Context, halves: list[tuple[L.LSTM, str]]
    ) -> L.Outputs:
        it = iter(inputs)
        ins = [next(it) if p else None for p in self.present]
        x = np.asarray(ins[0], np.float32)
        if x.ndim != 3:
            raise InputError(f"ONNX LSTM {self.name!r}: X must be 3-D; found shape {x.shape}")
        xb = x if self.layout == 1 else x.transpose(1, 0, 2)  # (B, T, F)
        if self.layout == 1:  # initial states are (B, dirs, H) in layout 1
            ins = [ins[0]] + [None if v is None else np.swapaxes(v, 0, 1) for v in ins[1:3]]
        states = _states(ins, len(halves))
        ys, hs, cs = [], [], []
        for (lstm, direction), st in zip(halves, states, strict=True):
            back = direction == "backward"
            bidi = len(halves) == 2
            lt = lstm.run(
                xb,
                None,
                ctx,
                initial_state=st,
                trace_name=f"{self.name}/{direction}" if bidi else self.name,
                layer_name=self.name,
                direction=direction,
                go_backwards=back,
            )
            ys.append(lt.h)  # (T, B, H), input order
            last = 0 if back else lt.timesteps - 1
            hs.append(lt.h[last])
            cs.append(lt.c[last])
        y = np.stack(ys, axis=1)  # (T, dirs, B, H)
        yh, yc = np.stack(hs), np.stack(cs)  # (dirs, B, H)
        if self.layout == 1:
            y = y.transpose(2, 0, 1, 3)  # (B, T, dirs, H)
            yh, yc = yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
        outs = [np.ascontiguousarray(v) for v in (y, yh, yc)]
        return outs, [None, None, None]


class OnnxLSTM(_OnnxLSTMMixin, L.LSTM):
    """A unidirectional ONNX LSTM node (``forward`` or ``reverse``)."""

    def __init__(
        self, name: str, weights: LSTMWeights, direction: str, layout: int, present: list[bool]
    ) -> None:
        super().__init__(name, weights, return_sequences=True, go_backwards=direction == "reverse")
        self.layout, self.present, self.onnx_direction = layout, present, direction

    def __call__(
        self,
        inputs: list[Any],
        masks: list[Any],
        ctx: L.Context,
        initial_state: Any = None,  # ONNX passes initial_h / initial_c among the inputs
        **kwargs: Any,
    ) -> L.Outputs:
        d = "backward" if self.go_backwards else "forward"
        return self._onnx_run(inputs, ctx, [(self, d)])


class OnnxBidirectionalLSTM(_OnnxLSTMMixin, L.Bidirectional):
    """A bidirectional ONNX LSTM node."""

    def __init__(
        self,
        name: str,
        fwd: LSTMWeights,
        bwd: LSTMWeights,
        layout: int,
        present: list[bool],
    ) -> None:
        super().__init__(
            name,
            L.LSTM(f"{name}_forward", fwd, return_sequences=True),
            L.LSTM(f"{name}_backward", bwd, return_sequences=True, go_backwards=True),
            None,
        )
        self.layout, self.present = layout, present

    def __call__(
        self,
        inputs: list[Any],
        masks: list[Any],
        ctx: L.Context,
        initial_state: Any = None,  # ONNX passes initial_h / initial_c among the inputs
        **kwargs: Any,
    ) -> L.Outputs:
        return self._onnx_run(inputs, ctx, [(self.forward, "forward"), (self.backward, "backward")])


class _Transpose01(L.Layer):
    """lstmviz's batch-first input <-> a time-major graph: swap axes 0 and 1."""

    kind = "SwapBatchTime"
    supports_masking = False

    def call(self, x: Arr) -> Arr:
        return np.ascontiguousarray(np.swapaxes(x, 0, 1))


class _DropBatch(L.Layer):
    """lstmviz's ``(1, T, ...)`` -> a graph input without a batch axis ``(T, ...)``."""

    kind = "DropBatch"
    supports_masking = False

    def call(self, x: Arr) -> Arr:
        return np.ascontiguousarray(x[0])


class _Permute(L.Layer):
    """lstmviz's batch-first input -> the graph's axis order."""

    kind = "PermuteAxes"
    supports_masking = False

    def __init__(self, name: str, axes: list[int]) -> None:
        super().__init__(name)
        self.axes = axes

    def call(self, x: Arr) -> Arr:
        return np.ascontiguousarray(np.transpose(x, self.axes))


def _txt(v: str | bytes) -> str:
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


def node_graph(
    p: Path, mp: Any, inputs: list[Any], opset: int, batch_first_outputs: list[int]
) -> tuple[list[Node], list[TensorRef], list[TensorRef]]:
    """The graph as engine layers: ``(nodes, input refs, output refs)`` whose inputs are the
    data inputs in lstmviz's batch-first layout (``inputs``: the reader's measured
    :class:`~lstmviz.io.graph_model.GraphInput` s). Raises :class:`NoNodeGraph`."""
    import onnx
    from onnx import numpy_helper

    g = mp.graph
    consts: dict[str, Arr] = {}
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        consts[_txt(t.name)] = a.astype(np.float32) if a.dtype.kind == "f" else a

    def attrs_of(n: Any) -> dict[str, Any]:
        out = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [s.decode("utf-8", "replace") for s in v]
            elif isinstance(v, onnx.TensorProto):
                v = numpy_helper.to_array(v)
            elif isinstance(v, (onnx.GraphProto,)) or (
                isinstance(v, list) and v and isinstance(v[0], onnx.GraphProto)
            ):
                raise NoNodeGraph(f"node {_txt(n.name)!r} holds a subgraph")
            out[_txt(a.name)] = v
        return out

    nodes: list[Node] = []
    refs: dict[str, TensorRef] = {}
    names: set[str] = set()

    def unique(base: str) -> str:
        base = base.strip("/").replace("/", "_") or "node"
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.add(name)
        return name

    in_refs: list[TensorRef] = []
    for inp in inputs:
        if inp.state:
            if not all(isinstance(d, int) for d in inp.dims):
                raise NoNodeGraph(f"optional input {inp.name!r} has free dimensions")
            consts[inp.name] = np.zeros([int(d) for d in inp.dims], inp.dtype)
            continue
        lname = unique(inp.name)
        nodes.append(Node(L.InputLayer(lname, None, str(inp.dtype)), 0, []))
        in_refs.append((lname, 0, 0))
        cur: TensorRef = (lname, 0, 0)
        if inp.unbatched:
            dname = unique(f"{inp.name}_unbatched")
            nodes.append(Node(_DropBatch(dname), 0, [cur]))
            cur = (dname, 0, 0)
        if inp.perm is not None and list(inp.perm) != list(range(len(inp.perm))):
            inv = [int(v) for v in np.argsort(inp.perm)]
            if inv[:2] == [1, 0] and inv[2:] == list(range(2, len(inv))):
                tname = unique("to_time_major")
                nodes.append(Node(_Transpose01(tname), 0, [cur]))
            else:
                tname = unique("to_graph_axes")
                nodes.append(Node(_Permute(tname, inv), 0, [cur]))
            cur = (tname, 0, 0)
        refs[inp.name] = cur

    def ref(name: str) -> TensorRef:
        if name in refs:
            return refs[name]
        if name in consts:
            lname = unique(name)
            nodes.append(Node(OnnxConst(lname, consts[name]), 0, []))
            refs[name] = (lname, 0, 0)
            return refs[name]
        raise NoNodeGraph(f"tensor {name!r} is produced by nothing")

    n_lstm = 0
    for i, n in enumerate(g.node):
        op_type = _txt(n.op_type)
        at = attrs_of(n)
        ins = [_txt(x) for x in n.input]
        outs = [_txt(x) for x in n.output]
        if op_type == "Constant":
            v = next(
                (
                    at[k]
                    for k in ("value", "value_float", "value_floats", "value_int", "value_ints")
                    if k in at
                ),
                None,
            )
            if v is None or len(outs) != 1:
                raise NoNodeGraph(f"Constant node {_txt(n.name)!r}")
            v = np.asarray(v)
            consts[outs[0]] = v.astype(np.float32) if v.dtype.kind == "f" else v
            continue
        if op_type == "LSTM":
            lname = f"lstm_l{n_lstm}"
            n_lstm += 1
            names.add(lname)
            try:
                layer, reads = _lstm_layer(p, n, at, lname, consts)
            except (UnsupportedLayerError, ModelFileError) as e:
                raise NoNodeGraph(str(e)) from None
            nodes.append(Node(layer, 0, [ref(x) for x in reads]))
        else:
            if op_type not in SUPPORTED_OPS:
                raise NoNodeGraph(f"op {op_type!r}")
            spec = [
                None if not x else (_DYN if x in refs or x not in consts else consts[x])
                for x in ins
            ]
            if not any(isinstance(v, str) for v in spec):  # all inputs constant: fold now
                op = OnnxOp(_txt(n.name), op_type, at, spec, len(outs), opset)
                try:
                    vals, _ = op([], [], L.Context(record=False))
                except InputError as e:
                    raise NoNodeGraph(str(e)) from None
                consts.update({o: v for o, v in zip(outs, vals, strict=False) if o})
                continue
            lname = unique(_txt(n.name) or f"{op_type}_{i}")
            layer = OnnxOp(lname, op_type, at, spec, len(outs), opset)
            nodes.append(
                Node(
                    layer, 0, [ref(x) for x, v in zip(ins, spec, strict=True) if isinstance(v, str)]
                )
            )
        for k, out in enumerate(outs):
            if out:
                refs[out] = (lname, 0, k)
    out_refs: list[TensorRef] = []
    for k, o in enumerate(g.output):
        r = ref(_txt(o.name))
        if k in batch_first_outputs:
            sname = unique(f"{_txt(o.name)}_batch_first")
            nodes.append(Node(_Transpose01(sname), 0, [r]))
            r = (sname, 0, 0)
        out_refs.append(r)
    return nodes, in_refs, out_refs


def _lstm_layer(
    p: Path, n: Any, a: dict[str, Any], lname: str, consts: dict[str, Arr]
) -> tuple[L.Layer, list[str]]:
    """The engine layer for one ONNX LSTM node, and the graph tensors it reads."""
    where = f"{p}: LSTM node {n.name!r}"
    ins = list(n.input) + [""] * (8 - len(n.input))
    checks = {
        "layout": (int, (0, 1)),
        "direction": (str, ("forward", "reverse", "bidirectional")),
        "hidden_size": (int, None),
        "input_forget": (int, None),
    }
    for key, (typ, allowed) in checks.items():
        if key in a and (not isinstance(a[key], typ) or (allowed and a[key] not in allowed)):
            raise ModelFileError(
                f"{where}: attribute {key!r} is {a[key]!r}; expected "
                + (" or ".join(map(repr, allowed)) if allowed else typ.__name__)
            )
    if "activations" in a and (
        not isinstance(a["activations"], list)
        or not all(isinstance(v, str) for v in a["activations"])
    ):
        raise ModelFileError(
            f"{where}: attribute 'activations' is {a['activations']!r}; expected a list of names"
        )

    def const(k: int, what: str) -> Arr | None:
        name = ins[k]
        if not name:
            return None
        if name not in consts:
            raise UnsupportedLayerError(
                f"{where}: {what} ({name!r}) is computed in the graph; "
                "lstmviz needs the LSTM's weights as initializers"
            )
        return consts[name]

    W, R, B = const(1, "W"), const(2, "R"), const(3, "B")
    if W is None or R is None:
        raise ModelFileError(f"{where}: the weights W and R are missing")
    if ins[4]:
        raise UnsupportedLayerError(
            f"{where}: sequence_lens (variable-length batches) is not "
            "supported; export with fixed-length sequences"
        )
    P = const(7, "P (peepholes)")
    if P is not None and np.any(P):
        raise UnsupportedLayerError(f"{where}: peephole weights P are not supported")
    for bad in ("clip",):
        if bad in a:
            raise UnsupportedLayerError(f"{where}: attribute {bad!r} is not supported")
    if a.get("input_forget", 0):
        raise UnsupportedLayerError(f"{where}: input_forget=1 (coupled gates) is not supported")
    direction = a.get("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    acts = a.get("activations") or ["Sigmoid", "Tanh", "Tanh"] * dirs
    if any(k.startswith("activation_") for k in a):
        raise UnsupportedLayerError(f"{where}: activation_alpha/beta are not supported")
    if len(acts) != 3 * dirs:
        raise ModelFileError(f"{where}: {len(acts)} activations for {dirs} direction(s)")
    rec_act, act = set(acts[0::3]), set(acts[1::3]) | set(acts[2::3])
    if len(rec_act) != 1 or len(act) != 1 or not (rec_act | act) <= set(_ACT):
        raise UnsupportedLayerError(
            f"{where}: activations {acts}; lstmviz runs (f, g, h) with g == h from "
            f"{', '.join(_ACT)}"
        )
    if W.shape[0] != dirs:
        raise ModelFileError(
            f"{where}: W has shape {W.shape}; direction {direction!r} needs {dirs} on axis 0"
        )
    if "hidden_size" in a and R.shape[-1] != a["hidden_size"]:
        raise ModelFileError(f"{where}: R has shape {R.shape}; hidden_size is {a['hidden_size']}")
    try:
        ws = [convert.from_onnx(W, R, B, d) for d in range(dirs)]
    except ModelFileError as e:
        raise ModelFileError(f"{where}: {e}") from None
    a_g, a_f = _ACT[next(iter(act))], _ACT[next(iter(rec_act))]
    ws = [LSTMWeights(w.kernel, w.recurrent_kernel, w.bias, a_g, a_f) for w in ws]
    layout = int(a.get("layout", 0))
    present = [True, bool(ins[5]), bool(ins[6])]
    reads = [ins[0]] + [x for x in ins[5:7] if x]
    if dirs == 2:
        return OnnxBidirectionalLSTM(lname, ws[0], ws[1], layout, present), reads
    return OnnxLSTM(lname, ws[0], direction, layout, present), reads
