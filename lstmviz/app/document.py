"""The one document of the app: model, input, trace, current timestep and selection.

Every view receives the :class:`Document` in its ``__init__``, connects to its signals and
reads what it needs from it. No signal carries an array: ``trace_changed`` says "read the new
trace", ``t_changed(t)`` says "move to step t" (the data flow of DESIGN.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..errors import InputError, LstmvizError

#: Traces with more than this many (batch x T x units) values are computed in a worker when
#: the document has a ``runner``; smaller ones are computed at once (a few milliseconds).
SYNC_TRACE_LIMIT = 3_000_000

FILTER_MODES = ("all", "active", "saturated", "list")


class Document(QObject):
    """Model, input, trace, current timestep ``t`` and selection, with change signals.

    Signals (past tense; none carries an array -- views read the document):

    ``model_changed()``, ``trace_changed()``, ``t_changed(int)``, ``layer_changed(str)``,
    ``batch_changed(int)``, ``selection_changed()`` (selected units or the unit filter),
    ``filter_changed()`` (the rows the heatmaps show), ``busy_changed(bool, str)``,
    ``input_changed()`` and ``failed(str)`` (a trace that could not be computed).

    Parameters
    ----------
    parent : QObject, optional
    """

    model_changed = Signal()
    trace_changed = Signal()
    t_changed = Signal(int)
    layer_changed = Signal(str)
    batch_changed = Signal(int)
    selection_changed = Signal()
    filter_changed = Signal()
    busy_changed = Signal(bool, str)
    input_changed = Signal()
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model: Any = None
        self._model_path: str | None = None
        self._info: Any = None
        self._x: Any = None
        self._trace: Any = None
        self._t = 0
        self._layer = ""
        self._batch = 0
        self._units: list[int] = []
        self._filter: tuple[str, Any] = ("all", None)
        self._rows: np.ndarray = np.zeros(0, np.int64)
        self._engine = "NumPy"
        self._retrace_engine = "NumPy"  # the label of traces _retrace computes
        self._busy = False
        self._generation = 0
        self._labels_cache: tuple[Any, list[str]] | None = None
        #: ``runner(fn, on_finished, label)`` runs ``fn(progress, should_stop)`` off the GUI
        #: thread (set by the main window); None computes every trace at once.
        self.runner: Callable[..., Any] | None = None

    # --- read-only state ---------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The :class:`lstmviz.engine.Model` (or None before one is opened)."""
        return self._model

    @property
    def model_path(self) -> str | None:
        return self._model_path

    @property
    def info(self) -> Any:
        """The model's :class:`lstmviz.io.meta.ModelInfo`, or None."""
        return self._info

    @property
    def x(self) -> Any:
        """The current input: ``(batch, T, F)`` floats or ``(batch, T)`` token ids."""
        return self._x

    @property
    def trace(self) -> Any:
        """The current :class:`lstmviz.engine.Trace`, or None."""
        return self._trace

    @property
    def t(self) -> int:
        return self._t

    @property
    def layer(self) -> str:
        """Trace name of the selected LSTM layer (``"lstm"``, ``"bidi/backward"``)."""
        return self._layer

    @property
    def layer_trace(self) -> Any:
        """The :class:`lstmviz.engine.LayerTrace` of the selected layer, or None."""
        if self._trace is None or not self._layer:
            return None
        return self._trace.layer(self._layer)

    @property
    def layer_names(self) -> list[str]:
        return list(self._trace.layer_names) if self._trace is not None else []

    @property
    def batch(self) -> int:
        return self._batch

    @property
    def selected_units(self) -> list[int]:
        """Units of the selected layer shown in the line plots; the first is "the" unit."""
        return list(self._units)

    @property
    def unit(self) -> int:
        """The unit shown in the unit detail (the first selected one)."""
        return self._units[0] if self._units else 0

    @property
    def unit_filter(self) -> tuple[str, Any]:
        """``(mode, arg)``: ``("all", None)``, ``("active", k)``, ``("saturated", k)`` or
        ``("list", [units])``."""
        return self._filter

    @property
    def rows(self) -> np.ndarray:
        """Unit indices the heatmaps show, top to bottom (the unit filter applied)."""
        return self._rows

    @property
    def engine(self) -> str:
        """What computed the trace (shown in the status bar)."""
        return self._engine

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def timesteps(self) -> int:
        lt = self.layer_trace
        return lt.timesteps if lt is not None else 0

    def token_labels(self) -> list[str]:
        """One short label per timestep of the current batch item (cached per input)."""
        if self._x is None or self._model is None:
            return []
        key = (id(self._x), self._batch)
        if self._labels_cache is not None and self._labels_cache[0] == key:
            return self._labels_cache[1]
        from ..io.inputs import token_labels

        try:
            labels = token_labels(self._model, self._x, self._info, self._batch)
        except (LstmvizError, IndexError, ValueError):
            labels = [str(t) for t in range(self.timesteps)]
        self._labels_cache = (key, labels)
        return labels

    # --- changing the model and input --------------------------------------------------------
    def set_model(
        self, model: Any, path: str | None = None, info: Any = None, x: Any = None
    ) -> None:
        """Open ``model``; trace it on ``x`` (default: its example input).

        ``info`` defaults to the model's sidecar file (:func:`lstmviz.io.meta.load_info`).
        Resets ``t`` to 0, the layer to the first LSTM, the batch item and the selection.
        """
        from ..io.inputs import example_input
        from ..io.meta import load_info

        if info is None and path is not None:
            info = load_info(path)
        if x is None:
            x = example_input(model, info)
        x = model.check_input(x)
        self._generation += 1
        self._model = model
        self._retrace_engine = "NumPy"
        self._model_path = str(path) if path is not None else (model.source or None)
        self._info = info
        self._x = x
        self._labels_cache = None
        self._trace = None
        self._t = 0
        self._layer = ""
        self._batch = 0
        self._units = []
        self._filter = ("all", None)
        self._rows = np.zeros(0, np.int64)
        self.model_changed.emit()
        self.input_changed.emit()
        self._retrace()

    def set_input(self, x: Any) -> None:
        """Trace the current model on a new input array (a batch axis is added if missing)."""
        if self._model is None:
            raise InputError("open a model before giving it an input")
        from ..io.inputs import add_batch_axis

        a = x if isinstance(x, list) else add_batch_axis(self._model, np.asarray(x))
        a = self._model.check_input(a)
        self._x = a
        self._labels_cache = None
        self.input_changed.emit()
        self._retrace()

    def set_text(self, text: str) -> None:
        """Tokenise ``text`` with the model's vocabulary (digits, bits, characters, words,
        ids or numbers) and trace it."""
        if self._model is None:
            raise InputError("open a model before typing an input")
        from ..io.inputs import encode_text

        self.set_input(encode_text(self._model, text, self._info))

    def input_text(self) -> str:
        """The current input written the way :meth:`set_text` reads it."""
        labels = self.token_labels()
        kind = self._info.token_kind if self._info is not None else None
        if kind == "chars":
            inv = {"␣": " ", "⏎": "\n", "⇥": "\t"}
            return "".join(inv.get(s, s) for s in labels)
        if kind == "bits" and labels and all(len(s) == 2 for s in labels):
            a = "".join(s[0] for s in reversed(labels))
            b = "".join(s[1] for s in reversed(labels))
            return f"{a} + {b}"
        if kind == "digits" or (labels and all(len(s) == 1 and s.isdigit() for s in labels)):
            return " ".join(labels)
        if kind in ("words", "ids"):
            return " ".join(labels)
        a = np.asarray(self._x)
        if a.ndim == 3:
            return "; ".join(" ".join(f"{v:.4g}" for v in row) for row in a[self._batch])
        return " ".join(labels)

    def set_trace(self, trace: Any, engine: str = "NumPy", model: Any = None) -> None:
        """Show a trace computed elsewhere (a training snapshot, another engine).

        ``t``, the layer, the batch item and the selection are kept where still valid.

        ``model``: the model whose weights made ``trace`` when they are not the open model's
        (a training snapshot). It replaces the document's model without resetting the view
        -- no ``model_changed`` -- so later traces (a new input, what-if, Check my LSTM,
        export) use the weights on screen, and say so with ``engine``. It must take the
        current input (:class:`~lstmviz.errors.InputError` otherwise).
        """
        if model is not None and model is not self._model:
            if self._x is not None:
                model.check_input(self._x)
            self._model = model
            self._retrace_engine = engine
        self._generation += 1  # a trace still being computed here is now stale
        self._install_trace(trace, engine)

    def retrace(self) -> None:
        """Recompute the trace of the current model and input (after weights changed)."""
        self._retrace()

    # --- navigation and selection ----------------------------------------------------------
    def set_t(self, t: int) -> None:
        """Move to timestep ``t`` (clamped to the trace; no signal if unchanged)."""
        n = self.timesteps
        t = int(min(max(int(t), 0), max(n - 1, 0)))
        if t == self._t:
            return
        self._t = t
        self.t_changed.emit(t)

    def step(self, dt: int) -> None:
        self.set_t(self._t + dt)

    def set_layer(self, name: str) -> None:
        """Select the LSTM layer ``name`` (a trace name or a Bidirectional's name)."""
        if self._trace is None:
            raise LstmvizError("no trace yet: open a model first")
        lt = self._trace.layer(name)  # raises with the list of layers
        if lt.name == self._layer:
            return
        old_t = self._t
        self._layer = lt.name
        self._t = min(self._t, max(lt.timesteps - 1, 0))
        self._units = [u for u in self._units if u < lt.units] or self._default_units(lt)
        self._update_rows(emit=False)
        self.layer_changed.emit(lt.name)
        self.filter_changed.emit()
        self.selection_changed.emit()
        if self._t != old_t:
            self.t_changed.emit(self._t)

    def set_batch(self, b: int) -> None:
        """Select batch item ``b``."""
        if self._trace is None:
            return
        n = self._trace.batch_size
        if not 0 <= int(b) < n:
            raise LstmvizError(f"batch item {b} out of range: the input has {n} item(s)")
        if int(b) == self._batch:
            return
        self._batch = int(b)
        self._labels_cache = None
        self._update_rows(emit=False)
        self.batch_changed.emit(self._batch)
        self.filter_changed.emit()

    def set_units(self, units: list[int]) -> None:
        """Select units (first = the unit shown in detail); out-of-range ones are an error."""
        lt = self.layer_trace
        n = lt.units if lt is not None else 0
        units = [int(u) for u in units]
        bad = [u for u in units if not 0 <= u < n]
        if bad:
            raise LstmvizError(
                f"unit {bad[0]} out of range: layer {self._layer!r} has {n} units (0..{n - 1})"
            )
        units = list(dict.fromkeys(units))
        if units == self._units:
            return
        self._units = units
        self.selection_changed.emit()

    def set_unit_filter(self, mode: str, arg: Any = None) -> None:
        """Choose which units the heatmaps show.

        Parameters
        ----------
        mode : {"all", "active", "saturated", "list"}
            All units; the ``arg`` most active (largest mean |h|); the ``arg`` most saturated
            (gates nearest 0 or 1 most of the time); or the units listed in ``arg`` (a list
            of ints or a string such as ``"0-3, 7"``).
        """
        if mode not in FILTER_MODES:
            raise LstmvizError(
                f"unit filter must be one of {', '.join(FILTER_MODES)}; got {mode!r}"
            )
        if mode == "list":
            arg = self.parse_units(arg) if isinstance(arg, str) else [int(u) for u in arg]
            n = self.layer_trace.units if self.layer_trace is not None else 0
            bad = [u for u in arg if not 0 <= u < n]
            if bad:
                raise LstmvizError(
                    f"unit {bad[0]} out of range: layer {self._layer!r} has {n} units (0..{n - 1})"
                )
            if not arg:
                raise LstmvizError("the unit list is empty; type units like 0, 3, 5-8")
        elif mode in ("active", "saturated"):
            arg = max(1, int(arg or 8))
        self._filter = (mode, arg)
        self._update_rows(emit=True)

    @staticmethod
    def parse_units(text: str) -> list[int]:
        """``"0, 3, 5-8"`` -> ``[0, 3, 5, 6, 7, 8]``."""
        out: list[int] = []
        for part in re.split(r"[,\s]+", text.strip()):
            if not part:
                continue
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if m is None:
                raise LstmvizError(f"cannot read unit {part!r}; type units like 0, 3, 5-8")
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
            if b < a or b - a > 100_000:
                raise LstmvizError(f"bad unit range {part!r}")
            out.extend(range(a, b + 1))
        return list(dict.fromkeys(out))

    # --- internals ---------------------------------------------------------------------------
    def _retrace(self) -> None:
        model, x = self._model, self._x
        if model is None or x is None:
            return
        self._generation += 1
        gen = self._generation
        a0 = x[0] if isinstance(x, list) else x
        size = (
            int(np.prod(np.shape(a0)[:2]))
            * max((lay.units for lay in _lstms(model)), default=1)
            * max(len(_lstms(model)), 1)
        )

        def fn(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Any:
            return model.trace(x)

        engine = self._retrace_engine

        def done(trace: Any) -> None:
            if gen == self._generation:
                self._set_busy(False, "")
                self._install_trace(trace, engine)

        if self.runner is None or size <= SYNC_TRACE_LIMIT:
            try:
                trace = model.trace(x)
            except LstmvizError as e:
                self.failed.emit(str(e))
                return
            done(trace)
            return
        t_len = np.shape(a0)[1] if np.ndim(a0) >= 2 else 0
        self._set_busy(True, f"Tracing {t_len} timesteps…")

        def failed(msg: str) -> None:
            if gen == self._generation:
                self._set_busy(False, "")

        self.runner(fn, done, f"Tracing {t_len} timesteps", on_failed=failed)

    def _set_busy(self, busy: bool, message: str) -> None:
        self._busy = busy
        self.busy_changed.emit(busy, message)

    def _install_trace(self, trace: Any, engine: str) -> None:
        if not trace.layers:
            raise LstmvizError("the trace holds no LSTM layer")
        old_t, old_layer, old_batch = self._t, self._layer, self._batch
        self._trace = trace
        self._engine = engine
        names = trace.layer_names
        if self._layer not in names:
            self._layer = names[0]
        lt = trace.layer(self._layer)
        if self._batch >= lt.batch_size:
            self._batch = 0
        self._t = min(self._t, max(lt.timesteps - 1, 0))
        self._units = [u for u in self._units if u < lt.units]
        if not self._units:
            self._units = self._default_units(lt)
        mode, arg = self._filter
        if mode == "list" and any(u >= lt.units for u in arg):
            self._filter = ("all", None)
        self._labels_cache = None
        self._update_rows(emit=False)
        self.trace_changed.emit()
        if self._layer != old_layer:
            self.layer_changed.emit(self._layer)
        if self._batch != old_batch:
            self.batch_changed.emit(self._batch)
        self.filter_changed.emit()
        self.selection_changed.emit()
        if self._t != old_t:
            self.t_changed.emit(self._t)

    def _default_units(self, lt: Any) -> list[int]:
        """Units the model info points at (``show_units``, or a check such as
        ``carry_unit``), then those whose hidden state varies most: up to 3."""
        named = [u for u in self._info_units() if 0 <= u < lt.units]
        h = lt.h[:, min(self._batch, lt.batch_size - 1)]  # (T, U)
        spread = np.asarray(h.max(axis=0) - h.min(axis=0))  # (U,)
        ranked = [int(u) for u in np.argsort(-spread, kind="stable")]
        return list(dict.fromkeys([*named, *ranked]))[: min(3, lt.units)]

    def _info_units(self) -> list[int]:
        extra = getattr(self._info, "extra", None) or {}
        out: list[int] = []
        shown = extra.get("show_units")
        if isinstance(shown, list):
            out += [int(u) for u in shown if isinstance(u, int)]
        for d in (extra, extra.get("checks") or {}):
            if isinstance(d, dict):
                out += [
                    int(v)
                    for k, v in d.items()
                    if k.endswith("_unit") and isinstance(v, int) and not isinstance(v, bool)
                ]
        return out

    def _update_rows(self, emit: bool) -> None:
        lt = self.layer_trace
        if lt is None:
            self._rows = np.zeros(0, np.int64)
        else:
            self._rows = unit_rows(lt, self._batch, *self._filter)
        if emit:
            self.filter_changed.emit()
            self.selection_changed.emit()


def unit_rows(lt: Any, b: int, mode: str, arg: Any) -> np.ndarray:
    """Unit indices to show for a unit filter ``(mode, arg)`` (see
    :meth:`Document.set_unit_filter`)."""
    n = lt.units
    if mode == "list":
        return np.asarray([u for u in arg if 0 <= u < n], np.int64)
    if mode in ("active", "saturated"):
        k = min(int(arg), n)
        if mode == "active":
            score = np.abs(lt.h[:, b]).mean(axis=0)  # (U,)
        else:
            gates = lt.act[:, b, : 3 * n].reshape(lt.timesteps, 3, n)  # (T, 3, U) i, f, o
            score = ((gates < 0.05) | (gates > 0.95)).mean(axis=(0, 1))  # (U,)
        top = np.argsort(-score, kind="stable")[:k]
        return np.sort(top).astype(np.int64)
    return np.arange(n, dtype=np.int64)


def _lstms(model: Any) -> list[Any]:
    out = []
    for lay in model.lstm_layers:
        out.extend([lay.forward, lay.backward] if hasattr(lay, "forward") else [lay])
    return out
