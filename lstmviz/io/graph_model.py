"""A whole graph with LSTMs, run by its framework or interpreter, recorded by the engine.

Shared by the ONNX reader (:mod:`lstmviz.io.onnx_format`, graphs run by ``onnx.reference``)
and the ``torch.export`` reader (:mod:`lstmviz.io.torch_export`, programs run by torch):
:class:`GraphModel` gives such a graph the interface of :class:`lstmviz.engine.Model`.

**Layout.** lstmviz's inputs are batch-first (``(batch, T, F)`` floats, ``(batch, T)`` token
ids). Which axis of a graph input is time and which is batch is *measured*, not guessed
(:func:`probe_run`, :func:`infer_layouts`): the graph is run once on zeros whose free
dimensions have distinct sizes (static dimensions as declared), and the axes whose sizes
reach an LSTM's time and batch axes are the input's. A time-major input is transposed on the
way in; an output whose leading axes are the LSTM's (T, batch) is made batch-first on the way
out. Where the sizes cannot tell (a static ``(5, 5, F)`` input) the loader takes
``time_major=`` and :meth:`GraphModel.set_time_major` sets it later; until then tracing
refuses with a message saying so.

**Inputs.** Every input is checked against the graph's declared static shape (a mismatch is
an :class:`~lstmviz.errors.InputError` naming both) and dimension names are bound
consistently across inputs. Inputs that feed only LSTM initial states (h0/c0) are optional:
left out, they are zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import budget
from ..engine import layers as L
from ..engine.model import Model, Node
from ..engine.trace import LayerTrace, Trace
from ..errors import InputError, LstmvizError, ModelFileError

Arr = np.ndarray


@dataclass
class Run:
    """What one run of the graph collects: LSTM traces, probe shapes, memory used."""

    where: str
    names: dict[Any, str]
    record: bool = True
    initial_states: dict[str, Any] = field(default_factory=dict)
    traces: list[LayerTrace] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    used: int = 0
    ops: int = 0
    feeds: dict[str, Any] = field(default_factory=dict)  # the probe's inputs
    error: str = ""  # why the probe could not run
    outputs: list[Any] = field(default_factory=list)  # the probe's outputs


def check_trace_buffers(
    run: Run | None, name: str, batch: int, steps: int, units: int, features: int
) -> None:
    """Before the engine records LSTM ``name``: its trace buffers against the memory budget,
    with what the run holds already (as :meth:`lstmviz.engine.layers.LSTM.run` does)."""
    need = L.trace_nbytes(batch, steps, units, features)
    held = run.used if run is not None else 0
    budget.check(
        held + need,
        what=f"{run.where if run is not None else 'the graph'}: the trace of LSTM {name!r} "
        f"({batch} x {steps} steps x {units} units)",
        hint=L.CORPUS_HINT,
    )
    if run is not None:
        run.used += need


#: Runs the whole graph on graph-native feeds, recording LSTMs into the Run.
Runner = Callable[[dict[str, Arr], Run], list[Any]]


@dataclass
class GraphInput:
    name: str
    dims: list[int | str | None]  # as declared (graph-native order)
    elem: int
    dtype: np.dtype[Any]
    state: bool = False  # feeds only LSTM initial_h / initial_c: optional, zeros
    reaches_lstm: list[str] = field(default_factory=list)  # LSTM layers whose input it feeds
    perm: list[int] | None = None  # batch-first axis order (None: as declared)
    layout: str = "as declared"  # "batch-first", "time-major", "as declared", "ambiguous"
    unbatched: bool = False  # no batch axis in the graph (the tutorial's (T,) sentence)

    @property
    def rank(self) -> int:
        return len(self.dims)


class GraphLayer(L.Layer):
    """The graph around the LSTMs (run by its framework or interpreter), for
    :meth:`Model.summary` and for code that lists a model's layers."""

    supports_masking = False

    def __init__(self, name: str, ops: dict[str, int], params: int, kind: str, runner: str) -> None:
        super().__init__(name)
        self.kind = kind
        self.ops = ops
        self._params = params
        self._runner = runner

    @property
    def n_params(self) -> int:
        return self._params

    def describe(self) -> str:
        n = sum(self.ops.values())
        top = ", ".join(f"{k}×{v}" for k, v in sorted(self.ops.items(), key=lambda kv: -kv[1]))
        return f"{n} nodes run by {self._runner}: {top}"

    def call(self, x: Arr) -> Arr:  # pragma: no cover - the evaluator runs the graph
        raise LstmvizError("the graph runs as a whole: call model.trace(x)")


class GraphModel(Model):
    #: The loader that takes ``time_major=`` (named in messages).
    LOADER = "lstmviz.load_model"
    """A whole graph with LSTMs (an ONNX graph, a torch.export program), with the interface
    of :class:`lstmviz.engine.Model`.

    ``trace(x)`` runs the whole graph with ``runner`` (the reference evaluator, torch) while
    the LSTMs are recorded by the engine. Attributes beyond Model's: ``input_names`` (every
    graph input), ``optional_inputs`` (h0/c0-like inputs that default to zeros),
    ``layout_ambiguous`` (inputs whose batch and time axes the sizes could not tell),
    ``time_major``. ``meta[key]`` describes the graph (``key`` is the format: ``"onnx"``,
    ``"pt2"``).
    """

    def __init__(
        self,
        path: Path,
        fmt: str,
        runner: Runner,
        inputs: list[GraphInput],
        lstm_layers: list[L.Layer],
        lstm_names: dict[Any, str],
        embedding: L.Embedding | None,
        graph_layer: GraphLayer,
        meta: dict[str, Any],
        node_graph: tuple[list[Node], list[Any], list[Any]] | None = None,
    ) -> None:
        data = [i for i in inputs if not i.state]
        nodes: list[Node] = []
        for i in data:
            nodes.append(Node(L.InputLayer(i.name, self._bf_shape(i)), 0, []))
        first = (data[0].name, 0, 0) if data else ("", 0, 0)
        if embedding is not None:
            nodes.append(Node(embedding, 0, [first]))
        nodes.append(Node(graph_layer, 0, [first]))
        for lay in lstm_layers:
            nodes.append(Node(lay, 0, [first]))
        in_refs = [(i.name, 0, 0) for i in data]
        out_refs = [(graph_layer.name, 0, k) for k in range(len(meta[fmt]["outputs"]))]
        if node_graph is not None:
            # the graph as engine layers (the backward pass replays and differentiates it);
            # trace() still runs the graph with its own runner
            nodes, in_refs, out_refs = node_graph
        self.graph_layer = graph_layer
        self._path = path
        self._key = fmt
        self._runner = runner
        self._graph_inputs = inputs
        self._lstm_names = lstm_names
        self._embedding = embedding
        super().__init__(
            path.stem,
            nodes,
            in_refs,
            out_refs,
            source=str(path),
            fmt=fmt,
            meta=meta,
            single_output=len(meta[fmt]["outputs"]) == 1,
        )

    # --- what the model is ------------------------------------------------------------
    @staticmethod
    def _bf_shape(i: GraphInput) -> tuple[int | None, ...]:
        dims: list[int | None] = [d if isinstance(d, int) and d > 0 else None for d in i.dims]
        if i.perm is not None:
            dims = [dims[a] for a in i.perm]
        if i.unbatched:
            dims = [1, *dims]
        return tuple(dims)

    @property
    def input_names(self) -> list[str]:
        """Every graph input, data inputs first, then the optional state inputs."""
        return [i.name for i in self._graph_inputs if not i.state] + [
            i.name for i in self._graph_inputs if i.state
        ]

    @property
    def optional_inputs(self) -> list[str]:
        return [i.name for i in self._graph_inputs if i.state]

    @property
    def input_ranks(self) -> list[int | None]:
        by = {i.name: i for i in self._graph_inputs}
        return [by[n].rank or None for n in self.input_names]

    @property
    def layout_ambiguous(self) -> list[str]:
        return [i.name for i in self._graph_inputs if i.layout == "ambiguous"]

    @property
    def time_major(self) -> bool | None:
        """Whether the (first) sequence input is time-major in the graph."""
        for i in self._graph_inputs:
            if i.reaches_lstm and not i.state:
                return {"time-major": True, "batch-first": False}.get(i.layout)
        return None

    def set_time_major(self, time_major: bool) -> None:
        """Say how the inputs whose layout the sizes could not tell are laid out in the graph:
        ``True`` for ``(T, batch, ...)``, ``False`` for ``(batch, T, ...)``."""
        if not isinstance(time_major, bool):
            raise LstmvizError(f"time_major must be True or False; got {time_major!r}")
        for i in self._graph_inputs:
            if i.layout == "ambiguous":
                _set_layout(i, time_major)
        self.meta[self._key]["time_major"] = self.time_major
        self.meta[self._key]["layout_ambiguous"] = self.layout_ambiguous
        for n in self.nodes:
            if isinstance(n.layer, L.InputLayer):
                inp = next(i for i in self._graph_inputs if i.name == n.layer.name)
                n.layer.batch_shape = self._bf_shape(inp)

    @property
    def embedding(self) -> L.Embedding | None:
        return self._embedding

    @property
    def takes_tokens(self) -> bool:
        return self._embedding is not None

    @property
    def input_features(self) -> int | None:
        if self.takes_tokens:
            return None
        data = [i for i in self._graph_inputs if not i.state]
        if data:
            shape = self._bf_shape(data[0])
            if len(shape) >= 3 and shape[-1] is not None:
                return int(shape[-1])
        lstms = self.lstm_layers
        if lstms:
            lay = lstms[0]
            w = lay.forward.weights if isinstance(lay, L.Bidirectional) else lay.weights
            return int(w.input_dim)
        return None

    @property
    def input_timesteps(self) -> int | None:
        data = [i for i in self._graph_inputs if not i.state]
        if data and data[0].perm is not None:
            t = self._bf_shape(data[0])[1]
            return int(t) if t is not None else None
        return None

    # --- inputs -------------------------------------------------------------------------
    def check_input(self, x: Any) -> Any:
        """``x`` as the batch-first arrays lstmviz shows: one array, or a list with one
        entry per name of :attr:`input_names` (None for an optional input left out)."""
        feeds = self._feeds_batch_first(x)
        return feeds if self._multi() else feeds[0]

    def _multi(self) -> bool:
        return len([i for i in self._graph_inputs if not i.state]) != 1

    def _feeds_batch_first(self, x: Any) -> list[Arr | None]:
        names = self.input_names
        data = [i.name for i in self._graph_inputs if not i.state]
        if isinstance(x, dict):
            unknown = [k for k in x if k not in names]
            if unknown:
                raise InputError(
                    f"{self._src}: {', '.join(map(repr, unknown))} is not an input of the "
                    f"graph; inputs: {', '.join(names)}"
                )
            given = [x.get(n) for n in names]
        elif isinstance(x, (list, tuple)) and (
            len(data) > 1
            or (len(names) > 1 and all(v is None or isinstance(v, np.ndarray) for v in x))
        ):
            if len(x) not in (len(data), len(names)):
                raise InputError(
                    f"{self._src}: the graph has {len(data)} input(s) ({', '.join(data)})"
                    + (
                        f" and optional {', '.join(self.optional_inputs)}"
                        if self.optional_inputs
                        else ""
                    )
                    + f"; got {len(x)} arrays"
                )
            given = list(x) + [None] * (len(names) - len(x))
        else:
            if len(data) != 1:
                raise InputError(
                    f"{self._src}: the graph has {len(data)} inputs ({', '.join(data)}); pass "
                    "a list of arrays or a dict {name: array}"
                )
            given = [x] + [None] * (len(names) - 1)
        out: list[Arr | None] = []
        by = {i.name: i for i in self._graph_inputs}
        for n, a in zip(names, given, strict=True):
            inp = by[n]
            if a is None:
                if not inp.state:
                    raise InputError(f"{self._src}: input {n!r} is required")
                out.append(None)
                continue
            out.append(self._check_one_bf(inp, a))
        return out

    def _check_one_bf(self, inp: GraphInput, x: Any) -> Arr:
        name = inp.name
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise InputError(f"{self._src}: input {name!r} is not an array: {e}") from None
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise InputError(f"{self._src}: input {name!r} must be numeric; found dtype {a.dtype}")
        shape = (
            self._bf_shape(inp)
            if not inp.state
            else tuple(d if isinstance(d, int) else None for d in inp.dims)
        )
        order = (
            "batch-first: (batch, T, ...)"
            if inp.perm is not None and inp.layout != "as declared"
            else "as the graph declares it"
        )
        if (
            not inp.state
            and len(shape) == 2
            and a.ndim == 3
            and a.shape[-1] == 1
            and inp.dtype.kind == "f"
            and inp.reaches_lstm
        ):
            a = a[..., 0]  # one value per step: lstmviz's (batch, T, 1) is the graph's (batch, T)
        if (inp.dims or inp.rank == 0) and (
            a.ndim != len(shape)
            or any(w is not None and w != s for w, s in zip(shape, a.shape, strict=False))
        ):
            raise InputError(
                f"{self._src}: input {name!r} must have shape "
                f"{tuple('?' if v is None else v for v in shape)} ({order}; the graph "
                f"declares {_dims_text(inp.dims)}); found shape {a.shape}"
            )
        if a.size == 0:
            raise InputError(f"{self._src}: input {name!r} is empty (shape {a.shape})")
        if self._embedding is not None and inp is self._token_input():
            a = L.check_token_ids(a, self._embedding.input_dim, self._embedding.name)
        if inp.dtype.kind in "iub":
            if a.dtype.kind == "f" and (
                not np.all(np.isfinite(a)) or not np.all(np.mod(a, 1) == 0)
            ):
                raise InputError(
                    f"{self._src}: input {name!r} takes integers ({inp.dtype}); found "
                    "non-integer values"
                )
            return np.ascontiguousarray(a.astype(inp.dtype))
        a = a.astype(inp.dtype if inp.dtype.kind == "f" else np.float32)
        if not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            raise InputError(
                f"{self._src}: input {name!r} contains NaN or inf (first at index "
                f"{tuple(int(v) for v in bad)})"
            )
        return a

    def example_input(self) -> Any:
        """A small deterministic input that fits every declared size (free sizes: batch 1,
        12 steps): token ids within the vocabulary, else normal floats; batch-first."""
        rng = np.random.default_rng(0)
        out: list[Arr] = []
        for inp in self._graph_inputs:
            if inp.state:
                continue
            shape = [1 if d is None else d for d in self._bf_shape(inp)]
            if inp.perm is not None and len(shape) > 1 and self._bf_shape(inp)[1] is None:
                shape[1] = 12
            shape = [1 if d is None else int(d) for d in shape]
            budget.check_array(shape, 8, f"{self._src}: an example input for {inp.name!r}")
            if self._embedding is not None and inp is self._token_input():
                out.append(rng.integers(0, self._embedding.input_dim, shape))
            elif inp.dtype.kind in "iub":
                out.append(np.zeros(shape, inp.dtype))
            else:
                out.append(rng.normal(0, 1, shape).astype(np.float32))
        return out[0] if len(out) == 1 else out

    def _token_input(self) -> GraphInput | None:
        tok = self.meta[self._key].get("token_input")
        return next((i for i in self._graph_inputs if i.name == tok), None)

    # --- the forward pass -----------------------------------------------------------------
    def trace(
        self,
        x: Any,
        initial_state: dict[str, Any] | None = None,
        step_outputs: bool = True,
        *,
        reuse: Trace | None = None,
        out: Trace | None = None,
    ) -> Trace:
        """Run the graph on ``x`` (batch-first) and record every LSTM.

        Parameters
        ----------
        x : array_like, list or dict
            The batch-first input (token ids ``(batch, T)`` or ``(batch, T, F)``); for several
            graph inputs a list in :attr:`input_names` order or a dict by name. Optional state
            inputs (h0, c0) left out are zeros.
        initial_state : dict, optional
            ``{lstm name: (h0, c0)}`` (``(batch, units)`` each) for LSTMs whose initial state
            the graph does not feed.
        step_outputs : bool
            Also find the model's output at every timestep (``Trace.step_output``).
        reuse, out : Trace, optional
            Accepted for the engine Model's interface; a whole graph allocates its own
            values every run.
        """
        ambiguous = self.layout_ambiguous
        if ambiguous:
            raise InputError(
                f"{self._src}: the graph's sizes do not tell which axis of input "
                f"{ambiguous[0]!r} (declared {_dims_text(self._by_name(ambiguous[0]).dims)}) is "
                f"time and which is batch; say it: {self.LOADER}(path, time_major=True) for "
                "(T, batch, ...), False for (batch, T, ...), or model.set_time_major(...)"
                + (
                    f" (the graph could not be run on a probe input to measure it: {why})"
                    if (why := self.meta[self._key]["probe"]).startswith("failed")
                    else ""
                )
            )
        feeds_bf = self._feeds_batch_first(x)
        feeds = self._native_feeds(feeds_bf)
        run = Run(
            where=self._src,
            names=self._lstm_names,
            initial_states=dict(initial_state or {}),
        )
        outs = self._runner(feeds, run)
        info = self.meta[self._key]
        result = []
        for k, o in enumerate(outs):
            o = np.asarray(o)
            if k in info["batch_first_outputs_index"] and o.ndim >= 2:
                o = np.ascontiguousarray(np.swapaxes(o, 0, 1))
            if o.dtype.kind == "f" and o.dtype != np.float32:
                o = o.astype(np.float32)
            result.append(o)
        data = [a for a, i in zip(feeds_bf, self._in_order(), strict=True) if not i.state]
        inputs: Any = data[0] if len(data) == 1 else data
        step = self._graph_step_output(result, run.traces) if step_outputs else None
        return Trace(
            output=result[0] if self.single_output else result,
            layers=tuple(run.traces),
            inputs=inputs,
            engine="numpy",
            step_output=step,
            layer_outputs={},
        )

    def _by_name(self, name: str) -> GraphInput:
        return next(i for i in self._graph_inputs if i.name == name)

    def _in_order(self) -> list[GraphInput]:
        return [self._by_name(n) for n in self.input_names]

    def _native_feeds(self, feeds_bf: list[Arr | None]) -> dict[str, Arr]:
        """Batch-first arrays -> the graph's layout; zeros for state inputs left out."""
        sizes: dict[str, tuple[int, str]] = {}
        feeds: dict[str, Arr] = {}
        order = self._in_order()
        for inp, a in zip(order, feeds_bf, strict=True):
            if a is None:
                continue
            native = a[0] if inp.unbatched else a
            if inp.perm is not None:
                inv = list(np.argsort(inp.perm))
                native = np.ascontiguousarray(np.transpose(native, inv))
            for d, s in zip(inp.dims, native.shape, strict=False):
                if isinstance(d, str):
                    if d in sizes and sizes[d][0] != s:
                        raise InputError(
                            f"{self._src}: dimension {d!r} is {sizes[d][0]} in input "
                            f"{sizes[d][1]!r} but {s} in input {inp.name!r}"
                        )
                    sizes[d] = (int(s), inp.name)
            feeds[inp.name] = native
        for inp, a in zip(order, feeds_bf, strict=True):
            if a is not None:
                continue
            dims = []
            for d in inp.dims:
                if isinstance(d, int):
                    dims.append(d)
                elif isinstance(d, str) and d in sizes:
                    dims.append(sizes[d][0])
                else:
                    raise InputError(
                        f"{self._src}: optional input {inp.name!r} (declared "
                        f"{_dims_text(inp.dims)}) has a dimension no other input fixes; pass "
                        "it explicitly (as zeros for a zero initial state)"
                    )
            budget.check_array(dims, inp.dtype.itemsize, f"{self._src}: zeros for {inp.name!r}")
            feeds[inp.name] = np.zeros(dims, inp.dtype)
        return feeds

    def _graph_step_output(self, outs: list[Arr], traces: list[LayerTrace]) -> Arr | None:
        """The output at every timestep, ``(batch, T, K)``, when one of the graph's outputs
        is per step of the last LSTM."""
        if not traces:
            return None
        b, t = traces[-1].batch_size, traces[-1].timesteps
        info = self.meta[self._key]
        for k, o in enumerate(outs):
            if o.dtype.kind != "f":
                continue
            if o.ndim == 3 and o.shape[:2] == (b, t) and k not in info["raw_lstm_outputs"]:
                return o
            if o.ndim == 2 and o.shape == (b, t) and k in info["batch_first_outputs_index"]:
                return o[..., None]
            if o.ndim == 2 and b == 1 and o.shape[0] == t and k in info["flat_time_outputs"]:
                return o[None]  # (T * batch, K) with batch 1
        return None


def _dims_text(dims: Sequence[Any]) -> str:
    return (
        "("
        + ", ".join("?" if d is None else str(d) for d in dims)
        + (",)" if len(dims) == 1 else ")")
    )


def _set_layout(inp: GraphInput, time_major: bool) -> None:
    """``(T, B, ...)`` or ``(B, T, ...)`` in the graph, by the user's word."""
    rest = list(range(2, inp.rank))
    inp.perm = [1, 0, *rest] if time_major else [0, 1, *rest]
    inp.layout = "time-major" if time_major else "batch-first"


_PROBE_SIZES = (7, 3, 5, 11, 13, 2, 17, 19, 23, 29, 31, 37)


def probe_run(
    p: Path, runner: Runner, inputs: list[GraphInput], names: dict[Any, str]
) -> Run | None:
    """Run the graph once on zeros whose free dimensions have distinct sizes; None when it
    cannot run that way (the sizes then say nothing)."""
    static = {d for i in inputs for d in i.dims if isinstance(d, int)}
    free = [s for s in _PROBE_SIZES if s not in static]
    named: dict[str, int] = {}
    feeds: dict[str, Arr] = {}
    for inp in inputs:
        if inp.state:
            continue
        shape = []
        for d in inp.dims:
            if isinstance(d, int):
                shape.append(d)
            elif isinstance(d, str):
                if d not in named:
                    if not free:
                        return None
                    named[d] = free.pop(0)
                shape.append(named[d])
            else:
                if not free:
                    return None
                shape.append(free.pop(0))
        budget.check_array(
            shape,
            inp.dtype.itemsize,
            f"{p}: graph input {inp.name!r} declared {_dims_text(inp.dims)}",
        )
        feeds[inp.name] = np.zeros(shape, inp.dtype)
    for inp in inputs:
        if not inp.state:
            continue
        shape = []
        for d in inp.dims:
            if isinstance(d, int):
                shape.append(d)
            elif isinstance(d, str) and d in named:
                shape.append(named[d])
            else:
                return None
        budget.check_array(shape, inp.dtype.itemsize, f"{p}: graph input {inp.name!r}")
        feeds[inp.name] = np.zeros(shape, inp.dtype)
    run = Run(where=str(p), names=names, record=False)
    try:
        outs = runner(feeds, run)
    except (ModelFileError, InputError) as e:
        # what the LSTMs cannot run (UnsupportedLayerError) is refused now; a graph declared
        # with static shapes only fails on every input it accepts: refused now too
        if all(isinstance(d, int) for i in inputs for d in i.dims):
            raise
        run.error = str(e)
        return run
    run.feeds, run.outputs = feeds, outs
    return run


def infer_layouts(
    p: Path,
    inputs: list[GraphInput],
    probe: Run | None,
    time_major: bool | None,
    out_dims: list[list[Any]],
    meta: dict[str, Any],
) -> None:
    """Each sequence input's batch and time axes, and the outputs to make batch-first."""
    calls: dict[str, dict[str, Any]] = {}
    for c in probe.calls if probe else []:
        calls.setdefault(c["layer"], c)
    first_call: dict[str, Any] | None = None
    for inp in inputs:
        if inp.state or not inp.reaches_lstm:
            inp.layout = "as declared"
            continue
        call = calls.get(inp.reaches_lstm[0])
        if probe is None or call is None:
            inp.layout = "ambiguous"
        else:
            if first_call is None:
                first_call = call
            shape = probe.feeds[inp.name].shape
            t_axes = [k for k, s in enumerate(shape) if s == call["T"]]
            b_axes = [k for k, s in enumerate(shape) if s == call["B"]]
            if call["T"] == call["B"] == 1 and shape[:2] == (1, 1):
                inp.perm = list(range(inp.rank))
                inp.layout = "batch-first"
            elif len(t_axes) == 1 and call["B"] == 1 and not b_axes:
                t = t_axes[0]  # a sequence without a batch axis, batch 1 in the LSTM
                inp.perm = [t, *[k for k in range(inp.rank) if k != t]]
                inp.unbatched = True
                inp.layout = "unbatched"
            elif len(t_axes) == 1 and len(b_axes) == 1 and t_axes != b_axes:
                t, b = t_axes[0], b_axes[0]
                rest = [k for k in range(inp.rank) if k not in (t, b)]
                inp.perm = [b, t, *rest]
                inp.layout = (
                    "time-major"
                    if (t, b) == (0, 1)
                    else ("batch-first" if (b, t) == (0, 1) else f"axes batch={b}, time={t}")
                )
            elif b_axes == [0] and call["B"] != call["T"]:
                # batch first and time not on axis 1 alone (an image (batch, 1, 28, 28)
                # reshaped to rows): fed as declared, nothing to transpose
                inp.layout = "batch first (as declared)"
            else:
                inp.layout = "ambiguous"
        if inp.layout == "ambiguous" and time_major is not None and inp.rank >= 2:
            _set_layout(inp, time_major)
        elif (
            time_major is not None
            and inp.layout in ("time-major", "batch-first")
            and ((inp.layout == "time-major") != time_major)
        ):
            raise LstmvizError(
                f"{p}: time_major={time_major} contradicts the graph: input {inp.name!r} "
                f"(declared {_dims_text(inp.dims)}) reaches the LSTM {inp.layout}"
            )
    # outputs whose leading axes are (T, batch) of the first LSTM's call: made batch-first
    if probe is None or first_call is None:
        return
    t, b = first_call["T"], first_call["B"]
    outs = probe.outputs
    for k, o in enumerate(outs):
        if k in meta["raw_lstm_outputs"]:
            continue
        s = np.shape(o)
        if len(s) >= 2 and s[0] == t and s[1] == b and t != b:
            meta["batch_first_outputs"].append(meta["outputs"][k])
            meta["batch_first_outputs_index"].append(k)
        elif len(s) >= 2 and s[0] == b and s[1] == t and t != b:
            pass  # already batch-first
        elif len(s) == 2 and s[0] == t * b:
            meta["flat_time_outputs"].append(k)
