"""The viewer's state: model, input, trace, step ``t``, layer, batch item, units, view options.

One typed, Qt-free, evented object (psygnal, as napari's ``components`` are). Every view of
the app receives it in ``__init__`` and connects to ``state.events.<name>``; sessions, export
and tests use the same object without a window::

    state = ViewerState()
    state.events.t.connect(lambda t: print("now at step", t))
    state.set_model(lstmviz.load_model("digit_sum.keras"))
    state.set_t(3)                      # -> "now at step 3"

Each change emits exactly one event (none carries an array: views read the state):

============  =======================================================================
``model``     a new model was opened (``model``, ``model_path``, ``info``, ``x``)
``input``     a new input was given (its trace follows as ``trace``)
``trace``     a new trace was installed; ``layer``, ``batch``, ``t``, the selected
              units and the heatmap rows may have changed with it -- redraw everything
``t(int)``    the current step moved
``layer(str)``  another LSTM layer was selected (units and rows follow it)
``batch(int)``  another batch item was selected (rows follow it)
``selection`` the selected units changed (the first is "the" unit of the detail views)
``rows``      the unit filter changed: the units the heatmaps show
``busy(str)`` long work started (its label) or ended (``""``)
``failed(str)``  a trace could not be computed (the message)
``interventions``  the interventions on units changed (:attr:`ViewerState.interventions`)
``token_scores``   the per-token scores the input strip colours changed (attribution)
============  =======================================================================

View options (presentation mode, colour-level lock, ...) live in :attr:`ViewerState.options`,
a psygnal evented dataclass with one event per field.

Long work (loading, tracing) runs through :attr:`ViewerState.runner`: the app sets one that
runs the job in a worker thread and calls back on the GUI thread; the default
(:func:`run_now`, for scripts, tests, sessions and export) runs it at once. Tiny traces (at
most :data:`SYNC_TRACE_VALUES` values, well under a millisecond) are computed at once either
way, so a keypress shows its result in the same frame.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import numpy as np
from psygnal import Signal, SignalGroup, SignalGroupDescriptor

from ..analysis.levels import LevelLock
from ..analysis.units import UNIT_FILTERS, default_units, unit_rows
from ..errors import InputError, LstmvizError
from ..io.inputs import InputModel

if TYPE_CHECKING:
    from ..analysis.outputs import OutputSpec
    from ..engine.intervene import Intervention
    from ..engine.trace import LayerTrace, Trace
    from ..io.meta import ModelInfo

#: Traces of at most this many values (batch x steps x units, summed over LSTM layers) are
#: computed on the caller's thread: they take well under a millisecond.
SYNC_TRACE_VALUES = 65_536

#: Progress callback of long work: ``progress(done, total)``.
ProgressFn = Callable[[int, int], None]
#: Cooperative cancellation: long work returns early when this says True.
ShouldStopFn = Callable[[], bool]
#: A long job: ``fn(progress, should_stop) -> result``.
Job = Callable[[ProgressFn, ShouldStopFn], Any]


class Runner(Protocol):
    """Runs a :data:`Job` somewhere and calls back on the caller's thread.

    ``runner(job, on_done, on_failed, label)``; a new call may cancel the previous one.
    """

    def __call__(
        self,
        job: Job,
        on_done: Callable[[Any], None],
        on_failed: Callable[[str], None],
        label: str,
    ) -> object: ...


def run_now(
    job: Job, on_done: Callable[[Any], None], on_failed: Callable[[str], None], label: str
) -> None:
    """The default :class:`Runner`: run the job at once, on this thread."""
    try:
        result = job(lambda i, n: None, lambda: False)
    except LstmvizError as e:
        on_failed(str(e))
        return
    on_done(result)


class TraceableModel(InputModel, Protocol):
    """What the viewer needs of a model: an engine :class:`~lstmviz.engine.Model`, a model
    run by a framework with its LSTMs recorded, or anything else with these members (and
    those inputs need, :class:`~lstmviz.io.inputs.InputModel`)."""

    name: str
    format: str
    meta: dict[str, Any]

    @property
    def takes_tokens(self) -> bool: ...

    @property
    def n_params(self) -> int: ...

    @property
    def layers(self) -> Any: ...

    def summary(self) -> list[dict[str, Any]]: ...

    @property
    def lstm_trace_names(self) -> list[str]: ...

    def check_input(self, x: Any) -> Any: ...

    def trace(self, x: Any) -> Trace: ...


class ViewerEvents(SignalGroup):
    """The events of :class:`ViewerState` (see the module docstring)."""

    model = Signal()
    input = Signal()
    trace = Signal()
    t = Signal(int)
    layer = Signal(str)
    batch = Signal(int)
    selection = Signal()
    rows = Signal()
    busy = Signal(str)
    failed = Signal(str)
    interventions = Signal()
    token_scores = Signal()


@dataclass
class ViewOptions:
    """How the views draw; each field has its own event (``options.events.<field>``).

    Attributes
    ----------
    presentation : bool
        Presentation mode: large type, thick lines, high contrast, side panels hidden.
    all_layers : bool
        The heatmaps show every LSTM layer at once instead of the selected one.
    lock_levels : bool
        Colour levels stay fixed across inputs and training snapshots (instead of following
        each trace).
    hide_future : bool
        Values after the current step are hidden ("predict, then reveal").
    hide_answer : bool
        The model's answer at the current step is hidden too (a lesson asks its question
        before revealing it).
    presentation_view : str
        What presentation mode shows beside the heatmaps: ``"diagram"`` (the LSTM cell with
        its numbers), ``"equations"`` (the unit's equations) or ``"heatmaps"`` (the heatmaps
        alone, full width).
    focus_units : tuple of int
        Presentation mode: the units (at most :data:`MAX_FOCUS`) the heatmaps show, large.
        Empty: the selected units, then the most active ones, up to :data:`MAX_FOCUS`.
    highlight : str
        A quantity highlighted in every view (its diagram part, equation and heatmap row):
        ``"forget_gate"``, ..., ``"hidden"``, ``"kept"``, ``"written"``, ``"tanh_c"``, or
        ``""`` for none.
    diagram_layer : bool
        The cell diagram shows the whole layer (a colour strip per wire) instead of the
        selected unit (a number per wire).
    animate : bool
        Stepping animates the values flowing along the diagram's wires.
    """

    #: one psygnal signal per field: ``options.events.presentation.connect(...)``
    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()

    presentation: bool = False
    all_layers: bool = False
    lock_levels: bool = False
    hide_future: bool = False
    hide_answer: bool = False
    presentation_view: str = "diagram"
    focus_units: tuple[int, ...] = ()
    highlight: str = ""
    diagram_layer: bool = False
    animate: bool = True


#: Presentation mode's heatmaps show at most this many units (each row large enough to point at).
MAX_FOCUS = 8
#: What presentation mode can show beside the heatmaps (:attr:`ViewOptions.presentation_view`).
PRESENTATION_VIEWS = ("diagram", "equations", "heatmaps")


FilterMode = Literal["all", "active", "saturated", "list"]


@dataclass(frozen=True)
class UnitFilter:
    """Which units the heatmaps show: ``mode`` with its argument (``k`` for "active" and
    "saturated", the unit list for "list")."""

    mode: FilterMode = "all"
    k: int = 8
    units: tuple[int, ...] = ()

    def as_tuple(self) -> tuple[str, Any]:
        """``(mode, arg)`` as sessions store it."""
        if self.mode == "list":
            return ("list", list(self.units))
        if self.mode in ("active", "saturated"):
            return (self.mode, self.k)
        return ("all", None)


@dataclass(frozen=True, eq=False)
class TokenScores:
    """One score per input step of every batch item, as the input strip colours them.

    Attributes
    ----------
    scores : ndarray
        ``(batch, T)`` float64; the strip colours each token by its score divided by the
        largest magnitude of its batch item (positive warm, negative cool).
    label : str
        What the scores are ("integrated gradients of output 4"), for the strip's tooltip.
    """

    scores: np.ndarray
    label: str = ""

    def normalized(self, b: int) -> np.ndarray:
        """Batch item ``b``'s scores in [-1, 1] (divided by their largest magnitude)."""
        s = np.asarray(self.scores[b], np.float64)
        m = float(np.abs(s).max()) if s.size else 0.0
        return s / m if m > 0 else s


class ViewerState:
    """Model, input, trace, current step, layer, batch item, selection and view options.

    Read the fields as properties; change them with the ``set_*`` methods (each validates its
    argument and emits one event of :attr:`events`).
    """

    def __init__(self, runner: Runner | None = None) -> None:
        self.events = ViewerEvents()
        self.options = ViewOptions()
        #: runs loading and tracing; :func:`run_now` unless the app sets a worker runner
        self.runner: Runner = runner or run_now
        #: asked when a model file cannot tell whether its inputs are time-major (some ONNX
        #: graphs): ``ask_layout(model, input_names) -> True (time-major), False
        #: (batch-first) or None (cancel)``; the app shows a question, scripts pass
        #: ``time_major=`` to the loader instead
        self.ask_layout: Callable[[Any, list[str]], bool | None] | None = None
        #: run on each new trace *inside the tracing job* (off the GUI thread in the app),
        #: before it is shown: ``prepare(trace, batch)`` computes what the views will draw
        #: (overview images, colour levels, unit scores) and caches it on the layer traces.
        #: Pure NumPy: a preparer never touches a widget.
        self.preparers: list[Callable[[Trace, int], None]] = [prepare_trace]
        #: the colour levels of every view and export; locked while ``options.lock_levels``
        self.level_lock = LevelLock()
        self.options.events.lock_levels.connect(self._on_lock_levels)
        self._model: TraceableModel | None = None
        self._model_path: str | None = None
        self._info: ModelInfo | None = None
        self._x: Any = None
        self._trace: Trace | None = None
        self._engine = "NumPy"
        self._retrace_engine = "NumPy"  # the label of traces retrace() computes
        self._t = 0
        self._layer = ""
        self._batch = 0
        self._units: list[int] = []
        self._filter = UnitFilter()
        self._rows: np.ndarray = np.zeros(0, np.int64)
        self._busy = ""
        self._generation = 0
        self._labels: tuple[tuple[int, ...], list[str]] | None = None
        self._spec: tuple[int, OutputSpec] | None = None
        self._interventions: tuple[Intervention, ...] = ()
        self._token_scores: TokenScores | None = None

    # --- fields ------------------------------------------------------------------------------
    @property
    def model(self) -> TraceableModel | None:
        """The open model, or None."""
        return self._model

    @property
    def model_path(self) -> str | None:
        """The file the model came from (None for a live object)."""
        return self._model_path

    @property
    def info(self) -> ModelInfo | None:
        """The model's :class:`~lstmviz.io.meta.ModelInfo` (vocabulary, example), or None."""
        return self._info

    @property
    def x(self) -> Any:
        """The input: ``(batch, T, F)`` floats, ``(batch, T)`` token ids, or a list of those
        for a model with several inputs."""
        return self._x

    @property
    def trace(self) -> Trace | None:
        """The current trace, or None."""
        return self._trace

    @property
    def engine(self) -> str:
        """What computed the trace (shown in the status bar)."""
        return self._engine

    @property
    def t(self) -> int:
        """The current step."""
        return self._t

    @property
    def layer(self) -> str:
        """Trace name of the selected LSTM layer (``"lstm"``, ``"bidi/backward"``)."""
        return self._layer

    @property
    def layer_trace(self) -> LayerTrace | None:
        """The selected layer's trace, or None."""
        if self._trace is None or not self._layer:
            return None
        return self._trace.layer(self._layer)

    @property
    def layer_names(self) -> list[str]:
        return list(self._trace.layer_names) if self._trace is not None else []

    @property
    def batch(self) -> int:
        """The batch item shown."""
        return self._batch

    @property
    def selected_units(self) -> list[int]:
        """Units shown in the line plots and the detail views; the first is "the" unit."""
        return list(self._units)

    @property
    def unit(self) -> int:
        """The unit of the detail views (the first selected one)."""
        return self._units[0] if self._units else 0

    @property
    def unit_filter(self) -> tuple[str, Any]:
        """``(mode, arg)``: ``("all", None)``, ``("active", k)``, ``("saturated", k)`` or
        ``("list", [units])``."""
        return self._filter.as_tuple()

    @property
    def rows(self) -> np.ndarray:
        """Unit indices the heatmaps show, top to bottom (the unit filter applied)."""
        return self._rows

    @property
    def busy(self) -> bool:
        return bool(self._busy)

    @property
    def busy_label(self) -> str:
        return self._busy

    @property
    def timesteps(self) -> int:
        lt = self.layer_trace
        return lt.timesteps if lt is not None else 0

    @property
    def interventions(self) -> tuple[Intervention, ...]:
        """The interventions on units (ablations, clamps, patches) the Interventions panel
        applies to the current input; sessions keep them. A new model clears them."""
        return self._interventions

    @property
    def token_scores(self) -> TokenScores | None:
        """Per-token scores the input strip colours (an attribution of the current input), or
        None. A new input or model clears them."""
        return self._token_scores

    @property
    def generation(self) -> int:
        """Counts traces asked for; a result computed for an older one is dropped."""
        return self._generation

    # --- colour levels --------------------------------------------------------------------------
    def widen_levels(self) -> bool:
        """Grow the locked levels to cover the trace on screen too (never shrink); True when
        anything grew (the views then redraw: a ``trace`` event)."""
        traces = list(self._trace.layers) if self._trace is not None else []
        grew = self.level_lock.widen(*traces)
        if grew and self._trace is not None:
            self.events.trace.emit()  # redraw with the new levels
        return grew

    def levels_outside(self) -> tuple[str, float]:
        """The quantity of the selected layer with the largest share of values beyond its
        locked levels, and that share (``("", 0.0)`` when unlocked or nothing is outside)."""
        from ..analysis.levels import SIX, outside

        lt = self.layer_trace
        if lt is None or not self.level_lock.locked:
            return "", 0.0
        worst = ("", 0.0)
        for q in SIX:
            share = outside(q, lt, self.level_lock.levels(q, lt))
            if share > worst[1]:
                worst = (q, share)
        return worst

    def focus_rows(self, k: int = MAX_FOCUS) -> np.ndarray:
        """The units presentation mode's heatmaps show, top to bottom (at most ``k``, at most
        :data:`MAX_FOCUS`): ``options.focus_units`` when set, else the selected units and then
        the most active ones (largest mean |h|), in unit order."""
        k = max(1, min(int(k), MAX_FOCUS))
        from ..analysis.units import unit_scores

        lt = self.layer_trace
        if lt is None:
            return np.zeros(0, np.int64)
        n = lt.units
        chosen = [u for u in self.options.focus_units if 0 <= u < n]
        if not chosen:
            chosen = [u for u in self._units if u < n]
            if len(chosen) < k:
                score = unit_scores(lt, min(self._batch, lt.batch_size - 1), "active")
                for u in np.argsort(-score, kind="stable"):
                    if len(chosen) >= k:
                        break
                    if int(u) not in chosen:
                        chosen.append(int(u))
        chosen = list(dict.fromkeys(chosen))[:k]
        return np.asarray(sorted(chosen), np.int64)

    # --- derived, read-only --------------------------------------------------------------------
    def color_levels(self, quantity: str, lt: LayerTrace | None = None) -> tuple[float, float]:
        """The colour levels of ``quantity`` of ``lt`` (default: the selected layer) that every
        view and export of this state uses (:mod:`lstmviz.analysis.levels`): fixed for gates
        and tanh-bounded values, robust to outlier units otherwise, and kept across inputs and
        training snapshots while ``options.lock_levels`` is on."""
        lt = lt if lt is not None else self.layer_trace
        if lt is None:
            raise LstmvizError("no trace yet: open a model first")
        return self.level_lock.levels(quantity, lt)

    @property
    def output_spec(self) -> OutputSpec | None:
        """What the model's output is (probabilities, log-probabilities, logits, bits or
        values), decided once per model by :func:`lstmviz.analysis.outputs.output_spec`;
        None before a trace with a per-step output exists."""
        tr = self._trace
        if self._model is None or tr is None or tr.step_output is None:
            return None
        key = id(self._model)
        if self._spec is None or self._spec[0] != key:
            from ..analysis.outputs import output_spec

            self._spec = (key, output_spec(self._model, self._info, values=tr.step_output))
        return self._spec[1]

    def output_labels(self, k_total: int) -> list[str]:
        """A raw label per output class (display them with
        :func:`lstmviz.analysis.outputs.display_label`)."""
        from ..analysis.outputs import output_labels

        return output_labels(self._info, k_total)

    def _on_lock_levels(self, on: bool) -> None:
        if on:
            traces = self._trace.layers if self._trace is not None else []
            self.level_lock.lock(*traces)
        else:
            self.level_lock.unlock()
        if self._trace is not None:
            self.events.trace.emit()  # redraw with the new levels

    def token_labels(self) -> list[str]:
        """One short label per timestep of the current batch item, for the sequence the
        selected layer reads (an encoder-decoder's decoder reads the second input)."""
        if self._x is None or self._model is None:
            return []
        k = self.input_index()
        key = (id(self._x), self._batch, k)
        if self._labels is not None and self._labels[0] == key:
            return self._labels[1]
        from ..io.inputs import token_labels

        x = self._x[k] if isinstance(self._x, list) else self._x
        info = self._info if k == 0 else None  # the info's vocabulary is the first input's
        try:
            labels = token_labels(self._model, x, info, self._batch)
        except (LstmvizError, IndexError, ValueError):
            labels = [str(t) for t in range(self.timesteps)]
        self._labels = (key, labels)
        return labels

    def input_index(self, layer: str | None = None) -> int:
        """Which model input the LSTM layer ``layer`` (default: the selected one) reads,
        through the layers before it: 0 for a one-input model."""
        layer = layer or self._layer
        if not isinstance(self._x, list) or not layer:
            return 0
        return lstm_input_index(self._model, layer.partition("/")[0])

    @property
    def output_follows_layer(self) -> bool:
        """Whether the model's per-step output runs along the selected layer's steps (an
        encoder-decoder's outputs follow the decoder, not the encoder)."""
        tr = self._trace
        lt = self.layer_trace
        if tr is None or lt is None or tr.step_output is None:
            return False
        return bool(np.shape(tr.step_output)[1] == lt.timesteps) and (
            not isinstance(self._x, list) or self.input_index() == self._output_input_index()
        )

    def _output_input_index(self) -> int:
        """The model input whose steps the output follows (the last LSTM's input)."""
        names = list(getattr(self._model, "lstm_trace_names", []) or [])
        return self.input_index(names[-1]) if names else 0

    def input_text(self) -> str:
        """The current input written the way :meth:`set_text` reads it."""
        return self._input_text(None) or ""

    def input_text_within(self, limit: int) -> str | None:
        """:meth:`input_text`, or None when it would be longer than ``limit`` characters (a
        long input of feature values is then not written at all: 10,000 steps of 16
        features took ~0.1 s)."""
        text = self._input_text(int(limit))
        return None if text is None or len(text) > limit else text

    def _input_text(self, limit: int | None) -> str | None:
        labels = self.token_labels()
        kind = self._info.token_kind if self._info is not None else None
        if kind == "chars":
            inv = {"␣": " ", "⏎": "\n", "⇥": "\t"}
            return "".join(inv.get(s, s) for s in labels)
        if kind == "bits" and labels and all(len(s) == 2 for s in labels):
            if len(labels) > 1 and labels[-1] == "00":
                labels = labels[:-1]  # the final carry's step: set_text adds it back
            a = "".join(s[0] for s in reversed(labels))
            b = "".join(s[1] for s in reversed(labels))
            return f"{a} + {b}"
        if kind == "digits" or (labels and all(len(s) == 1 and s.isdigit() for s in labels)):
            return " ".join(labels)
        if kind in ("words", "ids"):
            return " ".join(labels)
        arr = np.asarray(self._x[0] if isinstance(self._x, list) else self._x)
        if arr.ndim == 3:
            if limit is not None and 2 * arr[self._batch].size - 1 > limit:
                return None  # each value takes a character and a separator at least
            return "; ".join(" ".join(f"{v:.4g}" for v in row) for row in arr[self._batch])
        return " ".join(labels)

    # --- opening a model and giving it input ------------------------------------------------------
    def open(
        self,
        path: str | os.PathLike[str],
        *,
        x: Any = None,
        text: str | None = None,
        input_path: str | None = None,
        on_opened: Callable[[], None] | None = None,
        load: Callable[[], tuple[Any, Any, Any]] | None = None,
    ) -> None:
        """Load the model file at ``path`` and trace it, in one job of :attr:`runner`.

        The input is ``x``, ``text`` (tokenised with the model's vocabulary), the file
        ``input_path``, or the model's example input. ``on_opened()`` runs once the model and
        its trace are shown. Errors arrive as the ``failed`` event. ``load()``: returns
        ``(model, info, x)`` when reading started earlier (the app's start-up preload).
        """
        path = str(path)
        self._generation += 1
        gen = self._generation

        def job(progress: ProgressFn, should_stop: ShouldStopFn) -> Any:
            from ..io import load_model
            from ..io.inputs import example_input, load_input
            from ..io.meta import load_info

            if load is not None:
                model, info, xx = load()
            else:
                model, info, xx = load_model(path), load_info(path), x
            if xx is None and (text is not None or input_path is not None):
                xx = load_input(model, path=input_path, text=text, info=info)
            if getattr(model, "layout_ambiguous", None):  # ask before anything is traced
                return model, info, xx, None
            if xx is None:
                xx = example_input(model, info)
            xx = model.check_input(xx)
            trace = model.trace(xx)
            self._prepare(trace, 0)
            return model, info, xx, trace

        def done(result: Any) -> None:
            if gen != self._generation:
                return
            model, info, xx, trace = result
            self._set_busy("")
            ambiguous = list(getattr(model, "layout_ambiguous", None) or [])
            if ambiguous:
                answer = self.ask_layout(model, ambiguous) if self.ask_layout else None
                if answer is None:
                    self.events.failed.emit(
                        f"{path}: the graph does not say whether its input "
                        f"{', '.join(ambiguous)} is time-major (T, batch, ...) or batch-first "
                        "(batch, T, ...); nothing was opened. From Python: "
                        "lstmviz.load_model(path, time_major=True or False)"
                    )
                    return
                model.set_time_major(bool(answer))
            try:
                self.set_model(model, path, info, xx, trace=trace)
            except LstmvizError as e:
                self.events.failed.emit(str(e))
                return
            if on_opened is not None:
                on_opened()

        self._run(job, done, f"Opening {Path(path).name}", gen)

    def set_model(
        self,
        model: TraceableModel,
        path: str | os.PathLike[str] | None = None,
        info: ModelInfo | None = None,
        x: Any = None,
        *,
        trace: Trace | None = None,
    ) -> None:
        """Show ``model`` (already loaded) on ``x`` (default: its example input).

        ``info`` defaults to the model's sidecar file. ``trace``: the trace of ``model`` on
        ``x`` when the caller computed it already (else it is computed by :attr:`runner`).
        Resets ``t`` to 0, the layer to the first LSTM, the batch item and the selection.
        Emits ``model``, then ``trace`` once the trace is in.
        """
        from ..io.inputs import example_input
        from ..io.meta import load_info

        if model is None or not hasattr(model, "trace"):
            raise LstmvizError(f"set_model: expected a loaded model; found {model!r}")
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
        self._labels = None
        self._trace = None
        self._t = 0
        self._layer = ""
        self._batch = 0
        self._units = []
        self._filter = UnitFilter()
        self._rows = np.zeros(0, np.int64)
        self.level_lock.clear()  # another model's levels mean nothing here (a lock stays on)
        self._interventions = ()  # they name another model's layers and units
        self._token_scores = None
        self.events.model.emit()
        if trace is not None:
            self._install_trace(trace, self._retrace_engine)
        else:
            self._retrace()

    def set_input(self, x: Any) -> None:
        """Trace the current model on a new input (a batch axis is added if missing)."""
        if self._model is None:
            raise InputError("open a model before giving it an input")
        from ..io.inputs import add_batch_axis

        a = x if isinstance(x, list) else add_batch_axis(self._model, np.asarray(x))
        a = self._model.check_input(a)
        self._x = a
        self._labels = None
        self._token_scores = None  # scores of the old input
        self.events.input.emit()
        self._retrace()

    def set_text(self, text: str) -> None:
        """Tokenise ``text`` with the model's vocabulary (digits, bits, characters, words,
        ids or numbers) and trace it."""
        if self._model is None:
            raise InputError("open a model before typing an input")
        from ..io.inputs import encode_text

        self.set_input(encode_text(self._model, text, self._info))

    def set_trace(
        self, trace: Trace, engine: str = "NumPy", model: TraceableModel | None = None
    ) -> None:
        """Show a trace computed elsewhere (a training snapshot, another engine).

        ``t``, the layer, the batch item and the selection are kept where still valid.
        ``model``: the model whose weights made ``trace`` when they are not the open model's
        (a training snapshot). It replaces the open model without resetting the view (no
        ``model`` event), so later traces (a new input, what-if, export) use the weights on
        screen. It must take the current input.
        """
        if model is not None and model is not self._model:
            if self._x is not None:
                model.check_input(self._x)
            self._model = model
            self._retrace_engine = engine
        self._generation += 1  # a trace still being computed is now stale
        self._install_trace(trace, engine)

    def show_weights(self, model: TraceableModel, engine: str) -> None:
        """Show the current input traced by ``model``, a model of the open one's
        architecture with other weights (a training snapshot): traced by :attr:`runner`
        (off the GUI thread in the app), then shown as :meth:`set_trace` with ``model`` --
        ``t``, the layer and the selection stay."""
        if self._x is None:
            raise InputError("no input to trace: open a model first")
        x = model.check_input(self._x)
        self._generation += 1
        gen = self._generation
        batch = self._batch

        def job(progress: ProgressFn, should_stop: ShouldStopFn) -> Any:
            trace = model.trace(x)
            self._prepare(trace, batch)
            return trace

        def done(trace: Any) -> None:
            if gen == self._generation:
                self._set_busy("")
                self.set_trace(trace, engine=engine, model=model)

        if trace_values(model, x) <= SYNC_TRACE_VALUES:
            run_now(job, done, lambda m: self._failed(gen, m), "")
        else:
            self._run(job, done, f"Tracing with {engine}", gen)

    def retrace(self) -> None:
        """Recompute the trace of the current model and input (after its weights changed)."""
        self._retrace()

    # --- navigation and selection --------------------------------------------------------------
    def set_t(self, t: int) -> None:
        """Move to step ``t`` (clamped to the trace; no event if unchanged)."""
        n = self.timesteps
        t = min(max(int(t), 0), max(n - 1, 0))
        if t == self._t:
            return
        self._t = t
        self.events.t.emit(t)

    def step(self, dt: int) -> None:
        """Move ``dt`` steps (negative: back)."""
        self.set_t(self._t + int(dt))

    def set_layer(self, name: str) -> None:
        """Select the LSTM layer ``name`` (a trace name, or a Bidirectional's name for its
        forward half)."""
        if self._trace is None:
            raise LstmvizError("no trace yet: open a model first")
        lt = self._trace.layer(name)  # raises, listing the layers
        if lt.name == self._layer:
            return
        self._layer = lt.name
        self._t = min(self._t, max(lt.timesteps - 1, 0))
        self._units = [u for u in self._units if u < lt.units] or self._default_units(lt)
        self._update_rows()
        self.events.layer.emit(lt.name)

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
        self._labels = None
        self._update_rows()
        self.events.batch.emit(self._batch)

    def set_units(self, units: list[int]) -> None:
        """Select units (the first is the unit of the detail views)."""
        lt = self.layer_trace
        n = lt.units if lt is not None else 0
        try:
            units = [int(u) for u in units]
        except (TypeError, ValueError):
            raise LstmvizError(f"units must be integers; found {units!r}") from None
        bad = [u for u in units if not 0 <= u < n]
        if bad:
            raise LstmvizError(
                f"unit {bad[0]} out of range: layer {self._layer!r} has {n} units (0..{n - 1})"
            )
        units = list(dict.fromkeys(units))
        if units == self._units:
            return
        self._units = units
        self.events.selection.emit()

    def set_unit_filter(self, mode: str, arg: Any = None) -> None:
        """Choose which units the heatmaps show.

        Parameters
        ----------
        mode : {"all", "active", "saturated", "list"}
            All units; the ``arg`` most active (largest mean |h|); the ``arg`` most saturated
            (gates saturated most of the time, :data:`lstmviz.analysis.saturation.LOW` /
            ``HIGH``); or the units listed in ``arg`` (ints, or a string like ``"0-3, 7"``).
        """
        if mode not in UNIT_FILTERS:
            raise LstmvizError(
                f"unit filter must be one of {', '.join(UNIT_FILTERS)}; got {mode!r}"
            )
        if mode == "list":
            units = self.parse_units(arg) if isinstance(arg, str) else [int(u) for u in arg]
            n = self.layer_trace.units if self.layer_trace is not None else 0
            bad = [u for u in units if not 0 <= u < n]
            if bad:
                raise LstmvizError(
                    f"unit {bad[0]} out of range: layer {self._layer!r} has {n} units (0..{n - 1})"
                )
            if not units:
                raise LstmvizError("the unit list is empty; type units like 0, 3, 5-8")
            new = UnitFilter("list", units=tuple(units))
        elif mode in ("active", "saturated"):
            ranked: FilterMode = "active" if mode == "active" else "saturated"
            new = UnitFilter(ranked, k=max(1, int(arg or 8)))
        else:
            new = UnitFilter()
        self._filter = new
        self._update_rows()
        self.events.rows.emit()

    @staticmethod
    def parse_units(text: str) -> list[int]:
        """``"0, 3, 5-8"`` -> ``[0, 3, 5, 6, 7, 8]``."""
        out: list[int] = []
        for part in re.split(r"[,\s]+", str(text).strip()):
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

    # --- interventions and token scores --------------------------------------------------------
    def set_interventions(self, interventions: Any) -> None:
        """Replace the interventions (a sequence of
        :class:`~lstmviz.engine.intervene.Intervention`); each must name an LSTM layer of the
        open model and units it has. Emits ``interventions`` once."""
        from ..engine.intervene import Intervention

        try:
            ivs = tuple(interventions)
        except TypeError:
            raise LstmvizError(
                "interventions must be a list of Intervention; found "
                f"{type(interventions).__name__}"
            ) from None
        for iv in ivs:
            if not isinstance(iv, Intervention):
                raise LstmvizError(
                    f"interventions must be Intervention objects; found {type(iv).__name__}"
                )
            self.check_intervention(iv)
        if ivs == self._interventions:
            return
        self._interventions = ivs
        self.events.interventions.emit()

    def add_intervention(self, iv: Intervention) -> None:
        """Add one intervention (after the others)."""
        self.set_interventions([*self._interventions, iv])

    def remove_intervention(self, index: int) -> None:
        """Remove the intervention at ``index``."""
        n = len(self._interventions)
        if not 0 <= int(index) < n:
            raise LstmvizError(f"intervention {index} does not exist: there are {n}")
        ivs = list(self._interventions)
        del ivs[int(index)]
        self.set_interventions(ivs)

    def clear_interventions(self) -> None:
        self.set_interventions([])

    def check_intervention(self, iv: Intervention) -> None:
        """Raise :class:`~lstmviz.errors.LstmvizError` unless ``iv`` names an LSTM layer of
        the open model and units it has."""
        if self._model is None:
            raise LstmvizError("open a model before adding interventions")
        names = list(self._model.lstm_trace_names)
        if iv.layer not in names:
            raise LstmvizError(
                f"intervention on layer {iv.layer!r}: the model's LSTM layers are "
                f"{', '.join(names)}"
            )
        units = None
        if self._trace is not None:
            units = self._trace.layer(iv.layer).units
        elif hasattr(self._model, "lstm"):
            units = int(self._model.lstm(iv.layer).weights.units)
        if units is not None and max(iv.units) >= units:
            raise LstmvizError(
                f"intervention on layer {iv.layer!r}: unit {max(iv.units)} does not exist (the "
                f"layer has {units} units, 0..{units - 1})"
            )

    def set_token_scores(self, scores: Any, label: str = "") -> None:
        """Colour the input strip's tokens by ``scores`` (``(batch, T)`` or ``(T,)`` for a
        single sequence, one per input step), or stop colouring them (None)."""
        if scores is None:
            if self._token_scores is None:
                return
            self._token_scores = None
            self.events.token_scores.emit()
            return
        a = np.asarray(scores, np.float64)
        if a.ndim == 1:
            a = a[None]
        lt = self.layer_trace
        want = (lt.batch_size, lt.timesteps) if lt is not None else None
        if a.ndim != 2 or (want is not None and a.shape != want):
            raise LstmvizError(
                f"token scores must be one per input step: shape {want or '(batch, T)'}; "
                f"found {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise LstmvizError("token scores must be finite numbers (found NaN or inf)")
        self._token_scores = TokenScores(a, str(label))
        self.events.token_scores.emit()

    # --- internals -------------------------------------------------------------------------------
    def _run(self, job: Job, done: Callable[[Any], None], label: str, gen: int) -> None:
        self._set_busy(label)
        self.runner(job, done, lambda m: self._failed(gen, m), label)

    def _failed(self, gen: int, message: str) -> None:
        if gen == self._generation:
            self._set_busy("")
            self.events.failed.emit(message)

    def _retrace(self) -> None:
        model, x = self._model, self._x
        if model is None or x is None:
            return
        self._generation += 1
        gen = self._generation
        engine = self._retrace_engine

        batch = self._batch
        reuse = self._reusable(model, x)

        def job(progress: ProgressFn, should_stop: ShouldStopFn) -> Any:
            # an edit of the input retraces from the first changed step on (the engine
            # copies the steps before it from the trace on screen, which it only reads)
            trace = (
                model.trace(x, reuse=reuse)  # type: ignore[call-arg]  # an engine Model
                if reuse is not None
                else model.trace(x)
            )
            self._prepare(trace, batch)
            return trace

        def done(trace: Any) -> None:
            if gen == self._generation:
                self._set_busy("")
                self._install_trace(trace, engine)

        a0 = x[0] if isinstance(x, list) else x
        steps = np.shape(a0)[1] if np.ndim(a0) >= 2 else 0
        if trace_values(model, x) <= SYNC_TRACE_VALUES:
            run_now(job, done, lambda m: self._failed(gen, m), "")
        else:
            self._run(job, done, f"Tracing {steps} timesteps", gen)

    def _prepare(self, trace: Trace, batch: int) -> None:
        for prepare in list(self.preparers):
            try:
                prepare(trace, min(batch, trace.batch_size - 1))
            except LstmvizError:  # a view that cannot prepare draws what it can later
                continue

    def _reusable(self, model: Any, x: Any) -> Trace | None:
        """The trace on screen when a new input's trace can start from it: the same engine
        model, and every input of the same shape."""
        from ..engine.model import Model

        old = self._trace
        if old is None or not isinstance(model, Model) or model is not self._model:
            return None
        if self._engine != "NumPy":  # another engine's trace: trace in full
            return None
        xs = x if isinstance(x, list) else [x]
        olds = old.inputs if isinstance(old.inputs, list) else [old.inputs]
        if len(xs) != len(olds) or any(
            np.shape(a) != np.shape(b) for a, b in zip(xs, olds, strict=True)
        ):
            return None
        return old

    def _set_busy(self, label: str) -> None:
        if label != self._busy:
            self._busy = label
            self.events.busy.emit(label)

    def _install_trace(self, trace: Trace, engine: str) -> None:
        if not trace.layers:
            raise LstmvizError("the trace holds no LSTM layer")
        self._trace = trace
        # a live model's trace names its framework ("torch (live)"): the status bar says so
        self._engine = trace.engine if str(trace.engine).endswith("(live)") else engine
        names = trace.layer_names
        if self._layer not in names:
            self._layer = names[0]
        lt = trace.layer(self._layer)
        if self._batch >= lt.batch_size:
            self._batch = 0
        self._t = min(self._t, max(lt.timesteps - 1, 0))
        self._units = [u for u in self._units if u < lt.units] or self._default_units(lt)
        if self._filter.mode == "list" and any(u >= lt.units for u in self._filter.units):
            self._filter = UnitFilter()
        self._labels = None
        self._update_rows()
        self.events.trace.emit()

    def _default_units(self, lt: LayerTrace) -> list[int]:
        return default_units(lt, self._batch, self._info_units())

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

    def _update_rows(self) -> None:
        lt = self.layer_trace
        if lt is None:
            self._rows = np.zeros(0, np.int64)
        else:
            mode, arg = self._filter.as_tuple()
            self._rows = unit_rows(lt, self._batch, mode, arg)


def trace_values(model: Any, x: Any) -> int:
    """About how many values a trace of ``model`` on ``x`` holds per quantity: batch x steps
    x units, summed over the LSTM layers (both halves of a Bidirectional)."""
    a0 = x[0] if isinstance(x, list) else x
    shape = np.shape(a0)
    bt = int(shape[0]) * int(shape[1]) if len(shape) >= 2 else 1
    units = 0
    for lay in getattr(model, "lstm_layers", []):
        halves = [lay.forward, lay.backward] if hasattr(lay, "forward") else [lay]
        units += sum(int(getattr(h, "units", 0)) for h in halves)
    return bt * max(units, 1)


def lstm_input_index(model: Any, layer: str) -> int:
    """The index of the model input that reaches ``layer`` first, walking the model's graph
    back (the first input of each node); 0 when the model has no graph to walk."""
    nodes = getattr(model, "nodes", None)
    inputs = list(getattr(model, "inputs", []) or [])
    if not nodes or not inputs:
        return 0
    produced = {(n.layer.name, n.index): n for n in nodes}
    input_names = [ref[0] for ref in inputs]
    seen: set[str] = set()
    name = layer
    while name not in input_names and name not in seen:
        seen.add(name)
        node = next((n for n in nodes if n.layer.name == name), None)
        if node is None or not node.inputs:
            return 0
        ref = node.inputs[0]
        src = produced.get((ref[0], ref[1]))
        name = src.layer.name if src is not None else ref[0]
    return input_names.index(name) if name in input_names else 0


def prepare_trace(trace: Trace, batch: int) -> None:
    """What the views of any trace need, computed once (and cached on its layer traces):
    colour levels of the six quantities, unit activity scores and spreads, and the overview
    image of each quantity of each layer for batch item ``batch``."""
    from ..analysis.levels import levels
    from ..analysis.overview import overview
    from ..analysis.units import default_units, unit_scores
    from ..engine.trace import QUANTITIES

    for lt in trace.layers:
        b = min(batch, lt.batch_size - 1)
        unit_scores(lt, b, "active")
        default_units(lt, b)
        for q in QUANTITIES:
            levels(q, lt)
            overview(lt, q, b)
