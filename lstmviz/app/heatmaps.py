"""Units x time heatmaps of the six LSTM quantities, with a cursor at the current step.

One :class:`pyqtgraph.ImageItem` per quantity, drawn once per trace with fixed colour levels
(gates [0, 1], tanh-bounded values [-1, 1], the cell state symmetric around 0 over the trace).
Stepping only moves a column outline (the cursor) and the rectangle that dims the future.
Clicking a cell jumps to its timestep and selects its unit.

The grid fits itself to its height: every unit row keeps at least :data:`ROW_PX` pixels.
Tall enough, the six maps sit 3 x 2; shorter (a panel open below), 6 x 1; when even that
cannot show every unit, the most active units are shown and a note says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QGraphicsRectItem, QLabel

from ..analysis.overview import overview
from ..engine.trace import GATES, QUANTITIES
from ..state import ViewerState
from .stagger import hold_on_resize, staged
from .style import (
    GATE_CMAP,
    HEATMAP_OF,
    MEANINGS,
    NORMAL,
    QUANTITY_COLORS,
    SHORT_MEANINGS,
    SHORT_TITLES,
    SIGNED_CMAP,
    Theme,
    colormap,
)

#: The least height, in pixels, of one unit's row in a heatmap.
ROW_PX = 6
GRID_SPACING = 4  # pixels between two rows of maps
QWIDGETSIZE_MAX = 16777215


def time_ticks(
    labels: list[str], n: int, width_px: float = 600, tick_px: int = 12
) -> list[tuple[float, str]]:
    """Tick positions (column centres) and texts for a time axis of ``n`` steps drawn
    ``width_px`` wide: every token when they fit, else step numbers at a readable spacing."""
    if n <= 0:
        return []
    width_px = max(float(width_px), 50.0)
    if len(labels) >= n and n * 4 < width_px:  # else they cannot fit anyway
        font = QFont("DejaVu Sans")  # the axes' tick font
        font.setPixelSize(tick_px)
        widest = max(QFontMetrics(font).horizontalAdvance(s) for s in labels[:n])
        if n * (widest + 5) <= width_px:  # 5 px between two labels: "m m", not "mm"
            return [(t + 0.5, labels[t]) for t in range(n)]
    max_labels = max(2, int(width_px // (tick_px * 3.2)))
    raw = n / max_labels
    mag = 10 ** np.floor(np.log10(raw)) if raw >= 1 else 1
    step = int(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))
    if step >= n:  # at least the first and the last step
        step = max(n - 1, 1)
    return [(t + 0.5, str(t)) for t in range(0, n, max(step, 1))]


def set_ticks(axis: pg.AxisItem, major: list[tuple[float, str]]) -> None:
    """Set an axis's major ticks. The same ticks again do nothing: ``setTicks`` always
    re-renders the axis, and a new trace of the same shape (a training snapshot, a what-if
    edit) should redraw its data only."""
    if getattr(axis, "_lstmviz_ticks", None) != major:
        axis._lstmviz_ticks = major
        axis.setTicks([major, []])


def set_title(plot: pg.PlotItem, html: str) -> None:
    """Set a (possibly two-line) title and give its row the height it needs."""
    plot.setTitle(html)
    h = int(plot.titleLabel.item.boundingRect().height()) + 2
    plot.titleLabel.setMaximumHeight(h)
    plot.layout.setRowFixedHeight(0, h)
    label = plot.titleLabel
    if not getattr(label, "_capped", False):  # a long title may overhang; never widen the grid
        original = label.updateMin

        def update_min() -> None:
            original()
            label.setMinimumWidth(40)
            hints = label._sizeHint
            for which in (Qt.SizeHint.MinimumSize, Qt.SizeHint.PreferredSize):
                hints[which] = (40, hints[which][1])
            label.updateGeometry()

        label.updateMin = update_min
        label._capped = True
        label.updateMin()


def pointed_ticks(
    rows: np.ndarray, selected: list[int], max_labels: int
) -> list[tuple[float, str]]:
    """Unit labels for at most ``max_labels`` rows, the selected units' rows first, the
    others spread out so no two labels touch."""
    n = len(rows)
    if n <= max_labels:
        return [(k + 0.5, str(int(rows[k]))) for k in range(n)]
    gap = -(-n // max(max_labels, 1))
    chosen: list[int] = [k for k in range(n) if int(rows[k]) in selected][:max_labels]
    for k in range(n):
        if len(chosen) >= max_labels:
            break
        if all(abs(k - c) >= gap for c in chosen):
            chosen.append(k)
    return [(k + 0.5, str(int(rows[k]))) for k in sorted(chosen)]


class ColorBar(pg.GraphicsWidget):
    """A light colour bar beside a heatmap: the colour map from ``lo`` (bottom) to ``hi``
    (top) with three labels. (pyqtgraph's ColorBarItem is a whole PlotItem: six of them
    cost more start-up time than the rest of the window.)"""

    def __init__(self, cmap: Any) -> None:
        super().__init__()
        self.cmap = cmap
        self.levels = (0.0, 1.0)
        self.font_ = QFont()
        self.color = QColor("#e8e8ea")
        self.bar_w = 10
        self._resize()

    def _resize(self) -> None:
        fm = QFontMetrics(self.font_)
        w = self.bar_w + 6 + fm.horizontalAdvance("-0.55")
        self.setMinimumWidth(w)
        self.setMaximumWidth(w)
        self.update()

    def set_style(self, font: QFont, color: str, bar_w: int) -> None:
        self.font_ = QFont(font)
        self.color = QColor(color)
        self.bar_w = bar_w
        self._resize()

    def set_levels(self, levels: tuple[float, float]) -> None:
        new = (float(levels[0]), float(levels[1]))
        if new != self.levels:
            self.levels = new
            self.update()

    def labels(self) -> list[str]:
        lo, hi = self.levels
        return [f"{v:.2g}" for v in (hi, (lo + hi) / 2, lo)]

    def _bar(self) -> QRectF:
        r = self.boundingRect()
        return QRectF(r.left() + 2, r.top() + 1, self.bar_w, r.height() - 2)

    def label_rects(self) -> list[tuple[str, QRectF]]:
        """The labels drawn beside the bar and where (item coordinates): top, middle and
        bottom when three lines fit, the two ends when two do, else one line with the range
        ("0…1", "±1.2"): a heatmap of one unit's row in presentation mode's large type is a
        line high, and its three labels were drawn over each other."""
        bar = self._bar()
        fm = QFontMetrics(self.font_)
        x, line = bar.right() + 4, fm.height()
        hi, mid, lo = self.labels()

        def at(text: str, top: float) -> tuple[str, QRectF]:
            return text, QRectF(x, top, fm.horizontalAdvance(text), line)

        if bar.height() >= 3 * line:
            middle = bar.center().y() - line / 2
            return [at(hi, bar.top()), at(mid, middle), at(lo, bar.bottom() - line)]
        if bar.height() >= 2 * line:
            return [at(hi, bar.top()), at(lo, bar.bottom() - line)]
        a, b = self.levels
        room = self.boundingRect().right() - x
        texts = [f"{lo}…{hi}"]
        if a == -b:
            texts.append(f"±{hi}")
        text = next((t for t in texts if fm.horizontalAdvance(t) <= room), texts[-1])
        return [at(text, bar.center().y() - line / 2)]

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        bar = self._bar()
        painter.fillRect(
            bar, QBrush(self.cmap.getGradient(QPointF(0, bar.bottom()), QPointF(0, bar.top())))
        )
        painter.setPen(QColor("#5a5f6b"))
        painter.drawRect(bar)
        painter.setFont(self.font_)
        painter.setPen(self.color)
        fm = QFontMetrics(self.font_)
        for text, rect in self.label_rects():
            painter.drawText(QPointF(rect.left(), rect.top() + fm.ascent()), text)


class FutureShade(QGraphicsObject):
    """Darkens the not-yet-reached columns ``t+1 .. T``.

    Its bounding rectangle is the whole image and never changes; moving ``t`` invalidates
    only the strip between the old and the new position, so a step repaints a few columns
    instead of half of every heatmap.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rect = QRectF(0, 0, 1, 1)
        self._t = 0
        self.backwards = False  # a layer running backwards has not reached 0..t-1 yet
        self._brush = QBrush(QColor(0, 0, 0, 150))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_area(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(rect)
        self.update()

    def set_brush(self, brush: QBrush) -> None:
        self._brush = brush
        self.update()

    def set_t(self, t: int) -> None:
        old, self._t = self._t, t
        if old == t:
            return
        lo, hi = min(old, t), max(old, t)
        self.update(QRectF(lo, self._rect.top(), hi - lo + 2, self._rect.height()))

    def shaded(self) -> QRectF:
        """The darkened rectangle (data coordinates)."""
        r = self._rect
        if self.backwards:
            return QRectF(r.left(), r.top(), max(self._t - r.left(), 0), r.height())
        left = max(self._t + 1, r.left())
        return QRectF(left, r.top(), max(r.right() - left, 0), r.height())

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: Any, widget: Any = None) -> None:
        r = self.shaded()
        if r.width() > 0:
            painter.fillRect(r, self._brush)


class Heatmap:
    """One quantity's units x time image inside a plot, with its cursor and dimming."""

    def __init__(self, plot: pg.PlotItem, bar: ColorBar, quantity: str, layer: str | None) -> None:
        self.plot = plot
        self.bar = bar
        self.quantity = quantity
        self.layer = layer  # None: the state's selected layer
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-10)
        # stepping repaints small strips over the image: blit them from a device-resolution
        # cache instead of rescaling the image each time
        self.image.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        for ax in ("left", "bottom"):
            plot.getAxis(ax).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.addItem(self.image)
        self.image.setColorMap(bar.cmap)
        plot.layout.addItem(bar, 2, 5)
        plot.layout.setColumnFixedWidth(4, 4)
        self.dim = FutureShade()
        self.dim.setZValue(5)
        plot.vb.addItem(self.dim, ignoreBounds=True)
        self.cursor = QGraphicsRectItem()
        self.cursor.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.cursor.setZValue(10)
        plot.vb.addItem(self.cursor, ignoreBounds=True)
        self.row_mark = QGraphicsRectItem()
        self.row_mark.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.row_mark.setZValue(9)
        plot.vb.addItem(self.row_mark, ignoreBounds=True)
        # a part of the cell diagram clicked: its quantity's row of the selected unit
        self.highlight = QGraphicsRectItem()
        self.highlight.setBrush(QBrush(QColor(86, 180, 233, 60)))
        self.highlight.setZValue(11)
        self.highlight.setVisible(False)
        plot.vb.addItem(self.highlight, ignoreBounds=True)
        self.n_t = 0
        self.n_rows = 0
        self.rows: np.ndarray = np.zeros(0, np.int64)
        self.data: np.ndarray | None = None  # (rows, T) as shown (before downsampling)
        self.t = 0
        self._shape: tuple[int, int] | None = None

    def set_data(
        self,
        image: np.ndarray,
        rows: np.ndarray,
        n_t: int,
        levels: tuple[float, float],
        backwards: bool = False,
    ) -> None:
        """``image`` shows the units ``rows`` over ``n_t`` steps: ``(len(rows), n_t)``, or
        block means of it for a long trace (:func:`lstmviz.analysis.overview.overview`).
        ``backwards``: the layer runs from the last step to the first (its "future" is on
        the left)."""
        self.data = image
        self.dim.backwards = backwards
        self.rows = rows
        self.n_rows, self.n_t = len(rows), int(n_t)
        self.image.setImage(image, autoLevels=False, levels=levels)
        self.bar.set_levels(levels)
        self.image.setRect(QRectF(0, 0, max(self.n_t, 1), max(self.n_rows, 1)))
        if self._shape != (self.n_rows, self.n_t):
            # a new trace of the same shape (a training snapshot, a what-if edit) keeps the
            # user's zoom, and the axes are not re-rendered
            self._shape = (self.n_rows, self.n_t)
            self.dim.set_area(QRectF(0, 0, max(self.n_t, 1), max(self.n_rows, 1)))
            self.plot.vb.setLimits(
                xMin=-0.5, xMax=self.n_t + 0.5, yMin=-0.5, yMax=self.n_rows + 0.5
            )
            self.plot.vb.setRange(xRange=(0, self.n_t), yRange=(0, self.n_rows), padding=0)

    def set_ticks(self, axis: str, ticks: list[tuple[float, str]]) -> None:
        set_ticks(self.plot.getAxis(axis), ticks)

    def set_t(self, t: int) -> None:
        self.t = t
        n = self.n_t
        self.cursor.setRect(QRectF(t, 0, 1, self.n_rows))
        self.dim.set_t(t)
        del n

    def mark_row(self, row: int | None, highlight: bool = False) -> None:
        """Outline the selected unit's row (``highlight``: also light it up: its quantity
        was clicked in the cell diagram)."""
        self.highlight.setVisible(row is not None and highlight)
        if row is None:
            self.row_mark.setVisible(False)
            return
        self.row_mark.setVisible(True)
        self.row_mark.setRect(QRectF(0, row, max(self.n_t, 1), 1))
        if highlight:
            self.highlight.setRect(QRectF(-0.02, row - 0.15, max(self.n_t, 1) + 0.04, 1.3))

    def cursor_t(self) -> int:
        """The timestep the cursor outlines (for tests and tools)."""
        return round(self.cursor.rect().x())


class HeatmapGrid(pg.GraphicsLayoutWidget):
    """The six heatmaps of the selected layer (3 x 2), or -- in "all layers" mode -- forget
    gate, cell and hidden state of every LSTM layer, one row per layer.

    Signals
    -------
    hovered(str) : a description of the value under the mouse (for the status bar).
    overhead_changed() : the maps' titles and axes turned out taller than estimated (the
        window gives them more room: see :meth:`wanted_height`).
    """

    hovered = Signal(str)
    overhead_changed = Signal()

    def __init__(self, state: ViewerState, parent: Any = None) -> None:
        super().__init__(parent)
        self.state = state
        self.theme: Theme = NORMAL
        self.all_layers = False
        self.maps: dict[str, Heatmap] = {}
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.ci.layout.setHorizontalSpacing(2)
        self.ci.layout.setVerticalSpacing(GRID_SPACING)
        # the pixels of a row of maps that are not unit rows, as laid out (see overhead())
        self._measured: dict[tuple[str, bool, int], int] = {}
        self.setBackground(self.theme.bg)
        self.ncol = 3  # 3: two rows of maps; 6: one row (titles shortened to one line)
        self.shown_rows: np.ndarray = np.zeros(0, np.int64)  # units drawn (a top-k may apply)
        self.note = QLabel(self)  # says when not every unit fits
        self.note.setStyleSheet(
            "background: rgba(23, 25, 30, 220); color: #F0E442; padding: 2px 8px;"
            "border: 1px solid #5a5f6b; border-radius: 4px;"
        )
        self.note.hide()
        # a locked colour scale that many values overflow: offer to widen it
        self.levels_note = QLabel(self)
        self.levels_note.setStyleSheet(
            "background: rgba(23, 25, 30, 220); color: #F0E442; padding: 2px 8px;"
            "border: 1px solid #5a5f6b; border-radius: 4px;"
        )
        self.levels_note.hide()
        self._note_px = 0  # the strip under the maps kept for the notes (see _place_notes)
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.timeout.connect(self._fit)
        self._measure_later = QTimer(self)
        self._measure_later.setSingleShot(True)
        self._measure_later.timeout.connect(self._measure_now)
        self._build()
        # a big trace: the heatmaps draw it first, each view in its own event-loop turn
        # (laid out for it -- 3 x 2 or 6 x 1 maps -- in one turn, drawn in the next)
        state.events.trace.connect(staged(state, self._fit_for_trace, order=0, paint=False))
        # another layer or batch item of a big trace: the same, drawn in its own turn
        redraw = staged(state, self._on_trace_changed, order=1)
        state.events.trace.connect(redraw)
        state.events.layer.connect(redraw)
        state.events.batch.connect(redraw)
        hold_on_resize(state, self, order=1, settling=self._settling)
        state.events.rows.connect(self._on_trace_changed)
        state.events.t.connect(self._on_t_changed)
        state.events.selection.connect(self._on_selection_changed)
        state.options.events.highlight.connect(self._on_selection_changed)
        state.options.events.focus_units.connect(self._on_focus_changed)
        state.options.events.hide_future.connect(self._on_hide_future)
        state.events.selection.connect(self._on_focus_changed)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self._hover_proxy = pg.SignalProxy(
            self.scene().sigMouseMoved, rateLimit=30, slot=self._on_moved
        )
        self.setToolTip("Click a cell: jump to its timestep and select its unit")

    # --- layout ------------------------------------------------------------------------------
    def cells(self) -> list[tuple[str | None, str]]:
        if not self.all_layers:
            return [(None, q) for q in QUANTITIES]
        return [
            (name, q) for name in self.state.layer_names for q in ("forget_gate", "cell", "hidden")
        ]

    def _build(self) -> None:
        self.ci.clear()
        self.maps = {}
        cells = self.cells()
        ncol = 3 if self.all_layers else self.ncol
        first: pg.PlotItem | None = None
        for k, (layer, q) in enumerate(cells):
            r, c = divmod(k, ncol)
            plot = self.ci.addPlot(row=r, col=c, enableMenu=False)
            plot.hideButtons()
            plot.vb.invertY(True)
            plot.vb.setMouseEnabled(x=True, y=True)
            plot.setDefaultPadding(0)
            for ax in ("left", "bottom"):
                plot.getAxis(ax).setZValue(20)
                # fixed ticks: no SI-prefix relabelling (an HTML layout) at every range change
                plot.getAxis(ax).enableAutoSIPrefix(False)
            bar = ColorBar(colormap(GATE_CMAP if q in GATES else SIGNED_CMAP))
            key = q if layer is None else f"{layer}:{q}"
            hm = Heatmap(plot, bar, q, layer)
            self.maps[key] = hm
            self.ci.layout.setColumnStretchFactor(c, 1)
            if first is None:
                first = plot
                plot.vb.sigResized.connect(self._measure)
            else:
                plot.setXLink(first)
        self._apply_theme()

    def _title_html(self, hm: Heatmap) -> str:
        th = self.theme
        color = QUANTITY_COLORS[hm.quantity]
        name = SHORT_TITLES[hm.quantity]
        if hm.layer is not None:
            return (
                f"<span style='color:{color}; font-size:{th.title_px}px; font-weight:600'>"
                f"{hm.layer} · {name}</span>"
            )
        if not self.all_layers and self.ncol == 6:  # six side by side: one short line
            return (
                f"<span style='color:{color}; font-size:{th.title_px}px; font-weight:700'>"
                f"{name}</span>"
            )
        if th.name == "presentation":
            return (
                f"<span style='color:{color}; font-size:{th.title_px}px; "
                f"font-weight:700'>{name}</span><br><span style='color:{th.muted}; "
                f"font-size:{th.tick_px}px'>{SHORT_MEANINGS[hm.quantity]}</span>"
            )
        return (
            f"<span style='color:{color}; font-size:{th.title_px}px; font-weight:700'>"
            f"{name}</span><br><span style='color:{th.muted}; "
            f"font-size:{th.title_px - 2}px'>{MEANINGS[hm.quantity]}</span>"
        )

    def _apply_theme(self) -> None:
        th = self.theme
        self.setBackground(th.bg)
        self.setMinimumHeight(self.overhead() + 8 * ROW_PX)
        tick_font = QFont("DejaVu Sans")
        tick_font.setPixelSize(th.tick_px)
        for hm in self.maps.values():
            set_title(hm.plot, self._title_html(hm))
            for ax in ("left", "bottom"):
                a = hm.plot.getAxis(ax)
                a.setStyle(tickFont=tick_font, tickLength=-4)
                a.setPen(pg.mkPen(th.muted))
                a.setTextPen(pg.mkPen(th.fg))
            if th.name == "presentation":  # big fonts: the titles say it, save the space
                hm.plot.getAxis("left").showLabel(False)
                hm.plot.getAxis("bottom").showLabel(False)
                hm.plot.getAxis("left").setWidth(int(th.tick_px * 2.0))
                hm.plot.getAxis("bottom").setHeight(int(th.tick_px * 1.7))
            elif not self.all_layers and self.ncol == 6:  # narrow: the titles say it
                hm.plot.getAxis("left").showLabel(False)
                hm.plot.getAxis("bottom").showLabel(False)
                hm.plot.getAxis("left").setWidth(int(th.tick_px * 2.2))
                hm.plot.getAxis("bottom").setHeight(int(th.tick_px * 1.9))
            else:
                label_style = {"color": th.muted, "font-size": f"{th.tick_px - 1}px"}
                hm.plot.getAxis("left").setLabel("unit", **label_style)
                hm.plot.getAxis("bottom").setLabel("t", **label_style)
                hm.plot.getAxis("left").setWidth(int(th.tick_px * 3.2))
                hm.plot.getAxis("bottom").setHeight(int(th.tick_px * 2.9))
            hm.bar.set_style(tick_font, th.fg, max(10, th.tick_px - 2))
            hm.cursor.setPen(pg.mkPen(th.accent, width=th.cursor_width, cosmetic=True))
            if th.name == "presentation":  # a pointer on the selected unit: solid, bright
                hm.row_mark.setPen(pg.mkPen("#F0E442", width=th.cursor_width, cosmetic=True))
            else:
                hm.row_mark.setPen(
                    pg.mkPen(
                        "#ffffff",
                        width=max(1.0, th.cursor_width / 2.5),
                        style=Qt.PenStyle.DashLine,
                        cosmetic=True,
                    )
                )
            hm.dim.set_brush(self._shade_brush())
            hm.highlight.setPen(pg.mkPen("#56B4E9", width=th.cursor_width * 1.6, cosmetic=True))
            hm.plot.vb.setBackgroundColor(th.panel)

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self._apply_theme()
        self._on_trace_changed()

    def _shade_brush(self) -> QBrush:
        """What covers the steps after t: a dark veil, or -- while the future is hidden
        ("predict, then reveal") -- the plot's background, opaque."""
        if self.state.options.hide_future:
            return QBrush(QColor(self.theme.panel))
        return QBrush(QColor(0, 0, 0, self.theme.dim_alpha))

    def _on_hide_future(self, _on: bool) -> None:
        for hm in self.maps.values():
            hm.dim.set_brush(self._shade_brush())

    def _on_focus_changed(self, *_: Any) -> None:
        if self.theme.name == "presentation" and not self.all_layers:
            self._on_trace_changed()  # the focus rows and their labels follow the selection

    def set_all_layers(self, on: bool) -> None:
        """Show forget gate, cell and hidden state of every layer at once."""
        if on == self.all_layers:
            return
        self.all_layers = on
        self._build()
        self._on_trace_changed()

    # --- state -> view ------------------------------------------------------------------
    def _layer_trace(self, hm: Heatmap) -> Any:
        tr = self.state.trace
        if tr is None:
            return None
        return self.state.layer_trace if hm.layer is None else tr.layer(hm.layer)

    def _settling(self) -> bool:
        """Whether a re-layout for a new size is still to run (see :meth:`resizeEvent`)."""
        return self._relayout.isActive()

    def _fit_for_trace(self) -> None:
        """Lay the maps out for the trace (drawn by :meth:`_on_trace_changed`)."""
        if self.state.trace is not None:
            self._fit(redraw=False)

    def _on_trace_changed(self, *_: Any) -> None:
        doc = self.state
        if doc.trace is None:
            return
        if self.all_layers and [k.split(":")[0] for k in self.maps][::3] != doc.layer_names:
            self._build()
        self._fit(redraw=False)
        b = doc.batch
        for hm in self.maps.values():
            lt = self._layer_trace(hm)
            if lt is None:
                continue
            rows = self.shown_rows if hm.layer is None else self._rows_for(lt, np.arange(lt.units))
            img = overview(lt, hm.quantity, b, None if len(rows) == lt.units else rows)
            hm.set_data(
                img,
                rows,
                lt.timesteps,
                doc.color_levels(hm.quantity, lt),
                backwards=bool(lt.go_backwards),
            )
            n_labels = self._max_unit_labels(len(rows))
            if self.theme.name == "presentation":  # the pointed-at unit always has its number
                ticks = pointed_ticks(rows, self.state.selected_units, n_labels)
            else:
                ticks = self._unit_ticks(rows, n_labels)
            hm.set_ticks("left", ticks)
            hm.set_t(min(doc.t, max(lt.timesteps - 1, 0)))
        self._update_time_ticks()
        self._on_selection_changed()
        self._update_levels_note()

    def _update_levels_note(self) -> None:
        q, share = self.state.levels_outside()
        if share < 0.02 or self.theme.name == "presentation":
            self.levels_note.hide()
            self._place_notes()
            return
        self._set_note(
            self.levels_note,
            f"locked colours: {share:.0%} of the {SHORT_TITLES[q]} values are beyond the "
            "scale (View ▸ Colour levels ▸ Widen)",
        )
        self.levels_note.show()
        self.levels_note.raise_()
        self._place_notes()

    def _set_note(self, label: QLabel, text: str) -> None:
        """``text`` in the note ``label``, elided to the grid's width (whole in its tooltip)."""
        room = max(self.width() - 16, 120)
        pad = label.sizeHint().width() - label.fontMetrics().horizontalAdvance(label.text())
        shown = label.fontMetrics().elidedText(
            text, Qt.TextElideMode.ElideRight, max(room - max(pad, 0), 60)
        )
        label.setText(shown)
        label.setToolTip(text if shown != text else "")
        label.adjustSize()

    def _note_room(self) -> int:
        """The height of the strip the notes need under the maps (0 without a note)."""
        notes = [n for n in (self.levels_note, self.note) if not n.isHidden()]
        if not notes:
            return 0
        if sum(n.width() for n in notes) + 8 * (len(notes) + 1) <= self.width():
            return max(n.height() for n in notes) + 4  # side by side
        return sum(n.height() + 2 for n in notes) + 2  # one above the other

    def _place_notes(self) -> None:
        """The notes (top-k, locked colours) in a strip under the maps that the maps leave
        free: laid over the last map they covered its time axis. The top-k note sits at
        the bottom right, the colour note at the bottom left (above it when both do not fit
        side by side)."""
        room = self._note_room()
        bottom = self.height() - 2
        if not self.note.isHidden():
            left = max(self.width() - self.note.width() - 8, 0)
            self.note.move(left, bottom - self.note.height())
        if not self.levels_note.isHidden():
            above = (
                not self.note.isHidden()
                and room > max(self.note.height(), self.levels_note.height()) + 4
            )
            top = (bottom - self.note.height() - 2) if above else bottom
            self.levels_note.move(8, max(top - self.levels_note.height(), 0))
        if room != self._note_px:
            self._note_px = room
            self.ci.setContentsMargins(4, 4, 4, 4 + room)

    # --- fitting the grid to its height ----------------------------------------------------------
    def overhead(self, ncol: int | None = None) -> int:
        """Pixels of one row of maps that are not unit rows (title, time axis, margins), with
        ``ncol`` maps per row (default: as now)."""
        th = self.theme
        ncol = self.ncol if ncol is None else ncol
        two_lines = self.all_layers is False and ncol == 3
        second = th.tick_px if th.name == "presentation" else th.title_px - 2
        title = th.title_px + (second if two_lines else 0) + 10
        narrow = th.name == "presentation" or (not self.all_layers and ncol == 6)
        axis = int(th.tick_px * (1.7 if th.name == "presentation" else 1.9 if narrow else 2.9))
        guess = title + axis + 12
        return max(guess, self._measured.get((th.name, self.all_layers, ncol), 0))

    def _measure(self, *_: Any) -> None:
        """Record :meth:`overhead` as laid out (fonts and title heights vary between
        systems) once the layout has settled; when it changed, fit the units again and tell
        the window."""
        self._measure_later.start(0)  # mid-change (columns placed, titles not yet): wait

    def _measure_now(self) -> None:
        if not self.maps:
            return
        plot = next(iter(self.maps.values())).plot
        inside = plot.height() - plot.vb.height()  # title, time axis, margins of a map
        if plot.vb.height() <= 0 or inside <= 0:
            return
        grid_rows = max(len(self.state.layer_names), 1) if self.all_layers else 6 // self.ncol
        _, top, _, bottom = self.ci.layout.getContentsMargins()
        outside = top + bottom - self._note_px + GRID_SPACING * (grid_rows - 1)
        got = int(np.ceil(inside + outside / grid_rows))
        key = (self.theme.name, self.all_layers, self.ncol)
        if got != self._measured.get(key):
            self._measured[key] = got
            self.overhead_changed.emit()
            self._relayout.start(0)

    def capacity(self, ncol: int, height: float | None = None) -> int:
        """How many unit rows fit per map with ``ncol`` maps per row (3 or 6)."""
        h = float(self.height() if height is None else height)
        if self.all_layers:
            grid_rows = max(len(self.state.layer_names), 1)
        else:
            grid_rows = 2 if ncol == 3 else 1
        return max(int((h / grid_rows - self.overhead(ncol)) // ROW_PX), 1)

    def _rows_for(self, lt: Any, rows: np.ndarray) -> np.ndarray:
        """``rows``, or its most active units when they do not all fit at ROW_PX each (then
        in the height the note saying so leaves)."""
        ncol = 3 if self.all_layers else self.ncol
        if len(rows) <= self.capacity(ncol):
            return rows
        note = self._note_px or self.note.sizeHint().height() + 4
        cap = self.capacity(ncol, self.height() - note)
        from ..analysis.units import unit_scores

        score = unit_scores(lt, min(self.state.batch, lt.batch_size - 1), "active")[rows]
        keep = np.sort(rows[np.argsort(-score, kind="stable")[:cap]])
        return keep.astype(np.int64)

    def focus_capacity(self) -> int:
        """Presentation mode: how many unit rows fit a map with each row at least as tall
        as its label (so every unit shown has its number beside it)."""
        row = int(self.theme.tick_px * 1.2) + 1
        grid_rows = 2 if self.ncol == 3 else 1
        h = self.height() / grid_rows - self.overhead()
        return max(int(h // row), 1)

    def wanted_height(self) -> int:
        """The height that shows every unit (up to 48) at :data:`ROW_PX` in one row of maps:
        the window gives the heatmaps this before the line plots below get any."""
        lt = self.state.layer_trace
        n = len(self.state.rows) if lt is not None and len(self.state.rows) else 16
        if self.all_layers:
            layers = max(len(self.state.layer_names), 1)
            return layers * (self.overhead() + min(n, 24) * ROW_PX)
        return self.overhead(6) + min(n, 48) * ROW_PX

    def _max_unit_labels(self, n_rows: int) -> int:
        """As many unit labels as fit the map's height without touching each other."""
        grid_rows = max(len(self.state.layer_names), 1) if self.all_layers else 6 // self.ncol
        px = self.height() / grid_rows - self.overhead()  # a map's data height
        per_label = self.theme.tick_px * (1.2 if self.theme.name == "presentation" else 1.5)
        return max(2, min(self.theme.max_unit_labels, int(px // per_label), n_rows))

    def _fit(self, redraw: bool = True) -> None:
        """Choose 3 x 2 or 6 x 1 maps for the height, and the units that fit."""
        doc = self.state
        lt = doc.layer_trace
        if lt is None:
            self.note.hide()
            return
        rows = doc.rows if len(doc.rows) else np.arange(lt.units, dtype=np.int64)
        if self.theme.name == "presentation" and not self.all_layers:
            rows = doc.focus_rows(self.focus_capacity())  # each row large enough to point at
        n = len(rows)
        ncol = self.ncol
        if not self.all_layers:
            # two rows of maps only where each has room for its units (capacity() says 1
            # however low the view: presentation mode with a panel open got maps 0 px high)
            room = (self.height() - GRID_SPACING) / 2 - self.overhead(3)
            ncol = 3 if n <= self.capacity(3) and room >= n * ROW_PX else 6
            if ncol != self.ncol:
                self.ncol = ncol
                self._place()
                self._apply_theme()
                QTimer.singleShot(0, self._update_time_ticks)  # once the maps have new widths
                if self.theme.name == "presentation":  # as many as the new arrangement holds
                    rows = doc.focus_rows(self.focus_capacity())
                    n = len(rows)
        shown = self._rows_for(lt, rows)
        changed = not np.array_equal(shown, self.shown_rows)
        self.shown_rows = shown
        if len(shown) < n:
            self._set_note(
                self.note,
                f"showing the {len(shown)} most active of {n} units "
                f"({ROW_PX} px each): make the window taller, or pick units in Show",
            )
            self.note.show()
            self.note.raise_()
        else:
            self.note.hide()
        self._place_notes()
        if redraw and changed:
            self._on_trace_changed()

    def _place(self) -> None:
        """Put the existing maps in ``self.ncol`` columns (no plot is rebuilt)."""
        plots = [hm.plot for hm in self.maps.values()]
        for plot in plots:
            self.ci.removeItem(plot)
        for k, plot in enumerate(plots):
            r, c = divmod(k, self.ncol)
            self.ci.addItem(plot, row=r, col=c)
        for c in range(6):
            self.ci.layout.setColumnStretchFactor(c, 1 if c < self.ncol else 0)
        used = 6 // self.ncol
        for r in range(6):
            # a row left over from the 3 x 2 grid keeps its height and spacing unless told:
            # 20 px the maps would not get
            self.ci.layout.setRowStretchFactor(r, 1 if r < used else 0)
            self.ci.layout.setRowMaximumHeight(r, QWIDGETSIZE_MAX if r < used else 0)
            self.ci.layout.setRowSpacing(r, GRID_SPACING if r < used - 1 else 0)
        # the grid keeps the height its old arrangement needed at least (two rows of maps
        # need more than one) until it is given its geometry again: without this the maps
        # stayed taller than the view and their time axes were cut at its bottom
        self.ci.layout.invalidate()
        QTimer.singleShot(0, self._fill_view)

    def _fill_view(self) -> None:
        """The maps' layout fills the view exactly (see :meth:`_place`)."""
        self.ci.setGeometry(QRectF(self.range))

    def _update_time_ticks(self) -> None:
        labels = self.state.token_labels()
        for hm in self.maps.values():
            if not hm.n_t:
                continue
            w = hm.plot.vb.width()
            if w < 20:  # not laid out yet
                w = self.width() / 3 - 90
            ticks = time_ticks(
                labels if len(labels) == hm.n_t else [], hm.n_t, w, self.theme.tick_px
            )
            hm.set_ticks("bottom", ticks)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        if getattr(self, "maps", None) and hasattr(self, "state"):
            self._update_time_ticks()
            self._relayout.start(0)
            if not self.levels_note.isHidden():
                self._update_levels_note()  # elided to the new width

    @staticmethod
    def _unit_ticks(rows: np.ndarray, max_labels: int = 12) -> list[tuple[float, str]]:
        n = len(rows)
        step = max(1, -(-n // max_labels))
        if step > 1:
            step = next(
                s
                for s in (
                    2,
                    4,
                    5,
                    8,
                    10,
                    16,
                    20,
                    25,
                    32,
                    50,
                    64,
                    100,
                    128,
                    200,
                    256,
                    500,
                    1000,
                    10**9,
                )
                if s >= step
            )
        return [(k + 0.5, str(int(rows[k]))) for k in range(0, n, step)]

    def _on_t_changed(self, t: int) -> None:
        for hm in self.maps.values():
            hm.set_t(min(t, max(hm.n_t - 1, 0)))

    def _on_selection_changed(self, *_: Any) -> None:
        u = self.state.unit
        lit = HEATMAP_OF.get(self.state.options.highlight, "")
        for hm in self.maps.values():
            hit = np.nonzero(hm.rows == u)[0]
            mine = hm.layer is None or hm.layer == self.state.layer
            hm.mark_row(int(hit[0]) if len(hit) and mine else None, hm.quantity == lit)

    # --- mouse ---------------------------------------------------------------------------------
    def cell_at(self, scene_pos: QPointF) -> tuple[Heatmap, int, int] | None:
        """(heatmap, t, unit) under a scene position, or None."""
        for hm in self.maps.values():
            if hm.plot.vb.sceneBoundingRect().contains(scene_pos) and hm.n_t:
                p = hm.plot.vb.mapSceneToView(scene_pos)
                t, r = int(np.floor(p.x())), int(np.floor(p.y()))
                if 0 <= t < hm.n_t and 0 <= r < hm.n_rows:
                    return hm, t, int(hm.rows[r])
        return None

    def scene_pos_of(self, key: str, t: int, unit_row: int) -> QPointF:
        """Scene position of the centre of cell (row, t) of heatmap ``key`` (for tests)."""
        hm = self.maps[key]
        return hm.plot.vb.mapViewToScene(QPointF(t + 0.5, unit_row + 0.5))

    def _on_clicked(self, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        hit = self.cell_at(ev.scenePos())
        if hit is None:
            return
        hm, t, unit = hit
        ev.accept()
        if hm.layer is not None and hm.layer != self.state.layer:
            self.state.set_layer(hm.layer)
        self.state.set_t(t)
        units = self.state.selected_units
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            units = [u for u in units if u != unit] if unit in units else [*units, unit]
            self.state.set_units(units or [unit])
        else:
            self.state.set_units([unit, *[u for u in units if u != unit]][:6])

    def _on_moved(self, args: Any) -> None:
        hit = self.cell_at(args[0])
        if hit is None:
            return
        hm, t, unit = hit
        lt = self._layer_trace(hm)
        if lt is None:
            return
        v = float(lt.at_unit(hm.quantity, t, min(self.state.batch, lt.batch_size - 1))[unit])
        labels = self.state.token_labels()
        tok = f" ({labels[t]!r})" if t < len(labels) else ""
        self.hovered.emit(f"{SHORT_TITLES[hm.quantity]} · unit {unit} · t = {t}{tok}: {v:+.3f}")
