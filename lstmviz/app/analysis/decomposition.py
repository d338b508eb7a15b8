"""Decomposition panel: what the cell keeps (f·c_prev) and what it writes (i·g), per unit,
and how long written values survive."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from ...analysis import decompose, mean_lifetime, retention
from .common import KEPT, WRITTEN, Panel, PlotStack, hint, style_plot, time_ticks
from .targets import unit_ticks


def stacked(
    kept: np.ndarray, written: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Diverging stacked bars: ``(kept_y0, kept_y1, written_y0, written_y1)`` per step.

    Each part goes up when positive and down when negative; when both have the same sign the
    written part stacks on the kept part, so the bar ends at ``c = kept + written``."""
    k0 = np.zeros_like(kept)
    k1 = kept
    same = np.sign(kept) == np.sign(written)
    w0 = np.where(same, kept, 0.0)
    w1 = w0 + written
    return k0, k1, w0, w1


DASH = Qt.PenStyle.DashLine
DASH_WHITE = pg.mkPen("#ffffff", width=1, style=DASH)


class DecompositionPanel(Panel):
    """Kept vs written for one unit over time (diverging stacked bars, c as a line), the
    retention of the value written at the current step, and every unit's median lifetime."""

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Unit"))
        self.unit_box = QSpinBox()
        self.unit_box.setToolTip(
            "The unit shown (follows the selection; changing it selects the unit everywhere)"
        )
        self.unit_box.valueChanged.connect(self._on_unit_box)
        top.addWidget(self.unit_box)
        self.readout = QLabel()
        self.readout.setToolTip("At the current step: c = kept + written")
        top.addWidget(self.readout, 1)
        lay.addLayout(top)
        lay.addWidget(
            hint(
                f"<span style='color:{KEPT}'>■ kept f·c<sub>t-1</sub></span> "
                f"&nbsp; <span style='color:{WRITTEN}'>■ written i·g</span> "
                "&nbsp; — c<sub>t</sub> (their sum). Bars point up when positive."
            )
        )
        self.view = pg.GraphicsLayoutWidget()
        self.stack = PlotStack(
            self.view, "Open a model: each unit's cell splits into kept and written."
        )
        lay.addWidget(self.stack, 1)
        # side by side: the dock is wide and short at the bottom of the window
        self.bars = self.view.addPlot(row=0, col=0)
        style_plot(self.bars, "kept vs written", "cell", "t")
        self.kept_item = pg.BarGraphItem(
            x=[], y0=[], y1=[], width=0.8, brush=pg.mkBrush(KEPT), pen=pg.mkPen(None)
        )
        self.written_item = pg.BarGraphItem(
            x=[], y0=[], y1=[], width=0.8, brush=pg.mkBrush(WRITTEN), pen=pg.mkPen(None)
        )
        self.bars.addItem(self.kept_item)
        self.bars.addItem(self.written_item)
        self.cell_curve = self.bars.plot(
            pen=pg.mkPen("#ffffff", width=2), symbol="o", symbolSize=5, symbolBrush="#ffffff"
        )
        self.bars.addLine(y=0, pen=pg.mkPen("#555a66"))
        self.step_line = pg.InfiniteLine(0, pen=DASH_WHITE)
        self.bars.addItem(self.step_line)
        self.life = self.view.addPlot(row=0, col=1)
        style_plot(self.life, "retention of the value written at t", "fraction kept", "t")
        self.life.setYRange(0, 1.05)
        self.life.setXLink(self.bars)
        self.ret_curve = self.life.plot(pen=pg.mkPen(KEPT, width=2), stepMode=None)
        self.life.addLine(y=0.5, pen=pg.mkPen("#555a66", style=DASH))
        self.life_cursor = pg.InfiniteLine(0, pen=DASH_WHITE)
        self.life.addItem(self.life_cursor)
        self.units_plot = self.view.addPlot(row=0, col=2)
        style_plot(
            self.units_plot, "median memory lifetime per unit (half-life, steps)", "steps", "unit"
        )
        self.life_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=pg.mkBrush(KEPT))
        self.units_plot.addItem(self.life_bars)
        self.sel_bar = pg.BarGraphItem(x=[], height=[], width=0.7, brush=pg.mkBrush(WRITTEN))
        self.units_plot.addItem(self.sel_bar)
        self.life_bars.setToolTip(
            "Steps until a written value has decayed below half "
            "(median over steps); bars at the top outlive the input"
        )
        self.units_plot.scene().sigMouseClicked.connect(self._on_click)
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self.view.ci.layout.setColumnStretchFactor(2, 3)
        self.kept: np.ndarray | None = None
        self.written: np.ndarray | None = None
        self.lifetimes = np.zeros(0)

    @property
    def unit(self) -> int:
        lt = self.lt
        u = self.state.unit
        return u if lt is not None and u < lt.units else 0

    def refresh(self) -> None:
        lt = self.lt
        self.stack.show_plots()
        self.kept, self.written = decompose(lt)  # (B, T, U)
        self.lifetimes = mean_lifetime(lt)  # (U,)
        self.unit_box.blockSignals(True)
        self.unit_box.setRange(0, lt.units - 1)
        self.unit_box.setValue(self.unit)
        self.unit_box.blockSignals(False)
        ticks = time_ticks(self.state.token_labels(), lt.timesteps)
        for p in (self.bars, self.life):
            p.getAxis("bottom").setTicks([ticks, []])
        finite = self.lifetimes[np.isfinite(self.lifetimes)]
        cap = float(lt.timesteps)
        heights = np.where(np.isfinite(self.lifetimes), self.lifetimes, cap)
        self.life_bars.setOpts(x=np.arange(lt.units), height=heights)
        # every 1, 2, 5, 10... units: 32 labels side by side ran into each other
        self.units_plot.getAxis("bottom").setTicks(
            [[(x - 0.5, label) for x, label in unit_ticks(lt.units, 16)], []]
        )
        self.units_plot.setYRange(0, max(cap, float(finite.max(initial=1.0))) * 1.05)
        self._draw_unit()

    def _draw_unit(self) -> None:
        lt = self.lt
        if lt is None or self.kept is None or self.written is None:
            return
        b, u = min(self.state.batch, lt.batch_size - 1), self.unit
        kept, written = self.kept[b, :, u], self.written[b, :, u]  # (T,)
        k0, k1, w0, w1 = stacked(kept, written)
        x = np.arange(lt.timesteps)
        self.kept_item.setOpts(x=x, y0=k0, y1=k1)
        self.written_item.setOpts(x=x, y0=w0, y1=w1)
        self.cell_curve.setData(x, lt.cell[b, :, u])
        self.sel_bar.setOpts(x=[u], height=[np.nan_to_num(self.lifetimes[u], posinf=lt.timesteps)])
        self.bars.setTitle(f"unit {u}: kept vs written", color="#e8e8ea")
        self.on_t(self.state.t)

    def on_t(self, t: int) -> None:
        lt = self.lt
        if lt is None or self.kept is None:
            return
        b, u = min(self.state.batch, lt.batch_size - 1), self.unit
        t = min(t, lt.timesteps - 1)
        self.step_line.setValue(t)
        self.life_cursor.setValue(t)
        ret = retention(lt, t, b)[:, u]  # (T,)
        steps = np.arange(lt.timesteps)
        after = steps <= t if lt.go_backwards else steps >= t
        self.ret_curve.setData(steps[after], ret[after])
        life = self.lifetimes[u]
        life_s = "outlives the input" if not np.isfinite(life) else f"{life:.0f} steps"
        kept, written = self.kept, self.written
        if kept is None or written is None:
            return
        self.readout.setText(
            f"t={t}: kept {kept[b, t, u]:+.3f} + written {written[b, t, u]:+.3f} "
            f"= c {lt.cell[b, t, u]:+.3f} · median lifetime {life_s}"
        )

    def on_selection(self) -> None:
        self.unit_box.blockSignals(True)
        self.unit_box.setValue(self.unit)
        self.unit_box.blockSignals(False)
        self._draw_unit()

    def _on_unit_box(self, u: int) -> None:
        rest = [v for v in self.state.selected_units if v != u]
        self.state.set_units([u, *rest])

    def _on_click(self, ev: Any) -> None:
        pos = self.units_plot.vb.mapSceneToView(ev.scenePos())
        if not self.units_plot.vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        u = round(pos.x())
        if self.lt is not None and 0 <= u < self.lt.units:
            self._on_unit_box(u)
