"""Line plots of selected units over time, bars of all units at the current step, and the
model's output (top-k / digit / bit) at the current step."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..engine.trace import QUANTITIES, SYMBOLS
from ..state import ViewerState
from .fit_label import FitLabel
from .heatmaps import set_ticks, time_ticks
from .stagger import hold_on_resize, staged
from .style import NORMAL, QUANTITY_COLORS, SHORT_TITLES, Theme, unit_color

LONG = 400  # curves with more points than this are drawn without antialiasing (speed)
MAX_POINTS = 400  # longer curves are drawn from min/max per bin


def peak_decimate(y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a long series reduced to min/max pairs per bin (what a screen can show):
    drawn once per trace, cheap to repaint at every step."""
    n = len(y)
    if n <= max_points:
        return np.arange(n, dtype=np.float64), np.asarray(y, dtype=np.float64)
    size = -(-n // (max_points // 2))
    bins = -(-n // size)  # no bin past the end (those would repeat the last value there)
    pad = bins * size - n
    yy = np.pad(np.asarray(y, dtype=np.float64), (0, pad), mode="edge").reshape(bins, size)
    lo, hi = yy.min(axis=1), yy.max(axis=1)  # (bins,)
    xs = np.repeat(np.minimum(np.arange(bins) * size + size / 2, n - 1), 2)
    ys = np.empty(2 * bins)
    ys[0::2], ys[1::2] = lo, hi
    return xs, ys


def _axis_labels(plot: pg.PlotItem, theme: Theme, left: str, bottom: str) -> None:
    if theme.name == "presentation":  # large ticks and titles say it; keep the space
        plot.getAxis("left").showLabel(False)
        plot.getAxis("bottom").showLabel(False)
        return
    style = {"color": theme.muted, "font-size": f"{max(theme.tick_px - 1, 10)}px"}
    plot.getAxis("left").setLabel(left, **style)
    plot.getAxis("bottom").setLabel(bottom, **style)


def _style_axes(plot: pg.PlotItem, theme: Theme) -> None:
    f = QFont("DejaVu Sans")
    f.setPixelSize(theme.tick_px)
    for ax in ("left", "bottom"):
        a = plot.getAxis(ax)
        a.enableAutoSIPrefix(False)  # no HTML relabelling at every range change
        a.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        a.setStyle(tickFont=f, tickLength=-4)
        a.setPen(pg.mkPen(theme.muted))
        a.setTextPen(pg.mkPen(theme.fg))
    plot.getAxis("left").setWidth(int(theme.tick_px * 3.0))
    plot.vb.setBackgroundColor(theme.panel)


class UnitLines(QWidget):
    """One quantity of the selected units over time, with a cursor at ``t``."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme = NORMAL
        self.quantity = "hidden"
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        top = QHBoxLayout()
        self.title = FitLabel()
        self.combo = QComboBox()
        for q in QUANTITIES:
            self.combo.addItem(SHORT_TITLES[q], q)
        self.combo.setCurrentIndex(QUANTITIES.index(self.quantity))
        self.combo.setToolTip("Which quantity to draw for the selected units")
        self.combo.currentIndexChanged.connect(self._on_quantity)
        top.addWidget(self.title, 1)
        top.addWidget(self.combo)
        lay.addLayout(top)
        self.widget = pg.PlotWidget(enableMenu=False)
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        self.plot.hideButtons()
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#3a3f4b", width=1))
        self.plot.addItem(self.zero, ignoreBounds=True)
        lay.addWidget(self.widget, 1)
        self.step_line = pg.InfiniteLine(angle=90, movable=False)
        self.plot.addItem(self.step_line, ignoreBounds=True)
        self.curves: list[pg.PlotDataItem] = []
        self._full: list[tuple[np.ndarray, np.ndarray]] = []  # each curve's decimated data
        self._clipped = False
        self.set_theme(NORMAL)
        redraw = staged(state, self.refresh, order=2)  # after the heatmaps
        for sig in (state.events.trace, state.events.layer, state.events.batch):
            sig.connect(redraw)
        hold_on_resize(state, self, order=2)
        state.events.selection.connect(self.refresh)
        state.events.t.connect(self._on_t_changed)
        state.options.events.hide_future.connect(self._on_hide_future)

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.bg)
        _style_axes(self.plot, theme)
        _axis_labels(self.plot, theme, "value", "timestep t (input token)")
        self.plot.getAxis("left").setWidth(
            int(theme.tick_px * (4.2 if theme.name == "normal" else 2.2))
        )
        self.step_line.setPen(pg.mkPen(theme.accent, width=theme.cursor_width))
        self.refresh()

    def _on_quantity(self, i: int) -> None:
        self.quantity = self.combo.itemData(i)
        self.refresh()

    def _update_title(self) -> None:
        th = self.theme
        c = QUANTITY_COLORS[self.quantity]
        sel = self.state.selected_units
        units = ", ".join(f"<b style='color:{unit_color(k)}'>{u}</b>" for k, u in enumerate(sel))
        name = (
            f"<span style='color:{c}; font-weight:700; font-size:{th.title_px}px'>"
            f"{SHORT_TITLES[self.quantity]}</span>"
        )
        which = f"unit{'s' if len(sel) > 1 else ''} {units}"
        self.title.set_texts(
            f"{name} over time · {which}"
            f"<span style='color:{th.muted}'> · click a heatmap row to pick another</span>",
            f"{name} over time · {which}",
            f"{name} · {which}",
            name,
        )

    def refresh(self, *_: Any) -> None:
        lt = self.state.layer_trace
        self._update_title()
        if lt is None:
            for c in self.curves:
                self.plot.removeItem(c)
            self.curves = []
            return
        b = min(self.state.batch, lt.batch_size - 1)
        data = lt.per_unit(self.quantity)[b]  # (T, U)
        units = self.state.selected_units
        old, self.curves = self.curves, []
        self._full = []
        for k, u in enumerate(units):
            xs, ys = peak_decimate(data[:, u], 2 * MAX_POINTS)
            self._full.append((xs, ys))
            dense = len(xs) < lt.timesteps  # min/max envelope of a long sequence: thin lines
            color = pg.mkColor(unit_color(k))
            if dense:
                color.setAlpha(170)
            pen = pg.mkPen(color, width=1 if dense else self.theme.line_width)
            style = dict(
                pen=pen,
                name=f"unit {u}",
                antialias=len(xs) <= LONG,
                connect="pairs" if dense else "all",
                skipFiniteCheck=True,
            )
            if k < len(old):  # reuse the curve item (a new trace redraws data only)
                c = old[k]
                c.setData(xs, ys, **style)
            else:
                c = self.plot.plot(xs, ys, **style)
                c.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.curves.append(c)
        for c in old[len(units) :]:
            self.plot.removeItem(c)
        lo, hi = self.state.color_levels(self.quantity, lt)  # the heatmaps' (locked) levels
        self.plot.setYRange(lo, hi, padding=0.05)
        set_ticks(self.plot.getAxis("left"), [(v, f"{v:g}") for v in (lo, (lo + hi) / 2, hi)])
        self.plot.setXRange(0, max(lt.timesteps - 1, 1), padding=0.02)
        labels = self.state.token_labels()
        w = self.plot.vb.width() if self.plot.vb.width() > 20 else self.width() - 60
        ticks = time_ticks(
            labels if len(labels) == lt.timesteps else [], lt.timesteps, w, self.theme.tick_px
        )
        set_ticks(self.plot.getAxis("bottom"), [(x - 0.5, s) for x, s in ticks])
        self._on_t_changed(self.state.t)

    def _on_t_changed(self, t: int) -> None:
        self.step_line.setValue(t)
        if self.state.options.hide_future or self._clipped:
            self._clip(t)

    def _clip(self, t: int) -> None:
        """Predict, then reveal: the curves stop at step t while the future is hidden."""
        hide = bool(self.state.options.hide_future)
        for c, (xs, ys) in zip(self.curves, getattr(self, "_full", []), strict=False):
            if hide:
                keep = xs <= t + 1e-9
                c.setData(xs[keep], ys[keep])
            else:
                c.setData(xs, ys)
        self._clipped = hide

    def _on_hide_future(self, _on: bool) -> None:
        self._clip(self.state.t)


class StepBars(QWidget):
    """ "All six now": the six quantities of the selected units at the current step, as bars.

    Drawn from :func:`lstmviz.analysis.all_six.all_six_now`: the selected units (at most
    eight; with none selected, the most active ones, and the title says so), bars grouped by
    unit and coloured like the heatmap titles. Quantities bounded to [-1, 1] or [0, 1] share
    one plot; unbounded ones (the cell state; g and h of an LSTM without tanh) get a plot of
    their own at the heatmaps' levels: nothing is rescaled, and each plot says its scale.
    """

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme = NORMAL
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.title = FitLabel()
        lay.addWidget(self.title)
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.ci.setContentsMargins(0, 0, 0, 0)
        self.plots: list[pg.PlotItem] = []
        self.plot: pg.PlotItem = self._plot(0)  # the first group's plot (for export)
        lay.addWidget(self.widget, 1)
        self.items: dict[str, pg.BarGraphItem] = {}  # one per quantity
        self._home: dict[str, pg.PlotItem] = {}  # the plot each item is in
        self.six: Any = None
        self._shape: Any = None
        self.set_theme(NORMAL)
        redraw = staged(state, self.rebuild, order=3)  # after the curves
        for sig in (state.events.trace, state.events.layer, state.events.batch):
            sig.connect(redraw)
        hold_on_resize(state, self, order=3)
        state.events.selection.connect(self.rebuild)
        state.events.t.connect(self._on_t_changed)

    def _plot(self, k: int) -> pg.PlotItem:
        while len(self.plots) <= k:
            plot = self.widget.ci.addPlot(row=0, col=len(self.plots), enableMenu=False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#6b7078", width=1)))
            _style_axes(plot, self.theme)
            self.plots.append(plot)
        return self.plots[k]

    @property
    def units(self) -> tuple[int, ...]:
        """The units shown, left to right."""
        return tuple(self.six.units) if self.six is not None else ()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.bg)
        for plot in self.plots:
            _style_axes(plot, theme)
            _axis_labels(plot, theme, "value", "unit")
            plot.getAxis("left").setWidth(int(theme.tick_px * 3.2))
        self.rebuild()

    def _compute(self) -> Any:
        from ..analysis.all_six import all_six_now

        st = self.state
        lt = st.layer_trace
        if lt is None:
            return None
        b = min(st.batch, lt.batch_size - 1)
        t = min(st.t, lt.timesteps - 1)
        return all_six_now(lt, t, b, units=st.selected_units or None, max_units=8)

    def rebuild(self, *_: Any) -> None:
        six = self._compute()
        self.six = six
        if six is None:
            return
        shape = (tuple(g.quantities for g in six.groups), len(six.units))
        if shape != self._shape:
            # the bar items are kept (a new trace of the same shape redraws data only); a
            # quantity that changes group moves to the other plot
            self._shape = shape
            n = len(six.units)
            for k, g in enumerate(six.groups):
                plot = self._plot(k)
                width = 0.84 / len(g.quantities)
                for j, q in enumerate(g.quantities):
                    x = np.arange(n) - 0.42 + (j + 0.5) * width
                    item = self.items.get(q)
                    if item is None:
                        item = pg.BarGraphItem(
                            x=x,
                            height=np.zeros(n),
                            width=width * 0.9,
                            brush=pg.mkBrush(QUANTITY_COLORS[q]),
                            pen=pg.mkPen(None),
                        )
                        self.items[q] = item
                    else:
                        item.setOpts(x=x, height=np.zeros(n), width=width * 0.9)
                    if self._home.get(q) is not plot:
                        old = self._home.get(q)
                        if old is not None:
                            old.removeItem(item)
                        plot.addItem(item)
                        self._home[q] = plot
            for k, plot in enumerate(self.plots):
                plot.setVisible(k < len(six.groups))
                self.widget.ci.layout.setColumnStretchFactor(k, 3 if k == 0 else 2)
        th = self.theme
        for k, g in enumerate(six.groups):
            plot = self.plots[k]
            lo, hi = g.range
            plot.setYRange(lo, hi, padding=0.05)
            set_ticks(plot.getAxis("left"), [(v, f"{v:g}") for v in sorted({lo, 0.0, hi})])
            plot.setXRange(-0.6, len(six.units) - 0.4, padding=0)
            set_ticks(plot.getAxis("bottom"), [(i, str(u)) for i, u in enumerate(six.units)])
            legend = " ".join(
                f"<b style='color:{QUANTITY_COLORS[q]}'>■{SYMBOLS[q]}</b>" for q in g.quantities
            )
            scale = f"{lo:g} to {hi:g}".replace("-", "−")
            plot.setTitle(
                f"<span style='font-size:{th.tick_px}px'>{legend} "
                f"<span style='color:{th.muted}'>{scale}</span></span>"
            )
            plot.setToolTip(g.title)
        self._set_title()
        self._set_heights()

    def _set_title(self) -> None:
        six, th = self.six, self.theme
        name = f"<span style='font-weight:700; font-size:{th.title_px}px'>all six now</span>"
        caption = f"<span style='color:{th.muted}'>· {html.escape(six.caption)}"
        own = " · the cell state on its own scale, as in the heatmaps"
        self.title.set_texts(
            f"{name} {caption}{own if len(six.groups) > 1 else ''}</span>",
            f"{name} {caption}</span>",
            name,
            tip="\n".join(g.title for g in six.groups),
        )

    def _set_heights(self) -> None:
        six = self.six
        for g in six.groups:
            for j, q in enumerate(g.quantities):
                self.items[q].setOpts(height=np.asarray(g.values[j], dtype=np.float64))

    def values(self, quantity: str) -> np.ndarray:
        """The bar heights drawn for ``quantity``, one per shown unit (for tests)."""
        return np.asarray(self.items[quantity].opts["height"], dtype=np.float64)

    def _on_t_changed(self, t: int) -> None:
        six = self._compute()
        if six is None:
            return
        self.six = six
        shape = (tuple(g.quantities for g in six.groups), len(six.units))
        if shape != self._shape or not six.selected:
            self.rebuild()  # the most active units change with t
            return
        self._set_heights()
        self._set_title()


class OutputView(QWidget):
    """What the model says at the current step: top-k tokens with probabilities, the
    predicted digit, or the probability of a 1 bit."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme = NORMAL
        self.k = 5
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.headline)
        self.widget = pg.PlotWidget(enableMenu=False)
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.vb.invertY(True)
        self.bars = pg.BarGraphItem(
            x0=0,
            y=np.arange(self.k),
            height=0.7,
            width=np.zeros(self.k),
            brush=pg.mkBrush("#56B4E9"),
            pen=pg.mkPen(None),
        )
        self.plot.addItem(self.bars)
        self.texts = [pg.TextItem(anchor=(0, 0.5), color="#ffffff") for _ in range(self.k)]
        for ti in self.texts:
            self.plot.addItem(ti)
        self.plot.setXRange(0, 1.0, padding=0)
        self.plot.getAxis("bottom").setLabel("probability")
        # five readable rows (a label and a bar each) and the axis: never squeezed together
        self.widget.setMinimumHeight(170)
        lay.addWidget(self.widget, 1)
        self.shown: list[tuple[str, float]] = []
        self.probabilities = True
        self.set_theme(NORMAL)
        redraw = staged(state, self.refresh, order=4)  # after the bars
        for sig in (state.events.trace, state.events.layer, state.events.batch):
            sig.connect(redraw)
        hold_on_resize(state, self, order=4)
        state.events.t.connect(self.refresh)
        state.options.events.hide_answer.connect(self.refresh)

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.widget.setBackground(theme.bg)
        _style_axes(self.plot, theme)
        f = QFont()
        f.setPixelSize(theme.font_px)
        for ti in self.texts:
            ti.setFont(f)
        self.plot.getAxis("left").setWidth(int(theme.tick_px * 3.2))
        self.refresh()

    def refresh(self, *_: Any) -> None:
        from ..analysis.outputs import display_label, top_k

        doc = self.state
        tr = doc.trace
        th = self.theme
        self.shown = []
        if tr is not None and tr.step_output is not None and doc.options.hide_answer:
            self.headline.setText(  # a lesson asks first: predict, then reveal
                f"<span style='color:{th.muted}'>The answer at t = {doc.t} is hidden: "
                "PageDown reveals it.</span>"
            )
            self.bars.setOpts(width=np.zeros(self.k))
            for ti in self.texts:
                ti.setText("")
            return
        spec = doc.output_spec
        if tr is None or tr.step_output is None or spec is None:
            self.headline.setText(
                f"<span style='color:{th.muted}'>This model has no per-step output to show.</span>"
            )
            self.bars.setOpts(width=np.zeros(self.k))
            for ti in self.texts:
                ti.setText("")
            return
        if not doc.output_follows_layer:  # an encoder's steps: the output follows another
            names = doc.layer_names
            self.headline.setText(
                f"<span style='color:{th.muted}'>The model's output runs along the steps of "
                f"{names[-1] if names else 'another layer'}: select that layer to see it "
                "under its steps.</span>"
            )
            self.bars.setOpts(width=np.zeros(self.k))
            for ti in self.texts:
                ti.setText("")
            return
        so = tr.step_output  # (B, T, K)
        b = min(doc.batch, so.shape[0] - 1)
        t = min(doc.t, so.shape[1] - 1)
        p = np.asarray(so[b, t], dtype=np.float64)  # (K,)
        labels = doc.output_labels(p.shape[0])
        self.probabilities = spec.is_probability
        muted = f"color:{th.muted}"
        big = f"color:#F0E442; font-size:{int(th.title_px * 1.5)}px"
        if not spec.is_probability:  # regression values: ranked by value, shown as they are
            ranked = top_k(p, spec, labels, k=self.k)
            self.shown = [(display_label(r.label), r.value) for r in ranked]
            vals = ", ".join(f"{v:+.2f}" for v in p[:8]) + (" …" if p.shape[0] > 8 else "")
            self.headline.setText(
                f"<span style='font-size:{th.title_px}px'>output at t = {t}</span> "
                f"<span style='{muted}'>({p.shape[0]} values, largest first)</span>"
                f"<br><span style='font-family:monospace'>{vals}</span>"
            )
        elif spec.kind == "bits" or p.shape[0] == 1:  # a bit: the probability of a 1
            prob = float(top_k(p, spec, labels, k=1)[0].probability or 0.0)
            bit = int(prob >= 0.5)
            self.headline.setText(
                f"<span style='font-size:{th.title_px}px'>output at t = {t}: "
                f"<b style='{big}'>{bit}</b></span> "
                f"<span style='{muted}'>(P(1) = {prob:.2f})</span>"
            )
            self.shown = [("P(1)", prob)]
        else:  # a distribution (probabilities, log-probabilities or logits): by probability
            ranked = top_k(p, spec, labels, k=self.k)
            self.shown = [(display_label(r.label), float(r.probability or 0.0)) for r in ranked]
            best = display_label(ranked[0].label, html_escape=True)
            what = (
                "next token"
                if doc.info is not None and doc.info.output_kind == "next-token"
                else "prediction"
            )
            self.headline.setText(
                f"<span style='font-size:{th.title_px}px'>{what} at t = {t}: "
                f"<b style='{big}'>{best}</b></span> "
                f"<span style='{muted}'>({self.shown[0][1]:.0%})</span>"
            )
        n = len(self.shown)
        widths = np.zeros(self.k)
        widths[:n] = [v for _, v in self.shown]
        brushes = [pg.mkBrush("#F0E442" if i == 0 else "#56B4E9") for i in range(self.k)]
        self.bars.setOpts(width=widths, brushes=brushes)
        set_ticks(self.plot.getAxis("left"), [(i, s) for i, (s, _) in enumerate(self.shown)])
        m = 1.0 if self.probabilities else max(1e-6, max(abs(v) for _, v in self.shown))
        for i, ti in enumerate(self.texts):
            if i < n:
                v = self.shown[i][1]
                if v > 0.5 * m:  # a long bar: the value inside its end (never past the edge)
                    ti.setAnchor((1, 0.5))
                    ti.setColor("#111111")
                    ti.setText(f"{v:.2f} ")
                    ti.setPos(v, i)
                else:  # a short one: after its end
                    ti.setAnchor((0, 0.5))
                    ti.setColor("#ffffff")
                    ti.setText(f" {v:.2f}")
                    ti.setPos(max(v, 0), i)
            else:
                ti.setText("")
        self.plot.setXRange(0 if self.probabilities else -m, m, padding=0.02)
        label = "probability" if self.probabilities else spec.unit
        if self.plot.getAxis("bottom").labelText != label:  # setLabel re-lays the plot out
            self.plot.getAxis("bottom").setLabel(label)
        self.plot.setYRange(-0.5, max(n, 3) - 0.5, padding=0)
