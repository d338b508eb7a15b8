"""The Train panel: train a task's model (or the open model's architecture) in a worker thread
and watch the gates learn.

Training runs :func:`lstmviz.train.core.train` on a :class:`~lstmviz.app.workers.TaskRunner`
of its own (opening files or tracing never cancels a training run). The worker hands weight
snapshots to the GUI thread, which turns them into an engine model and retraces the current
input with the NumPy engine; the snapshots form a timeline to scrub after training. TensorFlow
is imported in a child process, behind a visible "loading TensorFlow…" state.

The Keras training loop itself runs in a child process (:mod:`lstmviz.train.process`) that
the worker thread supervises: TensorFlow's import and training hold Python's GIL for long
stretches and would otherwise stall the GUI thread.

``install(window)`` adds the dock, the Train menu and View ▸ Engine (NumPy / Keras); the
Keras engine has a child process of its own (:class:`lstmviz.train.process.KerasEngineProcess`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import LstmvizError
from . import dialogs
from .analysis.common import PlotStack
from .fit_label import FitLabel
from .panels import Panels, PanelSpec
from .workers import TaskRunner, background

if TYPE_CHECKING:
    from ..train.process import KerasEngineProcess

log = logging.getLogger(__name__)

#: the model built from a snapshot is cached for this many snapshots (scrubbing is instant)
MODEL_CACHE = 64
#: batch logs reach the GUI at most this often (seconds)
LOG_INTERVAL = 0.1
#: while training, a new snapshot is shown at most this often (seconds; the newest wins)
SHOW_INTERVAL = 0.3
#: the loss and accuracy curves are redrawn at most this often while training (seconds)
CURVE_INTERVAL = 0.25


def _nice_ceil(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= ``v`` (> 0)."""
    if not v > 0:
        return 1.0
    e = 10.0 ** np.floor(np.log10(v))
    return float(next(m * e for m in (1, 2, 2.5, 5, 10) if m * e >= v * (1 - 1e-9)))


#: what the story plot shows, per task (the metric of lstmviz.analysis.story)
_STORY_METRIC = {
    "binary-addition": "the carry unit's |r|",
    "digit-sum": "running-sum accuracy",
    "toy-classification": "accuracy of the answer",
    "char-textgen": "next-character accuracy",
    "word-lm": "next-word accuracy",
}


def _fmt_eta(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 60}:{s % 60:02d}"


class TrainPanel(QWidget):
    """Task and hyper-parameters, Start/Pause/Cancel, live curves, progress with ETA,
    snapshot timeline, Save as .keras.

    Signals: ``state_changed(str)`` ("idle", "loading", "training", "paused", "finished",
    "cancelled", "failed"), ``snapshot_added(int)`` (its index), ``trained(object)`` (the
    :class:`~lstmviz.train.process.TrainSummary`), ``saved(str)``.
    """

    state_changed = Signal(str)
    snapshot_added = Signal(int)
    trained = Signal(object)
    saved = Signal(str)

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from ..train.tasks import list_tasks

        self.main_window = window
        self.viewer = window.state
        self.runner = TaskRunner(self)
        self.tasks = list_tasks()
        self.snapshots: list[Any] = []
        self.result: Any = None
        self.state = "idle"
        self.task: Any = None
        self._models: OrderedDict[int, Any] = OrderedDict()
        self._gate: Any = None
        self._cancel = False
        self._t_start = 0.0
        self._loss_top: float | None = None  # the loss axis's upper end
        self._steps: list[float] = []
        self._loss: list[float] = []
        self._acc: list[float] = []
        self._shown: int | None = None
        self._own_arch_path: str | None = None
        self._pending_show: int | None = None
        self._switched_model = False  # the viewer shows the snapshots' model
        self._last_show = 0.0
        self._show_timer = QTimer(self)
        self._show_timer.setSingleShot(True)
        self._show_timer.timeout.connect(self._show_pending)
        # the curves' redraw (both plots and their axes) is coalesced like the snapshots
        self._curve_timer = QTimer(self)
        self._curve_timer.setSingleShot(True)
        self._curve_timer.setInterval(int(CURVE_INTERVAL * 1000))
        self._curve_timer.timeout.connect(self._redraw_curves)
        self.tracker: Any = None  # the StoryTracker of the run
        self.story_runner = TaskRunner(self)  # scores snapshots off the GUI thread
        self._story_pending: int | None = None
        self._story_xy: tuple[list[float], list[float]] = ([], [])
        # the colour levels are locked while training; unlocked again afterwards when the
        # user had them unlocked (and has not touched the lock since)
        self._unlock_after = False
        self._build()
        self._on_task_changed()
        self.viewer.events.model.connect(self._on_model_changed)
        self.viewer.options.events.lock_levels.connect(self._on_lock_toggled)
        self._on_model_changed()
        self._set_state("idle")

    # --- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.task_combo = QComboBox()
        for t in self.tasks:
            self.task_combo.addItem(t.title, t.name)
        self.task_combo.setToolTip("What to learn: the data, and the task's own model")
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.own_arch = QCheckBox("Train the open model's architecture")
        self.own_arch.setToolTip(
            "Fresh weights, the open model's layers, this task's data "
            "(the model's input and output must fit the task)"
        )
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 8192)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(0.001)
        self.units = QSpinBox()
        self.units.setRange(1, 2048)
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.snap_every = QSpinBox()
        self.snap_every.setRange(0, 100_000)
        self.snap_every.setValue(20)
        self.snap_every.setToolTip(
            "Retrace the input with the current weights every N batches "
            "(0: at the end of each epoch only)"
        )
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        for w, tip in (
            (self.epochs, "Passes over freshly generated data"),
            (self.batch_size, "Sequences per batch"),
            (self.lr, "Adam's learning rate (decays to 5% over the run)"),
            (self.units, "LSTM units of the task's model"),
            (self.steps, "Batches per epoch"),
            (self.seed, "Random seed"),
        ):
            w.setToolTip(tip)
        form = QFormLayout()
        form.addRow("Task", self.task_combo)
        form.addRow("", self.own_arch)
        # two label/field pairs per row; a grid gives every label the width it needs
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        pairs: tuple[tuple[str, Any], ...] = (
            ("Epochs", self.epochs),
            ("Batch size", self.batch_size),
            ("Batches per epoch", self.steps),
            ("Learning rate", self.lr),
            ("Units", self.units),
            ("Seed", self.seed),
            ("Snapshot every", self.snap_every),
        )
        self._grid = grid
        self._pairs = [(QLabel(label), w) for label, w in pairs]
        self._grid_columns = 0
        self._place_settings(2)
        grid.setColumnStretch(1, 1)
        form.addRow(grid)

        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("Start training (Ctrl+Shift+T)")
        self.start_btn.clicked.connect(lambda: self.start())
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setToolTip("Pause between two batches; press again to go on")
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop after the current batch and keep the weights")
        self.cancel_btn.clicked.connect(self.cancel)
        self.save_btn = QPushButton("Save as .keras…")
        self.save_btn.setToolTip("Save the trained model (with its .lstmviz.json) and open it")
        self.save_btn.clicked.connect(self.choose_save)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.cancel_btn, self.save_btn):
            buttons.addWidget(b)

        # one line beside the progress bar, always in view: shortened to the room it has
        # (the whole sentence in its tooltip)
        self.state_label = FitLabel()
        # the story emerging (the carry unit's r, the running-sum accuracy...), snapshot by
        # snapshot, or the plain news that this run has none
        # one line under the curves (its first sentence when the whole does not fit; the
        # whole in the tooltip): two wrapped lines grew the panel mid-run and folded away
        # the line plots under the heatmaps
        self.story_label = FitLabel()
        self.story_label.setToolTip(STORY_TIP)
        self.bundled_btn = QPushButton("Open the bundled model")
        self.bundled_btn.setToolTip("The task's bundled, fully trained model, which has the story")
        self.bundled_btn.clicked.connect(self.open_bundled)
        self.bundled_btn.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not started")

        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.setRange(0, 0)
        self.timeline.setEnabled(False)
        self.timeline.setToolTip(
            "Scrub through the weight snapshots: the heatmaps show the "
            "current input traced with the weights of that moment"
        )
        self.timeline.valueChanged.connect(self._on_timeline)
        # one line beside the slider, shortened rather than widening the panel
        self.timeline_label = FitLabel()
        self.timeline_label.set_texts("no snapshots yet")
        self.follow = QCheckBox("Follow")
        self.follow.setChecked(True)
        self.follow.setToolTip("Show every new snapshot while training")
        # the timeline: under the curves it scrubs (normal type), or in the settings column
        # (presentation mode's large type: the curves share a 720 px projector's height with
        # the big view above)
        self.timeline_row = QWidget()
        trow = QHBoxLayout(self.timeline_row)
        trow.setContentsMargins(0, 0, 0, 0)
        trow.addWidget(QLabel("Timeline"))
        trow.addWidget(self.timeline, 2)
        trow.addWidget(self.follow)
        trow.addWidget(self.timeline_label, 3)

        left = QVBoxLayout()
        left.addLayout(form)
        left.addStretch(1)
        self._left = left

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(CURVES_MIN_PX[False])
        # the x axes' name is in the titles ("by batch"): an axis label took 20 of the
        # curves' 150 px, their data kept 64
        self.loss_plot = self.plots.addPlot(title="loss by batch")
        self.acc_plot = self.plots.addPlot(title="accuracy by batch")
        for p in (self.loss_plot, self.acc_plot):
            # a light horizontal grid only: AxisItem grids across the whole plot cost ~10 ms
            # per repaint, and the curves are redrawn while the GUI must stay responsive
            p.showGrid(x=False, y=True, alpha=0.2)
            for ax in ("left", "bottom"):  # repainted from a pixmap unless the ticks change
                p.getAxis(ax).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            p.setDownsampling(mode="peak")
            p.setClipToView(True)
        self.story_plot = self.plots.addPlot(title="the story by batch")
        self.story_plot.setYRange(0, 1)
        self.story_plot.showGrid(x=False, y=True, alpha=0.2)
        self.story_curve = self.story_plot.plot(
            pen=pg.mkPen("#2fd39a", width=2), symbol="o", symbolSize=6, symbolBrush="#2fd39a"
        )
        self.story_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("#F0E442", style=Qt.PenStyle.DashLine)
        )
        self.story_line.setVisible(False)
        self.story_plot.addItem(self.story_line)
        self.acc_plot.setYRange(0, 1)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#f0a040", width=2), antialias=False)
        self.acc_curve = self.acc_plot.plot(pen=pg.mkPen("#50b0f0", width=2), antialias=False)
        dash = pg.mkPen("#888", style=Qt.PenStyle.DashLine)
        self.loss_cursor = pg.InfiniteLine(angle=90, pen=dash)  # the snapshot shown
        self.acc_cursor = pg.InfiniteLine(angle=90, pen=dash)
        self.loss_plot.addItem(self.loss_cursor)
        self.acc_plot.addItem(self.acc_cursor)
        self.loss_cursor.setVisible(False)
        self.acc_cursor.setVisible(False)

        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.settings = _SettingsColumn(left)
        column = QVBoxLayout()  # the buttons and the progress stay in view; the settings
        column.addLayout(buttons)  # under them scroll when the panel is low
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 2)
        prow.addWidget(self.state_label, 3)
        column.addLayout(prow)
        column.addWidget(self.settings, 1)
        lay.addLayout(column)
        right = QVBoxLayout()
        right.setSpacing(2)
        # until a run starts, a sentence instead of empty axes
        self.plot_stack = PlotStack(
            self.plots,
            "Pick a task and press Start: the loss, the accuracy and the story (what the "
            "network learns to keep in its cell state) draw here batch by batch.",
            min_height=160,
        )
        right.addWidget(self.plot_stack, 1)
        srow = QHBoxLayout()  # the story in words, under its curve
        srow.addWidget(self.story_label, 1)
        srow.addWidget(self.bundled_btn)
        right.addLayout(srow)
        right.addWidget(self.timeline_row)
        self._right = right
        self._timeline_left = False
        lay.addLayout(right, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def _place_settings(self, columns: int) -> None:
        """The settings' label/field pairs, ``columns`` pairs a row."""
        if columns == self._grid_columns:
            return
        self._grid_columns = columns
        for label, w in self._pairs:
            self._grid.removeWidget(label)
            self._grid.removeWidget(w)
        for k, (label, w) in enumerate(self._pairs):
            r, c = divmod(k, columns)
            self._grid.addWidget(label, r, 2 * c)
            self._grid.addWidget(w, r, 2 * c + 1)
        self._grid.setColumnStretch(3, 1 if columns == 2 else 0)

    def changeEvent(self, ev: QEvent) -> None:
        super().changeEvent(ev)
        if ev.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            # presentation mode's large type: one setting a row (two were ~950 px wide and
            # left the curves ~300 px on a 1280 px projector) -- they scroll -- and lower
            # curves (the panel shares the screen's height with the big view above it)
            big = self.font().pixelSize() >= LARGE_TYPE_PX
            self._place_settings(1 if big else 2)
            self.plot_stack.setMinimumHeight(CURVES_MIN_PX[big])
            # normal type: the story's row as high with its button as without it (the panel
            # keeps its height when the run ends)
            self.story_label.setMinimumHeight(0 if big else self.bundled_btn.sizeHint().height())
            if big != self._timeline_left:
                self._timeline_left = big
                (self._right if big else self._left).removeWidget(self.timeline_row)
                if big:  # under the settings, before the stretch
                    self._left.insertWidget(self._left.count() - 1, self.timeline_row)
                else:
                    self._right.addWidget(self.timeline_row)

    # --- state -------------------------------------------------------------------------------
    @property
    def selected_task(self) -> Any:
        return self.tasks[max(self.task_combo.currentIndex(), 0)]

    def config(self) -> Any:
        """The :class:`~lstmviz.train.tasks.TrainConfig` the spin boxes describe."""
        from ..train.tasks import TrainConfig

        return TrainConfig(
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            learning_rate=float(self.lr.value()),
            units=self.units.value(),
            steps_per_epoch=self.steps.value(),
            seed=self.seed.value(),
            snapshot_every=self.snap_every.value(),
        )

    def _on_task_changed(self) -> None:
        d = self.selected_task.defaults
        self.epochs.setValue(d.epochs)
        self.batch_size.setValue(d.batch_size)
        self.lr.setValue(d.learning_rate)
        self.units.setValue(d.units)
        self.steps.setValue(d.steps_per_epoch)
        self.seed.setValue(d.seed)
        self.task_combo.setToolTip(self.selected_task.description)

    def _show_config(self, task: Any, config: Any) -> None:
        """Let the controls show what actually runs (a config given to :meth:`start`)."""
        i = self.task_combo.findData(task.name)
        if i >= 0 and i != self.task_combo.currentIndex():
            self.task_combo.blockSignals(True)
            self.task_combo.setCurrentIndex(i)
            self.task_combo.blockSignals(False)
        for w, v in (
            (self.epochs, config.epochs),
            (self.batch_size, config.batch_size),
            (self.lr, config.learning_rate),
            (self.units, config.units),
            (self.steps, config.steps_per_epoch),
            (self.seed, config.seed),
            (self.snap_every, config.snapshot_every),
        ):
            w.setValue(v)

    def _on_model_changed(self) -> None:
        path = self.viewer.model_path
        ok = bool(path) and str(path).endswith(".keras") and Path(str(path)).is_file()
        self._own_arch_path = str(path) if ok else None
        self.own_arch.setEnabled(ok and self.state not in ("loading", "training", "paused"))
        if not ok:
            self.own_arch.setChecked(False)
        # a model whose task we know: preselect it
        info = self.viewer.info
        if info is not None and info.task and self.state not in ("loading", "training", "paused"):
            i = self.task_combo.findData(info.task)
            if i >= 0 and i != self.task_combo.currentIndex():
                self.task_combo.setCurrentIndex(i)

    def _set_state(self, state: str, text: str = "") -> None:
        self.state = state
        busy = state in ("loading", "training", "paused")
        self.start_btn.setEnabled(not busy)
        self.pause_btn.setEnabled(state in ("training", "paused"))
        self.pause_btn.setText("Resume" if state == "paused" else "Pause")
        self.cancel_btn.setEnabled(busy)
        self.save_btn.setEnabled(self.result is not None and not busy)
        for w in (
            self.task_combo,
            self.epochs,
            self.batch_size,
            self.lr,
            self.units,
            self.steps,
            self.seed,
            self.snap_every,
        ):
            w.setEnabled(not busy)
        self.own_arch.setEnabled(not busy and self._own_arch_path is not None)
        self.units.setEnabled(not busy and not self.own_arch.isChecked())
        if state == "loading":
            self.progress.setRange(0, 0)  # busy indicator
        default = {
            "idle": "",  # the curves' area says what to do, the progress "not started"
            "loading": "loading TensorFlow…",
            "training": "training…",
            "paused": "paused",
            "finished": "finished",
            "cancelled": "cancelled",
            "failed": "failed",
        }[state]
        self.state_label.set_texts(text or default)
        self.state_changed.emit(state)

    # --- training ----------------------------------------------------------------------------
    def start(self, task: Any = None, config: Any = None) -> None:
        """Start training ``task`` (default: the selected one) with ``config`` (default: the
        spin boxes)."""
        from ..train.core import PauseGate

        if self.state in ("loading", "training", "paused"):
            return
        try:
            task = task or self.selected_task
            config = config or self.config()
        except LstmvizError as e:
            self.main_window.show_error(str(e))
            return
        arch = self._own_arch_path if self.own_arch.isChecked() else None
        if arch is None:
            self._open_task_example(task)
        self._show_config(task, config)
        self.task = task
        self._discard_result()
        self.snapshots = []
        self._models.clear()
        self._shown = None
        self._steps, self._loss, self._acc = [], [], []
        self._curve_timer.stop()
        self._loss_top = None
        self.loss_curve.setData([], [])
        self.acc_curve.setData([], [])
        self.plot_stack.show_plots()
        for p in (self.loss_plot, self.acc_plot):  # the x axis is fixed for the whole run
            p.setXRange(0, max(config.total_steps, 1), padding=0.02)
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, 0)
        self.timeline.blockSignals(False)
        self.timeline.setEnabled(False)
        self.timeline_label.set_texts("no snapshots yet")
        self._start_story(task)
        # colours stay comparable across the snapshots: epoch 1 and epoch 12 by eye
        unlocked = not self.viewer.options.lock_levels
        self.viewer.options.lock_levels = True
        self._unlock_after = unlocked
        self._cancel = False
        self._gate = PauseGate()
        gate = self._gate
        self._switched_model = False
        self.progress.setRange(0, config.total_steps)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m batches")
        self._set_state("loading")
        self.main_window.status("loading TensorFlow…")
        cancelled = lambda: self._cancel  # noqa: E731 (read in the worker thread)

        def job(progress: Any, should_stop: Any) -> Any:
            # the training itself runs in a child process (TensorFlow there never holds this
            # process's GIL); this worker thread relays its messages
            from ..train.process import ProcessTrainingError, train_in_process

            try:
                return train_in_process(
                    task,
                    config,
                    on_message=lambda kind, obj: progress.partial((kind, obj)),
                    should_stop=lambda: should_stop() or cancelled(),
                    is_paused=lambda: gate.paused,
                    arch_path=arch,
                    log_interval=LOG_INTERVAL,
                )
            except ProcessTrainingError as e:
                if e.summary is not None:
                    progress.partial(("result", e.summary))
                raise

        self._t_start = time.monotonic()
        self.runner.start(
            job,
            self._on_finished,
            f"Training {task.name}",
            on_failed=self._on_failed,
            on_partial=self._on_partial,
        )

    def _open_task_example(self, task: Any) -> None:
        """Show the task's bundled model while TensorFlow loads, unless the viewer shows
        this task already: the snapshots then retrace a model of the same shape, which
        redraws data only, instead of switching the whole window to another model (a
        full relayout and repaint) at the first snapshot, in the middle of training."""
        doc = self.viewer
        info = doc.info
        if doc.model is not None and info is not None and info.task == task.name:
            return
        from ..examples import EXAMPLES_DIR

        path = EXAMPLES_DIR / f"{task.example_name}.keras" if task.example_name else None
        if path is None or not path.is_file():
            return
        if doc.model is not None and (info is None or not info.task):
            # a model of unknown task but of the task's shape stays open
            from ..io import load_model

            try:
                if self._fits(load_model(path)):
                    return
            except LstmvizError:
                pass
        self.main_window.open_model(path)

    def toggle_pause(self) -> None:
        """Pause between two batches, or go on."""
        if self._gate is None:
            return
        if self.state == "training":
            self._gate.pause()
            self._set_state("paused", "paused — the worker waits before the next batch")
        elif self.state == "paused":
            self._gate.resume()
            self._set_state("training")

    def cancel(self) -> None:
        """Stop after the current batch; the weights so far are kept (and can be saved)."""
        if self.state not in ("loading", "training", "paused"):
            return
        self._cancel = True
        if self._gate is not None:
            self._gate.resume()
        self.state_label.set_texts("cancelling after this batch…")

    def _on_lock_toggled(self, on: bool) -> None:
        # the user's own choice while training wins over restoring theirs from before
        self._unlock_after = False

    def _restore_lock(self) -> None:
        """Training is over: the colour levels follow each input again if they did before."""
        if self._unlock_after:
            self._unlock_after = False
            self.viewer.options.lock_levels = False

    def _discard_result(self) -> None:
        r, self.result = self.result, None
        if r is not None and hasattr(r, "cleanup"):
            r.cleanup()  # the temporary copy of an unsaved model

    def shutdown(self) -> None:
        self._discard_result()
        self.story_runner.shutdown()
        self._cancel = True
        if self._gate is not None:
            self._gate.resume()
        self.runner.shutdown()

    # --- worker -> GUI -----------------------------------------------------------------------
    def _on_partial(self, msg: Any) -> None:
        kind, obj = msg
        if kind == "phase":
            self.state_label.set_texts(obj)
        elif kind == "logs":
            if self.state == "loading":
                self._set_state("training")
                self.main_window.status("training…")
            self._add_logs(obj)
        elif kind == "snapshot":
            if self.state == "loading":
                self._set_state("training")
            self._add_snapshot(obj)
        elif kind == "result":
            self.result = obj

    def _add_logs(self, logs: list[Any]) -> None:
        for b in logs:
            self._steps.append(b.step)
            self._loss.append(b.loss)
            self._acc.append(b.accuracy)
        if not self._curve_timer.isActive():
            self._curve_timer.start()
        b = logs[-1]
        self.progress.setRange(0, b.total)
        self.progress.setValue(b.step)
        self.progress.setFormat(f"%v / %m batches · ETA {_fmt_eta(b.eta)}")
        if self.state == "training" and not self._cancel:
            self.state_label.set_texts(
                f"training: epoch {b.epoch + 1}, loss {b.loss:.4f}, accuracy {b.accuracy:.3f}"
                f" · {_fmt_eta(b.elapsed)} elapsed, ETA {_fmt_eta(b.eta)}",
                f"epoch {b.epoch + 1}, loss {b.loss:.4f}, accuracy {b.accuracy:.3f}",
            )

    def _redraw_curves(self) -> None:
        self._curve_timer.stop()
        self.loss_curve.setData(self._steps, self._loss)
        self.acc_curve.setData(self._steps, self._acc)
        # the loss axis spans 0 .. a round number above the largest loss so far: it changes
        # a few times per run instead of at every redraw (an axis re-render costs ~10 ms)
        finite = [v for v in self._loss if np.isfinite(v)]
        top = _nice_ceil(max(finite)) if finite else 1.0
        if top != self._loss_top:
            self._loss_top = top
            self.loss_plot.setYRange(0, top, padding=0.02)

    # --- the story, snapshot by snapshot ---------------------------------------------------
    def _start_story(self, task: Any) -> None:
        from ..train.story import StoryTracker

        self.story_runner.cancel()
        self._story_pending = None
        self._story_xy = ([], [])
        self.story_curve.setData([], [])
        self.bundled_btn.setVisible(False)
        self.tracker = StoryTracker(task)
        if not self.tracker.available:
            self._set_story(f"The {task.title} task has no story to measure.")
            self.story_plot.setTitle("the story by batch")
            self.story_line.setVisible(False)
            return
        from ..analysis.story import THRESHOLDS

        self.story_line.setValue(THRESHOLDS[task.name])
        self.story_line.setVisible(True)
        metric = _STORY_METRIC.get(task.name, "its metric")
        self.story_plot.setTitle(f"the story by batch: {metric}")
        self._set_story("The story: measured on every snapshot as the model learns…")

    def _score_next(self) -> None:
        """Score the newest snapshot not scored yet (one at a time, the newest wins)."""
        tracker, i = self.tracker, self._story_pending
        if tracker is None or not tracker.available or i is None:
            return
        if self.story_runner.is_running():
            return
        self._story_pending = None
        snap = self.snapshots[i]
        model = self._models.get(i)

        def job(progress: Any, should_stop: Any) -> Any:
            return tracker.add(snap, model)

        def done(story: Any) -> None:
            if tracker is not self.tracker or story is None:
                return
            xs, ys = self._story_xy
            xs.append(float(snap.step))
            ys.append(float(story.value))
            self.story_curve.setData(xs, ys)
            self._show_verdict()
            self._score_next()

        def failed(msg: str) -> None:
            log.warning("scoring the story of a snapshot failed: %s", msg)
            self._score_next()

        self.story_runner.start(job, done, "Scoring the story", on_failed=failed)

    def _show_verdict(self) -> None:
        tracker = self.tracker
        if tracker is None or not tracker.available or not tracker.stories:
            return
        over = self.state in ("finished", "cancelled", "failed")
        settled = over and self._story_pending is None and not self.story_runner.is_running()
        self._set_story(tracker.verdict(finished=settled))
        last = tracker.stories[-1]
        self.bundled_btn.setVisible(
            settled and not last.present and self._bundled_path() is not None
        )

    def _bundled_path(self) -> Path | None:
        from ..examples import EXAMPLES_DIR

        task = self.task
        if task is None or not task.example_name:
            return None
        path = EXAMPLES_DIR / f"{task.example_name}.keras"
        return path if path.is_file() else None

    def open_bundled(self) -> None:
        """Open the task's bundled model: it tells the story this run did not."""
        path = self._bundled_path()
        if path is not None:
            self.main_window.open_model(path)

    def _add_snapshot(self, snap: Any) -> None:
        self.snapshots.append(snap)
        i = len(self.snapshots) - 1
        if self.tracker is not None and self.tracker.available:
            self._story_pending = i
            self._score_next()
        at_end = self.timeline.value() >= self.timeline.maximum()
        self.timeline.blockSignals(True)
        self.timeline.setRange(0, i)
        self.timeline.blockSignals(False)
        self.timeline.setEnabled(i > 0)
        self.snapshot_added.emit(i)
        if self.follow.isChecked() and (at_end or self._shown is None):
            self.timeline.blockSignals(True)
            self.timeline.setValue(i)
            self.timeline.blockSignals(False)
            # coalesced: a redraw of every view costs tens of ms, so at most one snapshot is
            # shown per SHOW_INTERVAL (the newest); a backlog never builds up on the GUI thread
            self._pending_show = i
            if not self._show_timer.isActive():
                wait = max(0.0, SHOW_INTERVAL - (time.monotonic() - self._last_show))
                self._show_timer.start(int(wait * 1000))
        else:
            self._update_timeline_label(self.timeline.value())

    def _show_pending(self) -> None:
        i = self._pending_show
        self._pending_show = None
        if i is not None and 0 <= i < len(self.snapshots):
            self._last_show = time.monotonic()
            self.show_snapshot(i)

    def _flush_show(self) -> None:
        if self._show_timer.isActive():
            self._show_timer.stop()
        self._show_pending()

    def _on_finished(self, result: Any) -> None:
        self._flush_show()
        self._redraw_curves()
        self.result = result
        secs = time.monotonic() - self._t_start
        if result.stopped:
            self._set_state(
                "cancelled",
                f"cancelled after {result.steps} batches "
                f"({secs:.0f} s); the weights so far are kept",
            )
        else:
            m = result.metrics
            acc = m.get("heldout_accuracy")
            extra = f"held-out accuracy {acc:.4f}" if acc is not None else ""
            if "train_accuracy" in m:
                extra += f", training-text accuracy {m['train_accuracy']:.4f}"
            self._set_state(
                "finished",
                f"finished in {secs:.0f} s: {extra}. Scrub the timeline to compare epochs.",
            )
        self.progress.setFormat("%v / %m batches")
        self.main_window.status(self.state_label.full_text)
        self._restore_lock()
        self._show_verdict()
        self.trained.emit(result)

    def _on_failed(self, msg: str) -> None:
        self._redraw_curves()
        self._show_timer.stop()
        self._pending_show = None
        self._set_state("failed", msg.splitlines()[0] if msg else "failed")
        # the last good weights stay on screen (the last snapshot) and can be saved
        if self.snapshots:
            self.show_snapshot(len(self.snapshots) - 1)
        self._restore_lock()
        self.main_window.show_error(msg)

    # --- snapshots -> viewer ---------------------------------------------------------------
    def engine_model(self, i: int) -> Any:
        """The engine model of snapshot ``i`` (cached)."""
        m = self._models.get(i)
        if m is None:
            m = self.snapshots[i].engine_model()
            self._models[i] = m
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(i)
        return m

    def _on_timeline(self, i: int) -> None:
        if 0 <= i < len(self.snapshots):
            self.show_snapshot(i)

    def show_snapshot(self, i: int) -> None:
        """Trace the current input with snapshot ``i``'s weights (NumPy engine)."""
        snap = self.snapshots[i]
        doc = self.viewer
        try:
            model = self.engine_model(i)
            if not self._switched_model and not self._fits(model):
                # training a task whose model is not the open one: show the task's model
                info = self.task.info(None) if self.task is not None else None
                from ..io.inputs import example_input

                doc.set_model(model, None, info, example_input(model, info))
                self._switched_model = True
            # traced off the GUI thread; the snapshot's weights become the viewer's: a new
            # input, what-if or an export then use the weights on screen
            doc.show_weights(model, engine=f"NumPy · snapshot {snap.label}")
        except LstmvizError as e:
            self.state_label.set_texts(f"cannot trace this snapshot: {e}")
            return
        self._switched_model = True
        self._shown = i
        self._update_timeline_label(i)

    @property
    def shown_snapshot(self) -> int | None:
        """Index of the snapshot the viewer shows, or None."""
        return self._shown

    def load_snapshots(self, snapshots: list[Any], shown: int | None = None) -> None:
        """Put saved snapshots on the timeline (a restored session) without training.

        The viewer is expected to show their model already; ``shown`` is traced and
        selected on the timeline when it is a valid index. Refused while training.
        """
        if self.state in ("loading", "training", "paused"):
            raise LstmvizError("cannot replace the timeline while a model is training")
        follow = self.follow.isChecked()
        self.follow.setChecked(False)
        try:
            self.snapshots = []
            self._models.clear()
            self._shown = None
            self._switched_model = True
            for snap in snapshots:
                self._add_snapshot(snap)
        finally:
            self.follow.setChecked(follow)
        if shown is not None and 0 <= shown < len(self.snapshots):
            self.show_snapshot(shown)
            self.timeline.blockSignals(True)
            self.timeline.setValue(shown)
            self.timeline.blockSignals(False)
        else:
            self._update_timeline_label(self.timeline.value())

    def _fits(self, model: Any) -> bool:
        doc = self.viewer
        if doc.model is None or doc.x is None:
            return False
        cur = doc.model
        if [lay.units for lay in cur.lstm_layers] != [lay.units for lay in model.lstm_layers]:
            return False
        if cur.takes_tokens != model.takes_tokens or cur.input_features != model.input_features:
            return False
        try:
            model.check_input(doc.x)
        except LstmvizError:
            return False
        if model.takes_tokens:
            emb, cur_emb = model.embedding, cur.embedding
            return emb is not None and cur_emb is not None and emb.input_dim == cur_emb.input_dim
        return True

    def _set_story(self, text: str) -> None:
        first = text.split(". ")[0].rstrip(".") + "."
        self.story_label.set_texts(text, first, tip=STORY_TIP)

    def _update_timeline_label(self, i: int) -> None:
        if not self.snapshots:
            self.timeline_label.set_texts("no snapshots yet")
            return
        s = self.snapshots[min(i, len(self.snapshots) - 1)]
        loss = s.metrics.get("loss")
        tail = f" · loss {loss:.4f}" if loss is not None and np.isfinite(loss) else ""
        which = f"snapshot {i + 1}/{len(self.snapshots)}"
        self.timeline_label.set_texts(f"{which}: {s.label}{tail}", f"{which}: {s.label}", which)
        for c in (self.loss_cursor, self.acc_cursor):
            c.setValue(s.step)
            c.setVisible(s.step > 0)

    # --- saving ------------------------------------------------------------------------------
    def choose_save(self) -> None:
        if self.result is None:
            self.main_window.show_error("Nothing trained yet: press Start first.")
            return
        name = (self.task.example_name or self.task.name.replace("-", "_")) + "_trained.keras"
        path = dialogs.ask_save_file(self, "Save trained model", name, "Keras model (*.keras)")
        if path:
            if not path.endswith(".keras"):
                path += ".keras"
            self.save(path)

    def save(self, path: str, open_after: bool = True) -> None:
        """Save the trained model as ``.keras`` (in a worker) and open it in lstmviz."""
        if self.result is None:
            raise LstmvizError("nothing trained yet: press Start first")
        result = self.result

        def job(progress: Any, should_stop: Any) -> str:
            return result.save(path)

        def done(p: str) -> None:
            self.main_window.status(f"saved {p}")
            self.saved.emit(p)
            if open_after:
                self.main_window.open_model(p)

        self.runner.start(
            job, done, "Saving the model", on_failed=lambda m: self.main_window.show_error(m)
        )


#: the story line's tooltip (after the whole sentence when a shorter one is shown)
STORY_TIP = "What the task's example teaches, measured on every weight snapshot of this run"
#: from this type size on (presentation mode) the settings scroll rather than take the room
LARGE_TYPE_PX = 20
#: the curves' least height in normal and in large (presentation) type
CURVES_MIN_PX = {False: 150, True: 150}
#: the settings column's least height in normal type: the rest scrolls (the panel leaves the
#: line plots under the heatmaps their room on a 1600 x 900 screen)
SETTINGS_MIN_PX = 120


class _SettingsColumn(QScrollArea):
    """The panel's settings, beside the curves: as wide as its labels and fields need at the
    current font (620 px at least: the curves take the rest), and scrolled when the panel is
    lower than they are tall -- in presentation mode's large type the panel would otherwise
    need ~580 px and push the window past the bottom of the screen."""

    MIN_WIDTH = 620

    def __init__(self, layout: QVBoxLayout) -> None:
        super().__init__()
        inner = QWidget()
        inner.setLayout(layout)
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fit_width()

    def _fit_width(self) -> None:
        inner = self.widget()
        lay = inner.layout() if inner is not None else None
        if lay is None:
            return
        lay.invalidate()  # a hidden panel's layout keeps the old type's sizes otherwise
        need = lay.minimumSize().width() + self.verticalScrollBar().sizeHint().width()
        self.setMinimumWidth(need)
        self.setMaximumWidth(max(self.MIN_WIDTH, need))

    def minimumSizeHint(self) -> Any:
        hint = super().minimumSizeHint()
        widget = self.widget()
        inner = widget.minimumSizeHint().height() if widget is not None else 0
        # normal type: the first settings in view, the rest scrolls when the panel is low;
        # presentation's large type: two rows
        big = self.font().pixelSize() >= LARGE_TYPE_PX
        hint.setHeight(min(inner, 100 if big else SETTINGS_MIN_PX))
        return hint

    def changeEvent(self, ev: QEvent) -> None:
        super().changeEvent(ev)
        if ev.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            QTimer.singleShot(0, self._fit_width)  # after the layouts took the new type
            self.updateGeometry()  # the least height depends on the type

    def showEvent(self, ev: Any) -> None:
        super().showEvent(ev)
        self._fit_width()


class EngineChoice(QObject):
    """View ▸ Engine: NumPy (default) or Keras; the Keras trace is computed in a child process
    (waited for by a worker thread), so TensorFlow never runs in the app's process."""

    def __init__(self, window: Any, panels: Panels) -> None:
        super().__init__(window)
        # TensorFlow lives in a child process: importing it in a thread of the app held the
        # GIL and froze the window (~0.3 s); the process stays up while Keras is chosen. Its
        # handle (and lstmviz.train) is made when Keras is first chosen (see ``keras``).
        self._keras: KerasEngineProcess | None = None
        self.window = window
        self.panels = panels
        self.viewer = window.state
        self.runner = TaskRunner(self)
        self.engine = "NumPy"
        menu = window.menu("View").addMenu("&Engine")
        group = QActionGroup(self)
        group.setExclusive(True)
        self.actions: dict[str, QAction] = {}
        for name, tip in (
            ("NumPy", "lstmviz's own NumPy engine (fast, no TensorFlow)"),
            (
                "Keras",
                "Recompute every gate with a Keras layer (loads TensorFlow): an independent check",
            ),
        ):
            a = QAction(name, window)
            a.setCheckable(True)
            a.setToolTip(tip)
            a.setChecked(name == "NumPy")
            a.triggered.connect(lambda _=False, n=name: self.set_engine(n))
            group.addAction(a)
            menu.addAction(a)
            self.actions[name] = a
        menu.setToolTipsVisible(True)
        self.viewer.events.trace.connect(self._on_trace_changed)

    @property
    def keras(self) -> KerasEngineProcess:
        """The Keras engine's child process (started by its first trace)."""
        if self._keras is None:
            from ..train.process import KerasEngineProcess

            self._keras = KerasEngineProcess(threads=1)
        return self._keras

    def set_engine(self, name: str) -> None:
        if name not in self.actions:
            raise LstmvizError(f"engine must be NumPy or Keras; got {name!r}")
        self.engine = name
        self.actions[name].setChecked(True)
        if name == "NumPy":
            self.runner.cancel()
            if self.viewer.engine != "NumPy" and self.viewer.model is not None:
                self.viewer.retrace()
            self.shutdown_keras()
        else:
            self._keras_trace()

    def _on_trace_changed(self) -> None:
        if (
            self.engine == "Keras"
            and self.viewer.engine.startswith("NumPy")
            and not self._training()
        ):
            self._keras_trace()

    def _training(self) -> bool:
        panel = self.panels.built("train")
        return isinstance(panel, TrainPanel) and panel.state in ("loading", "training", "paused")

    def shutdown(self) -> None:
        """The window closes: abandon a Keras trace, end the Keras engine's process."""
        self.runner.cancel()
        if self._keras is not None:
            self._keras.shutdown()  # a trace in progress is abandoned, the worker then returns
        self.runner.shutdown()

    def _keras_trace(self) -> None:
        doc = self.viewer
        model, x = doc.model, doc.x
        if model is None or x is None:
            return
        self.window.status("loading TensorFlow… (Keras engine)")

        keras = self.keras

        def job(progress: Any, should_stop: Any) -> Any:
            return keras.trace(model, x, should_stop)

        def done(trace: Any) -> None:
            if trace is not None and doc.model is model and doc.x is x:
                doc.set_trace(trace, engine="Keras")
                self.window.status("traced with the Keras engine")

        def failed(msg: str) -> None:
            self.window.show_error(msg)
            self.actions["NumPy"].setChecked(True)
            self.engine = "NumPy"

        self.runner.start(job, done, "Tracing with Keras", on_failed=failed)

    def shutdown_keras(self) -> None:
        """End the Keras engine's process in the background (it holds ~0.5 GB)."""
        if self._keras is not None and self._keras.running:
            background(self._keras.shutdown, name="lstmviz keras engine shutdown")


def train_panel_spec() -> PanelSpec:
    """The Train panel, as the main window declares its docks (built on first open)."""
    return PanelSpec(
        key="train",
        title="Train",
        menu="Train",
        shortcut="Ctrl+T",
        tip="Train a model on a task and watch its gates change; scrub epochs afterwards",
        build=TrainPanel,
        height=300,
        keep_line_plots=True,  # settings scroll; the window keeps every view
    )


def add_train_menu(window: Any, panels: Panels) -> None:
    """The Train menu's commands beside "Train" (which opens the panel)."""
    menu = window.menu("Train")

    def panel() -> TrainPanel:
        return panels.widget("train")  # type: ignore[return-value]

    for text, key, slot, tip in (
        (
            "&Start training",
            "Ctrl+Shift+T",
            lambda: _start(panels),
            "Start training the chosen task with the panel's settings",
        ),
        ("&Pause / resume", None, lambda: panel().toggle_pause(), "Pause or resume training"),
        ("&Cancel", None, lambda: panel().cancel(), "Stop training after this batch"),
        (
            "Save trained model as .&keras…",
            None,
            lambda: panel().choose_save(),
            "Save the model of the snapshot on screen",
        ),
    ):
        a = QAction(text, window)
        if key:
            a.setShortcut(QKeySequence(key))
        a.setStatusTip(tip)
        a.setToolTip(tip)
        a.triggered.connect(lambda _=False, s=slot: s())
        menu.addAction(a)
        window.addAction(a)


def _start(panels: Panels) -> None:
    """Train ▸ Start training: open the Train panel (raised) and start."""
    panels.open("train")
    panels.widget("train").start()  # type: ignore[attr-defined]
