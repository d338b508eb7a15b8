"""Activation patching panel: a clean and a corrupted input of the same length; put back one
clean value at a time and map the fraction of the clean output restored, over t x quantity
and over t x unit (:func:`lstmviz.analysis.activation_patching`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...engine.trace import SYMBOLS, TITLES
from ...errors import InputError, LstmvizError
from .common import Panel, hint, result_pane, run_row, show_image, style_plot, time_ticks
from .targets import (
    TargetPicker,
    engine_model,
    input_as_text,
    on_row_clicked,
    side_by_side,
    unit_ticks,
)
from .whatif import token_choices

EMPTY = (
    "The clean input is the current one. Type a corrupted input of the same length that "
    "changes the answer (or change one step of it below), pick the output to explain, then "
    "press Patch: which values, at which step, carry the difference."
)
DIRECTIONS = (
    ("denoise", "restore: clean values into the corrupted run"),
    ("noise", "break: corrupted values into the clean run"),
)


class PatchingPanel(Panel):
    """Clean vs corrupted input; heatmaps of the fraction of the clean output restored."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.result: Any = None
        self._choices: list[tuple[str, Any]] = []
        self._model_id: int | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        left = QWidget()
        v = QVBoxLayout(left)
        v.setContentsMargins(4, 4, 4, 4)
        self.clean_label = hint("")
        v.addWidget(self.clean_label)
        row = QHBoxLayout()
        row.addWidget(QLabel("Corrupted"))
        self.corrupted = QLineEdit()
        self.corrupted.setPlaceholderText("the corrupted input, as you would type it")
        self.corrupted.setToolTip("An input of the same length as the clean one")
        row.addWidget(self.corrupted, 1)
        v.addLayout(row)
        self.pick_row = QWidget()
        row = QHBoxLayout(self.pick_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("or change step"))
        self.pick_step = QSpinBox()
        self.pick_step.setToolTip("The step of the clean input to change")
        row.addWidget(self.pick_step)
        row.addWidget(QLabel("to"))
        self.pick_token = QComboBox()
        self.pick_token.setToolTip("What that step becomes in the corrupted input")
        self.pick_token.setMinimumContentsLength(5)
        self.pick_token.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        row.addWidget(self.pick_token, 1)
        self.pick_btn = QPushButton("Use")
        self.pick_btn.setToolTip("Make the corrupted input the clean one with that step changed")
        self.pick_btn.clicked.connect(self.pick)
        row.addWidget(self.pick_btn)
        v.addWidget(self.pick_row)
        self.target = TargetPicker(state, space="logit")
        v.addWidget(self.target)
        row = QHBoxLayout()
        row.addWidget(QLabel("Per unit: patch"))
        self.unit_q = QComboBox()
        for q in ("cell", "hidden", "forget_gate", "input_gate", "output_gate", "candidate"):
            self.unit_q.addItem(TITLES[q], q)
        self.unit_q.setToolTip("The quantity patched one unit at a time (the lower map)")
        row.addWidget(self.unit_q, 1)
        v.addLayout(row)
        row = QHBoxLayout()
        self.direction = QComboBox()
        for key, label in DIRECTIONS:
            self.direction.addItem(label, key)
        self.direction.setToolTip(
            "restore: run the corrupted input and put back one clean value (what carries the "
            "answer); break: run the clean input and put in one corrupted value"
        )
        row.addWidget(self.direction, 1)
        v.addLayout(row)
        row, self.run_btn, self.bar = run_row(
            "Patch", "Patch every quantity and every unit at every step", self.run, self.error
        )
        v.addLayout(row)
        v.addStretch(1)

        pane = result_pane(EMPTY)
        right = pane.widget
        self.summary, self.view, self.stack = pane.summary, pane.view, pane.stack
        lay.addWidget(side_by_side(left, right), 1)

        self.q_plot = self.view.addPlot(row=0, col=0)
        style_plot(self.q_plot, "fraction restored: all units of one quantity", "", "t")
        self.q_plot.vb.invertY(True)
        self.q_image = pg.ImageItem(axisOrder="row-major")
        self.q_plot.addItem(self.q_image)
        self.u_plot = self.view.addPlot(row=0, col=1)
        style_plot(self.u_plot, "fraction restored: one unit", "unit", "t")
        self.u_plot.vb.invertY(True)
        self.u_image = pg.ImageItem(axisOrder="row-major")
        self.u_plot.addItem(self.u_image)
        cmap = pg.colormap.get("CET-D1")
        for im in (self.q_image, self.u_image):
            im.setColorMap(cmap)
        self.bar_item = pg.ColorBarItem(
            values=(-1, 1), colorMap=cmap, interactive=False, width=12, label="restored"
        )
        self.bar_item.setImageItem([self.q_image, self.u_image])
        self.view.addItem(self.bar_item, row=0, col=2)
        self.view.ci.layout.setColumnStretchFactor(0, 1)
        self.view.ci.layout.setColumnStretchFactor(1, 1)
        self.marks = []
        for p in (self.q_plot, self.u_plot):
            line = pg.InfiniteLine(0, pen=pg.mkPen("#56B4E9", width=1))
            p.addItem(line)
            self.marks.append(line)
        on_row_clicked(self.u_plot, self._on_unit_clicked)
        on_row_clicked(self.q_plot, lambda row, x: self._goto(x))

    def shutdown(self) -> None:
        """Stop the background work (the window is closing)."""
        self.bar.shutdown()

    # --- state ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        st = self.state
        try:
            text = st.input_text()
        except (LstmvizError, ValueError, IndexError):
            text = ""
        short = text if len(text) <= 120 else text[:117] + "…"
        self.clean_label.setText(f"Clean input (the current one): {short}")
        n = max(st.timesteps - 1, 0)
        self.pick_step.setRange(0, n)
        if self._model_id != id(st.model):
            self._model_id = id(st.model)
            self.corrupted.setText(text if len(text) <= 5000 else "")
            self._choices = token_choices(st)
            self.pick_token.clear()
            for label, _ in self._choices:
                self.pick_token.addItem(label)
            self.pick_row.setVisible(bool(self._choices))
        self.target.refresh()
        self.result = None
        self._draw()

    def on_t(self, t: int) -> None:
        for line in self.marks:
            line.setValue(t + 0.5)
        self.pick_step.setValue(t)

    def _goto(self, x: float) -> None:
        if 0 <= x < self.state.timesteps:
            self.state.set_t(int(x))

    def _on_unit_clicked(self, row: int, x: float) -> None:
        lt = self.lt
        if self.result is None or lt is None or lt.name != self.result.layer:
            return
        if 0 <= row < lt.units:
            self.state.set_units([row])
        self._goto(x)

    # --- actions ---------------------------------------------------------------------------------
    def pick(self) -> None:
        """The corrupted input: the clean one with one step changed."""
        st = self.state
        k = self.pick_token.currentIndex()
        if k < 0 or st.x is None or isinstance(st.x, list):
            return
        x = np.array(st.x[st.batch : st.batch + 1])
        x[0, self.pick_step.value()] = self._choices[k][1]
        try:
            self.corrupted.setText(input_as_text(st, x))
        except LstmvizError as e:
            self.error.emit(str(e))

    def corrupted_input(self) -> Any:
        from ...io.inputs import encode_text

        st = self.state
        model = engine_model(st)
        text = self.corrupted.text().strip()
        if not text:
            raise InputError("type the corrupted input (the same length as the clean one)")
        x = model.check_input(encode_text(model, text, st.info))
        if np.shape(x)[1] != st.timesteps:
            raise InputError(
                f"the corrupted input has {np.shape(x)[1]} steps; the clean one has "
                f"{st.timesteps}: patching matches step t to step t, so they must be as long"
            )
        return x

    def run(self) -> None:
        from ...analysis import activation_patching

        st = self.state
        try:
            model = engine_model(st)
            corrupted = self.corrupted_input()
        except LstmvizError as e:
            self.error.emit(str(e))
            return
        clean = np.asarray(st.x)[st.batch : st.batch + 1]
        target, space = self.target.target(), self.target.space_name()
        layer, uq, direction = st.layer, self.unit_q.currentData(), self.direction.currentData()

        def job(progress: Any, should_stop: Any) -> Any:
            return activation_patching(
                model,
                clean,
                corrupted,
                target,
                layer,
                unit_quantity=uq,
                direction=direction,
                space=space,
                progress=progress,
                should_stop=should_stop,
            )

        self.bar.start(job, self._on_result, "Patching")

    def _on_result(self, result: Any) -> None:
        self.result = result
        self._draw()

    # --- drawing --------------------------------------------------------------------------------
    def _draw(self) -> None:
        r = self.result
        if r is None:
            self.q_image.clear()
            self.u_image.clear()
            self.summary.setText("")
            self.stack.show_empty(EMPTY)
            return
        self.stack.show_plots()
        steps = r.by_quantity.shape[1]
        show_image(self.q_plot, self.q_image, np.nan_to_num(r.by_quantity), (-1, 1))
        self.q_plot.getAxis("left").setTicks(
            [[(k + 0.5, SYMBOLS[q]) for k, q in enumerate(r.quantities)], []]
        )
        ticks = time_ticks(self.state.token_labels(), steps, offset=0.5)
        for p in (self.q_plot, self.u_plot):
            p.getAxis("bottom").setTicks([ticks, []])
        if r.by_unit is not None:
            show_image(self.u_plot, self.u_image, np.nan_to_num(r.by_unit), (-1, 1))
            self.u_plot.getAxis("left").setTicks([unit_ticks(r.by_unit.shape[0]), []])
            self.u_plot.setTitle(
                f"restored by one unit's {TITLES[r.unit_quantity]}", color="#e8e8ea", size="13px"
            )
        self.q_plot.setTitle(
            f"restored by every unit's quantity (layer {r.layer})", color="#e8e8ea", size="13px"
        )
        for line in self.marks:
            line.setValue(self.state.t + 0.5)
        top = ", ".join(f"{SYMBOLS[q]} at t={t} ({v:.0%})" for q, t, v in r.top(3))
        best_u = ""
        if r.by_unit is not None and np.isfinite(r.by_unit).any():
            u, t = np.unravel_index(np.nanargmax(r.by_unit), r.by_unit.shape)
            best_u = f"; one unit: {int(u)} at t={int(t)} ({float(r.by_unit[u, t]):.0%})"
        verb = "restore" if r.direction == "denoise" else "break"
        self.summary.setText(
            f"{r.target} ({self.target.space_name()}): clean {r.clean_value:.3g}, corrupted "
            f"{r.corrupted_value:.3g}. What {verb}s most: {top}{best_u}."
        )
