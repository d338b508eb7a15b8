"""Live PyTorch models: torch runs the model, forward hooks record every ``nn.LSTM`` and
``nn.LSTMCell``, and the engine recomputes the gates from what was recorded.

- ``nn.LSTM`` (any ``num_layers``, ``bidirectional``, ``proj_size``, ``batch_first`` either
  way, packed sequences, a given ``(h0, c0)``, unbatched input): torch runs its fused LSTM;
  the hook keeps the input, the initial state, the output and ``(h_n, c_n)``. The last layer's
  gates come from torch's own h at every step (one matrix product); the layers below, whose
  h torch does not return, run in the engine and are checked against ``h_n`` / ``c_n``.
  Calls that continue one another (a decoder fed one step at a time, each call starting from
  the state the previous one returned) become one trace.
- ``nn.LSTMCell`` called step by step in Python: each call is a step, the calls of one cell
  instance form its trace, and cells called one after the other appear as stacked layers.

torch is imported inside functions only: importing this module costs nothing.
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
from ..engine.cell import LSTMWeights, run_lstm
from ..engine.convert import from_torch, from_torch_proj
from ..engine.layers import Layer
from ..engine.trace import LayerTrace
from ..errors import InputError, LstmvizError, MissingDependencyError, UnsupportedLayerError
from .common import (
    FrameworkLayer,
    LiveModel,
    Vocabulary,
    check_close,
    concat_traces,
    layout_of,
    model_failed,
    replace_route,
    spot_check,
    state_for,
    to_numpy,
    trace_from_sequence,
    trace_from_steps,
)

FRAMEWORK = "torch"


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - only when torch is missing
        raise MissingDependencyError("torch", what="Tracing a live PyTorch model") from None
    return torch


def _view(t: Any) -> np.ndarray:
    """A tensor's values as float32 NumPy (shares memory when it can: copy before keeping)."""
    return np.asarray(t.detach().float().cpu().numpy(), dtype=np.float32)


def _np(t: Any) -> np.ndarray:
    """A float32 NumPy copy of a tensor."""
    return np.array(_view(t), copy=True)


def _time_major(t: Any, batch_first: bool) -> np.ndarray:
    """A ``(B, T, ...)`` (``batch_first``) or ``(T, B, ...)`` tensor copied as ``(T, B, ...)``."""
    v = _view(t)
    return np.ascontiguousarray(v.swapaxes(0, 1)) if batch_first else np.array(v, copy=True)


# ------------------------------------------------------------------------- what the hooks keep
@dataclass
class LSTMCall:
    """One call of an ``nn.LSTM``: everything time-major ``(T, B, ...)``."""

    order: int
    module: Any
    path: str
    x: np.ndarray  # (T, B, F)
    h0: np.ndarray  # (L*D, B, P)
    c0: np.ndarray  # (L*D, B, H)
    out: np.ndarray  # (T, B, D*P)
    h_n: np.ndarray  # (L*D, B, P)
    c_n: np.ndarray  # (L*D, B, H)
    mask: np.ndarray | None  # (B, T) for packed sequences
    seen_shape: tuple[int, ...]  # the input's shape as the module received it
    batch_first: bool
    packed: bool
    #: the engine's traces ``[layer][direction]`` when the engine replaced torch's LSTM
    #: (the spot-check route), else None
    stack: list[list[LayerTrace]] | None = None


@dataclass
class CellCall:
    """One call of an ``nn.LSTMCell``: ``(B, ...)`` each."""

    order: int
    x: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    h: np.ndarray
    c: np.ndarray


@dataclass
class Recorder:
    """Collects the calls of every hooked module during one forward pass."""

    paths: dict[int, str]
    thread: int = field(default_factory=threading.get_ident)  # calls from other threads: not ours
    lstm_calls: list[LSTMCall] = field(default_factory=list)
    cell_calls: dict[int, list[CellCall]] = field(default_factory=dict)
    cells: dict[int, Any] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    #: modules whose call the engine has just replaced (recorded already; the hook skips it)
    replaced: set[int] = field(default_factory=set)

    def on_lstm(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        if id(module) in self.replaced:
            self.replaced.discard(id(module))
            return
        torch = _torch()
        inp: Any = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        y, (h_n, c_n) = out
        d = 2 if module.bidirectional else 1
        n = module.num_layers * d
        mask = None
        packed = isinstance(inp, torch.nn.utils.rnn.PackedSequence)
        if packed:
            from torch.nn.utils.rnn import pad_packed_sequence

            xp, lengths = pad_packed_sequence(inp, batch_first=False)
            yp, _ = pad_packed_sequence(y, batch_first=False, total_length=xp.shape[0])
            x, yy = _np(xp), _np(yp)
            steps = x.shape[0]
            mask = np.arange(steps)[None, :] < lengths.cpu().numpy()[:, None]  # (B, T)
            seen: tuple[int, ...] = ()
        else:
            seen = tuple(inp.shape)
            if inp.dim() == 2:  # unbatched (T, F)
                x, yy = _np(inp)[:, None], _np(y)[:, None]
            else:
                x = _time_major(inp, module.batch_first)
                yy = _time_major(y, module.batch_first)
        hn, cn = _np(h_n), _np(c_n)
        if hn.ndim == 2:  # unbatched
            hn, cn = hn[:, None], cn[:, None]
        batch = x.shape[1]
        p = hn.shape[2]
        if hx is None:
            h0 = np.zeros((n, batch, p), np.float32)
            c0 = np.zeros((n, batch, module.hidden_size), np.float32)
        else:
            h0, c0 = _np(hx[0]), _np(hx[1])
            if h0.ndim == 2:
                h0, c0 = h0[:, None], c0[:, None]
        self.lstm_calls.append(
            LSTMCall(
                order=next(self.counter),
                module=module,
                path=self.paths.get(id(module), ""),
                x=np.ascontiguousarray(x),
                h0=h0,
                c0=c0,
                out=np.ascontiguousarray(yy),
                h_n=hn,
                c_n=cn,
                mask=mask,
                seen_shape=seen,
                batch_first=bool(module.batch_first),
                packed=packed,
            )
        )

    def on_cell(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        inp: Any = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        h, c = out
        x = _np(inp)
        h1, c1 = _np(h), _np(c)
        if x.ndim == 1:  # unbatched
            x, h1, c1 = x[None], h1[None], c1[None]
        if hx is None:
            hp = np.zeros_like(h1)
            cp = np.zeros_like(c1)
        else:
            hp, cp = _np(hx[0]), _np(hx[1])
            if hp.ndim == 1:
                hp, cp = hp[None], cp[None]
        self.cells[id(module)] = module
        self.cell_calls.setdefault(id(module), []).append(
            CellCall(next(self.counter), x, hp, cp, h1, c1)
        )


# ------------------------------------------------------------------------- weights
#: Converted weights per module, reused while its parameters are the same tensors at the
#: same version (torch counts every in-place change): a retrace skips the conversion.
_WEIGHTS: weakref.WeakKeyDictionary[Any, dict[tuple[int, bool], tuple[Any, LSTMWeights]]] = (
    weakref.WeakKeyDictionary()
)


def lstm_weights(module: Any, layer: int, reverse: bool) -> LSTMWeights:
    """One layer and direction of an ``nn.LSTM`` in Keras's layout; ``layer=-1`` for an
    ``nn.LSTMCell`` (its parameters have no ``_l<k>`` suffix)."""
    sfx = ("" if layer < 0 else f"_l{layer}") + ("_reverse" if reverse else "")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    tensors = [getattr(module, f"{n}{sfx}", None) for n in names]
    key = tuple(
        None if t is None else (id(t), t.data_ptr(), t._version, str(t.dtype)) for t in tensors
    )
    cache = _WEIGHTS.setdefault(module, {})
    hit = cache.get((layer, reverse))
    if hit is not None and hit[0] == key:
        return hit[1]
    w = _convert(module, sfx, tensors)
    cache[(layer, reverse)] = (key, w)
    return w


def _convert(module: Any, sfx: str, tensors: list[Any]) -> LSTMWeights:
    w_ih, w_hh, b_ih, b_hh, w_hr = (None if t is None else _np(t) for t in tensors)
    if w_ih is None or w_hh is None:
        raise UnsupportedLayerError(
            f"{type(module).__name__}: no weight_ih{sfx}/weight_hh{sfx}; lstmviz reads the "
            "parameters of torch.nn.LSTM and torch.nn.LSTMCell"
        )
    if w_hr is not None:
        return from_torch_proj(w_ih, w_hh, w_hr, b_ih, b_hh)
    return from_torch(w_ih, w_hh, b_ih, b_hh)


# ------------------------------------------------------------------------- calls -> traces
def _chains(calls: list[LSTMCall]) -> list[list[LSTMCall]]:
    """Calls of one module grouped so that each group continues one sequence: the next call
    starts exactly from the ``(h_n, c_n)`` the previous one returned."""
    groups: list[list[LSTMCall]] = []
    for call in calls:
        prev = groups[-1][-1] if groups else None
        if (
            prev is not None
            and not prev.packed
            and not call.packed
            and not call.module.bidirectional
            and prev.h_n.shape == call.h0.shape
            and np.array_equal(prev.h_n, call.h0)
            and np.array_equal(prev.c_n, call.c0)
        ):
            groups[-1].append(call)
        else:
            groups.append([call])
    return groups


def _check_dropout(module: Any, path: str) -> None:
    if module.training and module.num_layers > 1 and float(module.dropout) > 0:
        raise LstmvizError(
            f"nn.LSTM {path or '(the model)'!r} applies dropout={module.dropout} between its "
            "layers and the model is in training mode: the dropped values are random and "
            "cannot be recorded. Call model.eval() before tracing"
        )


def lstm_call_traces(call: LSTMCall, base: str) -> list[LayerTrace]:
    """Every layer and direction of one ``nn.LSTM`` call (see the module docstring)."""
    m = call.module
    _check_dropout(m, call.path)
    dirs = 2 if m.bidirectional else 1
    layers = int(m.num_layers)
    p = call.h_n.shape[2]
    out: list[LayerTrace] = []
    layer_in = call.x  # (T, B, F)
    for k in range(layers):
        lname = base if layers == 1 else f"{base}_l{k}"
        halves = []
        for d in range(dirs):
            name = f"{lname}/{'backward' if d else 'forward'}" if dirs == 2 else lname
            j = k * dirs + d
            # nn.LSTM returns every step's h and (h_n, c_n)
            meta = {
                "module": call.path,
                "torch_layer": k,
                "return_sequences": True,
                "return_state": True,
            }
            if call.stack is not None:  # the engine ran it in torch's place (spot-checked)
                lt = replace(
                    call.stack[k][d],
                    name=name,
                    layer_name=lname,
                    meta={**call.stack[k][d].meta, **meta},
                )
                out.append(lt)
                continue
            w = lstm_weights(m, k, reverse=d == 1)
            common: dict[str, Any] = {
                "name": name,
                "weights": w,
                "mask": call.mask,
                "go_backwards": d == 1,
                "layer_name": lname,
                "direction": "backward" if d else "forward",
                "meta": meta,
            }
            if k == layers - 1:  # torch returned this layer's h at every step
                lt = trace_from_sequence(
                    x=layer_in,
                    h=call.out if dirs == 1 else call.out[..., d * p : (d + 1) * p],
                    h0=call.h0[j],
                    c0=call.c0[j],
                    c_last=call.c_n[j],
                    framework=FRAMEWORK,
                    **common,
                )
            else:  # only its final state is known: the engine runs it, checked at the end
                lt = run_lstm(
                    layer_in.transpose(1, 0, 2),
                    w,
                    h0=call.h0[j],
                    c0=call.c0[j],
                    mask=call.mask,
                    go_backwards=d == 1,
                    name=name,
                    layer_name=lname,
                    direction=common["direction"],
                )
                last = 0 if d == 1 else lt.timesteps - 1
                for what, ours, theirs in (
                    ("final hidden state h", lt.h[last], call.h_n[j]),
                    ("final cell state c", lt.c[last], call.c_n[j]),
                ):
                    check_close(
                        ours,
                        theirs,
                        what=what,
                        layer=name,
                        framework=FRAMEWORK,
                        axes="(batch, unit)",
                    )
                lt.meta.update({"engine": "torch (live)", "verified": "full", **meta})
            halves.append(lt)
            out.append(lt)
        if call.stack is not None:
            continue
        layer_in = np.concatenate([lt.h for lt in halves], axis=2) if dirs == 2 else halves[0].h
    return out


def cell_traces(module: Any, path: str, calls: list[CellCall]) -> list[tuple[int, LayerTrace]]:
    """The traces of one ``nn.LSTMCell``: one per run of calls that continue one another."""
    base = path or "lstm_cell"
    w = lstm_weights(module, -1, reverse=False)
    segments: list[list[CellCall]] = []
    for call in calls:
        prev = segments[-1][-1] if segments else None
        if (
            prev is not None
            and prev.h.shape == call.h_prev.shape
            and np.array_equal(prev.h, call.h_prev)
            and np.array_equal(prev.c, call.c_prev)
        ):
            segments[-1].append(call)
        else:
            segments.append([call])
    out = []
    for s, seg in enumerate(segments):
        name = base if s == 0 else f"{base}#{s + 1}"
        lt = trace_from_steps(
            name=name,
            weights=w,
            x=np.stack([c.x for c in seg]),
            h_prev=np.stack([c.h_prev for c in seg]),
            c_prev=np.stack([c.c_prev for c in seg]),
            h=np.stack([c.h for c in seg]),
            c=np.stack([c.c for c in seg]),
            framework=FRAMEWORK,
            meta={
                "module": path,
                "calls": len(seg),
                "return_sequences": True,
                "return_state": True,
            },
        )
        out.append((seg[0].order, lt))
    return out


# ------------------------------------------------------------------ the engine in torch's place
def _replaceable(module: Any, inp: Any, hx: Any) -> bool:
    """Whether the engine can run this ``nn.LSTM`` call in torch's place: torch's own
    ``nn.LSTM.forward`` (not a subclass's), no ``proj_size``, no packed sequence, float32 on
    the CPU, no parametrization, no dropout being applied. Anything else runs in torch with
    every step checked."""
    torch = _torch()
    if type(module).forward is not torch.nn.LSTM.forward or int(module.proj_size or 0):
        return False
    if not isinstance(inp, torch.Tensor) or inp.dim() not in (2, 3):
        return False  # a PackedSequence, or something torch will refuse itself
    if module.training and module.num_layers > 1 and float(module.dropout) > 0:
        return False  # refused with its message on the full route
    tensors = [inp, *module._flat_weights]
    if hx is not None:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            return False
        tensors += list(hx)
    if not all(
        isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.device.type == "cpu"
        for t in tensors
    ):
        return False
    from torch.nn.utils import parametrize

    return not parametrize.is_parametrized(module)


def _state(t: Any, unbatched: bool) -> np.ndarray:
    a = _np(t)
    return a[:, None] if unbatched else a


class _EngineForward:
    """``nn.LSTM.forward`` for the duration of one trace: the engine runs the LSTM (every
    layer and direction) in torch's place, torch's own forward spot-checks it
    (:func:`~lstmviz.bridge.common.spot_check`), and torch gets the engine's output and
    final state to run the rest of the model on. Calls the engine cannot replace, calls from
    other threads and, with ``verify="auto"``, small batches go to torch's own forward."""

    def __init__(self, rec: Recorder, module: Any, verify: str) -> None:
        self.rec = rec
        self.module = module
        self.verify = verify
        self.orig = module.forward  # the class's forward, bound: no hooks, no recursion

    def __call__(self, input: Any, hx: Any = None) -> Any:
        m = self.module
        if threading.get_ident() != self.rec.thread or not _replaceable(m, input, hx):
            return self.orig(input, hx)
        unbatched = input.dim() == 2
        batch = 1 if unbatched else int(input.shape[0 if m.batch_first else 1])
        if not replace_route(self.verify, batch):
            return self.orig(input, hx)
        return self._run(input, hx, unbatched)

    def _run(self, input: Any, hx: Any, unbatched: bool) -> Any:
        torch = _torch()
        m = self.module
        path = self.rec.paths.get(id(m), "")
        x = _view(input)
        if unbatched:
            x = x[:, None]  # (T, 1, F)
        # (B, T, F) for run_lstm, a copy (the model's code may change its tensor later)
        x_bt = np.array(x if m.batch_first and not unbatched else x.swapaxes(0, 1), order="C")
        batch, steps, feats = x_bt.shape
        dirs = 2 if m.bidirectional else 1
        n = int(m.num_layers) * dirs
        hidden = int(m.hidden_size)
        if batch == 0 or steps == 0:
            return self.orig(input, hx)  # torch says what it makes of an empty input
        # pre-activations, gates, c, h and the input of every layer and direction
        budget.check_array(
            (n * steps * batch, 10 * hidden + feats), 4, f"the trace of nn.LSTM {path!r}"
        )
        if hx is None:
            h0 = np.zeros((n, batch, hidden), np.float32)
            c0 = np.zeros((n, batch, hidden), np.float32)
        else:
            h0, c0 = _state(hx[0], unbatched), _state(hx[1], unbatched)
            if h0.shape != (n, batch, hidden) or c0.shape != (n, batch, hidden):
                return self.orig(input, hx)  # torch raises its own error for the shapes
        stack: list[list[LayerTrace]] = []
        layer_in = x_bt
        for k in range(int(m.num_layers)):
            halves = []
            for d in range(dirs):
                j = k * dirs + d
                lt = run_lstm(
                    layer_in,
                    lstm_weights(m, k, reverse=d == 1),
                    h0=h0[j],
                    c0=c0[j],
                    go_backwards=d == 1,
                    name=f"{path or 'lstm'}_l{k}",
                    direction="backward" if d else "forward",
                )
                kernel = lt.meta.get("engine")
                lt.meta.update({"engine": "torch (live)", "verified": "spot", "kernel": kernel})
                halves.append(lt)
            stack.append(halves)
            if k + 1 < m.num_layers:
                layer_in = _batch_major(halves)
        spot_check(stack, self._torch_run, name=path or "lstm", framework=FRAMEWORK)
        # the output torch gets: one copy of the engine's h (the model may change it in place)
        time_major = unbatched or not m.batch_first
        y = _time_major_h(stack[-1]) if time_major else _batch_major(stack[-1])
        flat = [lt for layer in stack for lt in layer]
        h_n = np.stack([lt.h[0 if lt.go_backwards else -1] for lt in flat])
        c_n = np.stack([lt.c[0 if lt.go_backwards else -1] for lt in flat])
        self.rec.lstm_calls.append(
            LSTMCall(
                order=next(self.rec.counter),
                module=m,
                path=path,
                x=x_bt.swapaxes(0, 1),
                h0=h0,
                c0=c0,
                out=y if time_major else y.swapaxes(0, 1),
                h_n=h_n,
                c_n=c_n,
                mask=None,
                seen_shape=tuple(input.shape),
                batch_first=bool(m.batch_first),
                packed=False,
                stack=stack,
            )
        )
        self.rec.replaced.add(id(m))  # recorded: the forward hook skips this call
        if unbatched:
            y, h_n, c_n = y[:, 0], h_n[:, 0], c_n[:, 0]
        as_t = torch.from_numpy
        return as_t(y), (as_t(h_n), as_t(c_n))

    def _torch_run(
        self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """torch's own ``nn.LSTM.forward`` on time-major windows (the spot check)."""
        torch = _torch()
        xin = torch.from_numpy(x)
        if self.module.batch_first:
            xin = xin.transpose(0, 1)
        with torch.no_grad():
            y, (h_n, c_n) = self.orig(xin, (torch.from_numpy(h0), torch.from_numpy(c0)))
        if self.module.batch_first:
            y = y.transpose(0, 1)
        return _np(y), _np(h_n), _np(c_n)


def _batch_major(halves: list[LayerTrace]) -> np.ndarray:
    """The h of one layer's directions side by side, ``(B, T, D*P)``, in one new array."""
    t, b, p = halves[0].h.shape
    out = np.empty((b, t, p * len(halves)), np.float32)
    for d, lt in enumerate(halves):
        out[..., d * p : (d + 1) * p] = lt.h.swapaxes(0, 1)
    return out


def _time_major_h(halves: list[LayerTrace]) -> np.ndarray:
    """The same, ``(T, B, D*P)``."""
    if len(halves) == 1:
        return np.array(halves[0].h, copy=True)
    return np.concatenate([lt.h for lt in halves], axis=2)


#: One trace at a time sets :class:`_EngineForward` on a model's modules (two traces from
#: two threads would otherwise restore each other's).
_LOCK = threading.RLock()


@contextlib.contextmanager
def _engine_forwards(rec: Recorder, modules: list[Any], verify: str) -> Iterator[None]:
    """Each ``nn.LSTM`` in ``modules`` runs :class:`_EngineForward` while inside (an
    instance attribute shadowing the class's ``forward``; restored afterwards)."""
    if verify == "full" or not modules:
        yield
        return
    with _LOCK:
        saved = []
        for m in modules:
            had = "forward" in vars(m)
            saved.append((m, had, vars(m).get("forward")))
            object.__setattr__(m, "forward", _EngineForward(rec, m, verify))
        try:
            yield
        finally:
            for m, had, old in reversed(saved):
                if had:
                    object.__setattr__(m, "forward", old)
                else:
                    object.__delattr__(m, "forward")


# ------------------------------------------------------------------------- initial states
class _FirstCalls:
    """A forward pre-hook that gives the first call of each ``nn.LSTM`` / ``nn.LSTMCell`` the
    initial state ``LiveModel.trace(x, initial_state=...)`` names for it."""

    def __init__(self, initial_state: dict[str, Any], paths: dict[int, str], thread: int) -> None:
        self.initial_state = initial_state
        self.paths = paths
        self.thread = thread
        self.seen: set[int] = set()

    def hook(
        self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if threading.get_ident() != self.thread or id(module) in self.seen:
            return None
        self.seen.add(id(module))
        torch = _torch()
        inp: Any = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        path = self.paths.get(id(module), "")
        cell = isinstance(module, torch.nn.LSTMCell)
        packed = isinstance(inp, torch.nn.utils.rnn.PackedSequence)
        data = inp.data if packed else inp
        unbatched = not packed and data.dim() == (1 if cell else 2)
        if packed:
            batch = int(inp.batch_sizes[0])
        elif unbatched:
            batch = 1
        else:
            batch = int(data.shape[0 if cell or module.batch_first else 1])
        hidden = int(module.hidden_size)
        proj = int(getattr(module, "proj_size", 0) or 0) or hidden
        if cell:
            slots = [([path or "lstm_cell"], 0)]
            n = 1
        else:
            base = path or "lstm"
            dirs = 2 if module.bidirectional else 1
            slots = []
            for k in range(module.num_layers):
                lname = base if module.num_layers == 1 else f"{base}_l{k}"
                for d in range(dirs):
                    name = f"{lname}/{'backward' if d else 'forward'}" if dirs == 2 else lname
                    slots.append(([name, lname, base], k * dirs + d))
            n = module.num_layers * dirs
        opts = {"dtype": data.dtype, "device": data.device}
        if hx is None:
            h0 = torch.zeros((n, batch, proj), **opts)
            c0 = torch.zeros((n, batch, hidden), **opts)
        else:
            h0, c0 = hx[0].clone(), hx[1].clone()
            if cell:
                h0, c0 = h0[None], c0[None]
            if unbatched:
                h0, c0 = h0[:, None], c0[:, None]
        changed = False
        for names, j in slots:
            st = state_for(
                self.initial_state,
                names,
                batch,
                (proj, hidden),
                f"{type(module).__name__} {path or '(the model)'!r}",
            )
            if st is not None:
                h0[j] = torch.from_numpy(st[0]).to(**opts)
                c0[j] = torch.from_numpy(st[1]).to(**opts)
                changed = True
        if not changed:
            return None
        if unbatched:
            h0, c0 = h0[:, 0], c0[:, 0]
        if cell:
            h0, c0 = h0[0], c0[0]
        if len(args) > 1:
            return (args[0], (h0, c0), *args[2:]), kwargs
        return args, {**kwargs, "hx": (h0, c0)}


# ------------------------------------------------------------------------- the model
class TorchModel(LiveModel):
    """A live ``torch.nn.Module`` (see :class:`~lstmviz.bridge.common.LiveModel`)."""

    framework = FRAMEWORK

    def __init__(self, model: Any, torch_dtypes: list[Any], *args: Any, **kwargs: Any) -> None:
        #: the dtype of each example tensor (bfloat16 has no NumPy twin): new inputs get it
        self.torch_dtypes = list(torch_dtypes)
        super().__init__(model, *args, **kwargs)

    def _modules(self) -> list[tuple[str, Any]]:
        return list(self.module.named_modules())

    def _run(
        self, feed: list[np.ndarray], initial_state: dict[str, Any]
    ) -> tuple[Any, list[LayerTrace]]:
        torch = _torch()
        model = self.module
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        tensors = [
            torch.from_numpy(np.array(a, copy=True)).to(device=device, dtype=dtype)
            for a, dtype in zip(feed, self.torch_dtypes, strict=True)
        ]
        paths = {id(mod): path for path, mod in self._modules()}
        rec = Recorder(paths)
        handles = []
        first = _FirstCalls(initial_state, paths, rec.thread)
        for _, mod in self._modules():
            if isinstance(mod, torch.nn.LSTM):
                handles.append(mod.register_forward_hook(rec.on_lstm, with_kwargs=True))
            elif isinstance(mod, torch.nn.LSTMCell):
                handles.append(mod.register_forward_hook(rec.on_cell, with_kwargs=True))
            else:
                continue
            if initial_state:
                handles.append(mod.register_forward_pre_hook(first.hook, with_kwargs=True))
        lstms = [mod for _, mod in self._modules() if isinstance(mod, torch.nn.LSTM)]
        try:
            with torch.no_grad(), _engine_forwards(rec, lstms, self.verify):
                y = model(*tensors, *self.args, **self.kwargs)
        except LstmvizError:
            raise
        except Exception as e:  # the user's own code can raise anything; chained below
            raise model_failed(
                self.name, feed, e, self._new_input_layouts(), bool(self.args)
            ) from e
        finally:
            for h in handles:
                h.remove()
        self._recorded = rec
        return to_numpy(y), self._traces(rec)

    def _traces(self, rec: Recorder) -> list[LayerTrace]:
        found: list[tuple[int, LayerTrace]] = []
        by_module: dict[int, list[LSTMCall]] = {}
        for call in rec.lstm_calls:
            by_module.setdefault(id(call.module), []).append(call)
        for calls in by_module.values():
            base0 = calls[0].path or "lstm"
            for g, chain in enumerate(_chains(calls)):
                base = base0 if g == 0 else f"{base0}#{g + 1}"
                per_call = [lstm_call_traces(c, base) for c in chain]
                for k in range(len(per_call[0])):
                    parts = [pc[k] for pc in per_call]
                    found.append((chain[0].order, concat_traces(parts, parts[0].name)))
        for key, cell_calls in rec.cell_calls.items():
            module = rec.cells[key]
            found.extend(cell_traces(module, rec.paths.get(key, ""), cell_calls))
        found.sort(key=lambda p: p[0])  # stable: the layers of one call stay in order
        return [lt for _, lt in found]

    def _check_layout(self, fed: np.ndarray, traces: list[LayerTrace]) -> None:
        calls = [c for c in self._recorded.lstm_calls if len(c.seen_shape) == 3]
        if not calls or fed.ndim < 2:
            return
        call = calls[0]
        d0, d1 = fed.shape[:2]
        t_ax = 1 if call.batch_first else 0
        lstm_t, lstm_b = call.seen_shape[t_ax], call.seen_shape[1 - t_ax]
        if d0 == d1 or {lstm_t, lstm_b} != {d0, d1}:
            return  # cannot tell (or the model reshapes its input)
        model_time_axis = 0 if lstm_t == d0 else 1
        told = 0 if self.layouts[0].time_major else 1
        if model_time_axis != told:
            raise InputError(
                f"{self.name}: nn.LSTM {call.path or '(the model)'!r} "
                f"(batch_first={call.batch_first}) reads axis {model_time_axis} of the input "
                f"(shape {tuple(fed.shape)}) as time, but lstmviz was told axis {told} is: "
                + (
                    "pass time_major=True (x as the model takes it, (T, batch, ...))"
                    if model_time_axis == 0
                    else "pass time_major=False (x as (batch, T, ...))"
                )
            )

    def _n_params(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))

    def _vocabulary(self) -> Vocabulary | None:
        torch = _torch()
        for path, mod in self._modules():
            if isinstance(mod, torch.nn.Embedding):
                return Vocabulary(path or "embedding", int(mod.num_embeddings), False)
        return None

    def _framework_layers(self) -> list[Layer]:
        torch = _torch()
        out: list[Layer] = []
        for path, mod in self._modules():
            if isinstance(mod, (torch.nn.LSTM, torch.nn.LSTMCell)) or not path:
                continue
            if any(True for _ in mod.children()):
                continue  # containers: their leaves are listed
            n = sum(p.numel() for p in mod.parameters(recurse=False))
            out.append(FrameworkLayer(path, type(mod).__name__, n))
        return out

    def _no_lstm_hint(self) -> str:
        torch = _torch()
        kinds = sorted(
            {
                type(m).__name__
                for _, m in self._modules()
                if isinstance(m, (torch.nn.RNNBase, torch.nn.RNNCellBase))
            }
        )
        if kinds:
            return (
                f" (recurrent modules: {', '.join(kinds)}; lstmviz shows nn.LSTM and "
                "nn.LSTMCell only)"
            )
        return " (lstmviz records torch.nn.LSTM and torch.nn.LSTMCell modules of the model)"


def live_model(
    model: Any,
    x: Any,
    *args: Any,
    time_major: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    name: str | None = None,
    verify: str = "auto",
) -> TorchModel:
    """A :class:`TorchModel` for ``model`` with example input ``x`` (as the model takes it;
    a list or tuple of arrays is passed as several positional inputs)."""
    torch = _torch()
    if isinstance(model, torch.jit.ScriptModule):
        raise UnsupportedLayerError(
            f"{type(model).__name__}: a TorchScript module cannot be hooked; pass the "
            "original nn.Module"
        )
    orig = getattr(model, "_orig_mod", None)  # torch.compile's wrapper: hook the original
    if orig is not None and isinstance(orig, torch.nn.Module):
        model = orig
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"expected a torch.nn.Module; got {type(model).__name__}")
    multi = isinstance(x, (list, tuple))
    xs = list(x) if multi else [x]
    arrays = []
    for k, a in enumerate(xs):
        arr = to_numpy(a)
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        arrays.append(arr)
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            raise InputError(f"input {k} is not an array or tensor ({type(a).__name__})")
    layouts = [layout_of(a, time_major, f"input {k}") for k, a in enumerate(arrays)]
    # a tensor keeps its dtype; NumPy floats (float64 by default) get the model's own float
    # dtype, as torch.tensor(x, dtype=...) would be written for it
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    torch_dtypes = [
        a.dtype
        if isinstance(a, torch.Tensor)
        else (param.dtype if param is not None and arr.dtype.kind == "f" else None)
        for a, arr in zip(xs, arrays, strict=True)
    ]
    return TorchModel(
        model,
        torch_dtypes,
        arrays,
        layouts,
        args=args,
        kwargs=model_kwargs,
        multi_input=multi,
        name=name or type(model).__name__,
        verify=verify,
    )
