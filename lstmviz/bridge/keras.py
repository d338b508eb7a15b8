"""Live Keras models: Keras runs the model, every ``LSTMCell``'s ``call`` is wrapped to record
each step, and the engine recomputes the gates from what was recorded.

Every Keras ``LSTM`` layer, ``RNN(LSTMCell)``, ``RNN(StackedRNNCells([LSTMCell, ...]))`` and
``Bidirectional(LSTM)`` runs its cell once per step (on the CPU; a GPU's cuDNN kernel would
not, and is refused with a message). The wrapper keeps each step's input, the state the cell
started from and the state it returned; the RNN layer's ``call`` is wrapped too, to know
which steps belong to one call, the mask and the direction. The model runs eagerly
(``tf.config.run_functions_eagerly`` while tracing), so the values are concrete.

A plain ``LSTMCell`` layer without a mask on :data:`COMPILED_MIN_STEPS` steps or more runs
compiled instead (``tf.function`` around Keras's own ``call``, told to return h at every step
and its final state): the gates then come from that h, as for a PyTorch ``nn.LSTM``
(:func:`~lstmviz.bridge.common.trace_from_sequence`), and the layer hands on what it would
have returned.

Keras is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import budget
from ..engine import activations
from ..engine.cell import LSTMWeights, run_lstm
from ..engine.layers import Layer
from ..engine.trace import LayerTrace
from ..errors import InputError, LstmvizError, MissingDependencyError, UnsupportedLayerError
from .common import (
    FrameworkLayer,
    LiveModel,
    Vocabulary,
    chain_calls,
    layout_of,
    model_failed,
    replace_route,
    spot_check,
    state_for,
    to_numpy,
    trace_from_sequence,
    trace_from_steps,
)

FRAMEWORK = "keras"


def _keras() -> Any:
    try:
        import keras
    except ImportError:  # pragma: no cover - only when Keras is missing
        raise MissingDependencyError("keras", what="Tracing a live Keras model") from None
    return keras


def _np(t: Any) -> np.ndarray:
    keras = _keras()
    return np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float32)


@dataclass
class Frame:
    """One call of an RNN layer: the per-step records of each of its LSTM cells, or (the
    compiled path) its input, initial state, h at every step and final c."""

    layer: Any
    steps: int
    mask: np.ndarray | None
    order: int
    records: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)
    sequence: tuple[np.ndarray, ...] | None = None  # x, h (processing order), h0, c0, c_T
    trace: LayerTrace | None = None  # the engine ran the layer in Keras's place (spot-checked)


@dataclass
class Where:
    """How one RNN layer's LSTM cells are named in the trace."""

    names: dict[int, str]  # id(cell) -> trace name
    layer_name: str
    direction: str


#: One live Keras trace at a time: the wrappers are set on the model's own layer objects.
_LOCK = threading.RLock()


@dataclass
class Recorder:
    thread: int = field(default_factory=threading.get_ident)  # other threads' calls: not ours
    initial_state: dict[str, Any] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)  # layers whose first call was made
    stack: list[Frame] = field(default_factory=list)
    done: list[tuple[Frame, Any]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    verify: str = "auto"


def _cells_of(rnn: Any) -> list[Any]:
    keras = _keras()
    cell = getattr(rnn, "cell", None)
    if isinstance(cell, keras.layers.LSTMCell):
        return [cell]
    if isinstance(cell, keras.layers.StackedRNNCells):
        return [c for c in cell.cells if isinstance(c, keras.layers.LSTMCell)]
    return []


def _all_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=True, recursive=True))
    return [model, *getattr(model, "layers", [])]  # pragma: no cover - other Keras versions


def _naming(model: Any) -> dict[int, Where]:
    """Trace names of every LSTM cell, per RNN layer: the layer's name, ``<bidi>/forward``
    and ``<bidi>/backward`` inside a Bidirectional, ``<rnn>/cell_<k>`` in stacked cells."""
    keras = _keras()
    layers = _all_layers(model)
    parent: dict[int, tuple[str, str]] = {}
    for lay in layers:
        if isinstance(lay, keras.layers.Bidirectional):
            parent[id(lay.forward_layer)] = (lay.name, "forward")
            parent[id(lay.backward_layer)] = (lay.name, "backward")
    out: dict[int, Where] = {}
    for lay in layers:
        if not isinstance(lay, keras.layers.RNN):
            continue
        cells = _cells_of(lay)
        if not cells:
            continue
        bidi = parent.get(id(lay))
        base = f"{bidi[0]}/{bidi[1]}" if bidi else lay.name
        layer_name = bidi[0] if bidi else lay.name
        stacked = isinstance(lay.cell, keras.layers.StackedRNNCells)
        names = {id(c): (f"{base}/cell_{k}" if stacked else base) for k, c in enumerate(cells)}
        out[id(lay)] = Where(names, layer_name, bidi[1] if bidi else "forward")
    return out


@contextlib.contextmanager
def _patched(obj: Any, wrapper: Any) -> Iterator[None]:
    """``obj.call`` replaced by ``wrapper`` on this instance only, restored afterwards."""
    had = "call" in vars(obj)
    old = vars(obj).get("call")
    object.__setattr__(obj, "call", wrapper)
    try:
        yield
    finally:
        if had:
            object.__setattr__(obj, "call", old)
        else:
            object.__delattr__(obj, "call")


def _override_state(
    rec: Recorder,
    layer: Any,
    where: Where,
    sequences: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The layer's call arguments with the initial state ``trace(initial_state=...)`` names
    for it (its first call only)."""
    if not rec.initial_state or id(layer) in rec.seen:
        return args, kwargs
    rec.seen.add(id(layer))
    cells = _cells_of(layer)
    names = [where.names[id(c)] for c in cells]
    if len(cells) != 1:
        if any(n in rec.initial_state for n in names):
            raise UnsupportedLayerError(
                f"Keras layer {layer.name!r}: initial_state= cannot be set per cell of "
                "StackedRNNCells; pass the states to the layer in the model's code"
            )
        return args, kwargs
    cell = cells[0]
    st = state_for(
        rec.initial_state,
        [names[0], where.layer_name],
        int(sequences.shape[0]),
        (int(cell.units), int(cell.units)),
        f"Keras layer {layer.name!r}",
    )
    if st is None:
        return args, kwargs
    keras = _keras()
    state = [keras.ops.convert_to_tensor(a) for a in st]
    if args:
        return (state, *args[1:]), kwargs
    return args, {**kwargs, "initial_state": state}


def _wrap_rnn(rec: Recorder, layer: Any, where: Where) -> Any:
    orig = layer.call

    def call(sequences: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != rec.thread or not _concrete(sequences):
            # another thread's call, or Keras building the model on symbolic tensors
            return orig(sequences, *args, **kwargs)
        args, kwargs = _override_state(rec, layer, where, sequences, args, kwargs)
        mask = kwargs.get("mask", args[1] if len(args) > 1 else None)
        steps = int(sequences.shape[1])
        m = None if mask is None else np.asarray(_keras().ops.convert_to_numpy(mask), bool)
        frame = Frame(layer, steps, m, next(rec.counter))
        if m is None and _engine_ok(layer, sequences, args, kwargs, rec.verify):
            out = _engine_call(rec, layer, orig, frame, sequences, args, kwargs)
            rec.done.append((frame, layer))
            return out
        if m is None and _compiled_ok(layer, steps):
            out = _compiled_call(layer, orig, frame, sequences, args, kwargs)
            rec.done.append((frame, layer))
            return out
        rec.stack.append(frame)
        try:
            out = orig(sequences, *args, **kwargs)
        finally:
            rec.stack.pop()
        rec.done.append((frame, layer))
        return out

    return call


#: From this many steps on, a plain Keras LSTM layer (no mask, the TensorFlow backend) runs
#: compiled (``tf.function``: Keras's own loop in a graph, as ``predict`` runs it) and
#: returns its h at every step, instead of running eagerly with each step recorded: the
#: gates then come from that h as for a PyTorch ``nn.LSTM``. Shorter inputs run eagerly
#: (compiling costs about a second).
COMPILED_MIN_STEPS = 128

_COMPILED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _compiled_ok(layer: Any, steps: int) -> bool:
    keras = _keras()
    return (
        steps >= COMPILED_MIN_STEPS
        and keras.backend.backend() == "tensorflow"
        and type(getattr(layer, "cell", None)) is keras.layers.LSTMCell
        and not getattr(layer, "stateful", False)
        and not getattr(layer, "unroll", False)
    )


@contextlib.contextmanager
def _flags(layer: Any) -> Iterator[None]:
    """The layer returns its whole h sequence and its final states while inside."""
    before = (layer.return_sequences, layer.return_state)
    object.__setattr__(layer, "return_sequences", True)
    object.__setattr__(layer, "return_state", True)
    try:
        yield
    finally:
        object.__setattr__(layer, "return_sequences", before[0])
        object.__setattr__(layer, "return_state", before[1])


def _compiled_call(
    layer: Any,
    orig: Any,
    frame: Frame,
    sequences: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run Keras's own ``call`` of an LSTM layer compiled, returning every step's h; keep
    what the recomputation needs in ``frame`` and return what the layer returns."""
    import tensorflow as tf

    state = kwargs.get("initial_state", args[0] if args else None)
    batch = int(sequences.shape[0])
    units = int(layer.cell.units)
    if state is None:
        init = [tf.zeros((batch, units), layer.cell.compute_dtype)] * 2
    else:
        init = [tf.convert_to_tensor(v) for v in state]
    seq, h_last, c_last = _keras_call(layer, orig, tf.convert_to_tensor(sequences), init)
    frame.sequence = (_np(sequences), _np(seq), _np(init[0]), _np(init[1]), _np(c_last))
    out = seq if layer.return_sequences else seq[:, -1]
    if layer.return_state:
        return (out, h_last, c_last)  # as RNN.call returns them
    return out


def _engine_ok(
    layer: Any, sequences: Any, args: tuple[Any, ...], kwargs: dict[str, Any], verify: str
) -> bool:
    """Whether the engine runs this call of a Keras LSTM layer in Keras's place: a plain
    ``LSTMCell`` with named activations, float32, no mask, not ``stateful`` / ``unroll``,
    no dropout being applied, and ``verify`` (:func:`~lstmviz.bridge.common.replace_route`)
    asking for it."""
    keras = _keras()
    cell: Any = getattr(layer, "cell", None)
    if type(cell) is not keras.layers.LSTMCell or getattr(layer, "stateful", False):
        return False
    if getattr(layer, "unroll", False) or len(getattr(sequences, "shape", ())) != 3:
        return False
    if not replace_route(verify, int(sequences.shape[0])):
        return False
    if kwargs.get("training") and (cell.dropout or cell.recurrent_dropout):
        return False
    if str(getattr(cell, "compute_dtype", "float32")) != "float32":
        return False
    if str(keras.backend.standardize_dtype(sequences.dtype)) != "float32":
        return False
    if len(args) > 1 or kwargs.get("mask") is not None:
        return False
    cfg = cell.get_config()
    return all(
        isinstance(cfg.get(k), str) and cfg[k] in activations.SUPPORTED
        for k in ("activation", "recurrent_activation")
    )


def _engine_call(
    rec: Recorder,
    layer: Any,
    orig: Any,
    frame: Frame,
    sequences: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The engine runs the layer's LSTM in Keras's place, Keras's own ``call`` spot-checks
    it (:func:`~lstmviz.bridge.common.spot_check`), and the layer returns what Keras's would
    have returned, computed by the engine."""
    keras = _keras()
    cell = layer.cell
    back = bool(getattr(layer, "go_backwards", False))
    state = kwargs.get("initial_state", args[0] if args else None)
    x = _np(sequences)
    units = int(cell.units)
    budget.check_array(
        (x.shape[0] * x.shape[1], 10 * units + x.shape[2]), 4, f"the trace of {layer.name!r}"
    )
    h0 = c0 = None
    if state is not None:
        h0, c0 = _np(state[0]), _np(state[1])
    lt = run_lstm(x, cell_weights(cell), h0=h0, c0=c0, go_backwards=back, name=layer.name)
    kernel = lt.meta.get("engine")
    lt.meta.update({"engine": "keras (live)", "verified": "spot", "kernel": kernel})

    def keras_run(
        xw: np.ndarray, h0w: np.ndarray, c0w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        init = [keras.ops.convert_to_tensor(h0w[0]), keras.ops.convert_to_tensor(c0w[0])]
        seq_in = keras.ops.convert_to_tensor(np.ascontiguousarray(xw.swapaxes(0, 1)))
        rec.stack.append(Frame(layer, xw.shape[0], None, -1))  # its steps: not the model's
        try:
            # compiled when the layer's input is long enough for the full route to compile
            # it too (the spot check then costs a small part of Keras's own pass)
            compiled = frame.steps >= COMPILED_MIN_STEPS
            seq, h_last, c_last = _keras_call(layer, orig, seq_in, init, compiled)
        finally:
            rec.stack.pop()
        h = _np(seq).swapaxes(0, 1)  # (L, N, U) in processing order
        return np.ascontiguousarray(h[::-1] if back else h), _np(h_last)[None], _np(c_last)[None]

    spot_check([[lt]], keras_run, name=layer.name, framework=FRAMEWORK)
    frame.trace = lt
    seq_np = lt.h.swapaxes(0, 1)  # (B, T, U) by input position
    if back:
        seq_np = seq_np[:, ::-1]  # Keras returns a backward layer's steps in its own order
    end = 0 if back else -1
    as_t = keras.ops.convert_to_tensor
    out = as_t(np.ascontiguousarray(seq_np if layer.return_sequences else seq_np[:, -1]))
    if layer.return_state:
        return (out, as_t(np.array(lt.h[end])), as_t(np.array(lt.c[end])))
    return out


def _keras_call(
    layer: Any, orig: Any, seq: Any, init: list[Any], compiled: bool = True
) -> tuple[Any, Any, Any]:
    """Keras's own ``call`` of an LSTM layer from ``init``, returning h at every step (in
    the layer's processing order) and its final h and c: compiled with the TensorFlow
    backend (as ``predict`` runs it; an eager loop costs milliseconds a step, compiling
    about a second once per layer), else (or with ``compiled=False``) eagerly."""
    keras = _keras()
    if not compiled or keras.backend.backend() != "tensorflow":
        with _flags(layer):
            out: tuple[Any, Any, Any] = orig(seq, initial_state=init, training=False)
        return out
    import tensorflow as tf

    fn = _COMPILED.get(layer)
    if fn is None:

        def run(seq: Any, init: Any) -> Any:
            return orig(seq, initial_state=init, training=False)

        fn = _COMPILED[layer] = tf.function(run, reduce_retracing=True)
    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(False)
    try:
        with _flags(layer):
            out = fn(seq, init)
    finally:
        tf.config.run_functions_eagerly(before)
    return out


def _concrete(t: Any) -> bool:
    """True for a tensor with values (not a KerasTensor or a tensor of a graph being built)."""
    keras = _keras()
    if isinstance(t, keras.KerasTensor):
        return False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.executing_eagerly())
    return True


def _wrap_cell(rec: Recorder, cell: Any) -> Any:
    orig = cell.call

    def call(inputs: Any, states: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(inputs, states, *args, **kwargs)
        if rec.stack and threading.get_ident() == rec.thread:
            _output, new_states = out
            rec.stack[-1].records.setdefault(id(cell), []).append(
                (inputs, states[0], states[1], new_states[0], new_states[1])
            )
        return out

    return call


def cell_weights(cell: Any) -> LSTMWeights:
    """A Keras ``LSTMCell``'s weights (already in Keras's layout)."""
    cfg = cell.get_config()
    act, rec_act = cfg.get("activation"), cfg.get("recurrent_activation")
    if not isinstance(act, str) or not isinstance(rec_act, str):
        raise UnsupportedLayerError(
            f"LSTMCell {cell.name!r}: a custom activation ({act!r} / {rec_act!r}) cannot be "
            "recomputed; lstmviz knows Keras's named activations"
        )
    bias = _np(cell.bias) if getattr(cell, "use_bias", True) and cell.bias is not None else None
    return LSTMWeights(_np(cell.kernel), _np(cell.recurrent_kernel), bias, act, rec_act)


def frame_traces(frame: Frame, where: Where, base_names: dict[int, str]) -> list[LayerTrace]:
    """The traces of one RNN layer call: one per LSTM cell, by input position."""
    layer = frame.layer
    back = bool(getattr(layer, "go_backwards", False))
    if frame.trace is not None:  # the engine ran it in Keras's place
        name = base_names[id(layer.cell)]
        return [
            replace(
                frame.trace,
                name=name,
                layer_name=name.rsplit("/", 1)[0] if "/" in name else name,
                direction=where.direction,
                meta={
                    **frame.trace.meta,
                    "keras_layer": layer.name,
                    "keras_cell": layer.cell.name,
                    "path": "engine",
                    **_hands_on(layer, True),
                },
            )
        ]
    if frame.sequence is not None:  # the compiled path: h at every step, then c_T
        x, seq, h0, c0, c_last = frame.sequence
        cell = layer.cell
        name = base_names[id(cell)]
        h = seq.swapaxes(0, 1)  # (T, B, U), processing order
        return [
            trace_from_sequence(
                name=name,
                weights=cell_weights(cell),
                x=np.ascontiguousarray(x.swapaxes(0, 1)),
                h=np.ascontiguousarray(h[::-1] if back else h),
                h0=h0,
                c0=c0,
                c_last=c_last,
                framework=FRAMEWORK,
                go_backwards=back,
                layer_name=name.rsplit("/", 1)[0] if "/" in name else name,
                direction=where.direction,
                meta={
                    "keras_layer": layer.name,
                    "keras_cell": cell.name,
                    "path": "compiled",
                    **_hands_on(layer, True),
                },
            )
        ]
    out = []
    for cell in _cells_of(layer):
        recs = frame.records.get(id(cell), [])
        if len(recs) < frame.steps:
            raise UnsupportedLayerError(
                f"Keras layer {layer.name!r}: its LSTMCell ran {len(recs)} times for "
                f"{frame.steps} steps, so the steps cannot be recorded (a GPU's fused cuDNN "
                "kernel skips the cell: trace on the CPU, e.g. with CUDA_VISIBLE_DEVICES='')"
            )
        recs = recs[len(recs) - frame.steps :]  # earlier calls: Keras's shape/dropout probes
        try:
            arrs = [np.stack([_np(r[k]) for r in recs]) for k in range(5)]
        except (ValueError, TypeError, AttributeError) as e:
            raise LstmvizError(
                f"Keras layer {layer.name!r}: its steps are not concrete values ({e}); "
                "call the model eagerly"
            ) from None
        if back:  # the cell ran from the last position to the first
            arrs = [a[::-1] for a in arrs]
        x, hp, cp, h, c = (np.ascontiguousarray(a) for a in arrs)
        mask = frame.mask
        if mask is not None and mask.ndim == 3:
            mask = mask[..., 0]
        name = base_names[id(cell)]
        out.append(
            trace_from_steps(
                name=name,
                weights=cell_weights(cell),
                x=x,
                h_prev=hp,
                c_prev=cp,
                h=h,
                c=c,
                framework=FRAMEWORK,
                mask=mask,
                go_backwards=back,
                layer_name=name.rsplit("/", 1)[0] if "/" in name else name,
                direction=where.direction,
                meta={
                    "keras_layer": layer.name,
                    "keras_cell": cell.name,
                    **_hands_on(layer, cell is _cells_of(layer)[-1]),
                },
            )
        )
    return out


def _hands_on(layer: Any, last_cell: bool) -> dict[str, bool]:
    """What a Keras RNN layer returns (a cell before the last of stacked cells hands its whole
    h sequence to the next)."""
    if not last_cell:
        return {"return_sequences": True, "return_state": False}
    return {
        "return_sequences": bool(getattr(layer, "return_sequences", False)),
        "return_state": bool(getattr(layer, "return_state", False)),
    }


class KerasModel(LiveModel):
    """A live ``keras.Model`` (see :class:`~lstmviz.bridge.common.LiveModel`)."""

    framework = FRAMEWORK

    def _run(
        self, feed: list[np.ndarray], initial_state: dict[str, Any]
    ) -> tuple[Any, list[LayerTrace]]:
        keras = _keras()
        model = self.module
        naming = _naming(model)
        rec = Recorder(initial_state=initial_state, verify=self.verify)
        layers = [lay for lay in _all_layers(model) if id(lay) in naming]
        with _LOCK, contextlib.ExitStack() as stack:
            for lay in layers:
                stack.enter_context(_patched(lay, _wrap_rnn(rec, lay, naming[id(lay)])))
                for cell in _cells_of(lay):
                    stack.enter_context(_patched(cell, _wrap_cell(rec, cell)))
            stack.enter_context(_eager())
            arg = feed if self.multi_input else feed[0]
            try:
                y = model(arg, *self.args, training=False, **self.kwargs)
            except LstmvizError:
                raise
            except Exception as e:  # the user's own code can raise anything; chained below
                raise model_failed(
                    self.name, feed, e, self._new_input_layouts(), bool(self.args)
                ) from e
        del keras
        calls: dict[int, int] = {}
        found: list[tuple[int, LayerTrace]] = []
        for frame, lay in sorted(rec.done, key=lambda p: p[0].order):
            k = calls[id(lay)] = calls.get(id(lay), 0) + 1
            where = naming[id(lay)]
            names = {key: (n if k == 1 else _numbered(n, k)) for key, n in where.names.items()}
            for lt in frame_traces(frame, where, names):
                found.append((frame.order, lt))
        return to_numpy(y), chain_calls([lt for _, lt in found])

    def _n_params(self) -> int:
        return int(self.module.count_params())

    def _vocabulary(self) -> Vocabulary | None:
        keras = _keras()
        for lay in _all_layers(self.module):
            if isinstance(lay, keras.layers.Embedding):
                return Vocabulary(lay.name, int(lay.input_dim), bool(lay.mask_zero))
        return None

    def _framework_layers(self) -> list[Layer]:
        keras = _keras()
        out: list[Layer] = []
        naming = _naming(self.module)
        for lay in getattr(self.module, "layers", []):
            if id(lay) in naming or isinstance(lay, keras.layers.Bidirectional):
                continue
            out.append(FrameworkLayer(lay.name, type(lay).__name__, int(lay.count_params())))
        return out

    def _no_lstm_hint(self) -> str:
        keras = _keras()
        kinds = sorted(
            {
                type(lay).__name__
                for lay in _all_layers(self.module)
                if isinstance(lay, keras.layers.RNN)
            }
        )
        if kinds:
            return f" (recurrent layers: {', '.join(kinds)}; lstmviz shows LSTMs only)"
        return " (lstmviz records Keras LSTM layers and LSTMCells inside RNN / Bidirectional)"


def _numbered(name: str, k: int) -> str:
    """The k-th call's name: ``lstm#2``, ``bidi#2/forward``."""
    head, sep, tail = name.partition("/")
    return f"{head}#{k}{sep}{tail}"


@contextlib.contextmanager
def _eager() -> Iterator[None]:
    """Run ``tf.function``s eagerly while tracing (TensorFlow backend), so every step's
    values are concrete."""
    keras = _keras()
    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


def _input_names(model: Any, n: int) -> list[str]:
    names = []
    for k, t in enumerate(getattr(model, "inputs", None) or []):
        hist = getattr(t, "_keras_history", None)
        op = getattr(hist, "operation", None) if hist is not None else None
        names.append(getattr(op, "name", None) or f"input_{k}")
    return names if len(names) == n else [f"input_{k}" for k in range(n)]


def live_model(
    model: Any,
    x: Any,
    *args: Any,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    name: str | None = None,
    verify: str = "auto",
) -> KerasModel:
    """A :class:`KerasModel` for ``model`` with example input ``x`` (a list for a model with
    several inputs, as Keras takes it)."""
    keras = _keras()
    if not isinstance(model, keras.Model) and not isinstance(model, keras.layers.Layer):
        raise InputError(f"expected a keras.Model; got {type(model).__name__}")
    if time_major:
        raise InputError(
            "time_major=True: Keras LSTMs take (batch, T, ...) inputs; pass x that way"
        )
    multi = isinstance(x, (list, tuple))
    xs = list(x) if multi else [x]
    arrays = [np.asarray(to_numpy(a)) for a in xs]
    layouts = [layout_of(a, False, f"input {k}") for k, a in enumerate(arrays)]
    return KerasModel(
        model,
        arrays,
        layouts,
        args=args,
        kwargs=model_kwargs,
        multi_input=multi,
        input_names=_input_names(model, len(arrays)),
        name=name or getattr(model, "name", None) or type(model).__name__,
        verify=verify,
    )
