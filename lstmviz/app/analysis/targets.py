"""Parts the causal-analysis panels share: which output they explain (a target picker), the
engine model they need, long work with a progress bar and a Stop button, and clicking a
heatmap row to select its unit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QWidget,
)

from ...errors import LstmvizError
from ..workers import TaskRunner

#: The spaces a target is measured in (see :mod:`lstmviz.analysis.gradients`), as the
#: pickers name them.
SPACES = (
    ("output", "output", "The model's output itself (a probability for a softmax or sigmoid)"),
    ("logit", "logit", "The head's value before its softmax or sigmoid (never saturates)"),
    ("log", "log", "The log of the output (a log-probability)"),
)


def output_labels(state: Any, k_total: int) -> list[str]:
    """A label per output class, safe to display (a space shows as ␣)."""
    from ...analysis.outputs import display_label

    return [display_label(s) for s in state.output_labels(k_total)]


def engine_model(state: Any) -> Any:
    """The state's model if lstmviz's engine runs it (these analyses need its backward pass
    and intervened recurrence); else :class:`LstmvizError` saying what to do."""
    from ...engine.model import Model

    model = state.model
    if model is None:
        raise LstmvizError("open a model first")
    if not isinstance(model, Model):
        raise LstmvizError(
            "this analysis runs on lstmviz's own engine; the open model is run live by its "
            "framework. In the notebook, lstmviz.show(lstmviz.bridge.as_model(model, x), x) "
            "opens it on the engine (checked against the framework first); or save it as "
            ".keras, .onnx or a PyTorch state_dict and open that file"
        )
    if isinstance(state.x, list):
        raise LstmvizError("this analysis works on models with one input")
    return model


def output_layout(state: Any) -> tuple[bool, int, int]:
    """``(per_step, steps, K)`` of the model's first output on the current trace: whether it
    has one entry per timestep, how many steps, and how many output units per step."""
    from ...analysis.gradients import per_step_output

    tr = state.trace
    if tr is None:
        return False, 0, 0
    out = np.asarray(tr.output[0] if isinstance(tr.output, list) else tr.output)
    steps = tr.layers[-1].timesteps if tr.layers else 0
    per_step = per_step_output(state.model, out, steps)
    if per_step:
        k = int(np.prod(out.shape[2:])) if out.ndim >= 3 else 1
        return True, int(out.shape[1]), k
    return False, 1, int(np.prod(out.shape[1:])) if out.ndim >= 2 else 1


class TargetPicker(QWidget):
    """The output an analysis explains: output unit ``k`` (by its label), the step ``t`` (for
    models with an output at every step) and the space (output, logit, log)."""

    def __init__(self, state: Any, parent: QWidget | None = None, space: str = "output") -> None:
        super().__init__(parent)
        self.state = state
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Explain output"))
        self.k = QComboBox()
        self.k.setToolTip("The output unit (class, token, bit) whose value is explained")
        self.k.setMinimumContentsLength(6)
        self.k.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        lay.addWidget(self.k, 1)
        self.at = QLabel("at step")
        lay.addWidget(self.at)
        self.t = QSpinBox()
        self.t.setToolTip("The step whose output is explained")
        lay.addWidget(self.t)
        lay.addWidget(QLabel("as"))
        self.space = QComboBox()
        for key, title, tip in SPACES:
            self.space.addItem(title, key)
            self.space.setItemData(self.space.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.space.setCurrentIndex([s[0] for s in SPACES].index(space))
        self.space.setToolTip("output: the value itself; logit: before the softmax or sigmoid")
        lay.addWidget(self.space)
        self._model_id: int | None = None
        self.per_step = False

    def refresh(self) -> None:
        """Fill the choices from the state's trace; the choice is kept while it still fits the
        same model, else it becomes the model's answer at the last step."""
        per_step, steps, n_k = output_layout(self.state)
        self.per_step = per_step
        same = self._model_id == id(self.state.model) and self.k.count() == n_k
        old_k, old_t = self.k.currentIndex(), self.t.value()
        if not same:
            self.k.blockSignals(True)
            self.k.clear()
            labels = output_labels(self.state, n_k) if n_k > 1 else ["the output"]
            for i, lab in enumerate(labels):
                plain = n_k == 1 or lab == str(i)
                self.k.addItem(lab if plain else f"{lab}  ({i})", i)
            self.k.blockSignals(False)
        self.t.setRange(0, max(steps - 1, 0))
        self.t.setVisible(per_step)
        self.at.setVisible(per_step)
        if same:
            self.k.setCurrentIndex(max(old_k, 0))
            self.t.setValue(min(old_t, max(steps - 1, 0)))
        else:
            self.t.setValue(max(steps - 1, 0))
            self.k.setCurrentIndex(self._answer(n_k))
        self._model_id = id(self.state.model)

    def _answer(self, n_k: int) -> int:
        """The model's answer at the last step (the class most worth explaining)."""
        tr = self.state.trace
        if tr is None or n_k <= 1:
            return 0
        out = np.asarray(tr.output[0] if isinstance(tr.output, list) else tr.output)
        b = min(self.state.batch, out.shape[0] - 1)
        last = out[b].reshape(-1, n_k)[-1]
        return int(np.argmax(last)) if np.all(np.isfinite(last)) else 0

    def target(self) -> tuple[int, int]:
        """``(t, k)`` as :mod:`lstmviz.analysis` takes it."""
        k = max(self.k.currentIndex(), 0)
        return (self.t.value() if self.per_step else -1, k)

    def space_name(self) -> str:
        return str(self.space.currentData())

    def label(self) -> str:
        """``"output '4' at step 3 (logit)"``: for titles."""
        text = self.k.currentText().split("  (")[0] or "?"
        where = f" at step {self.t.value()}" if self.per_step else ""
        sp = self.space_name()
        return f"output {text!r}{where}" + ("" if sp == "output" else f" ({sp})")


class Stopped(LstmvizError):
    """The user pressed Stop (or the window closed): the task ends at its next progress
    report."""


class TaskBar(QWidget):
    """A progress bar and a Stop button for one panel's long work (a :class:`TaskRunner`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = TaskRunner(self)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        lay.addWidget(self.progress, 1)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop the computation (its result is dropped)")
        self.stop_btn.clicked.connect(self.stop)
        lay.addWidget(self.stop_btn)
        self.runner.progress.connect(self._on_progress)
        self.runner.running_changed.connect(self._on_running)
        self.setVisible(False)
        self.stopped = False

    def start(
        self,
        fn: Callable[..., Any],
        on_done: Callable[[Any], None],
        label: str,
        on_failed: Callable[[str], None] | None = None,
    ) -> None:
        """Run ``fn(progress, should_stop)`` in a worker; ``on_done(result)`` on the GUI
        thread. A task that only reports progress also stops when asked: its next report
        raises :class:`Stopped`."""
        self.stopped = False
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.progress.setFormat(f"{label}… %p%")

        def run(progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> Any:
            def report(i: int, n: int) -> None:
                if should_stop():
                    raise Stopped(f"{label}: stopped")
                progress(i, n)

            return fn(report, should_stop)

        self.runner.start(run, on_done, label, on_failed=on_failed)

    def shutdown(self) -> None:
        """Stop the task and give it a moment to end (the window is closing)."""
        self.runner.shutdown(200)

    def stop(self) -> None:
        self.stopped = True
        self.runner.cancel()

    def is_running(self) -> bool:
        return self.runner.is_running()

    def _on_progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(n, 1))
        self.progress.setValue(i)

    def _on_running(self, running: bool, label: str) -> None:
        self.setVisible(running)


def on_row_clicked(plot: pg.PlotItem, callback: Callable[[int, float], None]) -> None:
    """Call ``callback(row, x)`` when the mouse clicks inside ``plot``'s data area (row: the
    integer y under the pointer, x: the x coordinate)."""

    def clicked(event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        if not plot.vb.sceneBoundingRect().contains(pos):
            return
        p = plot.vb.mapSceneToView(pos)
        callback(int(np.floor(p.y())), float(p.x()))

    plot.scene().sigMouseClicked.connect(clicked)


def unit_ticks(n: int, max_labels: int = 10) -> list[tuple[float, str]]:
    """Left-axis ticks for ``n`` unit rows (row u spans ``[u, u + 1)``): centred labels, at
    most ``max_labels`` of them (every 1, 2, 5, 10, 20, 50, ... units)."""
    step = 1
    for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        step = s
        if -(-n // s) <= max_labels:
            break
    return [(u + 0.5, str(u)) for u in range(0, n, step)]


def describe(iv: Any) -> str:
    """An intervention in words: ``"lstm: cell of unit 2 = mean on this input, t 3..7"``."""
    what = {
        "zero": "= 0",
        "clamp": f"= {iv.value:g}",
        "mean": f"= mean on {iv.label or 'a corpus'}",
        "patch": f"= values on {iv.label or 'another input'}",
    }[iv.mode]
    when = ""
    if iv.start is not None or iv.stop is not None:
        a = "0" if iv.start is None else str(iv.start)
        b = "end" if iv.stop is None else str(iv.stop - 1)
        when = f", t {a}..{b}"
    units = ", ".join(str(u) for u in iv.units)
    plural = "s" if len(iv.units) > 1 else ""
    return f"{iv.layer}: {iv.quantity.replace('_', ' ')} of unit{plural} {units} {what}{when}"


class _Controls(QScrollArea):
    """The controls column: as wide as its widgets need (never clipped), scrolling
    vertically when the dock is short."""

    def __init__(self, inner: QWidget) -> None:
        super().__init__()
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        bar = self.verticalScrollBar().sizeHint().width()
        w = inner.minimumSizeHint().width() if inner is not None else 100
        return QSize(w + bar + 4, 60)

    def sizeHint(self) -> QSize:
        return self.minimumSizeHint()


def side_by_side(left: QWidget, right: QWidget, left_width: int = 470) -> QSplitter:
    """The causal panels' layout: controls on the left (scrolling when the dock is short),
    plots on the right taking the rest."""
    scroll = _Controls(left)
    split = QSplitter(Qt.Orientation.Horizontal)
    split.addWidget(scroll)
    split.addWidget(right)
    split.setStretchFactor(0, 0)
    split.setStretchFactor(1, 1)
    split.setSizes([left_width, 1000])
    split.setChildrenCollapsible(False)
    return split


def input_as_text(state: Any, x: Any) -> str:
    """``x`` (one sequence of the state's model) written as the input editor reads it."""
    from ...state import ViewerState

    tmp = ViewerState()  # a throwaway state: its input_text() knows every input kind
    tmp.set_model(state.model, None, state.info, x, trace=state.trace)
    return tmp.input_text()


def robust_max(a: np.ndarray, q: float = 99.5) -> float:
    """The ``q``-th percentile of ``|a|`` (a few extreme cells do not wash out the rest of a
    heatmap), at least 1e-12."""
    v = np.abs(np.asarray(a, np.float64)).ravel()
    v = v[np.isfinite(v)]
    return float(max(np.percentile(v, q), 1e-12)) if v.size else 1e-12


def open_traced_corpus(parent: QWidget, state: Any) -> tuple[Any, str] | None:
    """Ask for a corpus traced by the open model (the Corpus panel writes them) and open it:
    ``(store, folder name)``, or None when the user cancelled. A corpus of another model
    (other weights) raises :class:`LstmvizError`."""
    from pathlib import Path

    from ...analysis import open_corpus
    from ...analysis.corpus._common import weights_sha256
    from .. import dialogs

    folder = dialogs.ask_directory(parent, "A traced corpus")
    if not folder:
        return None
    store = open_corpus(folder)
    want = store.meta.get("weights_sha256")
    model = engine_model(state)
    if want and weights_sha256(model) != want:
        raise LstmvizError(
            f"the corpus in {folder} was traced by another model (its weights differ from "
            f"{model.name}'s); trace this model's corpus in the Corpus panel"
        )
    if state.layer not in store.layers:
        raise LstmvizError(
            f"the corpus in {folder} has no layer {state.layer!r} (it has "
            f"{', '.join(store.layers)})"
        )
    return store, Path(folder).name
