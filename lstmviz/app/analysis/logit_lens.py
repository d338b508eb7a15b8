"""Logit attribution panel: each unit's direct contribution ``W[u, k] · h_t[u]`` to one output
of the Dense head at every step; the units writing most at the current step; in stacked
models, every layer's h read through the same head (the logit lens)
(:func:`lstmviz.analysis.logit_attribution`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ...errors import LstmvizError
from .common import LEGEND_BRUSH, SERIES, Panel, PlotStack, hint, show_image, style_plot, time_ticks
from .targets import engine_model, on_row_clicked, output_labels, robust_max, unit_ticks

TOP = 10  # units in the bar chart


class LogitLensPanel(Panel):
    """Direct logit attribution for Dense heads, and the logit lens for stacked models."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.result: Any = None
        self._model_id: int | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Output"))
        self.k = QComboBox()
        self.k.setToolTip("The output unit (class, token, bit) of the head")
        self.k.setMinimumContentsLength(8)
        self.k.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.k.currentIndexChanged.connect(lambda *_: self.recompute())
        row.addWidget(self.k)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        row.addWidget(self.summary, 1)
        lay.addLayout(row)
        self.view = pg.GraphicsLayoutWidget()
        self.stack = PlotStack(self.view, "Open a model whose LSTM feeds a Dense head.")
        lay.addWidget(self.stack, 1)
        lay.addWidget(
            hint(
                "W[u, k]·h_t[u]: what unit u writes directly into the output's logit at step t "
                "(the terms plus the bias add up to the logit exactly; what a unit does through "
                "later steps is the Interventions panel's question). Click a row to select it."
            )
        )
        # side by side: stacked, the two small plots got a few pixels each in a bottom dock
        self.heat = self.view.addPlot(row=0, col=0)
        style_plot(self.heat, "", "unit", "t")
        self.heat.vb.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("CET-D1"))
        self.heat.addItem(self.image)
        self.t_line = pg.InfiniteLine(0, pen=pg.mkPen("#56B4E9", width=1))
        self.heat.addItem(self.t_line)
        on_row_clicked(self.heat, self._on_row)
        self.bars = self.view.addPlot(row=0, col=1)
        style_plot(self.bars, "", "W·h", "unit")
        self.lens = self.view.addPlot(row=0, col=2)
        style_plot(self.lens, "", "logit", "t")
        self.lens.addLegend(offset=(-4, 4), brush=LEGEND_BRUSH, labelTextColor="#e8e8ea")
        self.lens_cursor = pg.InfiniteLine(0, pen=pg.mkPen("#56B4E9", width=1))
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self.view.ci.layout.setColumnStretchFactor(2, 2)

    def refresh(self) -> None:
        st = self.state
        if self._model_id != id(st.model):
            self._model_id = id(st.model)
            self._fill_outputs()
        self.recompute()

    def _fill_outputs(self) -> None:
        from ...analysis.logit_attribution import _head

        self.k.blockSignals(True)
        self.k.clear()
        try:
            head, _ = _head(engine_model(self.state))
            n = int(np.asarray(head.kernel).shape[1])
        except LstmvizError:
            n = 0
        labels = output_labels(self.state, n) if n > 1 else ["the output"] * n
        for i, lab in enumerate(labels):
            self.k.addItem(lab if n == 1 or lab == str(i) else f"{lab}  ({i})", i)
        tr = self.state.trace
        if tr is not None and n > 1:
            out = np.asarray(tr.output[0] if isinstance(tr.output, list) else tr.output)
            last = out[min(self.state.batch, out.shape[0] - 1)].reshape(-1, n)[-1]
            self.k.setCurrentIndex(int(np.argmax(last)))
        self.k.blockSignals(False)

    def recompute(self) -> None:
        from ...analysis import logit_attribution

        st = self.state
        if self.lt is None or self.k.count() == 0:
            self.result = None
            msg = "Direct logit attribution needs an LSTM feeding a Dense head."
            try:
                model = engine_model(st)
                from ...analysis.logit_attribution import _head

                _head(model)
            except LstmvizError as e:
                msg = f"{str(e)[:1].upper()}{str(e)[1:]}."
            self.stack.show_empty(msg)
            self.summary.setText("")
            return
        try:
            self.result = logit_attribution(
                engine_model(st), st.x, max(self.k.currentIndex(), 0), batch=st.batch
            )
        except LstmvizError as e:
            self.result = None
            self.stack.show_empty(f"{str(e)[:1].upper()}{str(e)[1:]}.")
            self.summary.setText("")
            return
        self._draw()

    def on_t(self, t: int) -> None:
        self.t_line.setValue(t + 0.5)
        self.lens_cursor.setValue(t + 0.5)
        self._draw_bars()

    def _draw(self) -> None:
        r = self.result
        if r is None:
            return
        self.stack.show_plots()
        c = np.asarray(r.contributions[0], np.float64).T  # (U, T)
        m = robust_max(c)
        show_image(self.heat, self.image, c, (-m, m))
        name = self.k.currentText().split("  (")[0]
        self.heat.setTitle(
            f"W[u, {r.k}]·h_t[u] into output {name!r} (±{m:.2g}), layer {r.layer}",
            color="#e8e8ea",
            size="13px",
        )
        ticks = time_ticks(self.state.token_labels(), c.shape[1], offset=0.5)
        self.heat.getAxis("bottom").setTicks([ticks, []])
        self.heat.getAxis("left").setTicks([unit_ticks(c.shape[0]), []])
        self.t_line.setValue(self.state.t + 0.5)
        self._draw_lens(ticks)
        self._draw_bars()

    def _draw_bars(self) -> None:
        r = self.result
        if r is None:
            return
        t = min(self.state.t, r.contributions.shape[1] - 1)
        top = r.top_units(0, t, TOP)
        p = self.bars
        p.clear()
        xs = np.arange(len(top))
        vals = np.array([v for _, v in top])
        brushes = [pg.mkBrush("#E69F00" if v >= 0 else "#56B4E9") for v in vals]
        p.addItem(pg.BarGraphItem(x=xs, height=vals, width=0.8, brushes=brushes))
        p.getAxis("bottom").setTicks([[(i, str(u)) for i, (u, _) in enumerate(top)], []])
        p.setTitle(
            f"largest writers at t={t} (logit {float(r.logit[0, t]):.3g}, bias {r.bias:.3g})",
            color="#e8e8ea",
            size="13px",
        )
        total = float(np.abs(r.contributions[0, t]).sum()) or 1.0
        share = float(np.abs(vals).sum()) / total
        best = ", ".join(f"unit {u} ({v:+.3g})" for u, v in top[:3])
        self.summary.setText(
            f"At t={t}: {best}; the top {len(top)} units write {share:.0%} of the total |W·h|."
        )

    def _draw_lens(self, ticks: list[tuple[float, str]]) -> None:
        r = self.result
        p = self.lens
        p.clear()
        if p.legend is not None:
            p.legend.clear()
        p.addItem(self.lens_cursor)
        self.lens_cursor.setValue(self.state.t + 0.5)
        steps = r.logit.shape[1]
        xs = np.arange(steps) + 0.5
        layers = list(r.lens)
        if len(layers) <= 1:
            p.plot(xs, r.logit[0], pen=pg.mkPen("#E69F00", width=2), symbol="o", symbolSize=5)
            p.setTitle("the logit Σ W·h + b over time", color="#e8e8ea", size="13px")
        else:
            for i, name in enumerate(layers):
                vals = np.asarray(r.lens[name])[0, :, r.k]
                colour = SERIES[i % len(SERIES)]
                p.plot(
                    xs,
                    vals,
                    pen=pg.mkPen(colour, width=2),
                    symbol="o",
                    symbolSize=4,
                    symbolBrush=colour,
                    name=name,
                )
            p.setTitle("logit lens: each layer's h read by the head", color="#e8e8ea", size="13px")
        p.getAxis("bottom").setTicks([ticks, []])

    def _on_row(self, row: int, x: float) -> None:
        r, st = self.result, self.state
        if r is None:
            return
        names = st.layer_names
        u = row
        layer = r.layer
        if layer not in names:  # a Bidirectional: forward units first, then backward
            fwd = st.trace.layer(f"{layer}/forward").units
            layer, u = (f"{layer}/forward", u) if u < fwd else (f"{layer}/backward", u - fwd)
        if not 0 <= row < r.contributions.shape[2]:
            return
        try:
            st.set_layer(layer)
            st.set_units([u])
        except LstmvizError as e:
            self.error.emit(str(e))
        if 0 <= x < st.timesteps:
            st.set_t(int(x))
