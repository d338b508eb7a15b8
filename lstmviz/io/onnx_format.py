"""Open ONNX graphs that contain ``LSTM`` ops (torch.onnx, tf2onnx) -- issue 8.

The file is read with the ``onnx`` package (``onnx.load`` without external data, size-checked;
initializers through ``onnx.numpy_helper``). Nothing is executed: the graph is *interpreted* by
lstmviz in NumPy, node by node. Each ``LSTM`` node becomes an engine LSTM (or Bidirectional)
whose gates the engine records; the other nodes (Transpose, Reshape, MatMul, Gemm, Softmax,
the Shape/Gather/Concat arithmetic exporters write, ...) are small NumPy functions
(:data:`SUPPORTED_OPS`). Anything else is refused with the op and node named.

Names: LSTM nodes are ``lstm_l0``, ``lstm_l1``, ... in graph order (trace names
``lstm_l<k>/forward`` and ``/backward`` for a bidirectional node); ``model.meta["onnx"]
["lstm_nodes"]`` maps them to the ONNX node names.

Layout: lstmviz's input is batch-first ``(batch, T, F)``. When the graph's input is
time-major (an LSTM with ``layout=0`` fed straight from it, as torch exports
``batch_first=False``), lstmviz transposes it on the way in, and swaps axes 0 and 1 of every
rank-3 graph output whose first two axes are declared as the input's (T, batch) (same
``dim_param`` names, or the same distinct sizes); ``meta["onnx"]["time_major"]`` and
``["outputs_made_batch_first"]`` record it. ``trace.output`` is otherwise exactly what
onnxruntime returns (for the raw LSTM outputs Y ``(T, dirs, B, H)``, Y_h, Y_c too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import convert
from ..engine import layers as L
from ..engine.cell import LSTMWeights
from ..engine.model import Model, Node, TensorRef
from ..errors import InputError, MissingDependencyError, ModelFileError, UnsupportedLayerError
from .more_formats import check_file

MAX_FILE_BYTES = 2 * 2**30  # protobuf's own limit
MAX_TENSOR_ELEMENTS = 2**31
Arr = np.ndarray
_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}


# ------------------------------------------------------------------------------------ ops
def _axes(ins: list[Any], a: dict[str, Any], pos: int = 1) -> list[int] | None:
    if len(ins) > pos and ins[pos] is not None:
        return [int(v) for v in np.asarray(ins[pos]).reshape(-1)]
    return None if a.get("axes") is None else [int(v) for v in a["axes"]]


def _reshape(ins, a):
    x, shape = ins[0], [int(v) for v in ins[1]]
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return [x.reshape(shape)]


def _squeeze(ins, a):
    axes = _axes(ins, a)
    x = ins[0]
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(v % x.ndim for v in axes))]


def _unsqueeze(ins, a):
    x = ins[0]
    axes = _axes(ins, a) or []
    n = x.ndim + len(axes)
    for v in sorted(v % n for v in axes):
        x = np.expand_dims(x, v)
    return [x]


def _slice(ins, a):
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


def _gemm(ins, a):
    x, w = ins[0], ins[1]
    if a.get("transA", 0):
        x = x.T
    if a.get("transB", 0):
        w = w.T
    y = a.get("alpha", 1.0) * (x @ w)
    if len(ins) > 2 and ins[2] is not None:
        y = y + a.get("beta", 1.0) * ins[2]
    return [y.astype(np.float32)]


def _softmax(ins, a, opset, log=False):
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


def _shape(ins, a):
    shp = np.array(ins[0].shape, np.int64)
    start, end = a.get("start", 0), a.get("end")
    return [shp[start:end]]


def _size(shape: Any) -> list[int]:
    """A shape computed in the graph, refused when it is absurd."""
    dims = [int(s) for s in np.asarray(shape).reshape(-1)]
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"shape {dims} is not a tensor lstmviz will allocate")
    return dims


def _const_of_shape(ins, a):
    v = a.get("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    return [np.full(_size(ins[0]), v[0], dtype=v.dtype)]


def _split(ins, a, opset):
    x = ins[0]
    ax = a.get("axis", 0) % x.ndim
    split = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("split")
    n = a.get("_n_outputs", 1)
    if split is None:
        return list(np.array_split(x, n, axis=ax))
    idx = np.cumsum([int(v) for v in split])[:-1]
    return list(np.split(x, idx, axis=ax))


def _cast(ins, a):
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

    def __call__(self, inputs, masks, ctx, **kwargs):
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

    def __call__(self, inputs, masks, ctx, **kwargs):
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
        except (ValueError, IndexError, TypeError, KeyError, MemoryError, OverflowError) as e:
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

    def _onnx_run(self, inputs: list[Any], ctx: L.Context, halves: list[tuple[L.LSTM, str]]):
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

    def __init__(self, name, weights, direction, layout, present):
        super().__init__(name, weights, return_sequences=True, go_backwards=direction == "reverse")
        self.layout, self.present, self.onnx_direction = layout, present, direction

    def __call__(self, inputs, masks, ctx, **kwargs):
        d = "backward" if self.go_backwards else "forward"
        return self._onnx_run(inputs, ctx, [(self, d)])


class OnnxBidirectionalLSTM(_OnnxLSTMMixin, L.Bidirectional):
    """A bidirectional ONNX LSTM node."""

    def __init__(self, name, fwd, bwd, layout, present):
        super().__init__(
            name,
            L.LSTM(f"{name}_forward", fwd, return_sequences=True),
            L.LSTM(f"{name}_backward", bwd, return_sequences=True, go_backwards=True),
            None,
        )
        self.layout, self.present = layout, present

    def __call__(self, inputs, masks, ctx, **kwargs):
        return self._onnx_run(inputs, ctx, [(self.forward, "forward"), (self.backward, "backward")])


class _Transpose01(L.Layer):
    """lstmviz's batch-first input <-> a time-major graph: swap axes 0 and 1."""

    kind = "SwapBatchTime"
    supports_masking = False

    def call(self, x: Arr) -> Arr:
        return np.ascontiguousarray(np.swapaxes(x, 0, 1))


# ------------------------------------------------------------------------------------ loading
def _txt(v: str | bytes) -> str:
    """protobuf hands out strings that are not valid UTF-8 as bytes."""
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


class _GNode:
    """A NodeProto's fields with text decoded."""

    def __init__(self, n: Any) -> None:
        self.name, self.op_type, self.domain = _txt(n.name), _txt(n.op_type), _txt(n.domain)
        self.input = [_txt(v) for v in n.input]
        self.output = [_txt(v) for v in n.output]
        self.attribute = n.attribute


class _GValue:
    """A ValueInfoProto's name (decoded) and type."""

    def __init__(self, v: Any) -> None:
        self.name = _txt(v.name)
        self.type = v.type


def load_onnx(path: str | os.PathLike[str]) -> Model:
    """Open an ONNX file holding ``LSTM`` ops as a Model (``format == "onnx"``)."""
    p = Path(path)
    check_file(p)
    try:
        import onnx
        from google.protobuf.message import DecodeError
        from onnx import numpy_helper
    except ImportError:
        raise MissingDependencyError("onnx", "onnx", what=f"Opening {p.name} (ONNX)") from None
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{p}: larger than 2 GB, not an ONNX model lstmviz reads")
    try:
        mp = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as e:
        raise ModelFileError(
            f"{p}: not an ONNX model ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    g = mp.graph
    if not g.node:
        raise ModelFileError(f"{p}: not an ONNX model (the graph has no nodes)")
    opset = next((o.version for o in mp.opset_import if o.domain in ("", "ai.onnx")), 0)
    _load_external(mp, p, onnx)

    def to_array(t: Any, where: str) -> Arr:
        n = int(np.prod(list(t.dims), dtype=np.int64)) if len(t.dims) else 1
        if n > MAX_TENSOR_ELEMENTS:
            raise ModelFileError(f"{p}: {where} of shape {list(t.dims)} is too large")
        try:
            a = numpy_helper.to_array(t)
        except (ValueError, TypeError, RuntimeError, KeyError, IndexError) as e:
            raise ModelFileError(f"{p}: {where} cannot be read ({type(e).__name__}: {e})") from None
        return a.astype(np.float32) if a.dtype.kind == "f" else a

    consts: dict[str, Arr] = {
        _txt(t.name): to_array(t, f"initializer {_txt(t.name)!r}") for t in g.initializer
    }
    gnodes = [_GNode(n) for n in g.node]
    ops = [n.op_type for n in gnodes]
    for n in gnodes:
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedLayerError(
                f"{p}: node {n.name!r} is op {n.op_type!r} of domain "
                f"{n.domain!r}; lstmviz interprets standard ONNX ops only"
            )
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in n.attribute
        ):
            raise UnsupportedLayerError(
                f"{p}: node {n.name!r} ({n.op_type}) holds a subgraph (control flow); lstmviz "
                "reads graphs whose LSTMs are plain LSTM nodes"
            )
    if "LSTM" not in ops:
        other = sorted({o for o in ops if o in ("GRU", "RNN", "Scan", "Loop")})
        raise ModelFileError(
            f"{p}: no LSTM op in the ONNX graph"
            + (f" (it has {', '.join(other)}, which lstmviz does not show)" if other else "")
            + f"; ops: {', '.join(sorted(set(ops)))}. Export an nn.LSTM / keras LSTM model "
            "(torch.onnx.export or tf2onnx writes LSTM nodes)"
        )

    def attrs_of(n: Any) -> dict[str, Any]:
        out = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [s.decode("utf-8", "replace") for s in v]
            elif isinstance(v, onnx.TensorProto):
                v = to_array(v, f"attribute {a.name!r} of node {n.name!r}")
            key = a.name if isinstance(a.name, str) else a.name.decode("utf-8", "replace")
            out[key] = v
        return out

    init_names = set(consts)
    graph_inputs = [_GValue(i) for i in g.input if _txt(i.name) not in init_names]
    graph_outputs = [_GValue(o) for o in g.output]
    if not graph_inputs:
        raise ModelFileError(f"{p}: the ONNX graph has no inputs")
    consumers: dict[str, list[Any]] = {}
    for n in gnodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    time_major = _input_time_major(graph_inputs[0].name, consumers, attrs_of)

    nodes: list[Node] = []
    refs: dict[str, TensorRef] = {}
    names: set[str] = set()

    def unique(base: str | bytes) -> str:
        if isinstance(base, bytes):  # protobuf hands out invalid UTF-8 as bytes
            base = base.decode("utf-8", "replace")
        base = base.strip("/").replace("/", "_") or "node"
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.add(name)
        return name

    def dims(vi: Any) -> list[int | str | None]:
        return [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in vi.type.tensor_type.shape.dim
        ]

    in_dims: list[list[Any]] = []
    for k, vi in enumerate(graph_inputs):
        d = dims(vi)
        in_dims.append(d)
        if k == 0 and time_major and len(d) == 3:
            d = [d[1], d[0], d[2]]
        shape = tuple(v if isinstance(v, int) and v > 0 else None for v in d) if d else None
        lname = unique("input" if k == 0 else vi.name)
        elem = vi.type.tensor_type.elem_type
        dtype = "float32" if elem in (0, onnx.TensorProto.FLOAT) else "int64"
        nodes.append(Node(L.InputLayer(lname, shape, dtype), 0, []))
        refs[vi.name] = (lname, 0, 0)
        if k == 0 and time_major:
            tname = unique("to_time_major")
            nodes.append(Node(_Transpose01(tname), 0, [(lname, 0, 0)]))
            refs[vi.name] = (tname, 0, 0)

    def ref(name: str, user: str) -> TensorRef:
        if name in refs:
            return refs[name]
        if name in consts:
            lname = unique(name)
            nodes.append(Node(OnnxConst(lname, consts[name]), 0, []))
            refs[name] = (lname, 0, 0)
            return refs[name]
        raise ModelFileError(
            f"{p}: node {user!r} reads tensor {name!r}, which nothing in the graph produces"
        )

    lstm_nodes: dict[str, str] = {}
    for i, n in enumerate(gnodes):
        a = attrs_of(n)
        if n.op_type == "Constant":
            v = next(
                (
                    a[k]
                    for k in ("value", "value_float", "value_floats", "value_int", "value_ints")
                    if k in a
                ),
                None,
            )
            if v is None or len(n.output) != 1:
                raise UnsupportedLayerError(
                    f"{p}: Constant node {n.name!r} has no numeric value or not exactly one output"
                )
            v = np.asarray(v)
            consts[n.output[0]] = v.astype(np.float32) if v.dtype.kind == "f" else v
            continue
        if n.op_type == "LSTM":
            lname = f"lstm_l{len(lstm_nodes)}"
            names.add(lname)
            lstm_nodes[lname] = n.name
            layer, ins = _lstm_layer(p, n, a, lname, consts)
            nodes.append(Node(layer, 0, [ref(x, n.name) for x in ins]))
        else:
            if n.op_type not in SUPPORTED_OPS:
                raise UnsupportedLayerError(
                    f"{p}: node {n.name!r} is op {n.op_type!r}, which lstmviz does not "
                    f"interpret; supported ops: {', '.join(SUPPORTED_OPS)}"
                )
            spec = [
                None if not x else (_DYN if x in refs or x not in consts else consts[x])
                for x in n.input
            ]
            if not any(isinstance(v, str) for v in spec):  # all inputs constant: fold now
                op = OnnxOp(n.name, n.op_type, a, spec, len(n.output), opset)
                vals, _ = op([], [], L.Context(record=False))
                consts.update({o: v for o, v in zip(n.output, vals, strict=False) if o})
                continue
            lname = unique(n.name or f"{n.op_type}_{i}")
            layer = OnnxOp(lname, n.op_type, a, spec, len(n.output), opset)
            nodes.append(
                Node(
                    layer,
                    0,
                    [
                        ref(x, n.name)
                        for x, v in zip(n.input, spec, strict=True)
                        if isinstance(v, str)
                    ],
                )
            )
        for k, out in enumerate(n.output):
            if out:
                refs[out] = (lname, 0, k)

    outputs: list[TensorRef] = []
    swapped = []
    for o in graph_outputs:
        r = ref(o.name, "graph output")
        d = dims(o)
        if (
            time_major
            and len(d) == 3
            and in_dims
            and len(in_dims[0]) >= 2
            and d[:2] == in_dims[0][:2]
            and d[0] != d[1]
            and None not in d[:2]
        ):
            sname = unique(f"{o.name}_batch_first")
            nodes.append(Node(_Transpose01(sname), 0, [r]))
            r = (sname, 0, 0)
            swapped.append(o.name)
        outputs.append(r)
    meta = {
        "onnx": {
            "lstm_nodes": lstm_nodes,
            "opset": opset,
            "time_major": time_major,
            "outputs": [o.name for o in graph_outputs],
            "outputs_made_batch_first": swapped,
            "inputs": [i.name for i in graph_inputs],
            "producer": f"{mp.producer_name} {mp.producer_version}".strip(),
        }
    }
    return Model(
        p.stem,
        nodes,
        [refs_input(nodes, k) for k in range(len(graph_inputs))],
        outputs,
        source=str(p),
        fmt="onnx",
        meta=meta,
    )


def refs_input(nodes: list[Node], k: int) -> TensorRef:
    ins = [n for n in nodes if isinstance(n.layer, L.InputLayer)]
    return (ins[k].layer.name, 0, 0)


def _load_external(mp: Any, p: Path, onnx: Any) -> None:
    """Load external tensor data only from files inside the model's folder."""
    from onnx import external_data_helper as ext

    tensors = [t for t in ext._get_all_tensors(mp) if ext.uses_external_data(t)]
    if not tensors:
        return
    base = p.parent.resolve()
    for t in tensors:
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        target = (base / loc).resolve()
        if not loc or Path(loc).is_absolute() or base not in target.parents or not target.is_file():
            raise ModelFileError(
                f"{p}: tensor {t.name!r} keeps its data in {loc!r}, which is not "
                f"a file inside {base}"
            )
    try:
        ext.load_external_data_for_model(mp, str(base))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{p}: cannot read external tensor data ({e})") from None


def _input_time_major(
    name: str, consumers: dict[str, list[Any]], attrs_of: Callable[[Any], dict[str, Any]]
) -> bool:
    """Whether the first LSTM sees the graph input with time on axis 0 of the *input*."""
    swapped = False
    cur = name
    for _ in range(8):
        users = consumers.get(cur, [])
        if len(users) != 1:
            lstm = [u for u in users if u.op_type == "LSTM" and u.input[0] == cur]
            if not lstm:
                return False
            users = lstm[:1]
        u = users[0]
        a = attrs_of(u)
        if u.op_type == "LSTM":
            return (a.get("layout", 0) == 0) != swapped
        if u.op_type in ("Identity", "Cast"):
            cur = u.output[0]
        elif u.op_type == "Transpose" and list(a.get("perm", [])) == [1, 0, 2]:
            swapped = not swapped
            cur = u.output[0]
        else:
            return False
    return False


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
