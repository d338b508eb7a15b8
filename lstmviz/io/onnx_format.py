"""Open ONNX graphs that contain ``LSTM`` ops, run them with ONNX's reference evaluator, and
record every gate of every LSTM.

The graph is interpreted by :class:`onnx.reference.ReferenceEvaluator` -- every standard op, as
the ONNX specification defines it -- with one op replaced: each ``LSTM`` node runs in
lstmviz's engine (:func:`lstmviz.engine.cell.run_lstm`), which records the pre-activations,
the gates, the candidate, c and h at every step. Nothing else in the graph is re-implemented;
``trace.output`` is what the graph computes (onnxruntime's output to float precision).

Names: LSTM nodes are ``lstm_l0``, ``lstm_l1``, ... in graph order (trace names
``lstm_l<k>/forward`` and ``/backward`` for a bidirectional node);
``model.meta["onnx"]["lstm_nodes"]`` maps them to the ONNX node names.

**Layout.** lstmviz's inputs are batch-first (``(batch, T, F)`` floats, ``(batch, T)`` token
ids). Which axis of a graph input is time and which is batch is *measured*, not guessed: at
load the graph is run once on a small probe input whose free dimensions have distinct sizes
(static dimensions as declared), and the axes whose sizes reach an LSTM's time and batch axes
(read from its ``layout`` attribute) are the input's. A time-major input (torch's
``batch_first=False`` export, e.g. pytorch/examples word_language_model: ``(35, 1)`` token ids
-> Gather -> LSTM) is transposed on the way in; a graph output whose leading axes are the
LSTM's (T, batch) is made batch-first on the way out (``meta["onnx"]["batch_first_outputs"]``);
other outputs are exactly the graph's. Where the sizes cannot tell (a static ``(5, 5, F)``
input), :func:`load_onnx` takes ``time_major=`` and :meth:`OnnxModel.set_time_major` sets it
later; until then tracing refuses with a message saying so.

**Inputs.** Every input is checked against the graph's declared static shape (a mismatch is an
:class:`~lstmviz.errors.InputError` naming both) and dimension names (``dim_param``) are bound
consistently across inputs. Graph inputs that feed only the ``initial_h`` / ``initial_c`` of
LSTMs (h0/c0 as torch exports them) are optional: left out, they are zeros.

**Safety and memory.** The file is read with ``onnx.load`` without external data; external
tensors are read only from files inside the model's folder and only as many bytes as the tensor
declares. Every op that runs is checked against :mod:`lstmviz.budget` *before* it allocates
(ConstantOfShape, Expand, Tile, Range, Concat, Resize, Pad, OneHot, Gather, MatMul, broadcasts:
from the sizes its inputs ask for; the running total of every intermediate kept), and a run
that executes more than :data:`MAX_OP_RUNS` ops (a Loop that does not end) is stopped. Any
failure is a :class:`~lstmviz.errors.LstmvizError` naming the node.
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import budget
from ..engine import convert
from ..engine import layers as L
from ..engine.cell import LSTMWeights, run_lstm
from ..errors import (
    InputError,
    LstmvizError,
    MemoryBudgetError,
    MissingDependencyError,
    ModelFileError,
    UnsupportedLayerError,
)
from .graph_model import (
    GraphInput,
    GraphLayer,
    GraphModel,
    Run,
    check_trace_buffers,
    infer_layouts,
    probe_run,
)
from .more_formats import check_file

if TYPE_CHECKING:  # onnx is imported where it is used (an optional dependency)
    from onnx.reference.op_run import OpRun

MAX_FILE_BYTES = 2 * 2**30  # protobuf's own limit
#: Ops one run may execute (Loop bodies count every iteration); more is refused.
MAX_OP_RUNS = 500_000
Arr = np.ndarray
_ACT = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu"}
# Exceptions the reference evaluator's ops raise on data they cannot handle.
_OP_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    RuntimeError,
    AttributeError,
    ZeroDivisionError,
    OverflowError,
    NotImplementedError,
    AssertionError,
    RecursionError,
    FloatingPointError,
)
# Ops that compute element by element over broadcast inputs.
_BROADCAST = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Mod",
        "Max",
        "Min",
        "Sum",
        "Mean",
        "Where",
        "And",
        "Or",
        "Xor",
        "Equal",
        "Less",
        "LessOrEqual",
        "Greater",
        "GreaterOrEqual",
        "BitShift",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "PRelu",
    }
)


# --------------------------------------------------------------------------- run context
_RUN: contextvars.ContextVar[Run | None] = contextvars.ContextVar("lstmviz_onnx_run", default=None)


class _NodeFailed(Exception):
    """An op raised: carried up to where the path and the node are named."""

    def __init__(self, node: Any, error: BaseException, shapes: list[Any]) -> None:
        super().__init__(str(error))
        self.node, self.error, self.shapes = node, error, shapes


def _shape_of(v: Any) -> Any:
    return tuple(v.shape) if isinstance(v, np.ndarray) else type(v).__name__


def _prod(dims: Iterable[Any]) -> int:
    n = 1
    for d in dims:
        n *= max(int(d), 0)
    return n


def _ints(v: Any) -> list[int]:
    a = np.asarray(v)
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"non-finite value in a shape: {a.reshape(-1)[:8].tolist()}")
        a = a.astype(np.float64)
    return [int(x) for x in a.reshape(-1).tolist()]


def _broadcast(shapes: Sequence[Sequence[int]]) -> list[int]:
    n = max((len(s) for s in shapes), default=0)
    out = [1] * n
    for s in shapes:
        for i, d in enumerate(s):
            k = n - len(s) + i
            out[k] = max(out[k], int(d))  # an upper bound: incompatible shapes fail in the op
    return out


def _estimate(op: str, args: Sequence[Any], attrs: dict[str, Any]) -> int:
    """An upper bound of the bytes the op's outputs take, from its inputs (before it runs)."""
    arrs = [a for a in args if isinstance(a, np.ndarray)]
    item = max([a.dtype.itemsize for a in arrs] + [4])
    total_in = sum(int(a.nbytes) for a in arrs)
    if op == "ConstantOfShape" and args:
        v = attrs.get("value")
        size = np.asarray(v).dtype.itemsize if v is not None else 4
        return int(_prod(_ints(args[0])) * size)
    if op == "Expand" and len(args) > 1:
        return int(
            _prod(_broadcast([list(args[0].shape), _ints(args[1])])) * args[0].dtype.itemsize
        )
    if op == "Tile" and len(args) > 1:
        reps = _ints(args[1])
        return int(_prod(d * r for d, r in zip(args[0].shape, reps, strict=False)) * item)
    if op == "Range" and len(args) > 2:
        start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in args[:3])
        if not all(math.isfinite(v) for v in (start, limit, delta)) or delta == 0:
            raise ValueError(f"Range({start}, {limit}, {delta}) has no finite length")
        return int(max(0, math.ceil((limit - start) / delta)) * item)
    if op in ("Resize", "Upsample") and args:
        x = args[0]
        sizes = args[3] if len(args) > 3 and args[3] is not None and args[3].size else None
        scales = args[-1] if op == "Upsample" else (args[2] if len(args) > 2 else None)
        if sizes is not None:
            return int(_prod(_ints(sizes)) * item)
        if scales is not None and np.asarray(scales).size:
            sc = np.asarray(scales, np.float64).reshape(-1)
            if not np.all(np.isfinite(sc)):
                raise ValueError("non-finite Resize scales")
            return int(_prod(math.floor(d * s) for d, s in zip(x.shape, sc, strict=False)) * item)
        return total_in
    if op == "Pad" and args:
        pads = (
            _ints(args[1])
            if len(args) > 1 and args[1] is not None
            else _ints(attrs.get("pads", []))
        )
        shape = list(args[0].shape)
        n = len(shape)
        if len(pads) >= 2 * n:
            shape = [d + pads[i] + pads[i + n] for i, d in enumerate(shape)]
        return int(_prod(shape) * item)
    if op == "OneHot" and len(args) > 1:
        return int(args[0].size * max(_ints(args[1])[:1] or [0]) * item)
    if op == "Gather" and len(args) > 1:
        data, idx = args[0], np.asarray(args[1])
        ax = int(attrs.get("axis", 0)) % max(data.ndim, 1)
        return int(
            _prod([*data.shape[:ax], *idx.shape, *data.shape[ax + 1 :]]) * data.dtype.itemsize
        )
    if op in ("MatMul", "MatMulInteger") and len(arrs) > 1:
        a, b = arrs[0], arrs[1]
        if a.ndim >= 2 and b.ndim >= 2:
            batch = _broadcast([list(a.shape[:-2]), list(b.shape[:-2])])
            return int(_prod([*batch, a.shape[-2], b.shape[-1]]) * item)
        return total_in
    if op == "Gemm" and len(arrs) > 1:
        a, b = arrs[0], arrs[1]
        m = a.shape[1] if attrs.get("transA") else a.shape[0]
        n = b.shape[0] if attrs.get("transB") else b.shape[-1]
        return int(_prod([m, n]) * item + total_in)
    if op in ("RandomNormal", "RandomUniform") and "shape" in attrs:
        return int(_prod(_ints(attrs["shape"])) * item)
    if op in _BROADCAST and arrs:
        return int(_prod(_broadcast([list(a.shape) for a in arrs])) * item)
    return total_in  # shape ops, activations, reductions: no more than what comes in


def _check_op(node: Any, args: Sequence[Any], attrs: dict[str, Any]) -> None:
    run = _RUN.get()
    if run is None:
        return
    run.ops += 1
    if run.ops > MAX_OP_RUNS:
        raise LstmvizError(
            f"{run.where}: the graph ran more than {MAX_OP_RUNS:,} ops for one input (a Loop "
            f"that does not end?); stopped at node {node.name!r} ({node.op_type})"
        )
    try:
        need = _estimate(node.op_type, args, attrs)
    except (ValueError, TypeError, IndexError, OverflowError) as e:
        raise _NodeFailed(node, e, [_shape_of(a) for a in args]) from None
    budget.check(
        run.used + need,
        what=(
            f"{run.where}: ONNX node {node.name!r} ({node.op_type}) on inputs of shapes "
            f"{[_shape_of(a) for a in args]}, with the graph's other values"
        ),
    )


def _account(outputs: Any) -> None:
    run = _RUN.get()
    if run is None or outputs is None:
        return
    for o in outputs:
        if isinstance(o, np.ndarray):
            run.used += int(o.nbytes)


def _node_attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        try:
            v = helper.get_attribute_value(a)
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"node {node.name!r}: attribute {a.name!r}: {e}") from None
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", "replace") for s in v]
        out[_txt(a.name)] = v
    return out


_GUARDED: dict[type, type] = {}


def _guarded(cl: type[OpRun]) -> type[OpRun]:
    """``cl`` (an onnx.reference op class) with the budget check before it runs and its
    outputs accounted after."""
    g = _GUARDED.get(cl)
    if g is not None:
        return g

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        attrs = self.__dict__.get("_lstmviz_attrs")
        if attrs is None:
            attrs = self._lstmviz_attrs = _node_attrs(self.onnx_node)
        _check_op(self.onnx_node, args, attrs)
        try:
            out = cl.run(self, *args, **kwargs)  # type: ignore[no-untyped-call,unused-ignore]  # onnx: untyped
        except (LstmvizError, _NodeFailed):
            raise
        except MemoryError as e:
            raise _NodeFailed(self.onnx_node, e, [_shape_of(a) for a in args]) from None
        except _OP_ERRORS as e:
            raise _NodeFailed(self.onnx_node, e, [_shape_of(a) for a in args]) from None
        _account(out)
        return out

    g = type(cl.__name__, (cl,), {"run": run, "__module__": __name__})
    _GUARDED[cl] = g
    return g


# --------------------------------------------------------------------------- the LSTM op
def _lstm_attrs(node: Any, where: str) -> dict[str, Any]:
    """The LSTM node's attributes, checked: what lstmviz's engine runs exactly."""
    a = _node_attrs(node)
    here = f"{where}: LSTM node {node.name!r}"
    checks = {
        "layout": (int, (0, 1)),
        "direction": (str, ("forward", "reverse", "bidirectional")),
        "hidden_size": (int, None),
        "input_forget": (int, None),
    }
    for key, (typ, allowed) in checks.items():
        if key in a and (not isinstance(a[key], typ) or (allowed and a[key] not in allowed)):
            raise ModelFileError(
                f"{here}: attribute {key!r} is {a[key]!r}; expected "
                + (" or ".join(map(repr, allowed)) if allowed else typ.__name__)
            )
    if "clip" in a:
        raise UnsupportedLayerError(f"{here}: attribute 'clip' (cell clipping) is not supported")
    if a.get("input_forget", 0):
        raise UnsupportedLayerError(f"{here}: input_forget=1 (coupled gates) is not supported")
    if any(k.startswith("activation_") for k in a):
        raise UnsupportedLayerError(f"{here}: activation_alpha/beta are not supported")
    direction = a.get("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    acts = a.get("activations") or ["Sigmoid", "Tanh", "Tanh"] * dirs
    if not isinstance(acts, list) or not all(isinstance(v, str) for v in acts):
        raise ModelFileError(f"{here}: attribute 'activations' is {acts!r}; expected names")
    if len(acts) != 3 * dirs:
        raise ModelFileError(f"{here}: {len(acts)} activations for {dirs} direction(s)")
    rec_act, act = set(acts[0::3]), set(acts[1::3]) | set(acts[2::3])
    if len(rec_act) != 1 or len(act) != 1 or not (rec_act | act) <= set(_ACT):
        raise UnsupportedLayerError(
            f"{here}: activations {acts}; lstmviz runs (f, g, h) with g == h from {', '.join(_ACT)}"
        )
    return {
        "layout": int(a.get("layout", 0)),
        "direction": direction,
        "dirs": dirs,
        "hidden_size": a.get("hidden_size"),
        "activation": _ACT[next(iter(act))],
        "recurrent_activation": _ACT[next(iter(rec_act))],
    }


def _make_lstm_op() -> type[OpRun]:
    """The ``LSTM`` op class for the evaluator: runs in lstmviz's engine and records."""
    from onnx.reference.op_run import OpRun

    class LSTM(OpRun):
        op_domain = ""

        def __init__(self, onnx_node: Any, run_params: dict[str, Any]) -> None:
            super().__init__(onnx_node, run_params)
            self._spec: dict[str, Any] | None = None
            self._cache: dict[tuple[int, ...], tuple[Any, list[LSTMWeights]]] = {}

        def _run(self, *args: Any, **kwargs: Any) -> Any:  # the evaluator calls run()
            return self._record(*args)

        def run(self, *args: Any, **kwargs: Any) -> Any:
            _check_op(self.onnx_node, args, {})
            try:
                out = self._record(*args)
            except (LstmvizError, _NodeFailed):
                raise
            except MemoryError as e:
                raise _NodeFailed(self.onnx_node, e, [_shape_of(a) for a in args]) from None
            except _OP_ERRORS as e:
                raise _NodeFailed(self.onnx_node, e, [_shape_of(a) for a in args]) from None
            _account(out)
            return out

        def _weights(self, W: Arr, R: Arr, B: Arr | None, spec: dict[str, Any]) -> list[Any]:
            key = (id(W), id(R), id(B))
            hit = self._cache.get(key)
            if hit is not None and hit[0][0] is W and hit[0][1] is R and hit[0][2] is B:
                return hit[1]
            where = f"LSTM node {self.onnx_node.name!r}"
            if W.ndim != 3 or W.shape[0] != spec["dirs"]:
                raise ModelFileError(
                    f"{where}: W has shape {W.shape}; direction {spec['direction']!r} needs "
                    f"{spec['dirs']} on axis 0"
                )
            if spec["hidden_size"] is not None and R.shape[-1] != spec["hidden_size"]:
                raise ModelFileError(
                    f"{where}: R has shape {R.shape}; hidden_size is {spec['hidden_size']}"
                )
            ws = []
            for d in range(spec["dirs"]):
                try:
                    w = convert.from_onnx(W, R, B, d)
                except ModelFileError as e:
                    raise ModelFileError(f"{where}: {e}") from None
                ws.append(
                    LSTMWeights(
                        w.kernel,
                        w.recurrent_kernel,
                        w.bias,
                        spec["activation"],
                        spec["recurrent_activation"],
                    )
                )
            self._cache = {key: ((W, R, B), ws)}
            return ws

        def _record(
            self,
            X: Arr,
            W: Arr,
            R: Arr,
            B: Arr | None = None,
            sequence_lens: Arr | None = None,
            initial_h: Arr | None = None,
            initial_c: Arr | None = None,
            P: Arr | None = None,
            *_: Any,
        ) -> tuple[Arr, ...]:
            run = _RUN.get()
            where = run.where if run is not None else "ONNX graph"
            if self._spec is None:
                self._spec = _lstm_attrs(self.onnx_node, where)
            spec = self._spec
            here = f"{where}: LSTM node {self.onnx_node.name!r}"
            if P is not None and np.any(np.asarray(P)):
                raise UnsupportedLayerError(f"{here}: peephole weights P are not supported")
            x = np.asarray(X, np.float32)
            if x.ndim != 3:
                raise InputError(f"{here}: X must be 3-D; found shape {x.shape}")
            layout = spec["layout"]
            xb = x if layout == 1 else x.transpose(1, 0, 2)  # (B, T, F)
            steps = xb.shape[1]
            if sequence_lens is not None:
                lens = np.asarray(sequence_lens).reshape(-1)
                if lens.size and not np.all(lens == steps):
                    raise UnsupportedLayerError(
                        f"{here}: sequence_lens {lens[:8].tolist()} (sequences of different "
                        f"lengths in one batch) is not supported; trace one sequence at a time"
                    )
            ws = self._weights(
                np.asarray(W), np.asarray(R), None if B is None else np.asarray(B), spec
            )
            states: list[Arr | None] = []
            for v in (initial_h, initial_c):
                if v is None:
                    states.append(None)
                    continue
                s = np.asarray(v, np.float32)
                if s.ndim != 3:
                    raise InputError(f"{here}: an initial state must be 3-D; found {s.shape}")
                states.append(np.swapaxes(s, 0, 1) if layout == 1 else s)  # (dirs, B, H)
            key = tuple(_txt(o) for o in self.onnx_node.output)
            lname = run.names.get(key, "lstm") if run is not None else "lstm"
            bidi = spec["dirs"] == 2
            ys, hs, cs = [], [], []
            for d, w in enumerate(ws):
                direction = "backward" if (d == 1 or spec["direction"] == "reverse") else "forward"
                tname = f"{lname}/{direction}" if bidi else lname
                h0 = None if states[0] is None else states[0][d]
                c0 = None if states[1] is None else states[1][d]
                if (h0 is None or not h0.any()) and (c0 is None or not c0.any()):
                    h0 = c0 = None  # zeros from the graph: the user's initial_state applies
                if h0 is None and c0 is None and run is not None:
                    given = run.initial_states.get(tname, run.initial_states.get(lname))
                    if given is not None:
                        h0, c0 = given[0], given[1]
                elif h0 is None or c0 is None:
                    h0 = np.zeros_like(c0) if h0 is None else h0
                    c0 = np.zeros_like(h0) if c0 is None else c0
                check_trace_buffers(run, tname, xb.shape[0], steps, w.units, xb.shape[2])
                lt = run_lstm(
                    xb,
                    w,
                    h0=h0,
                    c0=c0,
                    go_backwards=direction == "backward",
                    name=tname,
                    layer_name=lname,
                    direction=direction,
                )
                if run is not None:
                    run.calls.append(
                        {
                            "name": tname,
                            "layer": lname,
                            "T": steps,
                            "B": xb.shape[0],
                            "weights": w,
                            "direction": direction,
                            "layout": layout,
                            "node": self.onnx_node.name,
                        }
                    )
                    if run.record:
                        run.traces.append(lt)
                ys.append(lt.h)  # (T, B, H), input order
                last = 0 if direction == "backward" else steps - 1
                hs.append(lt.h[last])
                cs.append(lt.c[last])
            y = np.stack(ys, axis=1)  # (T, dirs, B, H)
            yh, yc = np.stack(hs), np.stack(cs)  # (dirs, B, H)
            if layout == 1:
                y = y.transpose(2, 0, 1, 3)  # (B, T, dirs, H)
                yh, yc = yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
            return tuple(np.ascontiguousarray(v) for v in (y, yh, yc))

    return LSTM


def _evaluator_class() -> type:
    """A ReferenceEvaluator whose ops are budget-guarded and whose LSTM records."""
    from onnx.reference import ReferenceEvaluator

    lstm_op = _make_lstm_op()

    class Evaluator(ReferenceEvaluator):
        def _load_impl(self, node: Any, input_types: Any = None) -> Any:
            if node.op_type == "LSTM" and node.domain in ("", "ai.onnx"):
                return lstm_op
            return _guarded(super()._load_impl(node, input_types))

    return Evaluator


# --------------------------------------------------------------------------- loading
def _txt(v: str | bytes) -> str:
    """protobuf hands out strings that are not valid UTF-8 as bytes."""
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


def _declared(vi: Any) -> tuple[list[int | str | None], int] | None:
    t = vi.type
    if not t.HasField("tensor_type"):
        return None
    tt = t.tensor_type
    if not tt.HasField("shape"):
        return [], tt.elem_type
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(_txt(d.dim_param))
        else:
            dims.append(None)
    return dims, tt.elem_type


def _load_external(mp: Any, p: Path) -> None:
    """External tensor data, read only from files inside the model's folder, and only the
    bytes the tensor declares (never a whole file for a small tensor)."""
    from onnx import TensorProto, external_data_helper, helper

    tensors = [
        t
        for t in external_data_helper._get_all_tensors(mp)
        if external_data_helper.uses_external_data(t)
    ]
    if not tensors:
        return
    base = p.parent.resolve()
    for t in tensors:
        info = {_txt(e.key): _txt(e.value) for e in t.external_data}
        loc = info.get("location", "")
        target = (base / loc).resolve()
        where = f"{p}: tensor {_txt(t.name)!r}"
        if not loc or Path(loc).is_absolute() or base not in target.parents or not target.is_file():
            raise ModelFileError(
                f"{where} keeps its data in {loc!r}, which is not a file inside {base}"
            )
        try:
            item = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            raise ModelFileError(f"{where}: unknown data type {t.data_type}") from None
        if t.data_type == TensorProto.STRING:
            raise ModelFileError(f"{where}: external string tensors are not read")
        need = item * _prod(t.dims)
        budget.check(need, what=f"{where} (external data, shape {list(t.dims)})")
        try:
            offset = int(info.get("offset", "0") or 0)
            length = int(info["length"]) if info.get("length") else need
        except ValueError:
            raise ModelFileError(f"{where}: bad external data offset/length {info}") from None
        size = target.stat().st_size
        if length != need or offset < 0 or offset + need > size:
            raise ModelFileError(
                f"{where}: shape {list(t.dims)} needs {need} bytes; the external data entry "
                f"gives offset {offset}, length {length} in {loc!r} ({size} bytes)"
            )
        with open(target, "rb") as fh:
            fh.seek(offset)
            t.raw_data = fh.read(need)
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT


def _check_tensor(t: Any, where: str) -> None:
    """An initializer's declared size, checked against its bytes and the budget."""
    from onnx import TensorProto, helper

    if any(d < 0 for d in t.dims):
        raise ModelFileError(f"{where}: negative dimension in shape {list(t.dims)}")
    if t.data_type in (TensorProto.UNDEFINED, TensorProto.STRING):
        if t.data_type == TensorProto.STRING:
            return
        raise ModelFileError(f"{where}: undefined data type")
    try:
        item = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        raise ModelFileError(f"{where}: unknown data type {t.data_type}") from None
    n = _prod(t.dims)
    budget.check(n * max(item, 4), what=f"{where} (shape {list(t.dims)})")
    if t.HasField("raw_data") and len(t.raw_data) != n * item:
        raise ModelFileError(
            f"{where}: shape {list(t.dims)} needs {n * item} bytes; the file holds "
            f"{len(t.raw_data)}"
        )


def _subgraphs(node: Any) -> list[Any]:
    from onnx import AttributeProto

    out = []
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def _walk_subgraph_ops(g: Any, depth: int = 0) -> Iterable[Any]:
    if depth > 64:
        raise ModelFileError("subgraphs nested more than 64 deep")
    for n in g.node:
        yield n
        for sg in _subgraphs(n):
            yield from _walk_subgraph_ops(sg, depth + 1)


class OnnxModel(GraphModel):
    """An ONNX graph run by ``onnx.reference`` with its LSTMs recorded (a
    :class:`~lstmviz.io.graph_model.GraphModel`, ``format == "onnx"``)."""

    LOADER = "lstmviz.io.onnx_format.load_onnx"


def _evaluate(evaluator: Any, feeds: dict[str, Arr], run: Run, src: str) -> list[Any]:
    token = _RUN.set(run)
    try:
        return list(evaluator.run(None, feeds))
    except _NodeFailed as e:
        n, err = e.node, e.error
        if isinstance(err, MemoryError):
            raise MemoryBudgetError(
                f"{src}: ONNX node {_txt(n.name)!r} ({_txt(n.op_type)}) ran out of memory on "
                f"inputs of shapes {e.shapes}"
            ) from None
        raise ModelFileError(
            f"{src}: ONNX node {_txt(n.name)!r} ({_txt(n.op_type)}) failed on inputs of shapes "
            f"{e.shapes}: {type(err).__name__}: {str(err)[:300]}"
        ) from None
    except MemoryError:
        raise MemoryBudgetError(f"{src}: running the ONNX graph ran out of memory") from None
    except _OP_ERRORS as e:  # the evaluator itself (a missing value, a bad subgraph)
        raise ModelFileError(
            f"{src}: the ONNX graph cannot run: {type(e).__name__}: {str(e)[:300]}"
        ) from None
    finally:
        _RUN.reset(token)


def load_onnx(path: str | os.PathLike[str], time_major: bool | None = None) -> OnnxModel:
    """Open an ONNX file holding ``LSTM`` ops (``format == "onnx"``).

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    time_major : bool, optional
        How the sequence inputs are laid out in the graph, for graphs whose declared sizes
        cannot tell (``True``: ``(T, batch, ...)``); ignored where the sizes tell, refused
        where it contradicts them.
    """
    p = Path(path)
    check_file(p)
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        raise MissingDependencyError("onnx", "onnx", what=f"Opening {p.name} (ONNX)") from None
    if time_major is not None and not isinstance(time_major, bool):
        raise LstmvizError(f"time_major must be True, False or None; got {time_major!r}")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{p}: larger than 2 GB, not an ONNX model lstmviz reads")
    budget.check(3 * p.stat().st_size, what=f"{p}: reading the ONNX file")
    try:
        mp = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError, RecursionError, TypeError) as e:
        raise ModelFileError(
            f"{p}: not an ONNX model ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    g = mp.graph
    if not g.node:
        raise ModelFileError(f"{p}: not an ONNX model (the graph has no nodes)")
    if mp.functions:
        try:
            from onnx import inliner

            mp = inliner.inline_local_functions(mp)
        except (ValueError, RuntimeError, TypeError) as e:
            raise ModelFileError(f"{p}: its local functions cannot be inlined ({e})") from None
        g = mp.graph
    _load_external(mp, p)
    for t in g.initializer:
        _check_tensor(t, f"{p}: initializer {_txt(t.name)!r}")
    if len(g.sparse_initializer):
        raise UnsupportedLayerError(f"{p}: sparse initializers are not supported")
    nodes = list(g.node)
    ops = [_txt(n.op_type) for n in nodes]
    for n in nodes:
        if _txt(n.domain) not in ("", "ai.onnx"):
            raise UnsupportedLayerError(
                f"{p}: node {_txt(n.name)!r} is op {_txt(n.op_type)!r} of domain "
                f"{_txt(n.domain)!r}; lstmviz runs standard ONNX ops only"
            )
        for sg in _subgraphs(n):
            try:
                inner = [m for m in _walk_subgraph_ops(sg) if _txt(m.op_type) == "LSTM"]
            except RecursionError:
                raise ModelFileError(f"{p}: subgraphs nested too deep") from None
            if inner:
                raise UnsupportedLayerError(
                    f"{p}: LSTM node {_txt(inner[0].name)!r} runs inside the subgraph of "
                    f"{_txt(n.op_type)} node {_txt(n.name)!r}; lstmviz records LSTM nodes of the "
                    "main graph (export the LSTM outside Loop/Scan/If)"
                )
    if "LSTM" not in ops:
        other = sorted({o for o in ops if o in ("GRU", "RNN", "Scan", "Loop")})
        raise ModelFileError(
            f"{p}: no LSTM op in the ONNX graph"
            + (f" (it has {', '.join(other)}, which lstmviz does not show)" if other else "")
            + f"; ops: {', '.join(sorted(set(ops)))}. Export an nn.LSTM / keras LSTM model "
            "(torch.onnx.export or tf2onnx writes LSTM nodes)"
        )
    # every value a node reads must exist before it
    init_names = {_txt(t.name) for t in g.initializer}
    known = set(init_names) | {_txt(i.name) for i in g.input} | {""}
    for n in nodes:
        for i in n.input:
            if _txt(i) not in known:
                raise ModelFileError(
                    f"{p}: node {_txt(n.name)!r} ({_txt(n.op_type)}) reads tensor {_txt(i)!r}, "
                    "which no graph input, initializer or earlier node produces"
                )
        known.update(_txt(o) for o in n.output)
    for o in g.output:
        if _txt(o.name) not in known:
            raise ModelFileError(f"{p}: graph output {_txt(o.name)!r} is produced by no node")
    lstm_nodes = [n for n in nodes if _txt(n.op_type) == "LSTM"]
    for n in lstm_nodes:
        _lstm_attrs(n, str(p))  # refuse what the engine cannot run, now

    # graph inputs
    inputs: list[GraphInput] = []
    for vi in g.input:
        name = _txt(vi.name)
        if name in init_names:
            continue
        dec = _declared(vi)
        if dec is None:
            raise UnsupportedLayerError(f"{p}: graph input {name!r} is not a tensor")
        dims, elem = dec
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(elem) if elem else np.dtype(np.float32)
        except (KeyError, ValueError, TypeError):
            raise ModelFileError(f"{p}: graph input {name!r} has unknown type {elem}") from None
        if dtype.kind not in "biuf":
            raise UnsupportedLayerError(f"{p}: graph input {name!r} is of type {dtype}")
        if any(isinstance(d, int) and d < 0 for d in dims):
            raise ModelFileError(f"{p}: graph input {name!r} declares a negative dimension")
        inputs.append(GraphInput(name, dims, elem, np.dtype(dtype)))
    if not inputs:
        raise ModelFileError(f"{p}: the ONNX graph has no inputs")
    names: dict[Any, str] = {}
    node_names: dict[str, str] = {}
    for k, n in enumerate(lstm_nodes):
        names[tuple(_txt(o) for o in n.output)] = f"lstm_l{k}"
        node_names[f"lstm_l{k}"] = _txt(n.name)
    _classify_inputs(inputs, nodes, names)
    try:
        evaluator = _evaluator_class()(mp)
    except (NotImplementedError, RuntimeError, TypeError, ValueError, KeyError) as e:
        raise UnsupportedLayerError(
            f"{p}: ONNX's reference evaluator cannot run this graph: {type(e).__name__}: "
            f"{str(e)[:300]}"
        ) from None
    except MemoryError:
        raise MemoryBudgetError(f"{p}: the graph's constants do not fit in memory") from None

    src = str(p)

    def runner(feeds: dict[str, Arr], run: Run) -> list[Any]:
        return _evaluate(evaluator, feeds, run, src)

    probe = probe_run(p, runner, inputs, names)
    probe_error = probe.error if probe is not None else "a dimension no input fixes"
    if probe is not None and probe.error:
        probe = None
    out_names = [_txt(o.name) for o in g.output]
    out_dims = [(_declared(o) or ([], 0))[0] for o in g.output]
    meta_onnx: dict[str, Any] = {
        "lstm_nodes": node_names,
        "opset": next((o.version for o in mp.opset_import if o.domain in ("", "ai.onnx")), 0),
        "outputs": out_names,
        "inputs": [i.name for i in inputs],
        "state_inputs": [i.name for i in inputs if i.state],
        "producer": f"{_txt(mp.producer_name)} {_txt(mp.producer_version)}".strip(),
        "batch_first_outputs": [],
        "batch_first_outputs_index": [],
        "flat_time_outputs": [],
        "raw_lstm_outputs": [],
        "probe": "ok" if probe is not None else f"failed: {probe_error}",
    }
    producers = {_txt(o): n for n in nodes for o in n.output}
    for k, name in enumerate(out_names):
        prod = producers.get(name)
        if prod is not None and _txt(prod.op_type) == "LSTM":
            meta_onnx["raw_lstm_outputs"].append(k)
    infer_layouts(p, inputs, probe, time_major, out_dims, meta_onnx)
    meta_onnx["time_major"] = next(
        (
            {"time-major": True, "batch-first": False}.get(i.layout)
            for i in inputs
            if i.reaches_lstm and not i.state
        ),
        None,
    )
    meta_onnx["layout_ambiguous"] = [i.name for i in inputs if i.layout == "ambiguous"]
    meta_onnx["input_layouts"] = {i.name: i.layout for i in inputs}

    # the LSTM layers (weights as the probe ran them, else from the initializers)
    lstm_layers = _lstm_layers(p, lstm_nodes, names, probe, g)
    embedding, token_input = _embedding(inputs, nodes, g)
    meta_onnx["token_input"] = token_input
    acts, where = _output_activations(out_names, producers)
    params = (
        sum(_prod(t.dims) for t in g.initializer if t.data_type in (1, 10, 11, 16))
        - sum(lay.n_params for lay in lstm_layers)
        - (embedding.n_params if embedding is not None else 0)
    )
    counts: dict[str, int] = {}
    for o in ops:
        if o != "LSTM":
            counts[o] = counts.get(o, 0) + 1
    graph_layer = GraphLayer("onnx_graph", counts, max(params, 0), "ONNXGraph", "onnx.reference")
    meta = {"onnx": meta_onnx, "output_activation": acts, "output_layer": where}
    nodes = _node_graph(p, mp, inputs, meta_onnx, probe)
    meta_onnx["node_graph"] = nodes is not None  # the backward pass needs it
    return OnnxModel(
        p, "onnx", runner, inputs, lstm_layers, names, embedding, graph_layer, meta, nodes
    )


def _node_graph(
    p: Path, mp: Any, inputs: list[GraphInput], meta: dict[str, Any], probe: Run | None
) -> Any:
    """The graph as engine layers (:mod:`lstmviz.io.onnx_nodes`) when every op has a NumPy
    function and it reproduces the reference evaluator's outputs on the probe input."""
    if probe is None or meta["layout_ambiguous"]:
        return None
    from ..engine.model import Model
    from .onnx_nodes import NoNodeGraph, node_graph

    try:
        nodes, in_refs, out_refs = node_graph(
            p, mp, inputs, meta["opset"], meta["batch_first_outputs_index"]
        )
        for n in nodes:
            if isinstance(n.layer, L.InputLayer):
                inp = next((i for i in inputs if i.name == n.layer.name), None)
                if inp is not None:
                    n.layer.batch_shape = GraphModel._bf_shape(inp)
        plain = Model(p.stem, nodes, in_refs, out_refs, source=str(p))
        xs = []
        for inp in inputs:
            if inp.state:
                continue
            a = probe.feeds[inp.name]
            if inp.perm is not None:
                a = np.transpose(a, inp.perm)
            xs.append(a[None] if inp.unbatched else a)
        got = plain.trace(xs if len(xs) > 1 else xs[0], step_outputs=False).output
        got = got if isinstance(got, list) else [got]
        for k, (a, b) in enumerate(zip(got, probe.outputs, strict=True)):
            b = np.asarray(b)
            if k in meta["batch_first_outputs_index"] and b.ndim >= 2:
                b = np.swapaxes(b, 0, 1)
            a = np.asarray(a)
            if a.shape != b.shape or not np.allclose(a, b, atol=1e-4, rtol=1e-4):
                return None
    except (
        NoNodeGraph,
        LstmvizError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        ArithmeticError,
    ):
        return None
    return nodes, in_refs, out_refs


def _consumers(nodes: Sequence[Any]) -> dict[str, list[tuple[Any, int]]]:
    out: dict[str, list[tuple[Any, int]]] = {}
    for n in nodes:
        for k, i in enumerate(n.input):
            if i:
                out.setdefault(_txt(i), []).append((n, k))
    return out


def _classify_inputs(inputs: list[GraphInput], nodes: Sequence[Any], names: dict[Any, str]) -> None:
    """Which graph inputs reach which LSTM slots; h0/c0-only inputs become optional."""
    cons = _consumers(nodes)
    for inp in inputs:
        slots: set[int] = set()
        seen: set[str] = set()
        todo = [inp.name]
        while todo:
            v = todo.pop()
            if v in seen:
                continue
            seen.add(v)
            for n, k in cons.get(v, []):
                if _txt(n.op_type) == "LSTM":
                    slots.add(k)
                    if k == 0:
                        inp.reaches_lstm.append(names[tuple(_txt(o) for o in n.output)])
                    continue  # the LSTM's outputs depend on everything it reads
                todo.extend(_txt(o) for o in n.output if o)
        inp.state = bool(slots) and slots <= {5, 6}


def _lstm_layers(
    p: Path,
    lstm_nodes: list[Any],
    names: dict[tuple[str, ...], str],
    probe: Run | None,
    g: Any,
) -> list[L.Layer]:
    from onnx import numpy_helper

    by_layer: dict[str, list[dict[str, Any]]] = {}
    for c in probe.calls if probe else []:
        by_layer.setdefault(c["layer"], []).append(c)
    inits = {_txt(t.name): t for t in g.initializer}
    consts: dict[str, Any] = {}
    for n in g.node:
        if _txt(n.op_type) == "Constant" and len(n.output) == 1:
            for a in n.attribute:
                if _txt(a.name) == "value":
                    consts[_txt(n.output[0])] = a.t
    out: list[L.Layer] = []
    for n in lstm_nodes:
        lname = names[tuple(_txt(o) for o in n.output)]
        spec = _lstm_attrs(n, str(p))
        calls = by_layer.get(lname)
        if calls:
            ws = [c["weights"] for c in calls]
        else:
            ins = [_txt(i) for i in n.input] + [""] * 8

            def arr(name: str, n: Any = n) -> Arr | None:
                if not name:
                    return None
                t = inits.get(name, consts.get(name))
                if t is None:
                    raise UnsupportedLayerError(
                        f"{p}: LSTM node {_txt(n.name)!r}: its weights {name!r} are computed in "
                        "the graph, and the graph could not be run on a probe input to see them"
                    )
                try:
                    return np.asarray(numpy_helper.to_array(t))
                except (ValueError, TypeError, RuntimeError) as e:
                    raise ModelFileError(f"{p}: tensor {name!r} cannot be read ({e})") from None

            W, R, B = arr(ins[1]), arr(ins[2]), arr(ins[3])
            if W is None or R is None:
                raise ModelFileError(f"{p}: LSTM node {_txt(n.name)!r}: W and R are missing")
            ws = []
            for d in range(spec["dirs"]):
                try:
                    w = convert.from_onnx(W, R, B, d)
                except ModelFileError as e:
                    raise ModelFileError(f"{p}: LSTM node {_txt(n.name)!r}: {e}") from None
                ws.append(
                    LSTMWeights(
                        w.kernel,
                        w.recurrent_kernel,
                        w.bias,
                        spec["activation"],
                        spec["recurrent_activation"],
                    )
                )
        if spec["dirs"] == 2:
            out.append(
                L.Bidirectional(
                    lname,
                    L.LSTM(f"{lname}_forward", ws[0], return_sequences=True),
                    L.LSTM(f"{lname}_backward", ws[1], return_sequences=True, go_backwards=True),
                    None,
                )
            )
        else:
            out.append(
                L.LSTM(
                    lname,
                    ws[0],
                    return_sequences=True,
                    go_backwards=spec["direction"] == "reverse",
                )
            )
    return out


_PASS = ("Identity", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Transpose", "Flatten")


def _embedding(
    inputs: list[GraphInput], nodes: Sequence[Any], g: Any
) -> tuple[L.Embedding | None, str | None]:
    """An integer input that indexes a constant table with Gather: the model takes tokens."""
    from onnx import numpy_helper

    inits = {_txt(t.name): t for t in g.initializer}
    cons = _consumers(nodes)
    for inp in inputs:
        if inp.state or inp.dtype.kind not in "iu" or not inp.reaches_lstm:
            continue
        cur = inp.name
        for _ in range(8):
            users = cons.get(cur, [])
            if len(users) != 1:
                break
            n, k = users[0]
            op = _txt(n.op_type)
            if op == "Gather" and k == 1 and _txt(n.input[0]) in inits:
                t = inits[_txt(n.input[0])]
                if len(t.dims) == 2:
                    table = numpy_helper.to_array(t)
                    if table.dtype.kind == "f":
                        name = _txt(n.input[0]).replace("/", "_").replace(".", "_") or "embedding"
                        return L.Embedding(name, table), inp.name
                break
            if op in _PASS and k == 0:
                cur = _txt(n.output[0])
                continue
            break
    return None, None


_ACT_OPS = {
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Relu": "relu",
    "LSTM": "lstm",
    "MatMul": "linear",
    "Gemm": "linear",
    "Add": "linear",
}
_SHAPE_ONLY = ("Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Dropout")


def _output_activations(
    out_names: list[str], producers: dict[str, Any]
) -> tuple[list[str | None], list[str]]:
    """What each graph output's last value-changing op is (softmax, log_softmax, ...)."""
    acts: list[str | None] = []
    where: list[str] = []
    for name in out_names:
        cur = name
        found: str | None = None
        node_name = ""
        for _ in range(16):
            n = producers.get(cur)
            if n is None:
                break
            op = _txt(n.op_type)
            if op in _SHAPE_ONLY and n.input:
                cur = _txt(n.input[0])
                continue
            found = _ACT_OPS.get(op)
            node_name = _txt(n.name) or op
            break
        acts.append(found)
        where.append(node_name)
    return acts, where
