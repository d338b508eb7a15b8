"""Attribution panel: which input tokens, and which (t, unit), account for one output --
gradient, gradient × input, integrated gradients (baseline selectable), occlusion and LRP --
shown as token colouring on the input strip and as heatmaps; the connectivity
``‖∂y_t/∂x_s‖`` over (t, s); each unit's memory split into the cell path and the hidden path.

Every number comes from :mod:`lstmviz.analysis` (:func:`~lstmviz.analysis.attribute`,
:func:`~lstmviz.analysis.connectivity`, :func:`~lstmviz.analysis.memory_paths`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...analysis.attribution import METHOD_TITLES, METHODS
from ...errors import LstmvizError
from .common import Panel, hint, result_pane, run_row, show_image, style_plot, time_ticks
from .targets import (
    TargetPicker,
    on_row_clicked,
    robust_max,
    side_by_side,
    unit_ticks,
)

VIEWS = (
    ("tokens", "input tokens and units"),
    ("connectivity", "connectivity ‖∂y_t/∂x_s‖"),
    ("memory", "memory: cell path vs hidden path"),
)
POSITIVE, NEGATIVE = "#E69F00", "#56B4E9"  # the token strip's colours
#: What the colours mean, under each view.
LEGENDS = {
    "tokens": "Orange: pushes the output up; blue: pushes it down. Click a unit row to select it.",
    "connectivity": (
        "Bright: the output at step t (row) moves a lot when the input at step s (column) "
        "moves. A forward LSTM has nothing right of the diagonal. Click a row to go to its step."
    ),
    "memory": (
        "∂/∂c_t = ∂/∂c_t+1 · f_t+1 (cell path) + ∂/∂h_t · o_t · tanh'(c_t) (hidden path). "
        "Click a unit row to select it."
    ),
}
#: Integrated gradients whose completeness error is above this are flagged (and not
#: coloured on the input strip): the scores do not add up to what they explain.
COMPLETENESS_TOL = 0.01
EMPTY = {
    "tokens": (
        "Pick the output to explain and a method, then press Compute: each input token's share "
        "(also coloured on the input strip) and each unit's at every step."
    ),
    "connectivity": (
        "Press Compute: how strongly each output step depends on each input step, "
        "‖∂y_t/∂x_s‖ (distill's 'memorization in RNNs')."
    ),
    "memory": (
        "Press Compute: for each unit, how much of the output's gradient reaches its cell "
        "along the cell state (long memory) and how much through the hidden state."
    ),
}


class AttributionPanel(Panel):
    """Attribute one output to the input tokens and units; connectivity; memory paths."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.result: Any = None  # (view, result, batch)
        self._model_id: int | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        left = QWidget()
        v = QVBoxLayout(left)
        v.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show"))
        self.show_what = QComboBox()
        for key, label in VIEWS:
            self.show_what.addItem(label, key)
        self.show_what.setToolTip("What to compute and draw")
        self.show_what.currentIndexChanged.connect(self._on_view)
        row.addWidget(self.show_what, 1)
        v.addLayout(row)
        self.target = TargetPicker(state)
        v.addWidget(self.target)
        self.method_row = QWidget()
        row = QHBoxLayout(self.method_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Method"))
        self.method = QComboBox()
        for m in METHODS:
            self.method.addItem(METHOD_TITLES[m], m)
        self.method.setCurrentIndex(METHODS.index("ig"))
        self.method.setToolTip(
            "gradient: |∂y/∂x|; gradient × input; integrated gradients (sum to f(x) − "
            "f(baseline)); occlusion: f(x) − f(x without the token); LRP: relevance through "
            "the gates (Arras et al. 2017)"
        )
        self.method.currentIndexChanged.connect(self._on_method)
        row.addWidget(self.method, 1)
        v.addWidget(self.method_row)
        self.base_row = QWidget()
        row = QHBoxLayout(self.base_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Baseline"))
        self.baseline = QComboBox()
        self.baseline.setToolTip(
            "What an absent input is: integrated gradients walk from it to the input; "
            "occlusion puts it in the token's place"
        )
        self.baseline.setMinimumContentsLength(10)
        self.baseline.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        row.addWidget(self.baseline, 1)
        self.steps_lbl = QLabel("steps")
        row.addWidget(self.steps_lbl)
        self.steps = QSpinBox()
        self.steps.setRange(4, 1024)
        self.steps.setValue(64)
        self.steps.setToolTip("Integrated gradients: points on the path (Gauss-Legendre)")
        row.addWidget(self.steps)
        v.addWidget(self.base_row)
        self.all_units = QCheckBox("every output unit (slower)")
        self.all_units.setToolTip(
            "Connectivity of the whole output vector (the norm over all its units) instead of "
            "the chosen output"
        )
        v.addLayout(_left(self.all_units))
        self.colour_strip = QCheckBox("colour the input strip by the scores")
        self.colour_strip.setChecked(True)
        self.colour_strip.toggled.connect(self._on_colour_toggled)
        v.addLayout(_left(self.colour_strip))
        row, self.run_btn, self.bar = run_row(
            "Compute", "Compute what 'Show' names for the chosen output", self.run, self.error
        )
        v.addLayout(row)
        v.addStretch(1)

        pane = result_pane(EMPTY["tokens"])
        right, rl = pane.widget, pane.layout
        self.summary, self.view, self.stack = pane.summary, pane.view, pane.stack
        self.legend = hint("")
        rl.addWidget(self.legend)
        lay.addWidget(side_by_side(left, right), 1)
        self.plots: dict[str, pg.PlotItem] = {}
        self._on_view()

    # --- controls -------------------------------------------------------------------------------
    def view_key(self) -> str:
        return str(self.show_what.currentData())

    def _on_view(self, *_: Any) -> None:
        key = self.view_key()
        self.method_row.setVisible(key == "tokens")
        self.base_row.setVisible(key == "tokens")
        self.colour_strip.setVisible(key == "tokens")
        self.all_units.setVisible(key == "connectivity")
        self.legend.setText(LEGENDS[key])
        self._on_method()
        self._draw()

    def _on_method(self, *_: Any) -> None:
        m = self.method.currentData()
        self.baseline.setEnabled(m in ("ig", "occlusion"))
        self.steps.setVisible(m == "ig")
        self.steps_lbl.setVisible(m == "ig")

    def _on_colour_toggled(self, on: bool) -> None:
        if not on:
            self.state.set_token_scores(None)
        else:
            self._colour_strip()

    def _fill_baselines(self) -> None:
        st = self.state
        self.baseline.clear()
        model = st.model
        if getattr(model, "takes_tokens", False):
            self.baseline.addItem("zero embedding", None)
            vocab = st.info.vocab if st.info is not None and st.info.vocab else []
            n = model.embedding.input_dim if model.embedding is not None else len(vocab)
            for i in range(n):
                tok = vocab[i] if i < len(vocab) else str(i)
                tok = {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(tok, tok)
                self.baseline.addItem(f"token {tok} (id {i})", i)
        else:
            self.baseline.addItem("zeros", None)
            self.baseline.addItem("the input's mean over time", "mean")

    def _baseline_value(self) -> Any:
        b = self.baseline.currentData()
        if isinstance(b, str) and b == "mean":
            x = np.asarray(self.state.x)
            return x.mean(axis=1, keepdims=True)  # (B, 1, F): broadcasts over the steps
        return b

    def shutdown(self) -> None:
        """Stop the background work (the window is closing)."""
        self.bar.shutdown()

    # --- state ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        st = self.state
        if self._model_id != id(st.model):
            self._model_id = id(st.model)
            self._fill_baselines()
        self.target.refresh()
        if self.result is not None and self.result[3] is not st.x:
            self.result = None  # computed for another input
        self._draw()

    def on_t(self, t: int) -> None:
        for p in self.plots.values():
            for item in p.items:
                if isinstance(item, pg.InfiniteLine) and item.angle == 90:
                    item.setValue(t + 0.5)

    # --- computing ----------------------------------------------------------------------------
    def run(self) -> None:
        from ...analysis import attribute, connectivity, memory_paths

        st = self.state
        model = self.engine_model_or_say_why()
        if model is None:
            return
        key = self.view_key()
        x, b, layer = st.x, st.batch, st.layer
        target, space = self.target.target(), self.target.space_name()
        method = self.method.currentData()
        baseline = self._baseline_value() if method in ("ig", "occlusion") else None
        if method == "occlusion" and isinstance(baseline, np.ndarray):
            baseline = baseline[b, 0]  # occlusion takes one feature vector
        steps = self.steps.value()
        every = self.all_units.isChecked()

        def job(progress: Any, should_stop: Any) -> Any:
            if key == "tokens":
                return attribute(
                    model, x, target, method, space=space, baseline=baseline, steps=steps
                )
            if key == "memory":
                return memory_paths(model, np.asarray(x)[b : b + 1], target, layer, space=space)
            if not every:
                return connectivity(model, x, unit=target[1], batch=b, space=space)
            from ...analysis.gradients import Connectivity

            first = connectivity(model, x, unit=0, batch=b, space=space)
            n_k = self.target.k.count()
            sq = np.square(first.matrix)
            for k in range(1, n_k):
                if should_stop():
                    return None
                sq += np.square(connectivity(model, x, unit=k, batch=b, space=space).matrix)
                progress(k + 1, n_k)
            return Connectivity(np.sqrt(sq), first.output_steps, None, space, b)

        label = {"tokens": METHOD_TITLES[method], "connectivity": "Connectivity"}.get(
            key, "Memory paths"
        )
        what = self.target.label()
        self.bar.start(lambda p, s: (key, job(p, s), what, x), self._on_result, label)

    def _on_result(self, result: Any) -> None:
        if result[1] is None:
            return
        self.result = result
        if result[0] == "tokens":
            self._colour_strip()
        self._draw()

    def _colour_strip(self) -> None:
        r = self.result
        if r is None or r[0] != "tokens" or not self.colour_strip.isChecked():
            return
        if r[3] is not self.state.x or not self.complete(r[1]):
            return
        try:
            self.state.set_token_scores(r[1].scores, r[1].title)
        except LstmvizError as e:
            self.error.emit(str(e))

    def complete(self, a: Any) -> bool:
        """False when integrated gradients fail their completeness check (the scores do not
        add up to f(x) − f(baseline) within :data:`COMPLETENESS_TOL`)."""
        err = a.check.get("completeness_error")
        return err is None or bool(np.all(np.asarray(err) <= COMPLETENESS_TOL))

    # --- drawing --------------------------------------------------------------------------------
    def _new_plot(self, key: str, row: int, col: int, title: str, left: str, bottom: str) -> Any:
        p = self.view.addPlot(row=row, col=col)
        style_plot(p, "", left, bottom)
        p.setTitle(title, color="#e8e8ea", size="13px")
        self.plots[key] = p
        return p

    def _cursor(self, p: Any) -> None:
        p.addItem(pg.InfiniteLine(self.state.t + 0.5, pen=pg.mkPen("#56B4E9", width=1)))

    def _draw(self) -> None:
        self.view.clear()
        self.plots = {}
        key = self.view_key()
        r = self.result
        lt = self.lt
        self.summary.setStyleSheet("")
        if r is None or r[0] != key or lt is None:
            self.summary.setText("")
            self.stack.show_empty(EMPTY[key])
            return
        self.stack.show_plots()
        getattr(self, f"_draw_{key}")(r[1], r[2])

    def _draw_tokens(self, a: Any, what: str) -> None:
        st, lt = self.state, self.lt
        b = min(st.batch, a.scores.shape[0] - 1)
        s = np.asarray(a.scores[b], np.float64)
        labels = st.token_labels()
        ticks = time_ticks(labels, len(s), offset=0.5)
        title = f"{METHOD_TITLES[a.method]} of {what}: each input token"
        p = self._new_plot("tokens", 0, 0, title, "score", "input")
        xs = np.arange(len(s)) + 0.5
        brushes = [pg.mkBrush(POSITIVE if v >= 0 else NEGATIVE) for v in s]
        p.addItem(pg.BarGraphItem(x=xs, height=s, width=0.8, brushes=brushes))
        p.getAxis("bottom").setTicks([ticks, []])
        p.addLine(y=0, pen=pg.mkPen("#9aa0a6"))
        self._cursor(p)
        units = a.units.get(lt.name)
        if units is not None:
            u = self._new_plot(
                "units", 0, 1, f"each unit's h_t share, layer {lt.name}", "unit", "t"
            )
            u.vb.invertY(True)
            img = pg.ImageItem(axisOrder="row-major")
            img.setColorMap(pg.colormap.get("CET-D1"))
            u.addItem(img)
            d = np.asarray(units[b], np.float64).T  # (U, T)
            m = robust_max(d)
            show_image(u, img, d, (-m, m))
            u.setTitle(f"each unit's h_t share (±{m:.2g}), layer {lt.name}", color="#e8e8ea")
            u.getAxis("bottom").setTicks([ticks, []])
            u.getAxis("left").setTicks([unit_ticks(d.shape[0]), []])
            self._cursor(u)
            on_row_clicked(u, self._on_unit_clicked)
            self.view.ci.layout.setColumnStretchFactor(0, 1)
            self.view.ci.layout.setColumnStretchFactor(1, 1)
        check = ""
        style = ""
        if "completeness_error" in a.check:
            err = float(np.ravel(a.check["completeness_error"])[b])
            if err <= COMPLETENESS_TOL:
                check = (
                    f" Completeness: the scores sum to f(x) − f(baseline) within {err * 100:.2g}%."
                )
            else:
                style = "color: #F0E442;"
                check = (
                    f" Completeness FAILS: the scores sum to f(x) − f(baseline) only within "
                    f"{err:.0%}: the output changes sharply along the path from the baseline. "
                    "Raise the steps or choose another baseline; the input strip is not "
                    "coloured by these scores."
                )
        elif "conservation_error" in a.check:
            err = float(np.ravel(a.check["conservation_error"])[b])
            check = f" Relevance conserved within {err:.2%}."
        elif "share_kept_by_biases" in a.check:
            share = float(np.ravel(a.check["share_kept_by_biases"])[b])
            check = f" The biases keep {share:.0%} of the relevance (ε-rule, bias factor 0)."
        top = np.argsort(-np.abs(s), kind="stable")[:3]
        tops = ", ".join(
            f"{labels[t] if t < len(labels) else t!r} (t={t}, {s[t]:+.3g})" for t in top
        )
        self.summary.setStyleSheet(style)
        self.summary.setText(
            f"{METHOD_TITLES[a.method]} of {what}: value {float(np.ravel(a.value)[b]):.4g}. "
            f"Largest: {tops}.{check}"
        )

    def _draw_connectivity(self, c: Any, what: str) -> None:
        st = self.state
        m = np.asarray(c.matrix, np.float64)
        p = self._new_plot(
            "connectivity",
            0,
            0,
            "‖∂y_t/∂x_s‖: output step t (rows) on input step s (columns)",
            "output step t",
            "input step s",
        )
        p.vb.invertY(True)
        img = pg.ImageItem(axisOrder="row-major")
        img.setColorMap(pg.colormap.get("inferno"))
        p.addItem(img)
        show_image(p, img, m, (0.0, float(max(m.max(), 1e-12))))
        labels = st.token_labels()
        p.getAxis("bottom").setTicks([time_ticks(labels, m.shape[1], offset=0.5), []])
        rows = [(i + 0.5, str(int(t))) for i, t in enumerate(c.output_steps)]
        step = max(1, -(-len(rows) // 24))
        p.getAxis("left").setTicks([rows[::step], []])
        on_row_clicked(p, lambda row, x: self._goto_output(c, row))
        which = "every output unit" if c.unit is None else what
        last = m[-1]
        reach = int(np.argmax(last > 0.01 * max(last.max(), 1e-12))) if last.size else 0
        self.summary.setText(
            f"Connectivity of {which}: the last output step still depends on input steps "
            f"{reach}..{m.shape[1] - 1} (above 1% of its largest); strongest ‖∂y/∂x‖ "
            f"{float(m.max()):.3g}."
        )

    def _goto_output(self, c: Any, row: int) -> None:
        if 0 <= row < len(c.output_steps):
            self.state.set_t(int(c.output_steps[row]))

    def _draw_memory(self, mp: Any, what: str) -> None:
        st = self.state
        share = np.asarray(mp.cell_share, np.float64)
        p = self._new_plot(
            "share", 0, 0, "share of the gradient along the cell path", "cell share", "unit"
        )
        xs = np.arange(len(share))
        p.addItem(pg.BarGraphItem(x=xs, height=share, width=0.8, brush="#0072B2"))
        p.addLine(y=0.5, pen=pg.mkPen("#9aa0a6", style=pg.QtCore.Qt.PenStyle.DashLine))
        p.setYRange(0, 1, padding=0.02)
        p.getAxis("bottom").setTicks([[(u - 0.5, s) for u, s in unit_ticks(len(share), 12)], []])
        cell = np.abs(np.asarray(mp.cell_path[0], np.float64)).T  # (U, T)
        hidden = np.abs(np.asarray(mp.hidden_path[0], np.float64)).T
        top = float(max(cell.max(), hidden.max(), 1e-12))
        ticks = time_ticks(st.token_labels(), cell.shape[1], offset=0.5)
        for col, (key, title, data) in enumerate(
            (
                ("cell", "|cell path| ∂/∂c_t via c_t+1", cell),
                ("hidden", "|hidden path| ∂/∂c_t via h_t", hidden),
            ),
            start=1,
        ):
            q = self._new_plot(key, 0, col, title, "unit" if col == 1 else "", "t")
            q.vb.invertY(True)
            img = pg.ImageItem(axisOrder="row-major")
            img.setColorMap(pg.colormap.get("inferno"))
            q.addItem(img)
            show_image(q, img, data, (0.0, top))
            q.getAxis("bottom").setTicks([ticks, []])
            q.getAxis("left").setTicks([unit_ticks(data.shape[0]), []])
            self._cursor(q)
            on_row_clicked(q, self._on_unit_clicked)
        self.plots["hidden"].setYLink(self.plots["cell"])
        order = np.argsort(-share, kind="stable")
        most = ", ".join(f"{int(u)} ({share[u]:.0%})" for u in order[:3])
        self.summary.setText(
            f"Memory of {what} in layer {mp.layer}: units remembering most along the cell "
            f"state: {most}. Dashed line: half along each path."
        )

    def _on_unit_clicked(self, row: int, x: float) -> None:
        lt = self.lt
        if lt is not None and 0 <= row < lt.units:
            self.state.set_units([row])
        if 0 <= x < self.state.timesteps:
            self.state.set_t(int(x))


def _left(widget: QWidget) -> QHBoxLayout:
    """``widget`` at its own width on the left of a row (a check box's click area is its box
    and text, not the whole row)."""
    row = QHBoxLayout()
    row.addWidget(widget)
    row.addStretch(1)
    return row
