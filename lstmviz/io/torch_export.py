"""Open ``torch.export`` programs (``.pt2``): the whole model runs in torch, its LSTMs are
recorded by the engine.

``torch.export.save(torch.export.export(model, (x,)), "m.pt2")`` stores what ``forward()``
does as a graph of ATen ops -- embedding, dropout, the heads, ``view``s, ``log_softmax`` --
with the weights. lstmviz runs that graph in torch (:class:`torch.fx.Interpreter`), and at
every ``aten.lstm`` (``nn.LSTM``: all layers, both directions, ``proj_size``, ``batch_first``
either way, given h0/c0) and ``aten.lstm_cell`` (``nn.LSTMCell`` called step by step in
Python: each call a step, calls grouped per cell, cells in the order they are first called)
it recomputes the same step with the engine from the same inputs and weights, recording
pre-activations, gates, candidate, c and h. The recorded h and c are checked against what
torch computed (:data:`CHECK_TOL`); a mismatch is refused, never shown. ``trace.output`` is
torch's output.

Trace names: ``<module>_l<k>`` for layer k of an ``nn.LSTM`` at module path ``<module>``
(``rnn_l0``, ``rnn_l1``; ``/forward`` and ``/backward`` when bidirectional), ``<module>`` for
an ``nn.LSTMCell`` (``lstm1``, ``lstm2``).

**Safety.** ``torch.export.load`` unpickles parts of the archive, and falls back to
``torch.load(weights_only=False)``. lstmviz refuses archives holding pickled custom or opaque
objects (read with the unsafe unpickler), and loads the rest with
``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` so that every tensor goes through torch's weights-only
unpickler; a file that needs more is an :class:`~lstmviz.errors.UnsafeModelError`. The graph
holds ATen ops only (custom ops must already be registered in the process; none is imported
from the file). Every node's output size, as the program records it, is checked against the
memory budget before the program runs.

Layout, inputs and h0/c0: as for every whole-graph model (:mod:`lstmviz.io.graph_model`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import budget
from ..engine import convert
from ..engine import layers as L
from ..engine.cell import LSTMWeights, run_lstm
from ..errors import (
    LstmvizError,
    MissingDependencyError,
    ModelFileError,
    UnsafeModelError,
    UnsupportedLayerError,
)
from .graph_model import GraphInput, GraphLayer, GraphModel, Run, infer_layouts, probe_run
from .more_formats import check_file

Arr = np.ndarray
#: How far the engine's recomputed h and c may be from torch's before a trace is refused.
CHECK_TOL = 1e-4
MAX_FILE_BYTES = 4 * 2**30
_LOAD_LOCK = threading.Lock()
_TORCH_ERRORS = (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError)


class Pt2Model(GraphModel):
    """A ``torch.export`` program run by torch with its LSTMs recorded (a
    :class:`~lstmviz.io.graph_model.GraphModel`, ``format == "pt2"``)."""

    LOADER = "lstmviz.io.torch_export.load_pt2"


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Every ``torch.load`` inside uses the weights-only unpickler."""
    with _LOAD_LOCK:
        saved = {
            k: os.environ.get(k)
            for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        }
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _check_archive(p: Path) -> None:
    """Refuse archives with members only an unsafe unpickler reads."""
    try:
        from torch.export.pt2_archive.constants import (
            CUSTOM_OBJ_FILENAME_PREFIX,
            OPAQUE_OBJ_FILENAME_PREFIX,
        )
    except ImportError:
        raise UnsafeModelError(
            f"{p}: this torch version's .pt2 layout is unknown to lstmviz, which cannot check "
            "that loading it runs no pickled code; export to ONNX instead"
        ) from None
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            total = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ModelFileError(f"{p}: not a torch.export archive (not a readable zip: {e})") from None
    budget.check(total, what=f"{p}: the archive's members")
    unsafe = [
        n
        for n in names
        if Path(n).name.startswith((CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX))
    ]
    if unsafe:
        raise UnsafeModelError(
            f"{p}: refused: the program holds pickled Python objects ({unsafe[0]}), which only "
            "an unsafe unpickler could read; export a model without custom objects"
        )
    if not any(n.endswith("models/model.json") or n.endswith(".json") for n in names):
        raise ModelFileError(f"{p}: not a torch.export archive (no serialized program inside)")


def _load_program(p: Path) -> Any:
    import pickle

    import torch

    _check_archive(p)
    try:
        with _weights_only_loads():
            return torch.export.load(str(p))
    except pickle.UnpicklingError as e:
        raise UnsafeModelError(
            f"{p}: refused: loading the program needs the unsafe unpickler "
            f"({str(e).splitlines()[0][:200] if str(e) else 'pickled objects'})"
        ) from None
    except (*_TORCH_ERRORS, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
        raise ModelFileError(
            f"{p}: not a loadable torch.export program ({type(e).__name__}: {str(e)[:300]})"
        ) from None


def _val_shape(node: Any) -> tuple[list[int | str | None], Any] | None:
    """A node's recorded output shape (SymInts as their names) and dtype."""
    v = node.meta.get("val")
    shape = getattr(v, "shape", None)
    if shape is None:
        return None
    dims: list[int | str | None] = []
    for d in shape:
        try:
            dims.append(int(d))
        except (TypeError, ValueError, RuntimeError):  # a symbolic size: its name
            dims.append(str(d))
    return dims, getattr(v, "dtype", None)


def _module_name(node: Any, default: str) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0]
        if isinstance(path, str) and path:
            return path.replace(".", "_").replace("/", "_")
    return default


class _Cells:
    """nn.LSTMCell calls of one cell across a run: one step each."""

    def __init__(self, name: str, order: int) -> None:
        self.name, self.order = name, order
        self.xs: list[Arr] = []
        self.h_in: list[Arr] = []
        self.c_in: list[Arr] = []
        self.h_out: list[Arr] = []
        self.c_out: list[Arr] = []
        self.weights: LSTMWeights | None = None


def _np(t: Any) -> Arr:
    return np.asarray(t.detach().cpu().float().numpy())


def _close(ours: Arr, theirs: Arr) -> float:
    return float(np.max(np.abs(ours - theirs))) if ours.size else 0.0


def _make_runner(p: Path, gm: Any, input_names: list[str], lstm_info: dict[str, Any]) -> Any:
    import torch
    from torch.fx import Interpreter

    lstm_ops = {torch.ops.aten.lstm.input}
    cell_ops = {torch.ops.aten.lstm_cell.default}
    refused = {getattr(torch.ops.aten.lstm, "data", None)}

    class Recorder(Interpreter):
        def __init__(self, module: Any, run: Run) -> None:
            super().__init__(module)
            self.run_ = run
            self.cells: dict[int, _Cells] = {}
            self.events: list[tuple[int, Any]] = []

        def run_node(self, n: Any) -> Any:
            out = super().run_node(n)
            if n.op == "call_function":
                if n.target in lstm_ops:
                    args, _ = self.fetch_args_kwargs_from_env(n)
                    self._lstm(n, args, out)
                elif n.target in cell_ops:
                    args, _ = self.fetch_args_kwargs_from_env(n)
                    self._cell(n, args, out)
                elif n.target in refused:
                    raise UnsupportedLayerError(
                        f"{p}: node {n.name!r} runs an LSTM on packed sequences "
                        "(pack_padded_sequence); export with padded tensors instead"
                    )
            return out

        # --- nn.LSTM ------------------------------------------------------------------
        def _lstm(self, n: Any, args: Any, out: Any) -> None:
            x, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first = args
            if train and dropout:
                raise UnsupportedLayerError(
                    f"{p}: node {n.name!r}: the LSTM was exported in training mode with dropout "
                    f"{dropout} (its output is random); export model.eval()"
                )
            base = lstm_info["base"][n.name]
            xa = _np(x)
            unbatched = xa.ndim == 2
            if unbatched:
                xa = xa[:, None] if not batch_first else xa[None]
            xb = xa if batch_first else xa.transpose(1, 0, 2)  # (B, T, F)
            dirs = 2 if bidirectional else 1
            h0s, c0s = _np(hx[0]), _np(hx[1])
            if unbatched:
                h0s, c0s = h0s[:, None], c0s[:, None]
            proj = h0s.shape[-1] != c0s.shape[-1]
            per = (4 if has_biases else 2) + (1 if proj else 0)
            inp = xb
            h_n, c_n = [], []
            for layer in range(int(num_layers)):
                lname = f"{base}_l{layer}"
                outs = []
                for d in range(dirs):
                    k = layer * dirs + d
                    ws = [_np(t) for t in params[k * per : (k + 1) * per]]
                    w_ih, w_hh = ws[0], ws[1]
                    b_ih, b_hh = (ws[2], ws[3]) if has_biases else (None, None)
                    w = (
                        convert.from_torch_proj(w_ih, w_hh, ws[-1], b_ih, b_hh)
                        if proj
                        else convert.from_torch(w_ih, w_hh, b_ih, b_hh)
                    )
                    direction = "backward" if d == 1 else "forward"
                    tname = f"{lname}/{direction}" if dirs == 2 else lname
                    lt = run_lstm(
                        inp,
                        w,
                        h0=h0s[k],
                        c0=c0s[k],
                        go_backwards=d == 1,
                        name=tname,
                        layer_name=lname,
                        direction=direction,
                    )
                    self._note(n, lt, tname, lname, w, inp, layer)
                    outs.append(lt.h.transpose(1, 0, 2))
                    last = 0 if d == 1 else lt.timesteps - 1
                    h_n.append(lt.h[last])
                    c_n.append(lt.c[last])
                inp = np.concatenate(outs, axis=-1) if dirs == 2 else outs[0]
            y = _np(out[0])
            if unbatched:
                y = y[:, None] if not batch_first else y[None]
            ref = y if batch_first else y.transpose(1, 0, 2)
            h_ref, c_ref = _np(out[1]), _np(out[2])
            if unbatched:
                h_ref, c_ref = h_ref[:, None], c_ref[:, None]
            err = max(_close(inp, ref), _close(np.stack(h_n), h_ref), _close(np.stack(c_n), c_ref))
            if not err <= CHECK_TOL:
                raise LstmvizError(
                    f"{p}: the engine's recording of LSTM node {n.name!r} ({base}) differs "
                    f"from torch's by {err:.2g} (more than {CHECK_TOL}); refusing to show it"
                )
            for _, lt in self.events[-int(num_layers) * dirs :] if self.run_.record else []:
                lt.meta["torch_max_error"] = err  # h and c against what torch computed

        def _note(
            self, n: Any, lt: Any, tname: str, lname: str, w: LSTMWeights, inp: Arr, layer: int
        ) -> None:
            run = self.run_
            run.calls.append(
                {
                    "name": tname,
                    "layer": lname,
                    "T": inp.shape[1],
                    "B": inp.shape[0],
                    "weights": w,
                    "node": n.name,
                    "input_layer": layer == 0,
                    "direction": lt.direction,
                }
            )
            if run.record:
                self.events.append((len(self.events), lt))

        # --- nn.LSTMCell ---------------------------------------------------------------
        def _cell(self, n: Any, args: Any, out: Any) -> None:
            x, hx, w_ih, w_hh = args[0], args[1], args[2], args[3]
            b_ih = args[4] if len(args) > 4 else None
            b_hh = args[5] if len(args) > 5 else None
            key = id(w_ih)
            group = self.cells.get(key)
            if group is None:
                group = self.cells[key] = _Cells(lstm_info["base"][n.name], len(self.events))
                self.events.append((len(self.events), group))
                group.weights = convert.from_torch(
                    _np(w_ih),
                    _np(w_hh),
                    None if b_ih is None else _np(b_ih),
                    None if b_hh is None else _np(b_hh),
                )
            xa = _np(x)
            group.xs.append(xa if xa.ndim == 2 else xa[None])
            h_in, c_in = _np(hx[0]), _np(hx[1])
            group.h_in.append(h_in if h_in.ndim == 2 else h_in[None])
            group.c_in.append(c_in if c_in.ndim == 2 else c_in[None])
            h, c = _np(out[0]), _np(out[1])
            group.h_out.append(h if h.ndim == 2 else h[None])
            group.c_out.append(c if c.ndim == 2 else c[None])

        def finish(self) -> None:
            """The cells' calls as one sequence each, checked against torch."""
            run = self.run_
            for _, ev in sorted(self.events, key=lambda e: e[0]):
                if not isinstance(ev, _Cells):
                    if run.record:
                        run.traces.append(ev)
                    continue
                g = ev
                assert g.weights is not None
                x = np.stack(g.xs, axis=1)  # (B, T, F)
                lt = run_lstm(
                    x, g.weights, h0=g.h_in[0], c0=g.c_in[0], name=g.name, layer_name=g.name
                )
                err = max(
                    _close(lt.h.transpose(1, 0, 2), np.stack(g.h_out, 1)),
                    _close(lt.c.transpose(1, 0, 2), np.stack(g.c_out, 1)),
                )
                if not err <= CHECK_TOL:
                    raise LstmvizError(
                        f"{p}: the {len(g.xs)} calls of the nn.LSTMCell {g.name!r} are not one "
                        f"sequence (each call's state the previous call's output; they differ "
                        f"by {err:.2g}); lstmviz shows a cell's calls as the steps of one "
                        "sequence"
                    )
                run.calls.append(
                    {
                        "name": g.name,
                        "layer": g.name,
                        "T": x.shape[1],
                        "B": x.shape[0],
                        "weights": g.weights,
                        "node": g.name,
                        "input_layer": True,
                        "direction": "forward",
                    }
                )
                lt.meta["torch_max_error"] = err
                if run.record:
                    run.traces.append(lt)

    def runner(feeds: dict[str, Arr], run: Run) -> list[Any]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in input_names]
        rec = Recorder(gm, run)
        try:
            with torch.no_grad():
                out = rec.run(*args)
            rec.finish()
        except LstmvizError:
            raise
        except MemoryError:
            raise LstmvizError(f"{p}: running the program ran out of memory") from None
        except _TORCH_ERRORS as e:
            raise ModelFileError(
                f"{p}: the program cannot run on inputs of shapes "
                f"{[tuple(a.shape) for a in args]}: {type(e).__name__}: {str(e)[:300]}"
            ) from None
        outs = _flat(out)
        return [
            o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs
        ]

    return runner


def load_pt2(path: str | os.PathLike[str], time_major: bool | None = None) -> Pt2Model:
    """Open a ``torch.export`` program (``.pt2``) as a model run by torch (``format ==
    "pt2"``).

    Parameters
    ----------
    path : path
        The ``.pt2`` file written by ``torch.export.save``.
    time_major : bool, optional
        How the sequence inputs are laid out, for programs whose shapes cannot tell
        (see :mod:`lstmviz.io.graph_model`).
    """
    p = Path(path)
    check_file(p)
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "torch", "torch", what=f"Opening {p.name} (a torch.export program)"
        ) from None
    if time_major is not None and not isinstance(time_major, bool):
        raise LstmvizError(f"time_major must be True, False or None; got {time_major!r}")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{p}: larger than 4 GB, not a program lstmviz reads")
    ep = _load_program(p)
    try:
        gm = ep.module()
    except _TORCH_ERRORS as e:
        raise ModelFileError(f"{p}: the program cannot be rebuilt ({e})") from None
    graph = gm.graph
    nodes = list(graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    lstm_nodes = [
        n
        for n in nodes
        if n.op == "call_function"
        and n.target in (torch.ops.aten.lstm.input, torch.ops.aten.lstm_cell.default)
    ]
    if not lstm_nodes:
        ops = sorted({str(n.target) for n in nodes if n.op == "call_function"})
        raise ModelFileError(
            f"{p}: no LSTM in the program (no aten.lstm / aten.lstm_cell op; ops: "
            f"{', '.join(ops[:20])}). Export a model with nn.LSTM or nn.LSTMCell, without "
            "run_decompositions()"
        )
    # every value the program records, against the budget, before anything runs
    total = 0
    for n in nodes:
        vs = _val_shape(n)
        if vs is not None and all(isinstance(d, int) for d in vs[0]):
            item = getattr(vs[1], "itemsize", 4) or 4
            count = 1
            for d in vs[0]:
                count *= int(d or 0)
            total += item * count
    budget.check(total, what=f"{p}: the program's intermediate values")

    # names: nn.LSTM at module "rnn" -> rnn_l0, rnn_l1; nn.LSTMCell "lstm1" -> lstm1
    base: dict[str, str] = {}
    used: set[str] = set()
    cell_names: dict[Any, str] = {}
    for k, n in enumerate(lstm_nodes):
        default = f"lstm{k}"
        name = _module_name(n, default)
        if n.target == torch.ops.aten.lstm_cell.default:
            w = n.args[2]
            key = getattr(w, "target", None) or getattr(w, "name", str(k))
            if key in cell_names:
                base[n.name] = cell_names[key]
                continue
            while name in used:
                name += "_"
            cell_names[key] = name
        else:
            while name in used:
                name += "_"
        used.add(name)
        base[n.name] = name
    info = {"base": base}

    inputs: list[GraphInput] = []
    for ph in placeholders:
        vs = _val_shape(ph)
        if vs is None:
            raise UnsupportedLayerError(
                f"{p}: program input {ph.name!r} is not a tensor; lstmviz feeds tensors only"
            )
        dims, dt = vs
        try:
            dtype = np.dtype(torch.empty((), dtype=dt).numpy().dtype)
        except (TypeError, RuntimeError):
            raise UnsupportedLayerError(f"{p}: program input {ph.name!r} has dtype {dt}") from None
        inputs.append(
            GraphInput(ph.target if isinstance(ph.target, str) else ph.name, dims, 0, dtype)
        )
    _classify(inputs, placeholders, lstm_nodes, base, torch)
    input_names = [i.name for i in inputs]
    runner = _make_runner(p, gm, input_names, info)
    names = {n.name: base[n.name] for n in lstm_nodes}
    probe = probe_run(p, runner, inputs, names)
    if probe is None or probe.error:
        raise ModelFileError(
            f"{p}: the program does not run on inputs of its recorded shapes"
            + (f" ({probe.error})" if probe is not None and probe.error else "")
        )
    out_node = next(n for n in nodes if n.op == "output")
    outs = _flat(out_node.args[0])
    out_names = [getattr(o, "name", str(o)) for o in outs]
    meta_pt2: dict[str, Any] = {
        "outputs": out_names,
        "inputs": input_names,
        "state_inputs": [i.name for i in inputs if i.state],
        "lstm_nodes": {base[n.name]: n.name for n in lstm_nodes},
        "torch_version": torch.__version__,
        "batch_first_outputs": [],
        "batch_first_outputs_index": [],
        "flat_time_outputs": [],
        "raw_lstm_outputs": [],
        "probe": "ok",
    }
    infer_layouts(p, inputs, probe, time_major, [[] for _ in outs], meta_pt2)
    meta_pt2["time_major"] = next(
        (
            {"time-major": True, "batch-first": False}.get(i.layout)
            for i in inputs
            if i.reaches_lstm and not i.state
        ),
        None,
    )
    meta_pt2["layout_ambiguous"] = [i.name for i in inputs if i.layout == "ambiguous"]
    meta_pt2["input_layouts"] = {i.name: i.layout for i in inputs}

    # LSTM layers with the weights the probe ran
    layers: list[L.Layer] = []
    by_layer: dict[str, list[dict[str, Any]]] = {}
    for c in probe.calls:
        by_layer.setdefault(c["layer"], []).append(c)
    for lname, calls in by_layer.items():
        ws = [c["weights"] for c in calls]
        if len(ws) == 2:
            layers.append(
                L.Bidirectional(
                    lname,
                    L.LSTM(f"{lname}_forward", ws[0], return_sequences=True),
                    L.LSTM(f"{lname}_backward", ws[1], return_sequences=True, go_backwards=True),
                    "concat",
                )
            )
        else:
            layers.append(L.LSTM(lname, ws[0], return_sequences=True))
    embedding, token_input = _embedding(gm, inputs, placeholders, torch)
    meta_pt2["token_input"] = token_input
    acts = [_activation(o, torch) for o in outs]
    params = sum(int(t.numel()) for t in gm.parameters()) if hasattr(gm, "parameters") else 0
    counts: dict[str, int] = {}
    for n in nodes:
        if n.op == "call_function":
            op = str(getattr(n.target, "__name__", n.target)).split(".")[0]
            counts[op] = counts.get(op, 0) + 1
    graph_layer = GraphLayer(
        "pt2_graph",
        counts,
        max(0, params - sum(lay.n_params for lay in layers)),
        "TorchExportProgram",
        "torch",
    )
    meta = {"pt2": meta_pt2, "output_activation": acts, "output_layer": out_names}
    return Pt2Model(p, "pt2", runner, inputs, layers, names, embedding, graph_layer, meta)


def _flat(a: Any) -> list[Any]:
    if isinstance(a, (list, tuple)):
        return [x for v in a for x in _flat(v)]
    return [a]


def _classify(
    inputs: list[GraphInput],
    placeholders: list[Any],
    lstm_nodes: list[Any],
    base: dict[str, str],
    torch: Any,
) -> None:
    """Which program inputs reach an LSTM's input (x) and which only its (h0, c0)."""
    by_name = {i.name: i for i in inputs}
    for ph in placeholders:
        inp = by_name[ph.target if isinstance(ph.target, str) else ph.name]
        slots: set[str] = set()
        seen: set[Any] = set()
        todo = [ph]
        while todo:
            v = todo.pop()
            if v in seen:
                continue
            seen.add(v)
            for u in v.users:
                if u in lstm_nodes:
                    in_x = v in _flat(u.args[0])
                    in_state = v in _flat(u.args[1])
                    if in_x:
                        slots.add("x")
                        layer = base[u.name] + (
                            "_l0" if u.target == torch.ops.aten.lstm.input else ""
                        )
                        if layer not in inp.reaches_lstm:
                            inp.reaches_lstm.append(layer)
                    if in_state:
                        slots.add("state")
                    if not (in_x or in_state):
                        slots.add("weights")
                    continue
                todo.append(u)
        inp.state = slots == {"state"}


def _embedding(gm: Any, inputs: list[GraphInput], placeholders: list[Any], torch: Any) -> Any:
    """An integer input that indexes a parameter with aten.embedding: the model takes tokens."""
    by_name = {i.name: i for i in inputs}
    for ph in placeholders:
        inp = by_name[ph.target if isinstance(ph.target, str) else ph.name]
        if inp.state or inp.dtype.kind not in "iu" or not inp.reaches_lstm:
            continue
        for u in ph.users:
            if u.op == "call_function" and u.target == torch.ops.aten.embedding.default:
                w = u.args[0]
                if getattr(w, "op", "") == "get_attr":
                    table = gm
                    for part in str(w.target).split("."):
                        table = getattr(table, part, None)
                    if isinstance(table, torch.Tensor) and table.ndim == 2:
                        name = str(w.target).replace(".", "_")
                        return L.Embedding(name, table.detach().float().numpy()), inp.name
    return None, None


_ACTS = {
    "log_softmax": "log_softmax",
    "_log_softmax": "log_softmax",
    "softmax": "softmax",
    "_softmax": "softmax",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "linear": "linear",
    "addmm": "linear",
    "mm": "linear",
    "lstm": "lstm",
    "lstm_cell": "lstm",
}
_SHAPE_OPS = (
    "view",
    "reshape",
    "dropout",
    "squeeze",
    "unsqueeze",
    "transpose",
    "permute",
    "contiguous",
    "clone",
    "alias",
    "_unsafe_view",
    "flatten",
    "getitem",
    "select",
    "slice",
    "cat",
    "stack",
)


def _activation(node: Any, torch: Any) -> str | None:
    cur = node
    for _ in range(32):
        if getattr(cur, "op", "") != "call_function":
            return None
        name = str(getattr(cur.target, "__name__", cur.target)).split(".")[0]
        if name in _ACTS:
            return _ACTS[name]
        if name in _SHAPE_OPS and cur.args:
            nxt = _flat(cur.args[0])[0] if name in ("cat", "stack") else cur.args[0]
            if not hasattr(nxt, "op"):
                return None
            cur = nxt
            continue
        return None
    return None
