"""Saturation panel: how often each unit's gates sit near 0 or 1, histograms, dead units."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ...analysis import dead_units, gate_histograms, saturation, saturation_split
from ...engine.trace import GATES, TITLES
from .common import GATE_COLORS, LEGEND_BRUSH, Panel, hint, style_plot

DASH = Qt.PenStyle.DashLine


class SaturationPanel(Panel):
    """Karpathy-style scatter (fraction of steps left- vs right-saturated, one dot per unit and
    gate), a histogram of every gate's values, and the dead units of the layer."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("saturated below"))
        self.low = QDoubleSpinBox()
        self.low.setRange(0.0, 0.5)
        self.low.setSingleStep(0.05)
        self.low.setValue(0.1)
        row.addWidget(self.low)
        row.addWidget(QLabel("or above"))
        self.high = QDoubleSpinBox()
        self.high.setRange(0.5, 1.0)
        self.high.setSingleStep(0.05)
        self.high.setValue(0.9)
        row.addWidget(self.high)
        row.addStretch(1)
        lay.addLayout(row)
        self.low.valueChanged.connect(lambda *_: self._changed())
        self.high.valueChanged.connect(lambda *_: self._changed())
        self.view = pg.GraphicsLayoutWidget()
        lay.addWidget(self.view, 1)
        self.scatter_plot = self.view.addPlot(row=0, col=0)
        style_plot(
            self.scatter_plot,
            "gate saturation per unit",
            "fraction right-saturated (open)",
            "fraction left-saturated (closed)",
        )
        self.scatter_plot.setXRange(0, 1)
        self.scatter_plot.setYRange(0, 1)
        self.scatter_plot.plot([0, 1], [1, 0], pen=pg.mkPen("#555a66", style=DASH))
        self.legend = self.scatter_plot.addLegend(offset=(-5, 5), brush=LEGEND_BRUSH)
        self.scatters = {}
        for g in GATES:
            sc = pg.ScatterPlotItem(
                size=9,
                brush=pg.mkBrush(GATE_COLORS[g]),
                pen=pg.mkPen("#000000"),
                hoverable=True,
                tip=lambda x, y, data: f"unit {data}: {x:.2f} closed, {y:.2f} open",
            )
            sc.sigClicked.connect(self._on_point)
            self.scatter_plot.addItem(sc)
            self.legend.addItem(sc, TITLES[g])
            self.scatters[g] = sc
        self.hist_plot = self.view.addPlot(row=0, col=1)
        style_plot(self.hist_plot, "gate values (all units and steps)", "fraction", "value")
        self.hist_curves = {
            g: self.hist_plot.plot(stepMode="center", pen=pg.mkPen(GATE_COLORS[g], width=2))
            for g in GATES
        }
        self.low_line = self.hist_plot.addLine(x=0.1, pen=pg.mkPen("#888888", style=DASH))
        self.high_line = self.hist_plot.addLine(x=0.9, pen=pg.mkPen("#888888", style=DASH))
        self.layers_plot = self.view.addPlot(row=0, col=2)
        style_plot(self.layers_plot, "saturated fraction per layer", "fraction of steps", "layer")
        self.layer_bars = {
            g: pg.BarGraphItem(x=[], height=[], width=0.25, brush=pg.mkBrush(GATE_COLORS[g]))
            for g in GATES
        }
        for item in self.layer_bars.values():
            self.layers_plot.addItem(item)
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 3)
        self.view.ci.layout.setColumnStretchFactor(2, 2)
        self.dead_label = QLabel()
        self.dead_label.setWordWrap(True)
        lay.addWidget(self.dead_label)
        lay.addWidget(
            hint(
                "Each dot is one unit's gate: how often (all batch items and steps) "
                "it is below the lower bound (x) or above the upper one (y). Dots "
                "near the diagonal are binary switches; near the origin, never "
                "saturated. Click a dot to select the unit."
            )
        )
        self.result: dict = {}
        self.per_layer: dict[str, dict[str, float]] = {}
        self.dead: dict[int, str] = {}

    def refresh(self) -> None:
        lt = self.lt
        lo, hi = self.low.value(), self.high.value()
        self.result = saturation_split(lt, lo, hi)
        for g, (left, right) in self.result.items():
            self.scatters[g].setData(left, right, data=np.arange(lt.units))
        for g, (counts, edges) in gate_histograms(lt, bins=25).items():
            total = max(int(counts.sum()), 1)
            self.hist_curves[g].setData(edges, counts / total)
        self.low_line.setValue(lo)
        self.high_line.setValue(hi)
        self.per_layer = {}
        tr = self.state.trace
        for other in tr.layers:
            sat = saturation(other, lo, hi)
            self.per_layer[other.name] = {g: float(v.mean()) for g, v in sat.items()}
        names = list(self.per_layer)
        for j, g in enumerate(GATES):
            self.layer_bars[g].setOpts(
                x=np.arange(len(names)) + (j - 1) * 0.27,
                height=[self.per_layer[n][g] for n in names],
            )
        self.layers_plot.getAxis("bottom").setTicks([[(k, n) for k, n in enumerate(names)], []])
        self.layers_plot.setYRange(0, 1)
        self.dead = dead_units(lt)
        if self.dead:
            items = "; ".join(f"unit {u}: {why}" for u, why in list(self.dead.items())[:12])
            more = f" (+{len(self.dead) - 12} more)" if len(self.dead) > 12 else ""
            self.dead_label.setText(
                f"<b>Dead units ({len(self.dead)} of {lt.units})</b>: {items}{more}"
            )
        else:
            self.dead_label.setText(f"No dead units: all {lt.units} units vary over this input.")

    def _on_point(self, _item: Any, points: Any, _ev: Any = None) -> None:
        if len(points):
            u = int(points[0].data())
            self.state.set_units([u, *[v for v in self.state.selected_units if v != u]])
