"""Check my LSTM: load a student's .npz, show the diagnosis, highlight the divergence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...analysis import Diagnosis, diagnose
from ...engine.trace import TITLES
from ...errors import LstmvizError
from .. import dialogs
from ..workers import TaskRunner
from .common import Panel, PlotStack, hint, show_image, style_plot, time_ticks

HIGHLIGHT = "#ff3355"
SYNC_LIMIT = 200_000  # traces with more values than this are checked in a worker


DASH = Qt.PenStyle.DashLine


class CheckPanel(Panel):
    """ "Check my LSTM": compares a student's arrays with the model on the current input.

    ``window`` (optional) gives access to the main heatmaps, where diverged cells are
    outlined in red."""

    def __init__(self, state: Any, window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.main_window = window
        self.student: dict[str, Any] | None = None
        self.student_path: str | None = None
        self.diagnosis: Diagnosis | None = None
        self._overlays: dict[str, pg.ScatterPlotItem] = {}
        self._trace_id = 0
        self.runner = TaskRunner(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.load_btn = QPushButton("Load student arrays…")
        self.load_btn.setToolTip(
            "A .npz with 'hidden' (batch, T, units) and optionally 'cell', "
            "gates, 'h0'/'c0', 'layer' -- computed by your own LSTM on "
            "this model's weights and the current input"
        )
        self.load_btn.clicked.connect(self.choose_file)
        row.addWidget(self.load_btn)
        self.goto_btn = QPushButton("Go to first divergence")
        self.goto_btn.setEnabled(False)
        self.goto_btn.clicked.connect(self.go_to_divergence)
        row.addWidget(self.goto_btn)
        row.addWidget(QLabel("show"))
        self.quantity = QComboBox()
        # filled once arrays are loaded: sized then, not when first shown (empty)
        self.quantity.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.quantity.currentIndexChanged.connect(lambda *_: self._draw())
        row.addWidget(self.quantity)
        row.addStretch(1)
        lay.addLayout(row)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumHeight(120)
        self.text.setPlainText(
            "Load the arrays your own LSTM computed on this input "
            "(np.savez('mine.npz', hidden=outputs, cell=cells)) to compare "
            "them with this model, step by step."
        )
        lay.addWidget(self.text)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        style_plot(self.plot, "|student − model|", "unit", "t")
        self.plot.vb.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("inferno"), interactive=False, width=10
        )
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.first_box = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.first_box.setPen(pg.mkPen("#00e5ff", width=3))
        self.first_box.setVisible(False)
        self.plot.addItem(self.first_box)
        self.step_line = pg.InfiniteLine(0, pen=pg.mkPen("#888888", style=DASH))
        self.plot.addItem(self.step_line)
        self.stack = PlotStack(
            self.plot_widget,
            "Load your LSTM's arrays (Load student arrays…): where they differ from the model "
            "shows here, and the first divergence is outlined on the main heatmaps.",
        )
        lay.addWidget(self.stack, 1)
        lay.addWidget(
            hint(
                "Red outlines on the main heatmaps mark the cells outside tolerance "
                "(current batch item); the cyan box marks the first divergence."
            )
        )
        state.events.rows.connect(self._update_overlays)
        state.events.batch.connect(lambda *_: self._update_overlays())
        state.events.layer.connect(lambda *_: self._update_overlays())
        state.events.trace.connect(self._on_new_trace)

    def _on_new_trace(self) -> None:
        """A new trace invalidates the outlines at once (the panel may be hidden and
        recompute only when shown)."""
        if self.diagnosis is not None and id(self.state.trace) != self._trace_id:
            self._clear_overlays()

    # --- loading ----------------------------------------------------------------------------
    def choose_file(self) -> None:
        path = dialogs.ask_open_file(self, "Student arrays", "NumPy archives (*.npz)")
        if path:
            self.load(path)

    def load(self, student: str | dict[str, Any]) -> None:
        """Diagnose ``student`` (a .npz path or a dict) against the current model and input."""
        self.student = student if isinstance(student, dict) else None
        self.student_path = None if isinstance(student, dict) else str(student)
        self._run()

    def refresh(self) -> None:
        if self.student is None and self.student_path is None:
            return
        if self.diagnosis is None or self._trace_id != id(self.state.trace):
            self._run(quiet=True)  # a new model or input: compare again
        else:
            self._draw()
            self._update_overlays()

    def _run(self, quiet: bool = False) -> None:
        doc = self.state
        if doc.model is None:
            self.error.emit("open a model first")
            return
        model, x, trace = doc.model, doc.x, doc.trace
        student = self.student if self.student is not None else self.student_path
        if student is None:
            return
        size = sum(lt.units for lt in trace.layers) * trace.batch_size * trace.timesteps
        if size <= SYNC_LIMIT:
            try:
                d = diagnose(model, x, student)
            except LstmvizError as e:
                self._failed(str(e), quiet)
                return
            self._show(d, id(trace))
            return
        self.text.setPlainText("Comparing with the model and trying every known mistake…")
        self.load_btn.setEnabled(False)

        def task(progress: Any, should_stop: Any) -> Diagnosis:
            return diagnose(model, x, student)

        self.runner.start(
            task,
            lambda d: self._show(d, id(trace)),
            "Checking the LSTM",
            on_failed=lambda m: self._failed(m, quiet),
        )

    def _failed(self, msg: str, quiet: bool) -> None:
        self.load_btn.setEnabled(True)
        self.diagnosis = None
        self.text.setPlainText(f"Could not compare: {msg}")
        self.goto_btn.setEnabled(False)
        self._clear_overlays()
        if not quiet:
            self.error.emit(msg)

    def _show(self, d: Diagnosis, trace_id: int) -> None:
        doc = self.state
        self.load_btn.setEnabled(True)
        if trace_id != id(doc.trace):  # the input changed meanwhile: compare again
            self._run(quiet=True)
            return
        self.diagnosis = d
        self._trace_id = trace_id
        src = Path(self.student_path).name if self.student_path else "student arrays"
        self.text.setPlainText(f"{src}\n{d.summary()}")
        self.goto_btn.setEnabled(not d.ok and d.first_step is not None)
        self.quantity.blockSignals(True)
        self.quantity.clear()
        for q in d.errors:
            self.quantity.addItem(TITLES.get(q, q), q)
        first = d.first_quantity if d.first_quantity in d.errors else None
        idx = self.quantity.findData(first or "hidden")
        self.quantity.setCurrentIndex(max(idx, 0))
        self.quantity.blockSignals(False)
        if not d.ok and d.layer != doc.layer:
            doc.set_layer(d.layer)
        self._draw()
        self._update_overlays()

    # --- drawing ----------------------------------------------------------------------------
    def _draw(self) -> None:
        d = self.diagnosis
        lt = self.lt
        q = self.quantity.currentData()
        if d is None or lt is None or q is None or q not in d.errors:
            self.image.clear()
            self.first_box.setVisible(False)
            self.stack.show_empty()
            return
        self.stack.show_plots()
        b = min(self.state.batch, d.errors[q].shape[0] - 1)
        err = d.errors[q][b].T  # (U, T)
        hi = float(max(err.max(), d.atol * 10))
        show_image(self.plot, self.image, err, (0, hi))
        self.bar.setLevels((0, hi))
        self.plot.getAxis("bottom").setTicks(
            [time_ticks(self.state.token_labels(), err.shape[1], offset=0.5), []]
        )
        show = (
            d.first_step is not None
            and d.first_unit is not None
            and d.first_batch == b
            and d.first_quantity == q
        )
        if show and d.first_step is not None and d.first_unit is not None:
            self.first_box.setRect(QRectF(d.first_step, d.first_unit, 1, 1))
        self.first_box.setVisible(bool(show))
        self.plot.setTitle(
            f"|student − model| of {TITLES.get(q, q)} (max {d.max_error.get(q, 0):.2g})",
            color="#e8e8ea",
        )
        self.on_t(self.state.t)

    def on_t(self, t: int) -> None:
        self.step_line.setValue(t + 0.5)

    def go_to_divergence(self) -> None:
        d = self.diagnosis
        if d is None or d.first_step is None:
            return
        doc = self.state
        if d.layer != doc.layer:
            doc.set_layer(d.layer)
        if d.first_batch is not None:
            doc.set_batch(d.first_batch)
        if d.first_unit is not None and d.first_unit < doc.layer_trace.units:
            doc.set_units([d.first_unit, *[u for u in doc.selected_units if u != d.first_unit]])
        doc.set_t(d.first_step)

    def shutdown(self) -> None:
        """The window closes: stop a comparison still running."""
        self.runner.shutdown()

    # --- the main window's heatmaps -------------------------------------------------------
    def _heatmaps(self) -> dict[str, Any]:
        if self.main_window is None or not hasattr(self.main_window, "plot_widgets"):
            return {}
        try:
            widgets = self.main_window.plot_widgets()
        except (AttributeError, RuntimeError):
            return {}
        return {
            k[len("heatmap_") :]: v
            for k, v in widgets.items()
            if k.startswith("heatmap_") and ":" not in k
        }

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._update_overlays()

    def hideEvent(self, event: QHideEvent) -> None:
        """The panel closed: its outlines leave the main heatmaps (nothing there would say
        what they mean); they come back when it opens again."""
        super().hideEvent(event)
        self._clear_overlays()

    def _clear_overlays(self) -> None:
        for item in self._overlays.values():
            item.setData([], [])

    def _update_overlays(self) -> None:
        d = self.diagnosis
        doc = self.state
        maps = self._heatmaps()
        if (
            d is None
            or d.ok
            or doc.layer != d.layer
            or id(doc.trace) != self._trace_id
            or not self.isVisible()
        ):
            self._clear_overlays()
            return
        rows = np.asarray(doc.rows)
        b = doc.batch
        for q, plot in maps.items():
            item = self._overlays.get(q)
            if item is None:
                item = pg.ScatterPlotItem(
                    symbol="s",
                    size=0.72,
                    pxMode=False,
                    brush=pg.mkBrush(None),
                    pen=pg.mkPen(255, 51, 85, 230, width=1.5),
                )
                item.setZValue(30)
                plot.addItem(item)
                self._overlays[q] = item
            bad = d.diverged(q)
            if bad is None or b >= bad.shape[0]:
                item.setData([], [])
                continue
            ts, us = np.nonzero(bad[b])  # (T, U) -> cells
            where = {int(u): k for k, u in enumerate(rows)} if len(rows) else {}
            keep = [(t, where[int(u)]) for t, u in zip(ts, us, strict=True) if int(u) in where]
            if len(keep) > 4000:  # the outline is a hint, not a census
                keep = keep[:4000]
            if keep:
                xs, ys = np.asarray(keep, float).T
                item.setData(xs + 0.5, ys + 0.5)
            else:
                item.setData([], [])

    def overlay_points(self, quantity: str) -> int:
        """How many cells are outlined on a main heatmap (for tests)."""
        item = self._overlays.get(quantity)
        return 0 if item is None else len(item.data)
