"""A model: a graph of engine layers, and the forward pass that records the trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import budget
from ..errors import (
    ArgumentError,
    InputError,
    LstmvizError,
    MemoryBudgetError,
    ModelFileError,
    UnsupportedLayerError,
)
from .layers import (
    CORPUS_HINT,
    LSTM,
    TRACE_VALUES_PER_UNIT,
    Bidirectional,
    Context,
    Embedding,
    InputLayer,
    Layer,
    trace_nbytes,
)
from .trace import Trace

TensorRef = tuple[str, int, int]  # (layer name, node index, tensor index)

#: Layers that map each timestep on its own: the time axis of their output is their input's.
_STEPWISE = {
    "Embedding",
    "Dense",
    "TimeDistributed",
    "Activation",
    "Masking",
    "LayerNormalization",
    "BatchNormalization",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
}


@dataclass
class Node:
    """One call of a layer: its input tensors, and tensors passed as keyword arguments."""

    layer: Layer
    index: int
    inputs: list[TensorRef]
    kwargs: dict[str, list[TensorRef]] = field(default_factory=dict)
    nested: bool = False  # inputs were given as one list (Concatenate([a, b]))

    @property
    def key(self) -> tuple[str, int]:
        return (self.layer.name, self.index)


class Model:
    """A loaded model: its layers, its graph, and :meth:`trace`.

    Parameters
    ----------
    name : str
        The model's name in the file.
    nodes : list of Node
        Layer calls in an order where every input comes before its use.
    inputs, outputs : list of TensorRef
        The model's input and output tensors.
    source : str
        The file it came from (for messages).
    """

    def __init__(
        self,
        name: str,
        nodes: list[Node],
        inputs: list[TensorRef],
        outputs: list[TensorRef],
        source: str = "",
        fmt: str = "",
        meta: dict[str, Any] | None = None,
        single_output: bool = True,
    ) -> None:
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.source = source
        self.format = fmt
        self.meta = dict(meta or {})
        self.single_output = single_output and len(outputs) == 1
        self.layers: dict[str, Layer] = {}
        for n in nodes:
            self.layers.setdefault(n.layer.name, n.layer)
        if not self.lstm_layers:
            raise UnsupportedLayerError(
                f"{source or name}: the model has no LSTM layer (layers: "
                f"{', '.join(f'{k} ({v.kind})' for k, v in self.layers.items())})"
            )

    # --- what the model holds --------------------------------------------------------------
    @property
    def lstm_layers(self) -> list[LSTM | Bidirectional]:
        return [lay for lay in self.layers.values() if isinstance(lay, (LSTM, Bidirectional))]

    @property
    def lstm_trace_names(self) -> list[str]:
        names = []
        for lay in self.lstm_layers:
            if isinstance(lay, Bidirectional):
                names += [f"{lay.name}/forward", f"{lay.name}/backward"]
            else:
                names.append(lay.name)
        return names

    def lstm(self, name: str) -> LSTM:
        """The engine LSTM behind a trace name (``"lstm"`` or ``"bidi/forward"``)."""
        base, _, half = name.partition("/")
        lay = self.layers.get(base)
        if isinstance(lay, Bidirectional):
            return lay.backward if half == "backward" else lay.forward
        if isinstance(lay, LSTM):
            return lay
        raise ArgumentError(
            f"no LSTM layer named {name!r}; LSTM layers: {', '.join(self.lstm_trace_names)}"
        )

    @property
    def input_layers(self) -> list[InputLayer]:
        found = [self.layers[r[0]] for r in self.inputs]
        return [lay for lay in found if isinstance(lay, InputLayer)]

    @property
    def embedding(self) -> Embedding | None:
        """The Embedding fed by the (first) input, if any: the model takes token ids."""
        first = self.inputs[0][0] if self.inputs else None
        for n in self.nodes:
            if isinstance(n.layer, Embedding) and any(r[0] == first for r in n.inputs):
                return n.layer
        return None

    @property
    def takes_tokens(self) -> bool:
        return self.embedding is not None

    @property
    def input_features(self) -> int | None:
        """Features per timestep of the first input (None for token ids)."""
        if self.takes_tokens:
            return None
        lay = self.layers.get(self.inputs[0][0]) if self.inputs else None
        if isinstance(lay, InputLayer) and lay.batch_shape and len(lay.batch_shape) >= 3:
            f = lay.batch_shape[-1]
            return int(f) if f is not None else None
        for n in self.nodes:  # the first weighted layer tells
            lay = n.layer
            if isinstance(lay, LSTM):
                return lay.weights.input_dim
            if isinstance(lay, Bidirectional):
                return lay.forward.weights.input_dim
            k = getattr(lay, "kernel", None)
            if k is not None:
                return int(k.shape[-2])
        return None

    @property
    def input_timesteps(self) -> int | None:
        lay = self.layers.get(self.inputs[0][0]) if self.inputs else None
        if isinstance(lay, InputLayer) and lay.batch_shape and len(lay.batch_shape) >= 2:
            t = lay.batch_shape[1]
            return int(t) if t is not None else None
        return None

    @property
    def n_params(self) -> int:
        return sum(lay.n_params for lay in self.layers.values())

    def summary(self) -> list[dict[str, Any]]:
        """One row per layer: name, kind, parameters, description."""
        return [
            {
                "name": lay.name,
                "kind": lay.kind,
                "params": lay.n_params,
                "description": lay.describe(),
            }
            for lay in self.layers.values()
        ]

    # --- input checks ----------------------------------------------------------------------
    def check_input(self, x: Any) -> Any:
        """Validate ``x``; returns it as float32 ``(B, T, F)`` or int64 ``(B, T)`` ids."""
        if isinstance(x, (list, tuple)) and len(self.inputs) > 1:
            if len(x) != len(self.inputs):
                raise InputError(
                    f"{self._src}: the model has {len(self.inputs)} inputs; got {len(x)} arrays"
                )
            return [self._check_one(a, i) for i, a in enumerate(x)]
        if len(self.inputs) > 1:
            raise InputError(
                f"{self._src}: the model has {len(self.inputs)} inputs "
                f"({', '.join(r[0] for r in self.inputs)}); pass a list of arrays"
            )
        return self._check_one(x, 0)

    @property
    def _src(self) -> str:
        return self.source or self.name

    def _check_one(self, x: Any, index: int) -> np.ndarray:
        name = self.inputs[index][0]
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise InputError(f"{self._src}: input {name!r} is not an array: {e}") from None
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise InputError(f"{self._src}: input {name!r} must be numeric; found dtype {a.dtype}")
        emb = None
        for n in self.nodes:
            if isinstance(n.layer, Embedding) and any(r[0] == name for r in n.inputs):
                emb = n.layer
        if emb is not None:
            if a.ndim != 2:
                raise InputError(
                    f"{self._src}: input {name!r} feeds Embedding {emb.name!r} and must be token "
                    f"ids of shape (batch, T); found shape {a.shape}"
                )
            if a.size == 0:
                raise InputError(
                    f"{self._src}: input {name!r} holds no tokens (shape {a.shape}); give at "
                    "least one token id"
                )
            from .layers import check_token_ids

            return check_token_ids(a, emb.input_dim, emb.name)
        lay = self.layers.get(name)
        want = None
        if isinstance(lay, InputLayer) and lay.batch_shape is not None:
            want = lay.batch_shape
        rank = len(want) if want else 3
        if a.ndim != rank:
            shape = "(batch, T, features)" if rank == 3 else f"rank {rank}"
            raise InputError(
                f"{self._src}: input {name!r} must have shape {shape}"
                + (f" = {tuple('?' if v is None else v for v in want)}" if want else "")
                + f"; found shape {a.shape} (rank {a.ndim})"
            )
        if want:
            for ax in range(2, rank):
                if want[ax] is not None and a.shape[ax] != want[ax]:
                    raise InputError(
                        f"{self._src}: input {name!r} expects {want[ax]} features on axis {ax}; "
                        f"found {a.shape[ax]} (shape {a.shape})"
                    )
        if a.shape[0] == 0 or (a.ndim > 1 and a.shape[1] == 0):
            raise InputError(f"{self._src}: input {name!r} is empty (shape {a.shape})")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            raise InputError(
                f"{self._src}: input {name!r} contains NaN or inf (first at index "
                f"{tuple(int(v) for v in bad)})"
            )
        if a.dtype.itemsize > 4 or a.dtype.kind in "iu":
            big = np.abs(a) > np.finfo(np.float32).max
            if np.any(big):
                i = tuple(int(v) for v in np.argwhere(big)[0])
                raise InputError(
                    f"{self._src}: input {name!r} holds {a[i]!r} at index {i}, out of float32 "
                    f"range (magnitudes up to {float(np.finfo(np.float32).max):.4g}); the "
                    "model computes in float32"
                )
        return a.astype(np.float32)

    # --- the forward pass --------------------------------------------------------------------
    def trace(
        self,
        x: Any,
        initial_state: dict[str, Any] | None = None,
        step_outputs: bool = True,
        *,
        reuse: Trace | None = None,
        out: Trace | None = None,
    ) -> Trace:
        """Run the model on ``x`` and record every LSTM's internals.

        Parameters
        ----------
        x : array_like
            ``(batch, T, F)`` floats, or ``(batch, T)`` integer token ids for an Embedding
            model (a list of arrays for a multi-input model).
        initial_state : dict, optional
            ``{lstm name: (h0, c0)}``, each ``(batch, units)`` or ``(units,)``; zeros otherwise.
        step_outputs : bool
            Also compute the model's head at every timestep (``Trace.step_output``).
        reuse : Trace, optional
            A trace of this model on an input of the same shape that differs from ``x`` at
            some steps (a what-if: one token changed).  Each LSTM copies from it the steps
            its own input did not change and computes only the rest: from the first changed
            position on (down from the last, for a backward direction), so a change at step
            ``t`` of a forward model retraces from ``t`` only.  The layers around the LSTMs
            run in full.  The result equals a full trace bit for bit (see
            :func:`~lstmviz.engine.cell.run_lstm`, ``reuse=``); an LSTM whose weights,
            initial state or engine differ is traced in full.
        out : Trace, optional
            A previous trace of this model on an input of the same shape (the last training
            snapshot's, the last what-if's) whose LSTM buffers are overwritten instead of
            allocating new ones: no allocation, no page faults.  ``out`` becomes stale (the
            new trace shares its buffers).  May be ``reuse`` itself.
        """
        xs = self.check_input(x)
        if out is None:  # new buffers: check they fit the memory budget first
            self.check_trace_budget(xs)
        ctx = Context(initial_states=dict(initial_state or {}), source=self._src)
        if reuse is not None:
            if not isinstance(reuse, Trace):
                raise InputError(
                    f"reuse= must be a Trace of this model; got {type(reuse).__name__}"
                )
            ctx.reuse = {lt.name: lt for lt in reuse.layers}
        if out is not None:
            if not isinstance(out, Trace):
                raise InputError(f"out= must be a Trace of this model; got {type(out).__name__}")
            names = [lt.name for lt in out.layers]
            if sorted(names) != sorted(self.lstm_trace_names):
                raise InputError(
                    f"{self._src}: out= must be a trace of this model (LSTM layers "
                    f"{', '.join(self.lstm_trace_names)}); it holds {', '.join(names) or 'none'}"
                )
            ctx.out = {lt.name: lt for lt in out.layers}
        try:
            values = self._run(xs if isinstance(xs, list) else [xs], ctx)
        except MemoryError:  # the last line of defence: layers check the budget first
            raise MemoryBudgetError(
                f"{self._src}: ran out of memory tracing an input of shape "
                f"{getattr(xs, 'shape', '?')}; {CORPUS_HINT}"
            ) from None
        outs = [values[r] for r in self.outputs]
        output = outs[0] if self.single_output else outs
        step = self._step_output(values, ctx) if step_outputs else None
        layer_outputs = {k[0]: v for k, v in values.items() if k[1] == 0 and k[2] == 0}
        return Trace(
            output=output,
            layers=tuple(ctx.layer_traces),
            inputs=xs,
            engine="numpy",
            step_output=step,
            layer_outputs=layer_outputs,
        )

    def trace_nbytes(self, xs: Any) -> int:
        """Bytes of trace buffers a trace of ``xs`` (checked input) will hold at least: every
        LSTM whose input keeps the time axis of the model's input (the layers between them
        only map each step: Embedding, Dense, Dropout, Masking, normalisation, merges, LSTMs
        returning sequences). Layers that change the time axis (Conv1D, RepeatVector,
        Reshape...) are checked again when they run."""
        arrays = xs if isinstance(xs, list) else [xs]
        timed: dict[TensorRef, tuple[int, int, int]] = {}  # ref -> (batch, T, features)
        for ref, a in zip(self.inputs, arrays, strict=True):
            if a.ndim >= 2:
                timed[ref] = (int(a.shape[0]), int(a.shape[1]), int(a.shape[-1]))
        total = 0
        for node in self.nodes:
            lay = node.layer
            if isinstance(lay, InputLayer) or not node.inputs:
                continue
            src = timed.get(node.inputs[0])
            if src is None:
                continue
            b, t, f = src
            if isinstance(lay, (LSTM, Bidirectional)):
                halves = [lay.forward, lay.backward] if isinstance(lay, Bidirectional) else [lay]
                for h in halves:
                    total += trace_nbytes(b, t, h.weights.units, h.weights.input_dim)
                if lay.return_sequences:
                    units = sum(h.weights.units for h in halves)
                    timed[(lay.name, node.index, 0)] = (b, t, units)
            elif lay.kind in _STEPWISE:
                out = (
                    getattr(lay, "units", None)
                    or getattr(getattr(lay, "embeddings", None), "shape", (0, f))[1]
                )
                timed[(lay.name, node.index, 0)] = (b, t, int(out))
        return total

    def check_trace_budget(self, xs: Any) -> None:
        """Refuse, before anything is allocated, an input whose trace buffers (batch x T x
        units x the recorded quantities, summed over the LSTM layers) exceed the memory
        budget; the message names the size and the way to trace it in chunks."""
        need = self.trace_nbytes(xs)
        a = xs[0] if isinstance(xs, list) else xs
        budget.check(
            need,
            what=f"{self._src}: tracing an input of shape {tuple(a.shape)} (batch x T x units "
            f"x {TRACE_VALUES_PER_UNIT} recorded values for each LSTM layer)",
            hint=CORPUS_HINT,
        )

    def _run(
        self,
        xs: list[np.ndarray],
        ctx: Context,
        overrides: dict[TensorRef, Any] | None = None,
        only: set[tuple[str, int]] | None = None,
    ) -> dict[TensorRef, Any]:
        values: dict[TensorRef, Any] = {}
        masks: dict[TensorRef, Any] = {}
        for ref, a in zip(self.inputs, xs, strict=True):
            values[ref] = a
            masks[ref] = None
        if overrides:
            for ref, (v, m) in overrides.items():
                values[ref] = v
                masks[ref] = m
        for node in self.nodes:
            if isinstance(node.layer, InputLayer):
                continue
            if only is not None and node.key not in only:
                continue
            ms = [masks.get(r) for r in node.inputs]
            kw: dict[str, Any] = {}
            try:
                ins = [values[r] for r in node.inputs]
                if "initial_state" in node.kwargs:
                    kw["initial_state"] = [values[r] for r in node.kwargs["initial_state"]]
                if "mask" in node.kwargs:
                    ms = [values[r] for r in node.kwargs["mask"]]
            except KeyError as e:
                raise ModelFileError(
                    f"{self._src}: layer {node.layer.name!r} needs tensor {e} that nothing produced"
                ) from None
            if "_consts" in node.kwargs:
                kw["_consts"] = node.kwargs["_consts"]
            try:
                outs, out_masks = node.layer(ins, ms, ctx, **kw)
            except (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError) as e:
                # weights or a config from a file that do not fit what flows in: say where
                shapes = ", ".join(str(getattr(a, "shape", "?")) for a in ins) or "none"
                raise ModelFileError(
                    f"{self._src}: layer {node.layer.name!r} ({node.layer.kind}) cannot run on "
                    f"its input (shapes {shapes}): {e}"
                ) from None
            for i, (o, m) in enumerate(zip(outs, out_masks, strict=True)):
                values[(node.layer.name, node.index, i)] = o
                masks[(node.layer.name, node.index, i)] = m
        return values

    def _step_output(self, values: dict[TensorRef, Any], ctx: Context) -> np.ndarray | None:
        """The head applied at every timestep, ``(batch, T, K)``, where that has a meaning.

        A model whose output is already per timestep gives it directly. A model whose last
        LSTM returns only ``h_T`` gets the layers after it applied to every ``h_t`` -- "what
        the model would say if the sequence ended here" (the running digit sum, say).
        """
        if not self.single_output or not ctx.layer_traces:
            return None
        out = values[self.outputs[0]]
        t = ctx.layer_traces[-1].timesteps
        b = ctx.layer_traces[-1].batch_size
        if isinstance(out, np.ndarray) and out.ndim >= 2 and out.shape[:2] == (b, t):
            return out.reshape(b, t, -1) if out.ndim != 3 else out
        # the last LSTM node, returning h_T only
        last: Node | None = None
        lstm: LSTM | None = None
        for n in self.nodes:
            if isinstance(n.layer, LSTM):
                last, lstm = n, n.layer
            elif isinstance(n.layer, Bidirectional):
                last = lstm = None
        if last is None or lstm is None or lstm.return_sequences or lstm.go_backwards:
            return None
        downstream = self._downstream(last)
        if not downstream:
            return None
        lt = ctx.layer_traces[[x.layer_name for x in ctx.layer_traces].index(last.layer.name)]
        hs = np.ascontiguousarray(lt.h.transpose(1, 0, 2)).reshape(b * t, -1)
        ref = (last.layer.name, last.index, 0)
        sub = Context(record=False)
        try:
            vals = self._run(
                [np.zeros((1,))] * len(self.inputs),
                sub,
                overrides={ref: (hs, None)},
                only=downstream,
            )
        except (LstmvizError, ValueError):
            return None
        y = vals.get(self.outputs[0])
        if not isinstance(y, np.ndarray) or y.shape[0] != b * t:
            return None
        return y.reshape(b, t, -1)

    def _downstream(self, start: Node) -> set[tuple[str, int]] | None:
        produced = {(start.layer.name, start.index)}
        keys: set[tuple[str, int]] = set()
        for n in self.nodes:
            srcs = {(r[0], r[1]) for r in n.inputs} | {
                (r[0], r[1]) for k, refs in n.kwargs.items() if k != "_consts" for r in refs
            }
            if srcs and srcs <= produced:
                if isinstance(n.layer, (LSTM, Bidirectional)):
                    return None
                produced.add(n.key)
                keys.add(n.key)
            elif srcs & produced:
                return None  # mixes h_T with something else
        if (self.outputs[0][0], self.outputs[0][1]) not in produced:
            return None
        return keys

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, layers={[f'{k}:{v.kind}' for k, v in self.layers.items()]},"
            f" source={self.source!r})"
        )
